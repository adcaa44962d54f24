"""Outputs read while a run writes them (a kiosk UI, another process following the files): each
frame's lines are on disk, whole and strict JSON, before the next frame; standard output is not
held in a buffer when it is a pipe."""

from __future__ import annotations

import io
import json
import os
import select
import sys

import numpy as np

from edge_reid.detections import Detections
from edge_reid.identities import Identities
from edge_reid.pipeline import Pipeline
from edge_reid.results import FrameResult
from edge_reid.runner import Runner
from edge_reid.sinks import EventsSink, MotSink


def _strict(line: str) -> dict:
    """``line`` parsed as strict JSON: NaN, Infinity and -Infinity raise."""

    def refuse(constant):
        raise ValueError(f"{constant} is not JSON: {line!r}")

    return json.loads(line, parse_constant=refuse)


def _result(names, similarities, is_new, frame_index=7) -> FrameResult:
    count = len(names)
    boxes = np.array([[10.0 + 40 * i, 20.0, 40.0 + 40 * i, 120.0] for i in range(count)], np.float32)
    tracked = Detections(boxes, np.full(count, 0.9, np.float32), np.arange(1, count + 1, dtype=np.int64))
    identities = Identities(np.arange(1, count + 1, dtype=np.int64), tuple(names), np.array(similarities, np.float32),
                            np.array(is_new, bool))
    return FrameResult(frame_index, 0.28, np.zeros((200, 200, 3), np.uint8), tracked, identities, ("new",) * count)


class _Follower:
    """A sink after the file sinks: at each frame, reads the files as another program would (a new
    open), and records what it found."""

    def __init__(self, events, mot):
        self.events, self.mot, self.seen = events, mot, []

    def write(self, result: FrameResult) -> None:
        events = self.events.read_bytes().decode("utf-8")
        mot = self.mot.read_text(encoding="utf-8")
        self.seen.append((result.frame_index, len(result), events, mot))

    def close(self) -> None:
        pass


def test_each_frames_lines_are_on_disk_whole_before_the_next_frame(tmp_path, embedder, detector, vtest_path):
    """A reader opening the files during a real run finds every frame processed so far, whole lines
    only, strict JSON: nothing waits in a buffer for a later frame or for the end of the run."""
    events, mot = tmp_path / "e.jsonl", tmp_path / "m.txt"
    follower = _Follower(events, mot)
    Runner(Pipeline(embedder, detector), [EventsSink(events), MotSink(mot), follower], handle_signals=False).run(
        str(vtest_path), max_frames=25)
    people = 0
    assert len(follower.seen) == 25
    for frame_index, count, text, rows in follower.seen:
        people += count
        assert text == "" or text.endswith("\n")
        records = [_strict(line) for line in text.splitlines()]
        live = [record for record in records if not record.get("past_frame")]
        assert len(live) == people, f"frame {frame_index}: {len(live)} event lines on disk, {people} people so far"
        assert live == [] or live[-1]["frame"] == frame_index or count == 0
        assert rows == "" or rows.endswith("\n")
    assert people > 20  # vtest shows people from the first frames: the check above had lines to find


def test_event_lines_are_strict_ascii_json_for_new_and_named_identities(tmp_path):
    """A new identity's similarity (0) and names outside ASCII give strict JSON, names escaped
    (``\\u00eb``), so any reader's encoding takes the bytes as they are."""
    path = tmp_path / "e.jsonl"
    sink = EventsSink(path)
    sink.write(_result(["Zoë", "李明", None], [0.0, 0.91234, 0.0], [True, False, True]))
    raw = path.read_bytes()
    sink.close()
    raw.decode("ascii")  # escaped, not raw UTF-8
    records = [_strict(line) for line in raw.decode("ascii").splitlines()]
    assert [record["name"] for record in records] == ["Zoë", "李明", None]
    assert [record["similarity"] for record in records] == [0.0, 0.9123, 0.0]
    assert [record["new"] for record in records] == [True, False, True]


def test_events_on_a_piped_standard_output_arrive_without_a_flush(monkeypatch):
    """``--events -`` into a pipe (Python block-buffers sys.stdout there): the frame's lines are in the
    pipe as soon as write() returns, before any flush or close."""
    read_end, write_end = os.pipe()
    buffered = io.TextIOWrapper(io.BufferedWriter(io.FileIO(write_end, "w"), buffer_size=1 << 16), encoding="utf-8")
    monkeypatch.setattr(sys, "stdout", buffered)
    try:
        sink = EventsSink("-")
        sink.write(_result(["Ann"], [0.75], [False]))
        ready, _, _ = select.select([read_end], [], [], 0.5)
        assert ready, "no event line in the pipe after write(): held in a buffer"
        line = os.read(read_end, 1 << 16).decode("ascii")
        assert line.endswith("\n") and _strict(line)["name"] == "Ann"
        sink.close()
    finally:
        monkeypatch.undo()
        buffered.close()
        os.close(read_end)
