import numpy as np
import pytest

from edge_reid.embedder import Embedder
from edge_reid.errors import ModelError
from onnx_builders import nan_model, relu_mean_model


def test_embeddings_are_unit_length_and_sub_batching_loses_nothing(osnet_path, embedder, vtest_frames, detector):
    frame = vtest_frames[5]
    boxes = detector.detect(frame).boxes
    assert len(boxes) >= 3
    reference = embedder.embed_boxes(frame, boxes)
    assert reference.shape == (len(boxes), 512) and reference.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(reference, axis=1), 1.0, atol=1e-5)
    small = Embedder(osnet_path, max_batch=2)  # fewer rows than people: must split, never drop
    assert small.max_batch == 2
    split = small.embed_boxes(frame, boxes)
    np.testing.assert_allclose(split, reference, atol=1e-4)


def test_same_person_is_closer_than_different_people(embedder, vtest_frames, detector):
    """Consecutive frames: each person's nearest embedding in the next frame is themself (by box overlap)."""
    a, b = vtest_frames[0], vtest_frames[1]
    boxes_a, boxes_b = detector.detect(a).boxes, detector.detect(b).boxes
    emb_a, emb_b = embedder.embed_boxes(a, boxes_a), embedder.embed_boxes(b, boxes_b)
    centers_a = (boxes_a[:, :2] + boxes_a[:, 2:]) / 2
    centers_b = (boxes_b[:, :2] + boxes_b[:, 2:]) / 2
    nearest_by_position = np.argmin(np.linalg.norm(centers_a[:, None] - centers_b[None], axis=2), axis=1)
    nearest_by_appearance = np.argmax(emb_a @ emb_b.T, axis=1)
    assert (nearest_by_position == nearest_by_appearance).mean() >= 0.75


def test_out_buffer_is_used(embedder, vtest_frames, frame0_detections):
    out = np.zeros((32, 512), np.float32)
    result = embedder.embed_boxes(vtest_frames[0], frame0_detections.boxes, out=out)
    assert np.shares_memory(result, out)
    with pytest.raises(ValueError, match="out must be"):
        embedder.embed_boxes(vtest_frames[0], frame0_detections.boxes, out=np.zeros((1, 512), np.float32))


def test_a_read_only_out_buffer_is_refused_before_the_model_runs(embedder, vtest_frames, frame0_detections):
    """An ``out`` from ``np.frombuffer`` or a shared read-only buffer: a ValueError naming it, before any crop is
    cut or inferred (it crashed inside a Numba kernel, after the model had run, with a typing error)."""
    count = len(frame0_detections)
    out = np.zeros((count, embedder.dim), np.float32)
    out.setflags(write=False)
    calls = []
    infer = embedder.backend.infer
    embedder.backend.infer = lambda n: calls.append(n) or infer(n)
    try:
        with pytest.raises(ValueError, match="out is read-only"):
            embedder.embed_boxes(vtest_frames[0], frame0_detections.boxes, out=out)
        with pytest.raises(ValueError, match="out is read-only"):
            embedder.embed_crops([vtest_frames[0][:128, :64]] * count, out=out)
    finally:
        del embedder.backend.infer
    assert calls == [] and not out.any()


@pytest.mark.parametrize(
    "convert",
    [
        lambda frame: frame.mean(axis=2).astype(np.uint8),  # grey
        lambda frame: frame.astype(np.float32),
        lambda frame: frame.astype(np.float32) / 255,
        lambda frame: np.concatenate([frame, np.full(frame.shape[:2] + (1,), 255, np.uint8)], axis=2),  # BGRA
    ],
    ids=["grey", "float", "float01", "bgra"],
)
def test_frame_of_another_form_is_refused_not_embedded_as_the_last_crop(embedder, vtest_frames, frame0_detections, convert):
    """OpenCV resizes a mismatched image into a new array, leaving the staging buffer with the
    previous crop's pixels: such a frame must be refused, not embedded as the crop before it."""
    boxes = frame0_detections.boxes[:2]
    embedder.embed_boxes(vtest_frames[0], boxes)
    with pytest.raises(ValueError, match="frame must be a non-empty"):
        embedder.embed_boxes(convert(vtest_frames[10]), boxes)


def test_nan_model_is_refused_at_load_by_name(tmp_path):
    model = nan_model(tmp_path / "broken_reid.onnx")
    with pytest.raises(ModelError, match="broken_reid.onnx.*NaN or Inf"):
        Embedder(model, max_batch=4)


def test_an_all_zero_embedding_is_refused_and_huge_raw_values_still_normalise(tmp_path):
    """An all-zero row has no direction: it was returned as a zero 'embedding' (then refused deep in the tracker
    with advice to L2-normalise). Raw values whose squares overflow float32 (1e20) were scaled to zero rows too."""
    grey = np.full((256, 128, 3), 128, np.uint8)
    black = np.zeros((256, 128, 3), np.uint8)
    with Embedder(relu_mean_model(tmp_path / "relu_reid.onnx"), max_batch=4) as plain:
        reference = plain.embed_crops([grey])
        with pytest.raises(ModelError, match="relu_reid.onnx.*all-zero embedding"):
            plain.embed_crops([grey, black])
    with Embedder(relu_mean_model(tmp_path / "huge_reid.onnx", scale=1e20), max_batch=4) as huge:
        vectors = huge.embed_crops([grey, grey])
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(vectors, np.repeat(reference, 2, axis=0), atol=1e-6)


def test_one_embedder_shared_by_threads_gives_each_caller_its_own_crops(embedder, vtest_frames, frame0_detections):
    """The backend's buffers are shared: without the lock, one thread's crops were embedded as another's."""
    import threading

    from edge_reid.preprocess import crop_box

    crops = [crop_box(vtest_frames[0], box) for box in frame0_detections.boxes[:4]]
    reference = [embedder.embed_crops([crop])[0].copy() for crop in crops]
    worst = [1.0] * len(crops)

    def embed_many(index):
        for _ in range(25):
            vector = embedder.embed_crops([crops[index]])[0]
            worst[index] = min(worst[index], float(vector @ reference[index]))

    threads = [threading.Thread(target=embed_many, args=(index,)) for index in range(len(crops))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert min(worst) > 0.9999, worst


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_a_closed_embedder_or_detector_refuses_work_on_every_backend(backend, vtest_frames, yolox_path):
    if backend == "openvino":
        pytest.importorskip("openvino", reason="openvino is not installed (pip install openvino; a dependency on x86-64)")
    from edge_reid.detector import PersonDetector

    frame = vtest_frames[0]
    embedder = Embedder(backend=backend, threads=1)
    embedder.close()
    embedder.close()  # twice is fine
    with pytest.raises(ValueError, match="this Embedder .* was closed: make a new one"):
        embedder.embed_crops([frame[100:300, 100:200]])
    with pytest.raises(ValueError, match="was closed"):
        embedder.embed_boxes(frame, np.array([[100, 100, 200, 300]], np.float32))
    detector = PersonDetector(yolox_path, backend=backend, threads=1)
    detector.close()
    detector.close()
    with pytest.raises(ValueError, match="this PersonDetector \\(yolox_nano.onnx\\) was closed: make a new one"):
        detector.detect(frame)


def test_crops_from_a_generator_are_embedded_and_one_image_is_refused_by_name(embedder, vtest_frames):
    crops = [vtest_frames[0][100:228, 100:164], vtest_frames[0][50:200, 300:360]]
    expected = embedder.embed_crops(crops)
    np.testing.assert_array_equal(embedder.embed_crops(crop for crop in crops), expected)  # was: len() of a generator
    with pytest.raises(ValueError, match=r"crops must be N images, got one array of shape \(128, 64, 3\): pass a list"):
        embedder.embed_crops(crops[0])
