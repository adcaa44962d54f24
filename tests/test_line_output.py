"""Streaming text outputs keep whole lines when a write fails (edge_reid.line_output)."""

from __future__ import annotations

import errno
import json
import os

import pytest

import edge_reid.line_output as line_output
from edge_reid.errors import OutputWriteError
from edge_reid.line_output import LineOutput


def _fail_after(monkeypatch, good_bytes: int, error: int = errno.ENOSPC) -> None:
    """os.write lets ``good_bytes`` through (a last write may stop part-way, as on a filling disk), then fails."""
    real_write = os.write
    budget = [good_bytes]

    def write(fd, data):
        if budget[0] <= 0:
            raise OSError(error, os.strerror(error))
        written = real_write(fd, bytes(data[: budget[0]]))
        budget[0] -= written
        return written

    monkeypatch.setattr(line_output.os, "write", write)


def test_a_failed_write_leaves_whole_blocks_only(tmp_path, monkeypatch):
    path = tmp_path / "e.jsonl"
    output = LineOutput(path, "events")
    frames = ["".join(json.dumps({"frame": f, "person": p}) + "\n" for p in range(3)) for f in range(10)]
    _fail_after(monkeypatch, len((frames[0] + frames[1] + frames[2]).encode()) + 17)  # frame 3 cut after 17 bytes
    for block in frames[:3]:
        output.write(block)
    with pytest.raises(OutputWriteError, match=r"cannot write events to .*e.jsonl: No space left on device \(disk full\); the 9 lines before are complete"):
        output.write(frames[3])
    with pytest.raises(OutputWriteError, match="No space left"):
        output.write(frames[4])  # a failed output stays failed
    output.close()
    text = path.read_text()
    assert text == "".join(frames[:3]), "the cut frame was truncated away"
    assert output.lines == 9


def test_an_io_error_is_named(tmp_path, monkeypatch):
    output = LineOutput(tmp_path / "m.txt", "MOT results")
    _fail_after(monkeypatch, 0, errno.EIO)
    with pytest.raises(OutputWriteError, match=r"cannot write MOT results to .*m.txt: Input/output error; the 0 lines before"):
        output.write("1,2,3\n")
    output.close()
    assert (tmp_path / "m.txt").read_text() == ""


def test_a_failing_sync_at_close_is_an_error(tmp_path, monkeypatch):
    output = LineOutput(tmp_path / "e.jsonl", "events")
    output.write("{}\n")

    def fsync(fd):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(line_output.os, "fsync", fsync)
    with pytest.raises(OutputWriteError, match="Input/output error when saving it to disk"):
        output.close()
    output.close()  # idempotent
