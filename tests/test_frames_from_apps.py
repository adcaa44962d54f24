"""Frames, boxes and times as robotics and kiosk apps produce them, through the Python API: numpy views,
read-only and memory-mapped buffers, frames of other kinds, a user's own boxes, ROS and wall-clock times."""

from __future__ import annotations

import warnings

import cv2
import numpy as np
import pytest

from edge_reid.detections import Detections
from edge_reid.errors import TimestampWarning
from edge_reid.pipeline import Pipeline


def _tracks(embedder, detector, frames, convert=lambda f: f, start_s=0.0):
    """Per frame: track ids, identity ids and boxes of a fresh pipeline fed ``convert(frame)`` at 10 fps."""
    pipeline = Pipeline(embedder, detector)
    rows = []
    for index, frame in enumerate(frames):
        result = pipeline.process(convert(frame), timestamp_s=start_s + index / 10)
        rows.append((result.tracked.track_ids.tolist(), result.identities.identity_ids.tolist(), result.tracked.boxes.copy()))
    return rows


def _in_a_larger_array(frame):
    big = np.zeros((frame.shape[0] + 20, frame.shape[1] + 40, 3), np.uint8)
    big[10:-10, 20:-20] = frame
    return big[10:-10, 20:-20]


def _read_only(frame):
    """As a ROS sensor_msgs/Image or a shared-memory ring hands it over: a read-only view of bytes."""
    return np.frombuffer(frame.tobytes(), np.uint8).reshape(frame.shape)


@pytest.fixture(scope="module")
def memmap_of(tmp_path_factory):
    folder = tmp_path_factory.mktemp("raw-frames")
    counter = iter(range(1_000_000))

    def make(frame):
        path = folder / f"{next(counter)}.raw"
        frame.tofile(path)
        return np.memmap(path, np.uint8, "r", shape=frame.shape)

    return make


LAYOUTS = {
    "RGB turned BGR by a view": lambda f: np.ascontiguousarray(f[..., ::-1])[..., ::-1],
    "crop of a larger array": _in_a_larger_array,
    "Fortran order": np.asfortranarray,
    "rotated view": lambda f: np.rot90(np.ascontiguousarray(np.rot90(f)), -1),
    "mirrored view": lambda f: np.ascontiguousarray(f[:, ::-1])[:, ::-1],
    "read-only bytes": _read_only,
}


def test_every_numpy_layout_of_a_frame_gives_the_tracks_of_a_contiguous_frame(embedder, detector, vtest_frames, memmap_of):
    frames = vtest_frames[:6]
    expected = _tracks(embedder, detector, frames)
    assert sum(len(ids) for ids, _, _ in expected) > 0  # people are tracked: the comparison means something
    for name, convert in {**LAYOUTS, "np.memmap of a raw file": memmap_of}.items():
        got = _tracks(embedder, detector, frames, convert)
        for (ids, identities, boxes), (want_ids, want_identities, want_boxes) in zip(got, expected):
            assert ids == want_ids and identities == want_identities, name
            np.testing.assert_array_equal(boxes, want_boxes, err_msg=name)


def test_embeddings_of_views_and_read_only_frames_are_those_of_the_contiguous_frame(embedder, frame0_detections, vtest_frames):
    frame, boxes = vtest_frames[0], frame0_detections.boxes
    expected = embedder.embed_boxes(frame, boxes)
    for name, convert in LAYOUTS.items():
        np.testing.assert_array_equal(embedder.embed_boxes(convert(frame), boxes), expected, err_msg=name)
    x1, y1, x2, y2 = (int(v) for v in boxes[0])
    crop = frame[y1:y2, x1:x2]
    np.testing.assert_array_equal(
        embedder.embed_crops([_read_only(crop), np.ascontiguousarray(crop[..., ::-1])[..., ::-1]]),
        embedder.embed_crops([crop.copy(), crop.copy()]),
    )


OTHER_KINDS = {  # frame -> (what it is, text the error must hold, the conversion it names)
    "BGRA": (lambda f: cv2.cvtColor(f, cv2.COLOR_BGR2BGRA), "(576, 768, 4) uint8", lambda g: cv2.cvtColor(g, cv2.COLOR_BGRA2BGR)),
    "grey": (lambda f: cv2.cvtColor(f, cv2.COLOR_BGR2GRAY), "(576, 768) uint8", lambda g: cv2.cvtColor(g, cv2.COLOR_GRAY2BGR)),
    "grey (H, W, 1)": (lambda f: cv2.cvtColor(f, cv2.COLOR_BGR2GRAY)[..., None], "(576, 768, 1) uint8",
                       lambda g: cv2.cvtColor(g, cv2.COLOR_GRAY2BGR)),
    "16-bit": (lambda f: f.astype(np.uint16) * 257, "uint16", lambda g: (g >> 8).astype(np.uint8)),
    "float 0..1": (lambda f: f.astype(np.float32) / 255, "float32", lambda g: (g * 255).clip(0, 255).astype(np.uint8)),
    "channels first": (lambda f: np.ascontiguousarray(f.transpose(2, 0, 1)), "(3, 576, 768)", lambda g: g.transpose(1, 2, 0)),
}
CONVERSION_TEXT = {
    "BGRA": "cv2.COLOR_BGRA2BGR", "grey": "cv2.COLOR_GRAY2BGR", "grey (H, W, 1)": "cv2.COLOR_GRAY2BGR",
    "16-bit": "(image >> 8).astype(np.uint8)", "float 0..1": "(image * 255).clip(0, 255).astype(np.uint8)",
    "channels first": "image.transpose(1, 2, 0)",
}


@pytest.mark.parametrize("kind", list(OTHER_KINDS))
def test_frames_of_other_kinds_are_refused_with_the_conversion_to_use(kind, embedder, detector, vtest_frames, frame0_detections):
    make, shape_text, convert = OTHER_KINDS[kind]
    frame = vtest_frames[0]
    other = make(frame)
    pipeline = Pipeline(embedder, detector)
    calls = {
        "Pipeline.process": lambda: pipeline.process(other, timestamp_s=0.0),
        "PersonDetector.detect": lambda: detector.detect(other),
        "Embedder.embed_boxes": lambda: embedder.embed_boxes(other, frame0_detections.boxes),
        "Embedder.embed_crops": lambda: embedder.embed_crops([other[:100, :50] if other.shape[0] > 3 else other[:, :100, :50]]),
    }
    for name, call in calls.items():
        with pytest.raises(ValueError) as error:
            call()
        message = str(error.value)
        assert CONVERSION_TEXT[kind] in message, (name, message)
        if name != "Embedder.embed_crops":
            assert shape_text in message, (name, message)
    # the conversion the message names makes a frame the API takes; where it loses nothing, the very same people
    found = pipeline.process(convert(other), timestamp_s=0.0).detections
    if kind in ("BGRA", "16-bit", "float 0..1", "channels first"):
        np.testing.assert_array_equal(detector.detect(convert(other)).boxes, frame0_detections.boxes)
        assert found == len(frame0_detections)


def test_a_failed_camera_read_is_named(detector, embedder):
    with pytest.raises(ValueError, match="camera's read failed"):
        detector.detect(None)
    with pytest.raises(ValueError, match="camera's read failed"):
        Pipeline(embedder, use_detector=False).process(None, detections=Detections.empty())


def test_a_users_boxes_of_any_number_type_give_the_same_tracks(embedder, vtest_frames, frame0_detections):
    boxes = np.round(frame0_detections.boxes).astype(np.float64)
    given = {
        "float64": Detections.from_boxes(boxes, frame0_detections.scores.astype(np.float64)),
        "int32": Detections.from_boxes(boxes.astype(np.int32), frame0_detections.scores),
        "list of lists": Detections.from_boxes(boxes.tolist(), frame0_detections.scores.tolist()),
    }
    rows = {}
    for name, detections in given.items():
        pipeline = Pipeline(embedder, use_detector=False)
        for index, frame in enumerate(vtest_frames[:4]):
            result = pipeline.process(frame, timestamp_s=index / 10, detections=detections)
        rows[name] = (result.tracked.track_ids.tolist(), result.tracked.boxes.tolist())
    assert rows["float64"][0] and rows["float64"] == rows["int32"] == rows["list of lists"]


def test_boxes_outside_the_frame_or_empty_are_clipped_or_skipped_and_counted(embedder, vtest_frames):
    frame = vtest_frames[0]
    boxes = [[-20, -30, 50, 120], [700, 500, 900, 700],  # partly outside: clipped
             [-200, -300, -50, -100], [800, 600, 900, 700],  # wholly outside
             [10, 10, 10, 50], [412, 266, 376, 175]]  # zero width; x2 < x1 and y2 < y1
    pipeline = Pipeline(embedder, use_detector=False)
    for index in range(3):
        result = pipeline.process(frame, timestamp_s=index / 10, detections=Detections.from_boxes(boxes))
    assert (result.detections, result.skipped_boxes) == (2, 4)
    assert sorted(result.tracked.boxes.tolist()) == [[0.0, 0.0, 50.0, 120.0], [700.0, 500.0, 768.0, 576.0]]


def test_a_thousand_boxes_of_a_users_detector_are_tracked(embedder, vtest_frames, frame0_detections):
    rng = np.random.default_rng(0)
    boxes = np.tile(frame0_detections.boxes, (1000 // len(frame0_detections) + 1, 1))[:1000] + rng.uniform(0, 4, (1000, 4))
    pipeline = Pipeline(embedder, use_detector=False)
    result = pipeline.process(vtest_frames[0], timestamp_s=0.0, detections=Detections.from_boxes(boxes, rng.uniform(0.5, 1, 1000)))
    assert result.detections == 1000 and result.skipped_boxes == 0 and result.embedded > 0
    # (the embedding plan leaves out crops hidden behind others: fewer than 1000 are embedded)


def test_nan_scores_or_boxes_are_refused_naming_the_rows(embedder, vtest_frames, frame0_detections):
    scores = frame0_detections.scores.copy()
    scores[1] = np.nan
    pipeline = Pipeline(embedder, use_detector=False)
    with pytest.raises(ValueError, match=r"rows \[1\].*score nan"):
        pipeline.process(vtest_frames[0], timestamp_s=0.0, detections=Detections.from_boxes(frame0_detections.boxes, scores))
    boxes = frame0_detections.boxes.copy()
    boxes[2, 3] = np.inf
    with pytest.raises(ValueError, match=r"rows \[2\].*inf"):
        pipeline.process(vtest_frames[0], timestamp_s=0.0, detections=Detections.from_boxes(boxes))


def test_ragged_or_text_boxes_are_refused_as_boxes():
    for boxes in ([[1, 2, 3, 4], [1, 2, 3]], "1,2,3,4"):
        with pytest.raises(ValueError, match=r"boxes must be \(N, 4\) rows"):
            Detections.from_boxes(boxes)


def test_ros_and_wall_clock_times_track_as_times_from_zero(embedder, detector, vtest_frames):
    frames = vtest_frames[:6]
    expected = _tracks(embedder, detector, frames)
    sec, nanosec = 1_700_000_000, 123_456_789  # a ROS builtin_interfaces/Time, as seconds
    got = _tracks(embedder, detector, frames, start_s=sec + nanosec * 1e-9)
    for (ids, identities, boxes), (want_ids, want_identities, want_boxes) in zip(got, expected):
        assert (ids, identities) == (want_ids, want_identities)
        np.testing.assert_allclose(boxes, want_boxes, atol=0.01)  # float64 seconds since 1970: sub-microsecond steps


def test_a_ros_stamp_given_as_the_time_says_how_to_make_seconds(embedder, vtest_frames):
    class Stamp:  # builtin_interfaces/msg/Time
        sec, nanosec = 1_700_000_000, 5

    with pytest.raises(TypeError, match=r"stamp.sec \+ stamp.nanosec \* 1e-9"):
        Pipeline(embedder, use_detector=False).process(vtest_frames[0], timestamp_s=Stamp(), detections=Detections.empty())


def test_a_stream_that_switches_between_given_and_clock_times_warns_once(embedder, vtest_frames):
    boxes = Detections.from_boxes([[376, 176, 412, 267]])
    pipeline = Pipeline(embedder, use_detector=False)
    pipeline.process(vtest_frames[0], detections=boxes)  # the monotonic clock: seconds since this frame
    with pytest.warns(TimestampWarning, match="timestamp_s was left out for this stream's earlier frames"):
        pipeline.process(vtest_frames[1], timestamp_s=1_700_000_000.0, detections=boxes)  # wall clock: 54 years later
    pipeline.reset()  # a new stream may choose again
    pipeline.process(vtest_frames[1], timestamp_s=1_700_000_000.0, detections=boxes)
    with pytest.warns(TimestampWarning, match="timestamp_s was given for this stream's earlier frames"):
        pipeline.process(vtest_frames[2], detections=boxes)
    with warnings.catch_warnings():
        warnings.simplefilter("error", TimestampWarning)
        pipeline.process(vtest_frames[3], timestamp_s=1_700_000_000.3, detections=boxes)  # once per stream
