import numpy as np
import pytest

from edge_reid.preprocess import CropPreprocessor, reference_preprocess
from edge_reid.spec import BUILTIN_SPECS, ModelSpec


def _crops(frame, boxes):
    return [frame[int(y1) : int(np.ceil(y2)), int(x1) : int(np.ceil(x2))] for x1, y1, x2, y2 in boxes]


@pytest.mark.parametrize("spec", [BUILTIN_SPECS["osnet"], BUILTIN_SPECS["person-reidentification-retail"]], ids=["rgb", "bgr"])
def test_fused_preprocess_matches_reference_on_real_crops(spec, vtest_frames, frame0_detections):
    frame, boxes = vtest_frames[0], frame0_detections.boxes
    assert len(boxes) >= 3
    pre = CropPreprocessor(spec, max_batch=len(boxes))
    out = np.full((len(boxes) + 2, 3, spec.height, spec.width), 7.0, np.float32)
    pre.write_boxes(frame, boxes, out)
    expected = np.stack([reference_preprocess(c, spec) for c in _crops(frame, boxes)])
    np.testing.assert_allclose(out[: len(boxes)], expected, rtol=1e-5, atol=1e-4)
    assert (out[len(boxes) :] == 7.0).all(), "rows past N must be untouched"
    crop_out = np.zeros_like(out)
    pre.write_crops(_crops(frame, boxes), crop_out)
    np.testing.assert_array_equal(crop_out[: len(boxes)], out[: len(boxes)])


def test_preprocess_rejects_bad_input(vtest_frames):
    spec = ModelSpec()
    pre = CropPreprocessor(spec, max_batch=2)
    good = np.zeros((2, 3, spec.height, spec.width), np.float32)
    with pytest.raises(ValueError, match="empty"):
        pre.write_boxes(vtest_frames[0], np.array([[10, 10, 10, 50]], np.float32), good)
    with pytest.raises(ValueError, match="max_batch"):
        pre.write_crops([vtest_frames[0]] * 3, good)
    with pytest.raises(ValueError, match="float32"):
        pre.write_crops([vtest_frames[0]], good.astype(np.float64))
    with pytest.raises(ValueError, match="crop 0"):
        pre.write_crops([np.zeros((0, 5, 3), np.uint8)], good)
