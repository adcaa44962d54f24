import numpy as np
import pytest

from edge_reid.detections import Detections
from edge_reid.embedder import Embedder
from edge_reid.pipeline import Pipeline


def test_pipeline_keeps_identities_across_real_frames(embedder, detector, vtest_path):
    pipeline = Pipeline(embedder, detector, threshold=0.6)
    results = list(pipeline.run(str(vtest_path), max_frames=10))
    assert [r.frame_index for r in results] == list(range(10))
    assert results[1].timestamp_s == pytest.approx(0.1, abs=1e-3)  # vtest.avi is 10 fps
    first_ids = set(results[0].identity_ids.tolist())
    assert results[0].is_new.all() and len(first_ids) == len(results[0])
    # People walk slowly: most of the identities of frame 0 are found again in frame 9.
    assert len(first_ids & set(results[9].identity_ids.tolist())) >= 0.6 * len(first_ids)
    assert len(pipeline.gallery) <= 2 * max(len(r) for r in results)
    for result in results:
        assert len(set(result.identity_ids.tolist())) == len(result), "identities unique within a frame"
        assert ((result.similarities >= 0.6) | result.is_new).all()
    assert set(pipeline.timer.mean_ms()) == {"decode", "detect", "preprocess", "embed", "match"}
    assert pipeline.timer.frames == 10 and pipeline.timer.mean_ms()["embed"] > 0


def test_more_people_than_the_batch_gives_the_same_identities(osnet_path, detector, vtest_frames):
    frame = vtest_frames[0]
    found = detector.detect(frame)
    assert len(found) > 2
    small = Pipeline(Embedder(osnet_path, max_batch=2), detector)
    large = Pipeline(Embedder(osnet_path, max_batch=32), detector)
    for image in vtest_frames[:4]:
        a, b = small.process(image), large.process(image)
        assert len(a) == len(b) and len(a) > 2
        assert a.identity_ids.tolist() == b.identity_ids.tolist()
        np.testing.assert_allclose(a.similarities, b.similarities, atol=1e-4)


def test_caller_boxes_are_clipped_and_bad_ones_skipped(embedder, vtest_frames, frame0_detections):
    frame = vtest_frames[0]
    good = frame0_detections.boxes[:2]
    outside = [[frame.shape[1] + 10, 10, frame.shape[1] + 60, 120]]
    degenerate = [[100, 100, 90, 200], [50, 50, 50, 50]]
    partly_outside = [[-20, 300, 40, 420]]
    boxes = np.concatenate([good, outside, degenerate, partly_outside]).astype(np.float32)
    pipeline = Pipeline(embedder, use_detector=False)
    result = pipeline.process(frame, detections=Detections.from_boxes(boxes))
    assert result.skipped_boxes == 3 and len(result) == 3
    assert result.boxes[2].tolist() == [0.0, 300.0, 40.0, 420.0]
    with pytest.raises(ValueError, match="no detector"):
        pipeline.process(frame)


def test_prefetch_thread_gives_the_same_results_in_order(embedder, detector, vtest_path):
    sequential = [
        (r.frame_index, r.identity_ids.tolist())
        for r in Pipeline(embedder, detector).run(str(vtest_path), max_frames=6, prefetch=0)
    ]
    threaded = [
        (r.frame_index, r.identity_ids.tolist())
        for r in Pipeline(embedder, detector).run(str(vtest_path), max_frames=6, prefetch=2)
    ]
    assert threaded == sequential and [i for i, _ in threaded] == list(range(6))


def test_stopping_early_ends_the_worker_and_errors_reach_the_caller(embedder, detector, vtest_path):
    import threading

    pipeline = Pipeline(embedder, detector)
    for result in pipeline.run(str(vtest_path)):
        if result.frame_index == 2:
            break  # closes the generator: the worker must stop and the source be released
    assert not any(t.name == "edge-reid-decode-detect" and t.is_alive() for t in threading.enumerate())

    class FailingDetector:
        def detect(self, image):
            raise RuntimeError("detector exploded")

    with pytest.raises(RuntimeError, match="detector exploded"):
        list(Pipeline(embedder, FailingDetector()).run(str(vtest_path), max_frames=3))
