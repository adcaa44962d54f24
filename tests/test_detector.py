import numpy as np
import pytest

from edge_reid.detections import Detections, sanitize_boxes
from edge_reid.detector import PersonDetector, yolox_grids
from edge_reid.errors import ModelError
from onnx_builders import mean_model


def _iou(a, b):
    x1, y1 = np.maximum(a[:2], b[:2])
    x2, y2 = np.minimum(a[2:], b[2:])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    area = lambda r: (r[2] - r[0]) * (r[3] - r[1])
    return inter / (area(a) + area(b) - inter)


def test_yolox_grid_matches_output_length():
    grid, strides = yolox_grids(416, 416)
    assert grid.shape == (3549, 2) and strides.shape == (3549, 1)
    assert tuple(grid[52 * 52 - 1]) == (51, 51) and strides[52 * 52, 0] == 16


def test_detects_people_on_real_frames(detector, vtest_frames):
    for frame in vtest_frames[:3]:
        found = detector.detect(frame)
        assert len(found) >= 3, "vtest.avi shows several people from the first frame"
        boxes = found.boxes
        assert (boxes[:, 0] >= 0).all() and (boxes[:, 2] <= frame.shape[1]).all()
        assert (boxes[:, 1] >= 0).all() and (boxes[:, 3] <= frame.shape[0]).all()
        assert ((boxes[:, 3] - boxes[:, 1]) >= detector.min_box_height).all()
        assert (np.diff(found.scores) <= 0).all() and (found.scores >= detector.score_threshold).all()
        # People are taller than wide, seen from above at a distance.
        assert np.median((boxes[:, 3] - boxes[:, 1]) / (boxes[:, 2] - boxes[:, 0])) > 1.5
        for i in range(len(boxes)):
            for j in range(i + 1, len(boxes)):
                assert _iou(boxes[i], boxes[j]) <= detector.nms_iou + 1e-6


def test_blank_frame_and_bad_frame(detector):
    assert len(detector.detect(np.full((480, 640, 3), 128, np.uint8))) == 0
    with pytest.raises(ValueError, match="uint8"):
        detector.detect(np.zeros((480, 640), np.uint8))
    with pytest.raises(ValueError, match="non-empty"):
        detector.detect(np.zeros((0, 0, 3), np.uint8))
    with pytest.raises(ValueError, match="numpy array, got list"):
        detector.detect([[[0, 0, 0]]])


@pytest.mark.parametrize(
    "keyword, value, message",
    [("score_threshold", 5.0, "score_threshold must be in"), ("nms_iou", -0.1, "nms_iou must be in"),
     ("min_box_height", -1.0, "min_box_height must be >= 0")],
)
def test_out_of_range_settings_refused_before_loading(tmp_path, keyword, value, message):
    with pytest.raises(ValueError, match=message):
        PersonDetector(tmp_path / "never_read.onnx", **{keyword: value})


def test_thresholds_filter(yolox_path, vtest_frames):
    strict = PersonDetector(yolox_path, score_threshold=0.8)
    loose = PersonDetector(yolox_path, score_threshold=0.3)
    tall_only = PersonDetector(yolox_path, min_box_height=80)
    frame = vtest_frames[0]
    assert len(strict.detect(frame)) < len(loose.detect(frame))
    assert ((lambda b: b[:, 3] - b[:, 1])(tall_only.detect(frame).boxes) >= 80).all()


def test_non_detector_model_is_refused(tmp_path):
    with pytest.raises(ModelError, match="m.onnx"):
        PersonDetector(mean_model(tmp_path / "m.onnx"))


def test_sanitize_clips_and_drops():
    boxes = np.array(
        [[-10, -5, 50, 100], [10, 10, 10, 60], [20, 30, 10, 90], [700, 10, 900, 200], [5, 5, 20, 12], [np.nan, 0, 5, 5]],
        np.float32,
    )
    clipped, keep = sanitize_boxes(boxes, 480, 640, min_box_height=20)
    np.testing.assert_array_equal(clipped[0], [0, 0, 50, 100])
    assert keep.tolist() == [True, False, False, False, False, False]
    assert Detections.from_boxes([]).boxes.shape == (0, 4)
    with pytest.raises(ValueError, match="scores"):
        Detections.from_boxes([[0, 0, 1, 1]], [0.5, 0.6])
    with pytest.raises(ValueError, match=r"scores must be confidences in \[0, 1\], got 95"):
        Detections.from_boxes([[0, 0, 1, 1]], [95.0])


def test_detector_precision_is_checked_and_onnxruntime_runs_fp32_only(yolox_path):
    from edge_reid.backends import create_detector_backend
    from edge_reid.errors import BackendUnavailableError

    with pytest.raises(ValueError, match="unknown detector precision 'int8'"):
        create_detector_backend("onnxruntime", yolox_path, precision="int8")
    with pytest.raises(BackendUnavailableError, match=r"fp32 only, not fp16 \(--detector-precision, or PersonDetector\(precision=\) in Python\): use the openvino backend"):
        PersonDetector(yolox_path, backend="onnxruntime", precision="fp16")
    assert PersonDetector(yolox_path, backend="onnxruntime", precision="fp32").describe().startswith("onnxruntime")


def test_a_box_scored_exactly_at_the_threshold_survives_suppression():
    """Defect: OpenCV's NMSBoxes keeps only scores strictly above its threshold, so a box the detector
    had kept at ``score >= score_threshold`` was dropped when it scored exactly the threshold."""
    from types import SimpleNamespace

    settings = SimpleNamespace(score_threshold=0.1, nms_iou=0.45)
    boxes = np.array([[0, 0, 10, 20], [50, 0, 60, 20]], np.float32)
    scores = np.array([0.9, 0.1], np.float32)
    assert PersonDetector._suppress(settings, boxes, scores, np.arange(2)).tolist() == [0, 1]
