"""Frame sources: video files, cameras, network streams, GStreamer pipelines and image folders.

:func:`open_source` turns what the user typed into a :class:`FrameSource`, an
iterator of :class:`Frame`. Corrupt frames are skipped and counted; a live
source (camera, stream, pipeline) that stops delivering is reopened with
exponential backoff for a bounded time, then the iteration ends cleanly.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import cv2
import numpy as np

from edge_reid.errors import SourceError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
STREAM_PREFIXES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://")


@dataclass(frozen=True)
class Frame:
    """One frame of a source.

    Attributes:
        index: 0-based index among the frames delivered (corrupt ones not counted).
        timestamp_s: seconds since the start: from the container's clock for
            files, wall-clock since opening for live sources, ``index / fps`` for folders.
        image: (H, W, 3) uint8 BGR.
    """

    index: int
    timestamp_s: float
    image: np.ndarray


@dataclass
class SourceStats:
    """What happened while reading a source.

    Attributes:
        frames: frames delivered.
        corrupt_frames: frames or images that could not be decoded and were skipped.
        reconnects: successful reopenings of a live source after it stopped.
        gave_up: True when a live source stayed down past the reconnect timeout.
    """

    frames: int = 0
    corrupt_frames: int = 0
    reconnects: int = 0
    gave_up: bool = False
    skipped_files: list[str] = field(default_factory=list)


def classify_source(source: str) -> str:
    """Kind of a source string: ``"camera"``, ``"stream"``, ``"gstreamer"``, ``"folder"`` or ``"file"``.

    Camera: a device index (``"0"``) or a ``/dev/video*`` path. Stream: an
    rtsp/rtmp/http(s)/udp/tcp URL. GStreamer: a pipeline string containing ``!``
    (e.g. ``nvarguscamerasrc ! ... ! appsink`` for Jetson CSI cameras).
    """
    text = str(source).strip()
    if text.isdigit() or text.startswith("/dev/video"):
        return "camera"
    if text.lower().startswith(STREAM_PREFIXES):
        return "stream"
    if "!" in text:
        return "gstreamer"
    if Path(text).is_dir():
        return "folder"
    return "file"


def _default_capture(kind: str, source: str):
    if kind == "camera":
        return cv2.VideoCapture(int(source) if source.isdigit() else source)
    if kind == "gstreamer":
        return cv2.VideoCapture(source, cv2.CAP_GSTREAMER)
    return cv2.VideoCapture(source)


def opencv_has_gstreamer() -> bool:
    """True when this OpenCV build was compiled with GStreamer (needed for CSI cameras)."""
    for line in cv2.getBuildInformation().splitlines():
        if line.strip().startswith("GStreamer:"):
            return "YES" in line
    return False


class FrameSource:
    """An iterator of :class:`Frame` over one source; see :func:`open_source`.

    Attributes:
        kind: ``"file"``, ``"camera"``, ``"stream"``, ``"gstreamer"`` or ``"folder"``.
        name: the source as given.
        total_frames: frame count when known (files, folders), else None.
        fps: frames per second from the container, or None.
        stats: :class:`SourceStats`, updated while iterating.
    """

    def __init__(
        self,
        source: str,
        kind: str,
        reconnect_timeout_s: float = 30.0,
        folder_fps: float = 1.0,
        capture_factory: Callable[[str, str], object] | None = None,
        max_consecutive_corrupt: int = 50,
    ) -> None:
        self.name = str(source)
        self.kind = kind
        self.reconnect_timeout_s = float(reconnect_timeout_s)
        self.max_consecutive_corrupt = int(max_consecutive_corrupt)
        self.stats = SourceStats()
        self._capture_factory = capture_factory or _default_capture
        self._stop = False
        self._capture = None
        self.fps: float | None = None
        self.total_frames: int | None = None
        if kind == "folder":
            self._files = sorted(p for p in Path(source).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if not self._files:
                raise SourceError(f"image folder has no images ({', '.join(sorted(IMAGE_SUFFIXES))}): {source}")
            self.total_frames = len(self._files)
            self.fps = float(folder_fps)
        else:
            self._capture = self._open()
            if self._capture is None:
                raise SourceError(self._open_failure_message())
            fps = float(self._capture.get(cv2.CAP_PROP_FPS) or 0.0)
            self.fps = fps if 0.0 < fps < 1000.0 else None
            if kind == "file":
                count = int(self._capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
                self.total_frames = count if count > 0 else None

    @property
    def live(self) -> bool:
        """True for cameras, streams and pipelines (reconnected when they drop)."""
        return self.kind in ("camera", "stream", "gstreamer")

    def _open(self):
        capture = self._capture_factory(self.kind, self.name)
        if capture is not None and capture.isOpened():
            return capture
        if capture is not None:
            capture.release()
        return None

    def _open_failure_message(self) -> str:
        if self.kind == "gstreamer" and not opencv_has_gstreamer():
            return (
                f"cannot open GStreamer pipeline {self.name!r}: this OpenCV has no GStreamer support "
                "(pip's opencv-python is built without it); on a Jetson use the system OpenCV (see install_jetson.sh)"
            )
        if self.kind == "camera":
            return f"cannot open camera {self.name}: is it connected, and readable by this user (group 'video')?"
        if self.kind == "stream":
            return f"cannot open stream {self.name}: check the URL, network and credentials"
        return f"cannot decode video {self.name}: not a video OpenCV can read (FFmpeg backend)"

    def stop(self) -> None:
        """Make the iteration end before the next frame (safe from a signal handler)."""
        self._stop = True

    def close(self) -> None:
        """Release the capture device or file."""
        if self._capture is not None:
            self._capture.release()
            self._capture = None

    def __iter__(self) -> Iterator[Frame]:
        try:
            yield from (self._iter_folder() if self.kind == "folder" else self._iter_capture())
        finally:
            self.close()

    def _iter_folder(self) -> Iterator[Frame]:
        for path in self._files:
            if self._stop:
                return
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if image is None:
                self.stats.corrupt_frames += 1
                self.stats.skipped_files.append(str(path))
                continue
            index = self.stats.frames
            self.stats.frames += 1
            yield Frame(index, index / self.fps, image)

    def _reconnect(self) -> bool:
        """Reopen a dropped live source with backoff 0.5, 1, 2, 4, 5, 5 ... s until the timeout."""
        self.close()
        deadline = time.monotonic() + self.reconnect_timeout_s
        delay = 0.5
        while not self._stop and time.monotonic() < deadline:
            time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
            self._capture = self._open()
            if self._capture is not None:
                self.stats.reconnects += 1
                return True
            delay = min(delay * 2.0, 5.0)
        self.stats.gave_up = not self._stop
        return False

    def _iter_capture(self) -> Iterator[Frame]:
        started = time.monotonic()
        consecutive_failures = 0
        while not self._stop and self._capture is not None:
            ok, image = self._capture.read()
            if ok and image is not None and image.size:
                consecutive_failures = 0
                if image.ndim == 2:
                    image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
                index = self.stats.frames
                self.stats.frames += 1
                if self.live:
                    timestamp = time.monotonic() - started
                else:
                    position_ms = float(self._capture.get(cv2.CAP_PROP_POS_MSEC) or 0.0)
                    timestamp = index / self.fps if self.fps else position_ms / 1000.0
                yield Frame(index, timestamp, image)
                continue
            if self.live:
                if not self._reconnect():
                    return
                continue
            # A file: a failed read before the known end is a corrupt frame; skip it.
            position = int(self._capture.get(cv2.CAP_PROP_POS_FRAMES) or 0)
            if self.total_frames is None or position >= self.total_frames:
                return
            self.stats.corrupt_frames += 1
            consecutive_failures += 1
            if consecutive_failures >= self.max_consecutive_corrupt:
                return
            self._capture.set(cv2.CAP_PROP_POS_FRAMES, position + 1)


def open_source(source: str | int, reconnect_timeout_s: float = 30.0, folder_fps: float = 1.0) -> FrameSource:
    """Open a frame source from what a user typed.

    Args:
        source: video file path, camera index or ``/dev/videoN``, stream URL,
            GStreamer pipeline string, or a folder of images (sorted by name).
        reconnect_timeout_s: how long a dropped live source is retried, seconds.
        folder_fps: frame rate assigned to an image folder (for timestamps).

    Raises:
        SourceError: the file or folder does not exist, or it cannot be opened.
    """
    text = str(source).strip()
    kind = classify_source(text)
    if kind == "file" and not Path(text).is_file():
        raise SourceError(f"source not found: {text}; give a video file, an image folder, a camera (0, /dev/video0), a URL or a GStreamer pipeline")
    if kind == "camera" and text.startswith("/dev/") and not Path(text).exists():
        raise SourceError(f"camera not found: {text}; list cameras with: ls /dev/video*")
    return FrameSource(text, kind, reconnect_timeout_s=reconnect_timeout_s, folder_fps=folder_fps)
