"""Mistakes a Python user can make with the library's objects: each gets an error naming the value
and what to do, at the call that made it, or a default that keeps the stream working."""

from __future__ import annotations

import numpy as np
import pytest

from edge_reid.detections import Detections
from edge_reid.errors import BackendUnavailableError, DataError, ModelError, TimestampWarning
from edge_reid.matching.gallery import Gallery
from edge_reid.pipeline import Pipeline
from edge_reid.sinks import VideoSink
from edge_reid.sources import open_source
from edge_reid.tracking import Tracker, TrackerConfig


def _unit(dim: int, axis: int = 0) -> np.ndarray:
    vector = np.zeros(dim, np.float32)
    vector[axis] = 1.0
    return vector


# -- Pipeline.process without times or indices ---------------------------------------------------


def test_process_without_times_uses_the_clock_and_counts_frames(embedder, detector, vtest_frames):
    pipeline = Pipeline(embedder, detector)
    results = [pipeline.process(frame) for frame in vtest_frames[:3]]
    times = [result.timestamp_s for result in results]
    assert [result.frame_index for result in results] == [0, 1, 2]
    assert times[0] >= 0 and times[0] < times[1] < times[2], f"time must pass between frames: {times}"
    pipeline.reset()
    assert pipeline.process(vtest_frames[3]).frame_index == 0, "a new stream counts from 0"
    with pytest.warns(TimestampWarning, match="two clocks"):  # a stream that switches clocks is warned of
        assert pipeline.process(vtest_frames[4], 12.5, 40).timestamp_s == 12.5, "given times are kept"


def test_tracker_without_times_counts_seconds_on_the_clock(monkeypatch):
    import edge_reid.timing as timing

    clock = iter([50.0, 50.1, 50.2, 50.3, 50.4, 51.0, 53.0])
    monkeypatch.setattr(timing.time, "monotonic", lambda: next(clock))
    tracker = Tracker()
    person = Detections.from_boxes([[100, 100, 150, 250]], [0.9])
    for _ in range(4):  # 0, 0.1, 0.2, 0.3 s after the first update
        tracked = tracker.update(person)
    assert tracked.track_ids.tolist() == [1] and tracker.clock_s == pytest.approx(0.3)
    tracker.update(Detections.empty())  # 0.4 s: lost
    assert [t.state.name for t in tracker.tracks] == ["LOST"]
    tracker.update(Detections.empty())  # 1.0 s: still lost
    tracker.update(Detections.empty())  # 3.0 s: lost longer than max_lost_s (1 s), removed
    assert tracker.tracks == [] and tracker.clock_s == pytest.approx(3.0)


def test_process_refuses_a_time_that_is_not_a_number(embedder, vtest_frames):
    pipeline = Pipeline(embedder, use_detector=False)
    none = Detections.empty()
    with pytest.raises(TypeError, match="timestamp_s must be seconds"):
        pipeline.process(vtest_frames[0], "now", detections=none)
    with pytest.raises(ValueError, match="finite number of seconds"):
        pipeline.process(vtest_frames[0], float("nan"), detections=none)
    # a number written as text, a bool, a fractional frame number: refused, not converted or cut
    for timestamp_s, frame_index in (("0.1", 0), (True, 0), (0.1, "9"), (0.1, 2.7), (0.1, np.True_)):
        with pytest.raises(TypeError, match="timestamp_s must be seconds"):
            pipeline.process(vtest_frames[0], timestamp_s, frame_index, detections=none)
    result = pipeline.process(vtest_frames[0], np.float32(0.5), np.int64(7), detections=none)  # numpy scalars are numbers
    assert result.frame_index == 7 and type(result.frame_index) is int and type(result.timestamp_s) is float


def test_a_tracker_config_where_a_tracker_goes_is_refused_at_once(embedder):
    with pytest.raises(TypeError, match=r"tracker must be a Tracker, e.g. Tracker\(TrackerConfig"):
        Pipeline(embedder, use_detector=False, tracker=TrackerConfig())


def test_frames_in_memory_are_not_a_source():
    frame = np.zeros((8, 8, 3), np.uint8)
    with pytest.raises(TypeError, match=r"call Pipeline.process\(frame\) on each"):
        open_source([frame, frame])


# -- Tracker.update --------------------------------------------------------------------------------


def test_tracker_refuses_embeddings_that_are_not_unit_vectors():
    tracker = Tracker()
    detections = Detections.from_boxes([[100, 100, 150, 250]], [0.9])
    with pytest.raises(ValueError, match="embedding 0 has length 0.7, not 1: L2-normalise"):
        tracker.update(detections, 0.7 * _unit(512)[None], timestamp_s=0.0)
    for step in range(5):  # unit vectors are tracked
        tracked = tracker.update(Detections.from_boxes([[100 + 2 * step, 100, 150 + 2 * step, 250]], [0.9]),
                                 _unit(512)[None], timestamp_s=0.1 * step)
    assert tracked.track_ids.tolist() == [1]


def test_tracker_refuses_plain_boxes_with_the_constructor_to_use():
    with pytest.raises(TypeError, match=r"Detections.from_boxes\(boxes, scores\)"):
        Tracker().update([[1, 2, 30, 40]], None)


def test_gallery_match_uses_the_same_unit_check():
    gallery = Gallery(4)
    with pytest.raises(ValueError, match="embedding 1 has length 2, not 1"):
        gallery.match(np.array([[1, 0, 0, 0], [2, 0, 0, 0]], np.float32))


# -- boxes ----------------------------------------------------------------------------------------


def test_detector_rows_of_six_columns_are_refused_not_reshaped(embedder, vtest_frames):
    rows = np.array([[10, 10, 60, 160, 0.9, 0], [100, 50, 150, 250, 0.8, 0]])
    with pytest.raises(ValueError, match=r"got shape \(2, 6\): take the box columns, e.g. boxes\[:, :4\]"):
        Detections.from_boxes(rows)
    with pytest.raises(ValueError, match=r"boxes must be \(N, 4\).*got shape \(1, 5\)"):
        embedder.embed_boxes(vtest_frames[0], rows[:1, :5])
    assert Detections.from_boxes(rows[:, :4], rows[:, 4]).boxes.shape == (2, 4)
    assert Detections.from_boxes([1, 2, 30, 40]).boxes.tolist() == [[1, 2, 30, 40]], "one box as (4,)"
    assert Detections.from_boxes([]).boxes.shape == (0, 4)


def test_detections_built_directly_are_checked_as_from_boxes_checks_them():
    """Detections(boxes, scores) was never checked: (4, N) boxes (np.stack(..., axis=0)) were reshaped into boxes
    that are in no input and tracked; percentages (35.0) confirmed tracks and came back as scores of 35."""
    x1 = np.array([100.0, 300.0, 500.0])
    y1 = np.array([50.0, 60.0, 70.0])
    by_column = np.stack([x1, y1, x1 + 60, y1 + 160])  # (4, 3)
    with pytest.raises(ValueError, match=r"boxes must be \(N, 4\) .*got shape \(4, 3\)"):
        Detections(by_column, np.full(3, 0.9))
    with pytest.raises(ValueError, match="scores must be confidences in \\[0, 1\\], got 35.0"):
        Detections(np.array([[10.0, 10.0, 60.0, 170.0]]), np.array([35.0]))
    with pytest.raises(ValueError, match="2 boxes but 3 scores"):
        Detections(by_column.T[:2], np.full(3, 0.9))
    with pytest.raises(ValueError, match="3 boxes but 2 track ids"):
        Detections(by_column.T, np.full(3, 0.9), np.array([1, 2]))
    taken = Detections(by_column.T.tolist(), [[0.9], [0.8], [0.7]])  # lists and (N, 1) scores are taken, as arrays
    assert taken.boxes.dtype == np.float32 and taken.boxes.shape == (3, 4) and taken.scores.shape == (3,)
    assert len(taken[:2]) == 2 and len(taken[1]) == 1, "a slice, and one row by its index"


# -- settings of the models -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"threads": "2"}, "threads must be a whole number >= 1"),
        ({"threads": -2}, "threads must be a whole number >= 1"),
        ({"max_batch": 0}, "max_batch must be a whole number >= 1"),
        ({"preprocess_threads": 0}, "preprocess_threads must be a whole number >= 1"),
        ({"backend_options": {"precison": "fp16"}}, "unknown backend_options 'precison'; the options are precision, device"),
    ],
)
def test_embedder_refuses_bad_settings_before_loading(osnet_path, settings, message):
    from edge_reid.embedder import Embedder

    with pytest.raises(ValueError, match=message):
        Embedder(osnet_path, **settings)


def test_detector_refuses_a_fractional_thread_count(yolox_path):
    from edge_reid.detector import PersonDetector

    with pytest.raises(ValueError, match="threads must be a whole number >= 1"):
        PersonDetector(yolox_path, threads=2.5, backend="onnxruntime")


def test_library_errors_name_the_python_argument_too(tmp_path, yolox_path):
    from edge_reid.detector import PersonDetector
    from edge_reid.embedder import Embedder

    with pytest.raises(ModelError, match=r"--model PATH, or model_path= in Python"):
        Embedder(tmp_path / "missing.onnx")
    with pytest.raises(BackendUnavailableError, match=r"PersonDetector\(precision=\) in Python"):
        PersonDetector(yolox_path, backend="onnxruntime", precision="bf16")


# -- outputs --------------------------------------------------------------------------------------


@pytest.mark.parametrize("fps", [0, -5, float("nan")])
def test_video_sink_refuses_a_frame_rate_that_is_not_positive(tmp_path, fps):
    with pytest.raises(ValueError, match="fps must be a frame rate > 0"):
        VideoSink(tmp_path / "v.mp4", fps=fps)
    assert not (tmp_path / "v.mp4").exists()


def test_gallery_open_refuses_a_file_of_another_embedding_size(tmp_path):
    path = tmp_path / "g.edgereid"
    gallery = Gallery(4)
    gallery.enroll("Alice", _unit(4)[None])
    gallery.save(path)
    with pytest.raises(DataError, match="holds 4-d embeddings, the model makes 8-d ones"):
        Gallery.open(path, 8)
    assert len(Gallery.open(path, 4)) == 1


# -- with blocks ----------------------------------------------------------------------------------


def test_what_holds_a_file_or_a_session_closes_at_the_end_of_a_with_block(
    tmp_path, osnet_path, yolox_path, vtest_path, vtest_frames, embedder, detector
):
    from edge_reid.detector import PersonDetector
    from edge_reid.embedder import Embedder
    from edge_reid.sinks import EventsSink, MotSink

    pipeline = Pipeline(embedder, detector, past_frames=False)
    results = [pipeline.process(frame, index / 10, index) for index, frame in enumerate(vtest_frames[:4])]
    with EventsSink(tmp_path / "e.jsonl") as events, MotSink(tmp_path / "m.txt") as rows, VideoSink(tmp_path / "v.mp4", fps=10) as video:
        for sink in (events, rows, video):
            for result in results:
                sink.write(result)
    for sink in (events, rows, video):
        with pytest.raises(ValueError, match="closed"):
            sink.write(results[-1])
    assert (tmp_path / "e.jsonl").read_text().count("\n") == sum(len(r.people) for r in results) > 0, "flushed at the end"
    with Embedder(osnet_path) as embedder:
        assert embedder.embed_boxes(vtest_frames[0], [[100, 100, 150, 250]]).shape == (1, embedder.dim)
    with pytest.raises(ValueError, match="closed"):
        embedder.embed_boxes(vtest_frames[0], [[100, 100, 150, 250]])
    with PersonDetector(yolox_path, backend="onnxruntime") as detector:
        detector.detect(vtest_frames[0])
    with pytest.raises(ValueError, match="closed"):
        detector.detect(vtest_frames[0])
    with open_source(str(vtest_path)) as frames:
        first = next(iter(frames))
    assert first.index == 0 and frames._capture is None, "the video file released"


def test_a_pipeline_closes_the_models_it_made_and_only_those(embedder, vtest_frames):
    crop = vtest_frames[0][100:228, 100:164]
    with Pipeline() as pipeline:  # made its own embedder and detector
        made_embedder, made_detector = pipeline.embedder, pipeline.detector
        assert made_embedder.embed_crops([crop]).shape == (1, made_embedder.dim)
    with pytest.raises(ValueError, match="was closed"):
        made_embedder.embed_crops([crop])
    with pytest.raises(ValueError, match="closed"):
        made_detector.detect(vtest_frames[0])
    pipeline.close()  # twice: nothing more to close
    with Pipeline(embedder, use_detector=False):
        pass
    assert embedder.embed_crops([crop]).shape == (1, embedder.dim)  # the caller's embedder stays open


@pytest.mark.parametrize("height", [-5, float("nan"), float("inf")])
def test_a_min_box_height_that_is_no_height_is_refused(embedder, height):
    with pytest.raises(ValueError, match="min_box_height must be a height in pixels >= 0"):
        Pipeline(embedder, use_detector=False, min_box_height=height)


def test_a_warning_raised_deep_inside_names_the_callers_line(embedder, vtest_frames):
    """A still clock seen through Pipeline.process: the warning named pipeline.py (its stack level was
    set for a direct Tracker.update call)."""
    from edge_reid.errors import TimestampWarning
    from edge_reid.tracking.tracker import STILL_CLOCK_UPDATES

    pipeline = Pipeline(embedder, use_detector=False, tracker=Tracker())
    with pytest.warns(TimestampWarning) as said:
        for _ in range(STILL_CLOCK_UPDATES + 1):
            pipeline.process(vtest_frames[0], 0.0, detections=Detections.empty())
    assert [w.filename for w in said] == [__file__]


def test_a_pipeline_whose_detector_fails_to_load_closes_the_embedder_it_made(monkeypatch):
    import edge_reid.pipeline as pipeline_module

    made = []

    class RecordingEmbedder(pipeline_module.Embedder):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            made.append(self)

    def no_detector(*args, **kwargs):
        raise ModelError("yolox.onnx: cannot be read")

    monkeypatch.setattr(pipeline_module, "Embedder", RecordingEmbedder)
    monkeypatch.setattr(pipeline_module, "PersonDetector", no_detector)
    with pytest.raises(ModelError, match="cannot be read"):
        Pipeline()
    (embedder,) = made
    with pytest.raises(ValueError, match="was closed"):  # not left open until garbage collection
        embedder.embed_crops([np.zeros((64, 32, 3), np.uint8)])


def test_the_identity_thresholds_reach_the_identities_and_outlive_a_reset(embedder):
    pipeline = Pipeline(embedder, use_detector=False, tracker=Tracker(), reid_threshold=0.7, unnamed_reid_threshold=0.95)
    for _ in range(2):
        assert (pipeline.identities.reid_threshold, pipeline.identities.unnamed_reid_threshold) == (0.7, 0.95)
        pipeline.reset()  # a new TrackIdentities: the thresholds the caller chose, not the defaults


@pytest.mark.parametrize("name", ["reid_threshold", "unnamed_reid_threshold"])
def test_a_pipeline_given_a_bad_threshold_closes_the_embedder_it_made(monkeypatch, name):
    """The thresholds were checked after the models were made and outside the clean-up: a bad one left
    the pipeline's own embedder open (until garbage collection) and raised from a half-made pipeline."""
    import edge_reid.pipeline as pipeline_module

    made = []

    class RecordingEmbedder(pipeline_module.Embedder):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setattr(pipeline_module, "Embedder", RecordingEmbedder)
    with pytest.raises(ValueError, match=f"^{name} must be a cosine similarity in"):
        Pipeline(use_detector=False, tracker=Tracker(), **{name: 1.2})
    (embedder,) = made
    with pytest.raises(ValueError, match="was closed"):
        embedder.embed_crops([np.zeros((64, 32, 3), np.uint8)])
