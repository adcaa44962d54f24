import numpy as np
import pytest

from edge_reid.detections import Detections
from edge_reid.embedder import Embedder
from edge_reid.pipeline import Pipeline


def test_pipeline_tracks_and_keeps_identities_across_real_frames(embedder, detector, vtest_path):
    pipeline = Pipeline(embedder, detector)
    results = list(pipeline.run(str(vtest_path), max_frames=10))
    assert [r.frame_index for r in results] == list(range(10))
    assert results[1].timestamp_s == pytest.approx(0.1, abs=1e-3)  # vtest.avi is 10 fps
    assert len(results[0]) == len(results[1]) == 0 and len(results[2]) >= 3  # confirmed on the third hit
    assert results[2].identities.is_new.all() and set(results[2].states) == {"new"}
    identity_of = {}
    for result in results[2:]:
        assert len(set(result.identities.identity_ids.tolist())) == len(result), "identities unique within a frame"
        for person in result.people:
            assert identity_of.setdefault(person.track_id, person.identity_id) == person.identity_id
            assert person.identity_id >= 1 and person.name is None
            x1, y1, x2, y2 = person.bbox
            assert 0 <= x1 < x2 <= 768 and 0 <= y1 < y2 <= 576
    first = set(results[2].tracked.track_ids.tolist())
    assert len(first & set(results[9].tracked.track_ids.tolist())) >= 0.6 * len(first)  # people walk slowly
    # Every new person is embedded while on probation; once followed without doubt, far fewer.
    assert results[0].embedded >= len(results[2])  # frame 0: every confident person is new
    assert sum(r.embedded for r in results[5:]) < sum(r.detections for r in results[5:]) / 2
    assert pipeline.embeddings_total == sum(r.embedded for r in results)
    assert set(pipeline.timer.mean_ms()) == {"decode", "detect", "preprocess", "embed", "track", "match"}
    assert pipeline.timer.frames == 10 and pipeline.timer.mean_ms()["embed"] > 0


def test_more_people_than_the_batch_gives_the_same_identities(osnet_path, detector, vtest_frames):
    small = Pipeline(Embedder(osnet_path, max_batch=2), detector)
    large = Pipeline(Embedder(osnet_path, max_batch=32), detector)
    for index, image in enumerate(vtest_frames[:6]):
        a, b = small.process(image, index / 10, index), large.process(image, index / 10, index)
        assert a.embedded == b.embedded
        assert a.tracked.track_ids.tolist() == b.tracked.track_ids.tolist()
        assert a.identities.identity_ids.tolist() == b.identities.identity_ids.tolist()
    assert len(a) > 2 and small.embeddings_total > 2 * 3


def test_caller_boxes_are_clipped_and_bad_ones_skipped(embedder, detector, vtest_frames, frame0_detections):
    frame = vtest_frames[0]
    good = frame0_detections.boxes[:2]
    outside = [[frame.shape[1] + 10, 10, frame.shape[1] + 60, 120]]
    degenerate = [[100, 100, 90, 200], [50, 50, 50, 50]]
    partly_outside = [[-20, 300, 40, 420]]
    boxes = np.concatenate([good, outside, degenerate, partly_outside]).astype(np.float32)
    pipeline = Pipeline(embedder, detector, use_detector=False)
    assert pipeline.detector is None, "use_detector=False ignores a detector passed along"
    for index in range(3):
        result = pipeline.process(frame, index / 10, index, detections=Detections.from_boxes(boxes, np.full(len(boxes), 0.9)))
    assert result.skipped_boxes == 3 and result.detections == 3 and len(result) == 3
    assert result.tracked.boxes.min() >= 0 and result.tracked.boxes[:, 0].min() == pytest.approx(0.0, abs=1.0)
    with pytest.raises(ValueError, match="no detector"):
        pipeline.process(frame)
    with pytest.raises(ValueError, match="NaN"):
        pipeline.process(frame, 1.0, 9, detections=Detections.from_boxes([[0, 0, np.nan, 5]]))
    with pytest.raises(ValueError, match="image must be a non-empty"):  # even when nothing would be embedded
        pipeline.process(frame.astype(np.float32), 1.1, 10, detections=Detections.empty())


def test_well_separated_known_tracks_embed_nothing(embedder, vtest_frames):
    frame = vtest_frames[0]
    boxes = np.array([[50, 100, 90, 200], [300, 100, 340, 200], [600, 300, 640, 400]], np.float32)
    pipeline = Pipeline(embedder, use_detector=False, refresh_s=5.0)
    embedded = []
    for index in range(8):
        moved = boxes + np.array([2, 0, 2, 0], np.float32) * index  # walking slowly to the right
        result = pipeline.process(frame, index / 10, index, detections=Detections.from_boxes(moved, [0.9, 0.9, 0.9]))
        embedded.append(result.embedded)
    assert embedded[:3] == [3, 3, 3]  # new and tentative tracks are embedded
    assert embedded[3:] == [0, 0, 0, 0, 0]  # confirmed, unambiguous, refreshed less than 5 s ago
    assert len(result) == 3
    due = pipeline.process(frame, 5.4, 8, detections=Detections.from_boxes(boxes + 16, [0.9, 0.9, 0.9]))
    assert due.embedded == 3  # every track's appearance is refreshed after refresh_s


def test_prefetch_thread_gives_the_same_results_in_order(embedder, detector, vtest_path):
    def ids(prefetch):
        return [
            (r.frame_index, r.identities.identity_ids.tolist())
            for r in Pipeline(embedder, detector).run(str(vtest_path), max_frames=6, prefetch=prefetch)
        ]

    threaded = ids(2)
    assert threaded == ids(0) and [i for i, _ in threaded] == list(range(6))


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


class _TrackWithPast:
    """The parts of a Track that past-frame output reads."""

    def __init__(self, track_id, past):
        self.track_id, self.past, self.oldest_pending_update = track_id, past, 0


def test_a_past_box_never_repeats_an_identity_already_reported_in_its_frame(embedder):
    """A track that took over a lost track's identity: its tentative hits overlap frames where the lost
    track was still reported with that identity, so those past boxes are left out (one box per identity
    and frame, as MOTChallenge files need)."""
    from edge_reid.identities import Identities
    from edge_reid.tracking.track import PastBox

    from edge_reid.pipeline import _PendingFrame

    pipeline = Pipeline(embedder, use_detector=False)
    for update in range(3):  # frames 10-12; identity 5 was reported live in frames 10 and 11
        pipeline._pending[update] = _PendingFrame(10 + update, update / 10, None, {5, 6} if update < 2 else {6}, (576, 768))
    box = np.array([10.0, 20.0, 30.0, 80.0])
    past = [PastBox(update, update / 10, box, 0.9, "tentative") for update in range(3)]
    identities = Identities(np.array([5]), (None,), np.array([0.9], np.float32), np.array([False]))
    people = pipeline._past_people([_TrackWithPast(7, past)], identities)
    assert [(p.frame_index, p.identity_id) for p in people] == [(12, 5)]
    again = pipeline._past_people([_TrackWithPast(8, past)], identities)
    assert again == (), "the frame now holds identity 5: a second past box of it is left out too"


def test_each_run_starts_without_the_last_runs_tracks_but_keeps_its_identities(embedder, detector, vtest_path):
    """A second run (the next clip) used to keep the first run's tracks as lost ones, holding the
    identities of the very people it then saw again: they came back under new identities."""
    pipeline = Pipeline(embedder, detector)
    first = list(pipeline.run(str(vtest_path), max_frames=12))
    known = {p.identity_id for r in first for p in r.people}
    second = list(pipeline.run(str(vtest_path), max_frames=5))
    people = [p for r in second for p in r.people]
    assert len(people) >= 3
    assert min(p.track_id for p in people) == 1, "track ids start again"
    assert {p.identity_id for p in people} <= known and not any(p.is_new for p in people), "the same people, the same identities"


def test_a_gallery_of_another_model_or_size_is_refused(embedder):
    from edge_reid.errors import DataError
    from edge_reid.matching import Gallery

    with pytest.raises(ValueError, match="256-d embeddings, the model makes 512-d"):
        Pipeline(embedder, use_detector=False, gallery=Gallery(256))
    with pytest.raises(DataError, match="another model .*other.onnx"):
        Pipeline(embedder, use_detector=False, gallery=Gallery(512, model_id="f" * 64, model_name="other.onnx"))


def test_numpy_scalars_and_a_bare_array_of_boxes(embedder, vtest_frames, frame0_detections):
    import json

    pipeline = Pipeline(embedder, use_detector=False)
    for index in range(3):
        result = pipeline.process(vtest_frames[index], np.float32(index / 10), np.int64(index), detections=frame0_detections)
    assert type(result.timestamp_s) is float and type(result.frame_index) is int
    json.dumps({"frame": result.frame_index, "t": result.timestamp_s})  # what the events sink writes
    with pytest.raises(TypeError, match="detections must be a Detections"):
        pipeline.process(vtest_frames[3], 0.3, 3, detections=frame0_detections.boxes)


def test_a_stop_ends_the_run_while_the_source_is_stuck_in_a_read(embedder, detector, vtest_frames):
    """A stalled stream blocks the decode thread inside OpenCV's read; Ctrl-C (a stop) must still end
    the run (it used to wait for the read, up to FFmpeg's 30 s timeout or forever)."""
    import threading

    from edge_reid.sources import FrameSource

    release = threading.Event()
    stuck = threading.Event()

    class StallingCamera:
        remaining, returned_by_timeout = 3, None

        def isOpened(self):
            return True

        def read(self):
            if self.remaining > 0:
                self.remaining -= 1
                return True, vtest_frames[0]
            stuck.set()
            self.returned_by_timeout = not release.wait(20)
            return False, None

        def get(self, prop):
            return 0.0

        def release(self):
            pass

    camera = StallingCamera()
    source = FrameSource("/dev/video0", "camera", reconnect_timeout_s=1.0, capture_factory=lambda kind, name: camera, newest_only=False)
    pipeline = Pipeline(embedder, detector)
    results = []
    for result in pipeline.run(source, prefetch=2):
        results.append(result)
        if len(results) == 3:
            assert stuck.wait(20)
            source.stop()  # what the runner's Ctrl-C handler does
    assert len(results) == 3
    assert camera.returned_by_timeout is None, "the run ended while the read was still blocked"
    release.set()


def test_a_frame_of_another_size_keeps_the_people_their_identities(embedder, detector, vtest_path):
    """A camera that came back at another resolution: the tracks' boxes and motion stayed in the old frame's pixels,
    kept their people's identities while lost, and the same people got second identities for good (vtest, a
    change at frame 20: identities 5-8 after it, 8 in the gallery, against 6 without the change).

    The new tracks take the identities back on appearance alone; this runs at the named threshold (0.82)
    for them: at the default for unnamed identities (0.91) one of the six, half as tall after the change,
    scores below it and gets a new identity, the price of the stricter threshold (docs/tracking.md,
    "Played backwards")."""
    import cv2

    from edge_reid.defaults import REID_THRESHOLD

    capture = cv2.VideoCapture(str(vtest_path))
    frames = [capture.read()[1] for _ in range(40)]
    capture.release()
    runs = {}
    for change in (False, True):
        pipeline = Pipeline(embedder, detector, unnamed_reid_threshold=REID_THRESHOLD)
        results = [pipeline.process(cv2.resize(f, (384, 288)) if change and i >= 20 else f, timestamp_s=i / 10)
                   for i, f in enumerate(frames)]
        runs[change] = (results, len(pipeline.gallery))
    unchanged = {p.identity_id for r in runs[False][0] for p in r.people}
    after_change = [p for r in runs[True][0][22:] for p in r.people]
    assert len(after_change) >= 20 and runs[True][0][-1].frame_index == 39
    assert {p.identity_id for p in after_change} <= unchanged, "the same people, the same identities"
    assert runs[True][1] == runs[False][1], "no second identity for anyone"
    before_change = {p.track_id for r in runs[True][0][:20] for p in r.people}
    assert min(p.track_id for p in after_change) > max(before_change), "track ids go on: none is given to another person"


def test_a_run_closed_before_its_first_frame_closes_the_source_it_was_given(embedder, detector, vtest_path):
    """A generator's body, and its finally, never runs when it is closed before its first next(): the FrameSource given
    to run() stayed open (a camera held) although run() closes the sources it reads."""
    from edge_reid.sources import open_source

    source = open_source(str(vtest_path))
    results = Pipeline(embedder, detector).run(source)
    results.close()
    assert source._capture is None, "released"
    source = open_source(str(vtest_path))
    results = Pipeline(embedder, detector).run(source)
    assert next(results).frame_index == 0
    results.close()
    assert source._capture is None


@pytest.mark.parametrize("prefetch", [0, 2])
def test_a_detector_error_mid_run_releases_the_source_at_once(embedder, vtest_path, prefetch):
    """The decode worker was the source's reading thread and its iterator stayed suspended in the error's traceback:
    the main thread's close() only marked a release pending, and the capture stayed held until garbage collection."""
    from edge_reid.sources import open_source

    class FailsOnTheThirdFrame:
        min_box_height = 0.0

        def __init__(self) -> None:
            self.calls = 0

        def detect(self, image):
            self.calls += 1
            if self.calls == 3:
                raise RuntimeError("detector failed")
            return Detections.empty()

    source = open_source(str(vtest_path))
    with pytest.raises(RuntimeError, match="detector failed"):
        for _ in Pipeline(embedder, detector=FailsOnTheThirdFrame()).run(source, prefetch=prefetch):
            pass
    assert source._capture is None, "released before the error reached the caller"


def test_a_detector_made_here_keeps_the_people_a_lower_min_box_height_asks_for(embedder, vtest_frames):
    """Pipeline(min_box_height=16) found no one on a 160x120 camera's frames (vtest resized): the detector it made kept
    its own 32 px minimum. It keeps boxes down to a lower height asked of the pipeline; at the default (0) and at a
    higher one it keeps its own, finding the people it found before."""
    import inspect

    import cv2

    from edge_reid.detector import PersonDetector
    from edge_reid.tracking import TrackerConfig

    own = inspect.signature(PersonDetector).parameters["min_box_height"].default
    small = [cv2.resize(frame, (160, 120), interpolation=cv2.INTER_AREA) for frame in vtest_frames]
    with Pipeline(embedder, min_box_height=16) as pipeline:
        people = [len(pipeline.process(frame, timestamp_s=i / 10).people) for i, frame in enumerate(small)]
        assert max(people) >= 2 and sum(people) >= 15, people  # vtest's 3 people, once their tracks are confirmed
        assert pipeline.detector.min_box_height == 16
    with Pipeline(embedder, min_box_height=48) as pipeline:
        assert pipeline.detector.min_box_height == own  # a higher one is the pipeline's own filter
    found = {}
    with Pipeline(embedder) as pipeline, PersonDetector(score_threshold=TrackerConfig().low_score) as detector:
        assert pipeline.detector.min_box_height == own
        found["made"] = [pipeline.process(frame, timestamp_s=i / 10).people for i, frame in enumerate(vtest_frames)]
        with Pipeline(embedder, detector) as given:
            found["given"] = [given.process(frame, timestamp_s=i / 10).people for i, frame in enumerate(vtest_frames)]
    counts = {how: [len(people) for people in frames] for how, frames in found.items()}
    assert counts["made"] == counts["given"] and sum(counts["made"]) >= 20, counts
    for made, given in zip(found["made"], found["given"]):
        assert np.allclose(np.reshape([p.bbox for p in made], (-1, 4)), np.reshape([p.bbox for p in given], (-1, 4)), atol=0.5)
