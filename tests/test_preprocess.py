import numpy as np
import pytest

from edge_reid.preprocess import CropPreprocessor, crop_box, reference_preprocess
from edge_reid.spec import BUILTIN_SPECS, ModelSpec


def _crops(frame, boxes):
    return [crop_box(frame, box) for box in boxes]


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


@pytest.fixture(scope="module")
def real_crops(vtest_frames, detector):
    """About 50 real person crops (BGR, varied sizes) from the first frames of vtest.avi."""
    crops = []
    for frame in vtest_frames[:8]:
        crops += _crops(frame, detector.detect(frame).boxes)
    assert len(crops) >= 32
    return crops


@pytest.mark.parametrize("threads", [2, 3, 4])
@pytest.mark.parametrize("count", [1, 7, 8, 13, 32])
def test_threaded_preprocessing_gives_the_same_batch(real_crops, threads, count):
    spec = BUILTIN_SPECS["osnet"]
    crops = real_crops[:count]
    serial = np.full((33, 3, spec.height, spec.width), 7.0, np.float32)
    CropPreprocessor(spec, max_batch=32).write_crops(crops, serial)
    threaded_pre = CropPreprocessor(spec, max_batch=32, threads=threads)
    threaded = np.full_like(serial, 7.0)
    try:
        threaded_pre.write_crops(crops, threaded)
        # every slice written, none twice or shifted, rows past N untouched
        np.testing.assert_array_equal(threaded, serial)
        assert (threaded[count:] == 7.0).all()
    finally:
        threaded_pre.close()


def test_threaded_boxes_match_serial_boxes(vtest_frames, detector, monkeypatch):
    import edge_reid.preprocess as preprocess_module

    monkeypatch.setattr(preprocess_module, "MIN_CROPS_PER_THREAD", 2)  # a frame has ~5 people: split them anyway
    spec = BUILTIN_SPECS["osnet"]
    frame = max(vtest_frames, key=lambda f: len(detector.detect(f).boxes))
    boxes = detector.detect(frame).boxes
    assert len(boxes) >= 4
    serial = np.zeros((len(boxes), 3, spec.height, spec.width), np.float32)
    threaded = np.zeros_like(serial)
    CropPreprocessor(spec, max_batch=len(boxes)).write_boxes(frame, boxes, serial)
    pre = CropPreprocessor(spec, max_batch=len(boxes), threads=2)
    pre.write_boxes(frame, boxes, threaded)
    assert pre._pool is not None, "the boxes were split across threads"
    pre.close()
    np.testing.assert_array_equal(threaded, serial)


def test_small_batches_stay_on_the_callers_thread(real_crops):
    from edge_reid.preprocess import MIN_CROPS_PER_THREAD

    spec = BUILTIN_SPECS["osnet"]
    pre = CropPreprocessor(spec, max_batch=32, threads=4)
    out = np.zeros((32, 3, spec.height, spec.width), np.float32)
    pre.write_crops(real_crops[: 2 * MIN_CROPS_PER_THREAD - 1], out)
    assert pre._pool is None, "a batch too small to split must not start threads"
    pre.write_crops(real_crops[: 2 * MIN_CROPS_PER_THREAD], out)
    assert pre._pool is not None
    pre.close()
    assert pre._pool is None
    pre.write_crops(real_crops[:32], out)  # usable again after close()
    pre.close()


def test_threaded_preprocessing_checks_input_before_starting(real_crops):
    spec = BUILTIN_SPECS["osnet"]
    with pytest.raises(ValueError, match="threads must be >= 1"):
        CropPreprocessor(spec, threads=0)
    pre = CropPreprocessor(spec, max_batch=32, threads=2)
    out = np.zeros((32, 3, spec.height, spec.width), np.float32)
    bad = list(real_crops[:16])
    bad[11] = np.zeros((0, 4, 3), np.uint8)
    with pytest.raises(ValueError, match="crop 11"):
        pre.write_crops(bad, out)
    assert pre._pool is None
    assert not out.any(), "nothing may be written when a crop is rejected"


def test_a_failing_slice_raises_after_every_slice_finished(real_crops, monkeypatch):
    import edge_reid.preprocess as preprocess_module

    spec = BUILTIN_SPECS["osnet"]
    pre = CropPreprocessor(spec, max_batch=32, threads=2)
    calls = []
    real_kernel = preprocess_module._normalize_transpose

    def kernel(staged, n, *args):
        calls.append(n)
        if len(calls) == 1:
            raise RuntimeError("kernel failed")
        return real_kernel(staged, n, *args)

    monkeypatch.setattr(preprocess_module, "_normalize_transpose", kernel)
    out = np.zeros((32, 3, spec.height, spec.width), np.float32)
    with pytest.raises(RuntimeError, match="kernel failed"):
        pre.write_crops(real_crops[:32], out)
    assert sorted(calls) == [16, 16], "both slices ran; the error surfaced after both"
    pre.close()


def test_embedder_preprocesses_on_the_models_threads(osnet_path):
    from edge_reid.embedder import Embedder, default_preprocess_threads

    assert default_preprocess_threads(1) == 1
    assert default_preprocess_threads(3) == 3
    assert default_preprocess_threads(64) == 4
    assert 1 <= default_preprocess_threads(None) <= 4
    embedder = Embedder(osnet_path, max_batch=4, threads=1)
    assert embedder.preprocessor.threads == 1
    embedder.close()
    embedder = Embedder(osnet_path, max_batch=4, threads=1, preprocess_threads=2)
    assert embedder.preprocessor.threads == 2
    embedder.close()
