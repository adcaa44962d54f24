"""Write failures are errors that keep what was produced: a full disk (a small tmpfs where mounting
is allowed) and injected write errors (everywhere), for the events, MOT rows, video, summary and gallery."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

import edge_reid.line_output as line_output
from conftest import unwrapped
from edge_reid.cli import main
from edge_reid.detections import Detections
from edge_reid.errors import OutputPathError, OutputWriteError
from edge_reid.identities import Identities
from edge_reid.matching.gallery import Gallery
from edge_reid.motchallenge import read_rows
from edge_reid.pipeline import Pipeline
from edge_reid.results import FrameResult
from edge_reid.runner import GallerySaving, Runner
from edge_reid.sinks import EventsSink, MotSink, VideoSink, video_frame_count


def _result(image: np.ndarray, frame: int, people: int = 6) -> FrameResult:
    boxes = np.array([(40 + 100 * i, 100, 90 + 100 * i, 260) for i in range(people)], np.float32)
    tracked = Detections(boxes, np.full(people, 0.8, np.float32), np.arange(1, people + 1))
    found = Identities(np.arange(1, people + 1), (None,) * people, np.full(people, 0.9, np.float32), np.zeros(people, bool))
    return FrameResult(frame, frame / 10.0, image, tracked, found, ("tracked",) * people)


def _fill(folder, leave: int = 0) -> None:
    """Fill a small file system, leaving about ``leave`` bytes."""
    total = os.statvfs(folder).f_bavail * os.statvfs(folder).f_frsize
    with open(folder / "filler", "wb") as handle:
        try:
            handle.write(b"\0" * max(0, total - leave))
        except OSError:
            pass


def _fail_writes_after(monkeypatch, good_bytes: int) -> None:
    """Inject a disk that fills after ``good_bytes`` more bytes, for every streaming output (os.write)."""
    real_write = os.write
    budget = [good_bytes]

    def write(fd, data):
        if budget[0] <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        written = real_write(fd, bytes(data[: budget[0]]))
        budget[0] -= written
        return written

    monkeypatch.setattr(line_output.os, "write", write)


def _json_lines(path) -> list[dict]:
    data = path.read_bytes()
    assert data == b"" or data.endswith(b"\n"), "the file ends with a whole line"
    return [json.loads(line) for line in data.decode().splitlines()]


# -- sinks ------------------------------------------------------------------------------------------


def test_events_on_a_full_disk_keep_every_whole_frame(small_filesystem, vtest_frames):
    disk = small_filesystem(16)
    sink = EventsSink(disk / "e.jsonl")
    written = 0
    with pytest.raises(OutputWriteError) as failure:
        for frame in range(200):
            sink.write(_result(vtest_frames[0], frame))
            written += 1
    sink.close()
    message = str(failure.value)
    assert f"cannot write events to {disk / 'e.jsonl'}: No space left on device (disk full)" in message
    records = _json_lines(disk / "e.jsonl")
    assert 0 < written < 200 and len(records) == 6 * written == sink.count
    assert f"the {len(records)} lines before are complete" in message
    assert [r["frame"] for r in records] == [f for f in range(written) for _ in range(6)]


def test_mot_rows_on_a_failing_disk_stay_whole(tmp_path, monkeypatch, vtest_frames):
    sink = MotSink(tmp_path / "m.txt")
    sink.write(_result(vtest_frames[0], 0))
    _fail_writes_after(monkeypatch, 100)  # the next frame's rows stop part-way through the second row
    with pytest.raises(OutputWriteError, match=r"cannot write MOT results to .*m.txt: No space left on device \(disk full\)"):
        sink.write(_result(vtest_frames[0], 1))
    sink.close()
    rows = read_rows(tmp_path / "m.txt")
    assert rows.shape == (6, 10) and set(rows[:, 0]) == {1.0}


def test_video_on_a_full_disk_is_an_error_that_says_what_the_file_holds(small_filesystem, vtest_frames):
    disk = small_filesystem(100)
    sink = VideoSink(disk / "o.mp4", fps=10)
    with pytest.raises(OutputWriteError) as failure:
        for frame in range(40):
            sink.write(_result(vtest_frames[frame % len(vtest_frames)], frame))
        sink.close()  # OpenCV 4.x reports nothing while writing: the check at close finds it
    sink.close()
    message = str(failure.value)
    assert message.startswith(f"cannot write video {disk / 'o.mp4'}: ") and "disk full" in message
    assert "the file holds" in message or "cannot be read back" in message


class _WriterThatDropsFrames:
    """A real cv2.VideoWriter whose frames go nowhere and whose write() reports nothing, as
    OpenCV 4.x does when the disk is full."""

    real = cv2.VideoWriter

    def __init__(self, *args):
        self._writer = self.real(*args)

    def isOpened(self):
        return self._writer.isOpened()

    def write(self, image):
        return None

    def release(self):
        self._writer.release()


def test_a_video_writer_that_wrote_nothing_is_caught_at_close(tmp_path, monkeypatch, vtest_frames):
    monkeypatch.setattr("cv2.VideoWriter", _WriterThatDropsFrames)  # sinks imports cv2 where it writes
    sink = VideoSink(tmp_path / "o.mp4", fps=10)
    for frame in range(5):
        sink.write(_result(vtest_frames[frame], frame))
    with pytest.raises(OutputWriteError, match=r"cannot write video .*o.mp4: the file (holds 0 of the 5 frames written|cannot be read back)"):
        sink.close()
    sink.close()  # idempotent


def test_a_finished_video_holds_every_frame(tmp_path, vtest_frames):
    sink = VideoSink(tmp_path / "o.avi", fps=10)
    for frame in range(7):
        sink.write(_result(vtest_frames[frame], frame))
    sink.close()
    assert video_frame_count(tmp_path / "o.avi", 100) == 7 == sink.frames


def test_a_container_opencv_cannot_write_fails_before_any_frame(tmp_path):
    with pytest.raises(OutputPathError, match=r"output video .*o.notavideo: not a video file name .*use one ending in .mp4, .avi"):
        VideoSink(tmp_path / "o.notavideo")
    assert sorted(p.name for p in tmp_path.iterdir()) == [], "the probe file is removed"


# -- the runner -------------------------------------------------------------------------------------


def test_a_failed_write_ends_the_run_closes_the_rest_and_raises_with_the_summary(
    tmp_path, monkeypatch, embedder, detector, vtest_path
):
    events, mot, gallery_path = tmp_path / "e.jsonl", tmp_path / "m.txt", tmp_path / "g.edgereid"
    runner = Runner(Pipeline(embedder, detector), [EventsSink(events), MotSink(mot)],
                    GallerySaving(gallery_path, every_s=1000.0), handle_signals=False)
    _fail_writes_after(monkeypatch, 4000)  # the events and the MOT rows share the budget
    with pytest.raises(OutputWriteError) as failure:
        runner.run(str(vtest_path), max_frames=60)
    summary = failure.value.summary
    assert summary is not None and 0 < summary.frames < 60 and not summary.interrupted
    assert len(summary.write_errors) == 1 and "No space left on device" in summary.write_errors[0]
    assert str(failure.value) == summary.write_errors[0]
    records = _json_lines(events)
    rows = read_rows(mot)
    assert max(r["frame"] for r in records) <= summary.frames and rows[:, 0].max() <= summary.frames + 1
    assert len(Gallery.load(gallery_path)) == summary.identities > 0, "the gallery is saved on the way out"


def test_a_gallery_save_that_fails_keeps_the_gallery_saved_before(small_filesystem, embedder, detector, vtest_path):
    disk = small_filesystem(32)
    gallery_path = disk / "g.edgereid"
    runner = Runner(Pipeline(embedder, detector), [], GallerySaving(gallery_path, every_s=1e-6), handle_signals=False)
    with pytest.raises(OutputWriteError) as failure:
        runner.run(str(vtest_path), max_frames=200)
    message = str(failure.value)
    assert f"cannot write gallery {gallery_path}: No space left on device" in message
    assert f"{gallery_path} keeps the gallery saved before" in message
    saved = Gallery.load(gallery_path)  # whole and readable
    assert 0 < len(saved) <= failure.value.summary.identities


def test_a_failed_first_gallery_save_does_not_claim_an_earlier_one(tmp_path, embedder):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    runner = Runner(Pipeline(embedder, use_detector=False), [], GallerySaving(blocker / "g.edgereid", every_s=60), handle_signals=False)
    with pytest.raises(OutputWriteError, match="no earlier save exists"):
        runner.save_gallery()


# -- the command ------------------------------------------------------------------------------------


def _error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("edge-reid: error:")]


def _failed_run(capsys, *argv: str) -> tuple[str, str]:
    """Run the CLI, expect exit 3 with exactly one error line and no traceback; returns (stderr, the error line)."""
    code = main(["run", *argv])
    err = capsys.readouterr().err
    assert code == 3 and "Traceback" not in err, err
    lines = _error_lines(err)
    assert lines == [err.strip().splitlines()[-1]], "one error line, the last"
    return err, lines[0]


def test_run_with_a_failing_events_disk_exits_3_with_one_line_and_a_summary(tmp_path, monkeypatch, vtest_path, capsys):
    events, summary_path = tmp_path / "e.jsonl", tmp_path / "s.json"
    _fail_writes_after(monkeypatch, 3000)
    err, line = _failed_run(capsys, "--source", str(vtest_path), "--events", str(events), "--summary", str(summary_path),
                            "--max-frames", "40")
    assert line.startswith(f"edge-reid: error: cannot write events to {events}: No space left on device (disk full)")
    assert "write error" in unwrapped(err), "the printed summary records it"
    report = json.loads(summary_path.read_text())
    assert report["write_errors"] == [line.removeprefix("edge-reid: error: ")]
    assert 0 < report["frames"] < 40
    assert _json_lines(events)


def test_disk_full_while_writing_events(small_filesystem, tmp_path, vtest_path, capsys):
    """The issue's row: a 100 KB tmpfs, --events full/e.jsonl (here 16 KiB, so that it fills sooner)."""
    disk = small_filesystem(16)
    summary_path = tmp_path / "s.json"
    _, line = _failed_run(capsys, "--source", str(vtest_path), "--events", str(disk / "e.jsonl"), "--summary", str(summary_path),
                          "--max-frames", "60")
    assert "No space left on device (disk full)" in line
    records = _json_lines(disk / "e.jsonl")
    report = json.loads(summary_path.read_text())
    assert records and len(report["write_errors"]) == 1 and report["frames"] < 60


def test_disk_full_while_writing_the_video(small_filesystem, tmp_path, vtest_path, capsys):
    """The issue's row: a 100 KB tmpfs, --max-frames 40 --output full/o.mp4."""
    disk = small_filesystem(100)
    summary_path = tmp_path / "s.json"
    _, line = _failed_run(capsys, "--source", str(vtest_path), "--output", str(disk / "o.mp4"), "--summary", str(summary_path),
                          "--max-frames", "40")
    assert line.startswith(f"edge-reid: error: cannot write video {disk / 'o.mp4'}: ") and "disk full" in line
    assert json.loads(summary_path.read_text())["write_errors"]


def test_disk_full_while_writing_the_mot_rows_and_the_summary(small_filesystem, tmp_path, vtest_path, capsys):
    disk = small_filesystem(16)
    _fill(disk, leave=6000)  # one 4 KiB page left
    events = tmp_path / "e.jsonl"
    err, line = _failed_run(capsys, "--source", str(vtest_path), "--mot", str(disk / "m.txt"), "--summary", str(disk / "s.json"),
                            "--events", str(events), "--max-frames", "40")
    assert f"cannot write MOT results to {disk / 'm.txt'}: No space left on device" in line
    assert "cannot write summary" in unwrapped(err), "the summary could not be saved either, and says so"
    assert line.endswith("(and 1 more write error)"), "the final line counts the summary's failure too"
    assert not (disk / "s.json").exists()
    rows = read_rows(disk / "m.txt")
    records = _json_lines(events)
    assert len(rows) and rows[:, 0].max() <= max(r["frame"] for r in records) + 1


# -- whole files and standard output --------------------------------------------------------------


def test_a_whole_file_that_fills_the_disk_is_a_write_failure_and_keeps_the_old_file(small_filesystem):
    from edge_reid.atomic import write_json_atomic

    disk = small_filesystem(32)
    report = disk / "report.json"
    write_json_atomic(report, {"small": 1})
    with pytest.raises(OutputWriteError, match=r"cannot write metrics JSON .*report.json: No space left on device"):
        write_json_atomic(report, {"large": "x" * 200_000}, what="metrics JSON")
    assert report.read_text() == '{\n  "small": 1\n}\n' and sorted(p.name for p in disk.iterdir()) == ["report.json"]


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full (Linux)")
def test_a_gallery_command_whose_output_fills_the_disk_exits_3(tmp_path):
    """`gallery export -o -` into a full device was an internal error (exit 1); a report written on a
    full disk exited 2 like a wrong path, after the work was done."""
    gallery = Gallery(4)
    gallery.enroll("Ann", np.eye(4, dtype=np.float32)[:1])
    gallery.save(tmp_path / "g.edgereid")
    with open("/dev/full", "w") as full:
        result = subprocess.run([sys.executable, "-m", "edge_reid", "gallery", "export", "-g", str(tmp_path / "g.edgereid"), "-o", "-"],
                                stdout=full, stderr=subprocess.PIPE, text=True, timeout=120)
    assert result.returncode == 3 and result.stderr.strip().splitlines() == [
        "edge-reid: error: cannot write standard output: No space left on device"
    ]


def test_another_codec_keeps_its_own_containers(tmp_path):
    """The mp4v container list was applied to every codec: VideoSink('o.wmv', fourcc='WMV2') had worked and was refused."""
    sink = VideoSink(tmp_path / "o.wmv", fourcc="WMV2")
    sink.close()
    with pytest.raises(OutputPathError, match="not a video file name"):
        VideoSink(tmp_path / "o.jpg", fourcc="WMV2")  # an image name is single images with any codec
