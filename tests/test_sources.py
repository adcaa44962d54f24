"""Frame sources: files, folders, live sources; truncated and damaged input; repeated playback."""

import subprocess

import cv2
import numpy as np
import pytest

from edge_reid.errors import SourceError
from edge_reid.sources import MAX_CONSECUTIVE_CORRUPT, FrameSource, classify_source, open_source

#: Bytes of vtest.avi that hold its first 399 frames (of 795): the truncated copy of the bad-input table.
VTEST_HALF_BYTES = 4065845


def test_classify_source():
    assert classify_source("0") == "camera" and classify_source("/dev/video2") == "camera"
    assert classify_source("rtsp://cam.local/stream") == "stream" and classify_source("HTTP://x/y.mjpg") == "stream"
    assert classify_source("nvarguscamerasrc ! video/x-raw(memory:NVMM) ! nvvidconv ! appsink") == "gstreamer"
    assert classify_source("video.mp4") == "file"


def test_video_file_frames_and_timestamps(vtest_path):
    source = open_source(str(vtest_path))
    assert source.total_frames == 795 and source.fps == pytest.approx(10.0)
    frames = []
    for frame in source:
        frames.append(frame)
        if len(frames) == 3:
            source.stop()
    assert [f.index for f in frames] == [0, 1, 2]
    assert [round(f.timestamp_s, 3) for f in frames] == [0.0, 0.1, 0.2]
    assert frames[0].image.shape == (576, 768, 3)


def test_image_folder_skips_and_counts_unreadable(tmp_path, vtest_frames):
    for i in range(3):
        cv2.imwrite(str(tmp_path / f"frame_{i:03d}.jpg"), vtest_frames[i])
    (tmp_path / "frame_001b.jpg").write_bytes(b"not a jpeg")
    (tmp_path / "notes.txt").write_text("ignored")
    source = open_source(str(tmp_path), fps=2.0)
    frames = list(source)
    assert len(frames) == 3 and source.stats.corrupt_frames == 1
    assert [(s.path.name, s.reason) for s in source.stats.skipped_files] == [("frame_001b.jpg", "not a decodable image")]
    assert [f.name for f in frames] == ["frame_000.jpg", "frame_001.jpg", "frame_002.jpg"]
    assert [f.index for f in frames] == [0, 1, 3] and [f.timestamp_s for f in frames] == [0.0, 0.5, 1.5], (
        "frame_001b.jpg keeps its place: the frames after it keep their numbers and times"
    )


def test_missing_or_undecodable_sources(tmp_path):
    with pytest.raises(SourceError, match="source not found: .*nope.mp4"):
        open_source(str(tmp_path / "nope.mp4"))
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00" * 4096)
    with pytest.raises(SourceError, match="cannot decode video .*bad.mp4"):
        open_source(str(bad))
    with pytest.raises(SourceError, match="camera not found: /dev/video99"):
        open_source("/dev/video99")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SourceError, match="no images"):
        open_source(str(empty))


class ScriptedCamera:
    """A stand-in for cv2.VideoCapture of a camera: delivers `frames` frames, then reads fail."""

    def __init__(self, frames: int, image: np.ndarray):
        self.remaining, self.image = frames, image

    def isOpened(self):
        return True

    def read(self):
        if self.remaining <= 0:
            return False, None
        self.remaining -= 1
        return True, self.image

    def get(self, prop):
        return 0.0

    def release(self):
        pass


def test_dropped_camera_is_reopened_then_given_up(vtest_frames):
    opened = []

    def factory(kind, name):
        # First open: 3 frames; first reopen fails (camera still down); second reopen: 2 frames; then down for good.
        plan = {0: 3, 1: None, 2: 2}
        attempt = len(opened)
        opened.append(attempt)
        frames = plan.get(attempt)
        if frames is None:
            return None
        return ScriptedCamera(frames, vtest_frames[0])

    source = FrameSource("/dev/video0", "camera", reconnect_timeout_s=2.0, capture_factory=factory, newest_only=False)
    delivered = list(source)
    assert len(delivered) == 5 and [f.index for f in delivered] == list(range(5))
    assert source.stats.reconnects == 1 and source.stats.gave_up
    assert len(opened) >= 4  # 1 open + failed retry + successful retry + retries until the timeout


def test_a_camera_that_reopens_but_sends_nothing_is_given_up_after_the_timeout(vtest_frames, monkeypatch):
    """The timeout counts from the last frame: reopening without a frame is no recovery (it used to
    restart the timeout with every reopen and retry forever)."""
    import types

    import edge_reid.sources as sources

    clock = types.SimpleNamespace(now=0.0)
    fake_time = types.SimpleNamespace(monotonic=lambda: clock.now, sleep=lambda s: setattr(clock, "now", clock.now + s))
    monkeypatch.setattr(sources, "time", fake_time)
    opened = []

    def factory(kind, name):
        opened.append(clock.now)
        assert len(opened) < 100, "kept reopening a source that sends nothing"
        return ScriptedCamera(3 if len(opened) == 1 else 0, vtest_frames[0])  # 3 frames, then opens that send none

    source = FrameSource("/dev/video0", "camera", reconnect_timeout_s=10.0, capture_factory=factory, newest_only=False)
    assert len(list(source)) == 3
    assert source.stats.gave_up and clock.now <= 10.0 + 1e-9
    assert opened[1:4] == [0.5, 1.5, 3.5], "backoff 0.5, 1, 2 ... s, not restarted by an open that sends nothing"


def test_a_video_file_served_as_a_stream_ends_at_its_last_frame(vtest_frames):
    """A URL of a file (FFmpeg knows its frame count) ends there; a live stream (count 0) is reopened."""

    class ServedFile(ScriptedCamera):
        def get(self, prop):
            return 4.0 if prop == cv2.CAP_PROP_FRAME_COUNT else 0.0

    opened = []

    def factory(kind, name):
        opened.append(kind)
        return ServedFile(4, vtest_frames[0])

    source = FrameSource("http://127.0.0.1:9/clip.avi", "stream", reconnect_timeout_s=5.0, capture_factory=factory, newest_only=False)
    assert len(list(source)) == 4 and opened == ["stream"] and source.stats.reconnects == 0


def test_truncated_video_says_where_it_ended(tmp_path, vtest_path):
    half = tmp_path / "half.avi"
    subprocess.run(["head", "-c", str(VTEST_HALF_BYTES), str(vtest_path)], stdout=half.open("wb"), check=True)
    source = open_source(str(half))
    assert source.total_frames == 795  # the header still declares the whole video
    frames = sum(1 for _ in source)
    stats = source.stats
    assert frames == stats.frames == 399
    assert (stats.ended_at_frame, stats.declared_frames, stats.end_reason) == (399, 795, "truncated")
    assert stats.end_message == "ended at frame 399 of 795: file truncated?"
    assert stats.corrupt_frames == 0, "the missing half is not 'corrupt frames'"
    assert stats.to_dict()["end_message"] == stats.end_message


def test_whole_video_ends_without_a_message(vtest_path):
    source = open_source(str(vtest_path))
    assert sum(1 for _ in source) == 795
    assert source.stats.end_message is None and source.stats.ended_at_frame is None and source.stats.passes == 1


def _write_jpeg(path, image) -> bytes:
    ok, encoded = cv2.imencode(".jpg", image)
    assert ok
    path.write_bytes(encoded.tobytes())
    return encoded.tobytes()


def test_image_folder_skips_truncated_corrupt_and_empty_images_by_name(tmp_path, vtest_frames):
    data = _write_jpeg(tmp_path / "a_good.jpg", vtest_frames[0])
    (tmp_path / "b_truncated.jpg").write_bytes(data[: len(data) * 3 // 4])
    assert cv2.imread(str(tmp_path / "b_truncated.jpg")) is not None, "OpenCV alone would use the truncated JPEG"
    (tmp_path / "c_corrupt.jpg").write_bytes(b"\xff\xd8\xff" + bytes(range(256)) * 8)
    (tmp_path / "d_empty.png").write_bytes(b"")
    _write_jpeg(tmp_path / "e_good.JPG", vtest_frames[1])
    source = open_source(str(tmp_path), fps=5.0)
    frames = list(source)
    # Each image keeps its place in the listing (its frame number and time), readable or not.
    assert [(f.index, f.name, f.timestamp_s) for f in frames] == [(0, "a_good.jpg", 0.0), (4, "e_good.JPG", 0.8)]
    assert np.array_equal(frames[1].image, cv2.imread(str(tmp_path / "e_good.JPG")))
    skipped = {s.path.name: s.reason for s in source.stats.skipped_files}
    assert skipped == {
        "b_truncated.jpg": "truncated JPEG (no end-of-image marker)",
        "c_corrupt.jpg": "not a decodable image",
        "d_empty.png": "empty file",
    }
    assert source.stats.corrupt_frames == 3 and source.stats.declared_frames == 5
    assert source.stats.to_dict()["skipped_files"][0] == {"file": "b_truncated.jpg", "reason": "truncated JPEG (no end-of-image marker)"}


def _short_clip(path, frames, fps=10.0):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (frames[0].shape[1], frames[0].shape[0]))
    for frame in frames:
        writer.write(frame)
    writer.release()
    return path


def test_repeated_file_keeps_counting_frames_and_time(tmp_path, vtest_frames):
    clip = _short_clip(tmp_path / "clip.avi", vtest_frames[:4])
    source = open_source(str(clip), repeat=3)
    assert source.total_frames == 12
    frames = list(source)
    assert [f.index for f in frames] == list(range(12))
    assert [round(f.timestamp_s, 3) for f in frames] == [round(0.1 * i, 3) for i in range(12)]
    assert source.stats.passes == 3
    assert np.array_equal(frames[4].image, frames[0].image), "the second pass starts at the first frame again"


def test_an_existing_file_or_folder_is_opened_whatever_its_name(tmp_path, vtest_frames, monkeypatch):
    """A "!" (GStreamer's separator) or a name of digits (a camera index) does not hide an existing path."""
    clip = _short_clip(tmp_path / "clip!1.avi", vtest_frames[:3])
    assert classify_source(str(clip)) == "file"
    assert len(list(open_source(str(clip)))) == 3
    monkeypatch.chdir(tmp_path)
    _short_clip(tmp_path / "two.avi", vtest_frames[:2]).rename(tmp_path / "2024")
    assert classify_source("2024") == "file"
    source = open_source("2024")
    assert source.kind == "file" and len(list(source)) == 2
    with pytest.raises(SourceError, match="cannot open camera 2024"):
        open_source(2024)  # an int is a camera index, whatever the folder holds
    (tmp_path / "shots!").mkdir()
    _write_jpeg(tmp_path / "shots!" / "a.jpg", vtest_frames[0])
    assert open_source("shots!").kind == "folder"
    assert classify_source("2025") == "camera" and classify_source("a ! b") == "gstreamer", "names of nothing keep their rules"
    assert classify_source("nvarguscamerasrc ! " + "queue ! " * 40 + "appsink") == "gstreamer", "too long for a file name"


def test_repeat_forever_until_stopped_and_folders_repeat_too(tmp_path, vtest_frames):
    clip = _short_clip(tmp_path / "clip.avi", vtest_frames[:3])
    source = open_source(str(clip), repeat=0)
    assert source.total_frames is None
    seen = []
    for frame in source:
        seen.append(frame.timestamp_s)
        if len(seen) == 10:
            source.stop()
    assert len(seen) == 10 and all(b > a for a, b in zip(seen, seen[1:])) and source.stats.passes == 3

    folder = tmp_path / "folder"
    folder.mkdir()
    for i in range(2):
        _write_jpeg(folder / f"{i}.jpg", vtest_frames[i])
    (folder / "bad.jpg").write_bytes(b"")
    source = open_source(str(folder), repeat=2)
    assert [f.name for f in source] == ["0.jpg", "1.jpg"] * 2
    assert source.stats.corrupt_frames == 2 and len(source.stats.skipped_files) == 1, "each skipped file named once"


def test_repeat_is_refused_for_live_sources_and_negative(tmp_path, vtest_frames):
    with pytest.raises(SourceError, match="repeat applies to video files and image folders"):
        FrameSource("/dev/video0", "camera", capture_factory=lambda kind, name: ScriptedCamera(1, vtest_frames[0]), repeat=2)
    with pytest.raises(ValueError, match="repeat must be >= 0"):
        open_source(str(_short_clip(tmp_path / "c.avi", vtest_frames[:2])), repeat=-1)


def test_a_repeated_source_deleted_between_passes_ends_saying_why(tmp_path, vtest_frames):
    clip = _short_clip(tmp_path / "clip.avi", vtest_frames[:3])
    source = open_source(str(clip), repeat=5)
    seen = 0
    for _ in source:
        seen += 1
        if seen == 3:
            clip.unlink()  # during the first pass's last frame
    assert seen == 3 and source.stats.passes == 1 and source.stats.end_reason == "gone"
    assert source.stats.end_message == "ended after pass 1: the source could not be read again (moved or deleted?)"

    folder = tmp_path / "folder"
    folder.mkdir()
    for i in range(2):
        _write_jpeg(folder / f"{i}.jpg", vtest_frames[i])
    source = open_source(str(folder), repeat=2)  # the last pass asked for is the one that finds nothing
    names = []
    for frame in source:
        names.append(frame.name)
        if len(names) == 2:
            for path in folder.iterdir():
                path.unlink()
    assert names == ["0.jpg", "1.jpg"] and source.stats.passes == 1 and source.stats.end_reason == "gone"
    complete = open_source(str(_short_clip(tmp_path / "whole.avi", vtest_frames[:2])), repeat=2)
    assert len(list(complete)) == 4 and complete.stats.end_reason is None, "a run that played every pass ended normally"


def test_folder_of_only_unreadable_images_is_not_repeated_forever(tmp_path):
    (tmp_path / "x.jpg").write_bytes(b"")
    source = open_source(str(tmp_path), repeat=0)
    assert list(source) == [] and source.stats.passes == 1


class ScriptedFile:
    """A stand-in for cv2.VideoCapture of a file: ``frames`` entries (None = undecodable), the data
    ending after ``available`` of them. A failed read does not move on (as OpenCV's FFmpeg backend
    behaves where a container's structure is damaged: only a seek gets past it; a damaged picture in
    an intact container is read past, the real-file tests below), and a seek past the data's end
    leaves the position where it was. No presentation times (``CAP_PROP_POS_MSEC`` is 0)."""

    def __init__(self, frames: list, declared: int, available: int):
        self.frames, self.declared, self.available, self.position = frames, declared, available, 0

    def isOpened(self):
        return True

    def read(self):
        if self.position >= self.available or self.frames[self.position] is None:
            return False, None
        self.position += 1
        return True, self.frames[self.position - 1]

    def get(self, prop):
        return {cv2.CAP_PROP_FRAME_COUNT: self.declared, cv2.CAP_PROP_FPS: 10.0, cv2.CAP_PROP_POS_FRAMES: self.position}.get(prop, 0.0)

    def set(self, prop, value):
        if prop == cv2.CAP_PROP_POS_FRAMES and value <= self.available:
            self.position = int(value)

    def release(self):
        pass


def test_damaged_frames_are_skipped_and_the_corrupt_frame_limit_ends_the_file(vtest_frames):
    image = vtest_frames[0]
    # Frames 2-3 damaged (skipped, counted), then good frames, then a long damaged run.
    plan = [image, image, None, None, image] + [None] * (MAX_CONSECUTIVE_CORRUPT + 10) + [image]
    source = FrameSource("f.avi", "file", capture_factory=lambda kind, name: ScriptedFile(plan, len(plan), len(plan)))
    frames = list(source)
    assert len(frames) == 3 and [round(f.timestamp_s, 2) for f in frames] == [0.0, 0.1, 0.4]
    stats = source.stats
    assert stats.corrupt_frames == 2 + MAX_CONSECUTIVE_CORRUPT
    assert (stats.ended_at_frame, stats.end_reason) == (5, "corrupt_limit")
    assert stats.end_message.startswith(f"ended at frame 5 of {len(plan)}: {MAX_CONSECUTIVE_CORRUPT} undecodable frames in a row")


def test_a_frame_count_estimate_a_frame_too_high_is_not_called_truncated(vtest_frames):
    plan = [vtest_frames[0]] * 10
    source = FrameSource("f.mkv", "file", capture_factory=lambda kind, name: ScriptedFile(plan, 11, 10))
    assert len(list(source)) == 10 and source.stats.end_message is None
    source = FrameSource("f.mkv", "file", capture_factory=lambda kind, name: ScriptedFile(plan, 20, 10))
    assert len(list(source)) == 10 and source.stats.end_message == "ended at frame 10 of 20: file truncated?"


def test_the_corrupt_frame_limit_can_be_set(vtest_frames):
    plan = [vtest_frames[0]] + [None] * 8 + [vtest_frames[0]]
    source = FrameSource("f.avi", "file", capture_factory=lambda kind, name: ScriptedFile(plan, 10, 10), max_consecutive_corrupt=5)
    assert len(list(source)) == 1 and source.stats.corrupt_frames == 5
    assert source.stats.end_message == "ended at frame 1 of 10: 5 undecodable frames in a row (the corrupt-frame limit): file damaged?"


class ClockOnlyFile(ScriptedFile):
    """A file whose container gives no frame rate, only each frame's time (ms)."""

    def get(self, prop):
        if prop == cv2.CAP_PROP_FPS:
            return 0.0
        if prop == cv2.CAP_PROP_POS_MSEC:
            return 40.0 * max(self.position - 1, 0)
        return super().get(prop)


def test_repeated_file_without_a_frame_rate_keeps_its_clock_moving(vtest_frames):
    plan = [vtest_frames[0]] * 3
    source = FrameSource("f.avi", "file", capture_factory=lambda kind, name: ClockOnlyFile(plan, 3, 3), repeat=2)
    assert source.fps is None
    assert [round(f.timestamp_s, 3) for f in source] == [0.0, 0.04, 0.08, 0.12, 0.16, 0.2]


def test_an_image_sequence_is_timed_by_its_seqinfo_or_fps(tmp_path, vtest_frames):
    """The tracker counts in seconds: a MOTChallenge sequence's frames are 1/frameRate apart (they
    were 1 s apart whatever the sequence, so a 30 fps sequence aged tracks 30x too fast)."""
    sequence = tmp_path / "MOT17-XX"
    (sequence / "img1").mkdir(parents=True)
    for index in range(3):
        cv2.imwrite(str(sequence / "img1" / f"{index + 1:06d}.jpg"), vtest_frames[index])
    (sequence / "seqinfo.ini").write_text("[Sequence]\nname=MOT17-XX\nimDir=img1\nframeRate=30\nseqLength=3\n")

    for given in (sequence / "img1", sequence):  # the image folder, or the sequence folder itself
        source = open_source(str(given))
        frames = list(source)
        assert (source.fps, source.fps_source) == (30.0, "seqinfo.ini")
        assert [round(f.timestamp_s, 4) for f in frames] == [0.0, 0.0333, 0.0667]
    given = open_source(str(sequence / "img1"), fps=12.5)
    assert (given.fps, given.fps_source) == (12.5, "--fps")
    plain = tmp_path / "snapshots"
    plain.mkdir()
    cv2.imwrite(str(plain / "a.jpg"), vtest_frames[0])
    source = open_source(str(plain))
    assert (source.fps, source.fps_source) == (1.0, "default")
    with pytest.raises(ValueError, match="fps must be a positive number"):
        open_source(str(plain), fps=0.0)


def _mjpeg_clip(path, frames) -> bytearray:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (frames[0].shape[1], frames[0].shape[0]))
    for frame in frames:
        writer.write(frame)
    writer.release()
    return bytearray(path.read_bytes())


def _frame_chunks(data: bytearray) -> list[tuple[int, int]]:
    """(offset, size) of each frame's '00dc' chunk in an MJPG AVI, in file order."""
    chunks, start = [], data.find(b"movi")
    while (start := data.find(b"00dc", start + 1)) != -1:
        size = int.from_bytes(data[start + 4:start + 8], "little")
        if data[start + 8:start + 10] == b"\xff\xd8":  # a JPEG follows: a frame chunk, not the index's mention
            chunks.append((start, size))
    return chunks


def _vtest_mjpeg(tmp_path, vtest_path, count: int = 40):
    capture = cv2.VideoCapture(str(vtest_path))
    clip = tmp_path / "clip.avi"
    data = _mjpeg_clip(clip, [capture.read()[1] for _ in range(count)])
    capture.release()
    return clip, data


def test_damaged_frames_in_a_real_video_are_skipped_and_the_rest_keep_their_numbers(tmp_path, vtest_path):
    clip, data = _vtest_mjpeg(tmp_path, vtest_path)
    chunks = _frame_chunks(data)
    assert len(chunks) == 40
    for frame in [10, 20, 21, 22, 23, 24]:  # the pictures of six frames wiped (their chunks intact)
        offset, size = chunks[frame]
        data[offset + 10:offset + 8 + size] = bytes(size - 2)
    damaged = tmp_path / "damaged.avi"
    damaged.write_bytes(data)
    source = open_source(str(damaged))
    frames = list(source)
    assert [frame.index for frame in frames] == [i for i in range(40) if i not in (10, 20, 21, 22, 23, 24)]
    assert all(frame.timestamp_s == pytest.approx(frame.index / 10.0) for frame in frames)
    reference = list(open_source(str(clip)))
    assert all(np.array_equal(frame.image, reference[frame.index].image) for frame in frames), "each number is its own picture"
    assert source.stats.corrupt_frames == 6 and source.stats.end_message is None


def test_a_broken_chunk_header_does_not_end_a_real_video(tmp_path, vtest_path):
    clip, data = _vtest_mjpeg(tmp_path, vtest_path)
    offset, _ = _frame_chunks(data)[32]
    data[offset:offset + 8] = bytes(8)  # the container's structure broken at frame 32
    damaged = tmp_path / "damaged.avi"
    damaged.write_bytes(data)
    source = open_source(str(damaged))
    frames = list(source)
    # FFmpeg's AVI reader skips the broken chunk and numbers the frames after it one lower (its
    # clock counts the chunks read), so numbers after such damage can be a frame off; the frames
    # themselves are all read, in order.
    assert len(frames) == 39 and [frame.index for frame in frames][:32] == list(range(32))
    assert source.stats.end_message is None


def test_a_video_whose_header_declares_an_impossible_rate_is_timed_by_the_fps_given(tmp_path, vtest_frames):
    clip = tmp_path / "fast.avi"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 1000.0, (768, 576))
    for frame in vtest_frames[:5]:
        writer.write(frame)
    writer.release()
    header = open_source(str(clip))
    assert header.declared_fps == 1000.0 and header.fps is None and header.fps_source is None
    assert [round(f.timestamp_s, 3) for f in header] == [0.0, 0.001, 0.002, 0.003, 0.004], "its container's clock: 1 ms apart"
    given = open_source(str(clip), fps=10.0)
    assert (given.fps, given.fps_source) == (10.0, "--fps")
    assert [(f.index, round(f.timestamp_s, 3)) for f in given] == [(0, 0.0), (1, 0.1), (2, 0.2), (3, 0.3), (4, 0.4)]
    with pytest.raises(ValueError, match="a camera is timed as it delivers"):
        FrameSource("0", "camera", fps=10.0, capture_factory=lambda kind, name: None)


def test_the_run_notes_an_impossible_declared_rate(tmp_path, vtest_frames):
    from edge_reid.cli.run_command import declared_rate_note

    clip = tmp_path / "fast.avi"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 1000.0, (768, 576))
    writer.write(vtest_frames[0])
    writer.release()
    assert "declares 1000 fps: its frames are timed by the container's clock" in declared_rate_note(open_source(str(clip)))
    assert declared_rate_note(open_source(str(clip), fps=25.0)) == ""
    assert declared_rate_note(open_source(str(_short_clip(tmp_path / "ok.avi", vtest_frames[:2])))) == ""


def test_frame_numbers_from_the_container_clock():
    from edge_reid.sources import frame_number

    assert frame_number(-1.0, 25.0, 4, -1.0, 5) == 5, "no clock: counted"
    assert [frame_number(0.0, 25.0, last, 0.0, last + 1) for last in (-1, 0, 1)] == [0, 1, 2], "a clock stuck at 0: counted"
    assert frame_number(440.0, 25.0, 3, 120.0, 4) == 11, "the clock says where the frame is (frames lost between)"
    assert frame_number(0.0, 25.0, 10, 400.0, 11) == -1, "back at the start after the clock moved: a seek that went back"
    assert frame_number(400.0, 25.0, 10, 400.0, 11) == -1, "the same time again: not a new frame"
    # A variable frame rate (a phone's 30 fps video declaring 25): times that round onto the last
    # position are the next frame, never dropped.
    times = [i * 1000 / 30 for i in range(7)]
    numbers, last, last_ms = [], -1, -1.0
    for time_ms in times:
        last = frame_number(time_ms, 25.0, last, last_ms, last + 1)
        last_ms = time_ms
        numbers.append(last)
    assert numbers == [0, 1, 2, 3, 4, 5, 6]


class VariableRateFile(ScriptedFile):
    """A variable-frame-rate file (a phone, a screen recorder, a camera under load): every frame reads, every
    fourth interval is 200 ms instead of 100, and the header declares the mean rate."""

    TIMES_MS = [0.0]
    for _ in range(59):
        TIMES_MS.append(TIMES_MS[-1] + (200.0 if len(TIMES_MS) % 4 == 0 else 100.0))

    def get(self, prop):
        if prop == cv2.CAP_PROP_FPS:
            return 1000.0 * (len(self.TIMES_MS) - 1) / self.TIMES_MS[-1]
        if prop == cv2.CAP_PROP_POS_MSEC:
            return self.TIMES_MS[max(self.position - 1, 0)]
        return super().get(prop)


def test_a_variable_frame_rate_file_numbers_its_frames_as_decoded(vtest_frames):
    """Longer intervals are no lost frames: the k-th frame read is frame k, as MOTChallenge ground truth and
    frame extraction (``ffmpeg -vsync 0``) number them; the clock read frame numbers past the file's 60
    (``eval-mot`` then refused the rows: frame 61 beyond the sequence's 60)."""
    plan = [vtest_frames[0]] * 60
    source = FrameSource("f.mp4", "file", capture_factory=lambda kind, name: VariableRateFile(plan, 60, 60))
    assert 8.0 < source.declared_fps < 8.2
    frames = list(source)
    assert [frame.index for frame in frames] == list(range(60))
    assert source.stats.corrupt_frames == 0 and source.stats.end_message is None


class PacedFile:
    """A file of ``len(times_ms)`` frames at the given presentation times whose frames ``bad`` fail their read;
    a failed read moves on to ``resume_at`` (a decoder that lost a group of pictures) or to the next frame."""

    def __init__(self, times_ms: list[float], bad: set[int], resume_at: dict[int, int] | None = None):
        self.times_ms, self.bad, self.resume_at, self.position = times_ms, bad, resume_at or {}, 0

    def isOpened(self):
        return True

    def read(self):
        if self.position >= len(self.times_ms):
            return False, None
        if self.position in self.bad:
            self.position = self.resume_at.pop(self.position, self.position + 1)
            return False, None
        self.position += 1
        return True, np.zeros((8, 8, 3), np.uint8)

    def get(self, prop):
        mean_fps = 1000.0 * (len(self.times_ms) - 1) / self.times_ms[-1]
        return {cv2.CAP_PROP_FRAME_COUNT: len(self.times_ms), cv2.CAP_PROP_FPS: mean_fps,
                cv2.CAP_PROP_POS_FRAMES: self.position, cv2.CAP_PROP_POS_MSEC: self.times_ms[max(self.position - 1, 0)]}.get(prop, 0.0)

    def set(self, prop, value):
        pass

    def release(self):
        pass


def test_after_a_damaged_frame_the_clock_places_the_next_at_the_local_pace():
    """5 fps for 6 s, then 20 fps (a mean of 7.9 declared), frame 20 damaged: the frames after it keep their
    numbers. Placed by the clock times the mean rate, frame 21 became 33 and twelve numbers passed the file's 60."""
    times = [0.0]
    for k in range(1, 60):
        times.append(times[-1] + (200.0 if k <= 30 else 50.0))
    source = FrameSource("f.mp4", "file", capture_factory=lambda kind, name: PacedFile(times, {20}))
    assert [frame.index for frame in source] == [i for i in range(60) if i != 20]
    assert source.stats.corrupt_frames == 1


def test_frames_a_decoder_skips_after_a_failed_read_are_counted_by_the_clock():
    """10 fps; the read of frame 5 fails and the decoder resumes at frame 9: frames 5-8 are missing, the rest keep
    their numbers (counting reads alone would call frame 9 frame 5)."""
    source = FrameSource("f.mp4", "file", capture_factory=lambda kind, name: PacedFile([100.0 * i for i in range(20)], {5}, {5: 9}))
    assert [frame.index for frame in source] == [0, 1, 2, 3, 4, *range(9, 20)]


@pytest.mark.parametrize("kind, options", [("file", {}), ("camera", {"newest_only": False}), ("camera", {"newest_only": True})])
def test_close_from_another_thread_stops_the_reading_and_never_releases_under_a_read(kind, options):
    """close() from another thread (an app's shutdown) released a file's or an in-order camera's capture while a read
    was inside it, and a file then ended as 'truncated?'. Now it stops the reading; the reader releases after its read."""
    import threading
    import time

    class StallingCapture:
        def __init__(self) -> None:
            self.reads, self.in_read, self.released, self.released_in_read = 0, False, False, False
            self.unblock = threading.Event()

        def isOpened(self):
            return True

        def get(self, prop):
            return 0.0

        def read(self):
            self.in_read = True
            try:
                self.reads += 1
                if self.reads > 3:
                    self.unblock.wait(5)  # a stalled read
                return True, np.zeros((8, 8, 3), np.uint8)
            finally:
                self.in_read = False

        def release(self):
            self.released_in_read = self.released_in_read or self.in_read
            self.released = True

    capture = StallingCapture()
    source = FrameSource("clip.avi" if kind == "file" else "0", kind, capture_factory=lambda k, n: capture, **options)
    delivered = []
    reader = threading.Thread(target=lambda: delivered.extend(source), daemon=True)
    reader.start()
    for _ in range(100):
        if capture.reads > 3:
            break
        time.sleep(0.01)
    source.close()
    assert not capture.released, "released while a read was inside it"
    capture.unblock.set()
    reader.join(5)
    assert not reader.is_alive() and capture.released and not capture.released_in_read
    assert len(delivered) <= 4 and source.stopped
    assert source.stats.end_reason != "truncated"
