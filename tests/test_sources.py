
import cv2
import numpy as np
import pytest

from edge_reid.errors import SourceError
from edge_reid.sources import FrameSource, classify_source, open_source


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
    source = open_source(str(tmp_path), folder_fps=2.0)
    frames = list(source)
    assert len(frames) == 3 and source.stats.corrupt_frames == 1
    assert source.stats.skipped_files == [str(tmp_path / "frame_001b.jpg")]
    assert [f.timestamp_s for f in frames] == [0.0, 0.5, 1.0]


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

    source = FrameSource("/dev/video0", "camera", reconnect_timeout_s=2.0, capture_factory=factory)
    delivered = list(source)
    assert len(delivered) == 5 and [f.index for f in delivered] == list(range(5))
    assert source.stats.reconnects == 1 and source.stats.gave_up
    assert len(opened) >= 4  # 1 open + failed retry + successful retry + retries until the timeout
