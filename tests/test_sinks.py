"""Sinks: MOTChallenge rows of identities, labels that never cover each other."""

import dataclasses

import cv2
import numpy as np
import pytest

from edge_reid.detections import Detections
from edge_reid.identities import Identities
from edge_reid.results import FrameResult
from edge_reid.sinks import (
    EventsSink,
    MotSink,
    VideoSink,
    draw_result,
    frame_names_path,
    person_label,
    place_labels,
    video_frame_count,
)


def _result(boxes, identities, names=None, frame=4, size=(200, 300)) -> FrameResult:
    count = len(boxes)
    tracked = Detections(np.array(boxes, np.float32), np.full(count, 0.8, np.float32), np.arange(1, count + 1))
    found = Identities(np.array(identities, np.int64), tuple(names or [None] * count), np.zeros(count, np.float32), np.zeros(count, bool))
    return FrameResult(frame, 0.4, np.zeros((*size, 3), np.uint8), tracked, found, ("tracked",) * count)


def _overlap(a, b) -> bool:
    (ax, ay, aw, ah), (bx, by, bw, bh) = a, b
    return ax < bx + bw and bx < ax + aw and ay < by + bh and by < ay + ah


def test_labels_of_people_side_by_side_do_not_cover_each_other():
    boxes = [(100, 50, 130, 120), (105, 52, 135, 122), (110, 49, 140, 119), (0, 0, 30, 60)]
    sizes = [(60, 16)] * 4
    corners = place_labels(boxes, sizes, 300, 200)
    rects = [(x, y, w, h) for (x, y), (w, h) in zip(corners, sizes)]
    for i in range(len(rects)):
        x, y, w, h = rects[i]
        assert 0 <= x <= 300 - w and 0 <= y <= 200 - h
        for j in range(i):
            assert not _overlap(rects[i], rects[j]), (rects[i], rects[j])
    assert corners[0] == (100, 34)  # the first label sits just above its box


def test_drawn_labels_show_identity_and_name():
    result = _result([(10, 40, 60, 150), (200, 40, 250, 150)], [7, 3], ["Alice", None])
    people = result.people
    assert [person_label(p) for p in people] == ["#7 Alice", "#3"]
    image = draw_result(np.zeros((200, 300, 3), np.uint8), result)
    assert image[40:150, 10:60].any() and image[40:150, 200:250].any()


def test_mot_sink_writes_identities_one_based_and_skips_unknown(tmp_path):
    sink = MotSink(tmp_path / "out.txt")
    sink.write(_result([(10, 40, 60, 150), (200, 40, 250, 150)], [7, -1], frame=0))
    sink.write(_result([(12, 40, 62, 150)], [7], frame=1))
    sink.close()
    rows = [line.split(",") for line in (tmp_path / "out.txt").read_text().splitlines()]
    assert [(r[0], r[1]) for r in rows] == [("1", "7"), ("2", "7")] and sink.rows == 2
    assert rows[0][2:6] == ["10.00", "40.00", "50.00", "110.00"]


def test_video_sink_writes_annotated_frames(tmp_path):
    sink = VideoSink(tmp_path / "v.mp4", fps=10)
    for frame in range(3):
        sink.write(_result([(10, 40, 60, 150)], [1], frame=frame))
    sink.close()
    assert sink.frames == 3 and (tmp_path / "v.mp4").stat().st_size > 0
    capture = cv2.VideoCapture(str(tmp_path / "v.mp4"))
    ok, image = capture.read()
    capture.release()
    assert ok and image.shape == (200, 300, 3)
    # the frames were black: the box's outline (x 10..60, y 40..150) and its label are drawn on them
    assert image[40:151, 8:13].max() > 100 and image[40:151, 58:63].max() > 100
    assert image[80:120, 20:50].max() < 30  # inside the box: the frame, untouched


def _with_past(result: FrameResult, past) -> FrameResult:
    from dataclasses import replace

    return replace(result, past=tuple(past))


def test_past_frame_rows_are_written_under_their_own_frames(tmp_path):
    from edge_reid.results import PastPerson
    from edge_reid.sinks import EventsSink

    past = [
        PastPerson(1, 0.1, (10.0, 40.0, 60.0, 150.0), 0.9, 1, 7, "Ann", "tentative"),
        PastPerson(2, 0.2, (11.0, 40.0, 61.0, 150.0), 0.9, 1, -1, None, "interpolated"),  # no identity: not a MOT row
    ]
    result = _with_past(_result([(12, 40, 62, 150)], [7], frame=3), past)
    mot, events = MotSink(tmp_path / "out.txt"), EventsSink(tmp_path / "ev.jsonl")
    for sink in (mot, events):
        sink.write(result)
        sink.close()
    rows = [line.split(",") for line in (tmp_path / "out.txt").read_text().splitlines()]
    assert [(r[0], r[1], r[2]) for r in rows] == [("4", "7", "12.00"), ("2", "7", "10.00")]
    import json

    lines = [json.loads(line) for line in (tmp_path / "ev.jsonl").read_text().splitlines()]
    assert lines[0]["frame"] == 3 and "past_frame" not in lines[0]
    assert [(e["frame"], e["state"], e["past_frame"], e["reported_at"], e["identity"]) for e in lines[1:]] == [
        (1, "tentative", True, 3, 7), (2, "interpolated", True, 3, -1)
    ]


@pytest.mark.parametrize("sink_class", [EventsSink, MotSink])
def test_a_closed_line_sink_refuses_to_write_and_touches_no_other_file(tmp_path, sink_class):
    """A closed descriptor's number is soon given to the next file opened: writing to it would
    append to that file."""
    sink = sink_class(tmp_path / "out.txt")
    sink.write(_result([(10, 40, 60, 150)], [7], frame=0))
    sink.close()
    with open(tmp_path / "other.txt", "w") as other:
        other.write("kept\n")
        other.flush()
        with pytest.raises(ValueError, match="out.txt is closed"):
            sink.write(_result([(12, 40, 62, 150)], [7], frame=1))
    assert (tmp_path / "other.txt").read_text() == "kept\n"
    assert len((tmp_path / "out.txt").read_text().splitlines()) == 1


def test_a_closed_mot_sink_refuses_an_image_frame_before_creating_its_sidecar(tmp_path):
    sink = MotSink(tmp_path / "out.txt")
    sink.write(_result([(10, 40, 60, 150)], [7], frame=0))  # a video frame: no sidecar
    sink.close()
    image_frame = dataclasses.replace(_result([(12, 40, 62, 150)], [7], frame=1), file_name="img_0002.jpg")
    with pytest.raises(ValueError, match="out.txt is closed"):
        sink.write(image_frame)
    assert not frame_names_path(tmp_path / "out.txt").exists()
    assert len((tmp_path / "out.txt").read_text().splitlines()) == 1


def test_video_sink_keeps_one_frame_size_and_refuses_writes_after_close(tmp_path):
    sink = VideoSink(tmp_path / "v.mp4", fps=10)
    sink.write(_result([(10, 40, 60, 150)], [1], frame=0))
    sink.write(_result([(10, 40, 60, 150)], [1], frame=1, size=(300, 400)))  # another size: resized to the first
    sink.write(_result([(10, 40, 60, 150)], [1], frame=2))
    sink.close()
    assert sink.frames == 3 and video_frame_count(tmp_path / "v.mp4", 4) == 3
    with pytest.raises(ValueError, match="v.mp4 is closed"):
        sink.write(_result([(10, 40, 60, 150)], [1], frame=3))
    assert video_frame_count(tmp_path / "v.mp4", 4) == 3, "the finished video is not reopened (which would empty it)"


def test_a_video_writer_that_raises_on_opening_is_a_write_error_every_time(tmp_path, monkeypatch):
    """An OpenCV backend raising in VideoWriter() left the sink half-set: the next write was an
    AttributeError ('NoneType' object has no attribute 'write') instead of the write error."""
    from edge_reid.errors import OutputPathError, OutputWriteError

    def raising(*args, **kwargs):
        raise cv2.error("OpenCV(5.1.0) videoio: could not open the encoder")

    sink = VideoSink(tmp_path / "v.mp4", fps=10)
    monkeypatch.setattr(cv2, "VideoWriter", raising)
    for _ in range(2):
        with pytest.raises(OutputWriteError, match=r"cannot write video .*v\.mp4: OpenCV could not open it"):
            sink.write(_result([(10, 40, 60, 150)], [1]))
    sink.close()
    with pytest.raises(OutputPathError, match="OpenCV cannot write video"):  # the probe at the start: refused, no traceback
        VideoSink(tmp_path / "w.mp4", fps=10)
