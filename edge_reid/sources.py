"""Frame sources: video files, cameras, network streams, GStreamer pipelines and image folders.

:func:`open_source` turns what the user typed into a :class:`FrameSource`, an
iterator of :class:`Frame`. What a source does with bad input:

- A video file: a frame that cannot be decoded is skipped and counted
  (``stats.corrupt_frames``), and reading goes on past it (re-synchronising the file
  with a seek when reads do not move on by themselves); each frame keeps its number in
  the file. When the file's data ends before the frame count its header declares (a
  truncated copy, a recording still being written), the iteration ends there and
  ``stats.end_message`` says so (``ended at frame 399 of 795: file truncated?``). The
  corrupt-frame limit: :data:`MAX_CONSECUTIVE_CORRUPT` failed reads in a row end the
  file, as damaged beyond use when its last frames still read, with its own message.
- An image folder: images are read in name order with
  :func:`edge_reid.data.images.read_image`; an empty, truncated or undecodable
  image is skipped, counted, and named in ``stats.skipped_files``. Each
  :class:`Frame` carries its file name.
- A camera, stream or pipeline that stops delivering is reopened with
  exponential backoff for a bounded time, then the iteration ends cleanly.
- A camera, stream or pipeline is read continuously in a thread of its own and each
  frame asked for is the newest one read (:mod:`edge_reid.newest_frame`): a loop slower
  than the source drops the frames in between (``stats.dropped_frames``) instead of
  falling behind, and timestamps stay the times frames arrived. ``newest_only=False``
  delivers every frame in order, as does a stream that declares a frame count (a video
  file served over HTTP).

A file or folder can be played ``repeat`` times in a row (or forever), e.g.
for a soak test: frame indices keep counting and timestamps keep increasing
across passes.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Generator, Iterator

import cv2
import numpy as np

from edge_reid.closing import Closable
from edge_reid.data.images import IMAGE_SUFFIXES, SkippedFile, UnreadableImageError, list_images, read_image
from edge_reid.errors import SourceError
from edge_reid.motchallenge import SequenceInfo, read_sequence_info
from edge_reid.newest_frame import NewestFrameReader
from edge_reid.opencv_names import is_utf8_name, not_utf8_message, opencv_name

STREAM_PREFIXES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://")

#: Failed reads in a row after which a video file is given up (the corrupt-frame limit; 5 s of video
#: at 10 fps, 2 s at 25 fps): as damaged (``end_reason == "corrupt_limit"``) when one of its last
#: declared frames still reads, else as truncated (its data ends there).
MAX_CONSECUTIVE_CORRUPT = 50

#: Failed reads in a row before a video file is sought (re-synchronised) past them. OpenCV's FFmpeg
#: backend reads on past a frame it cannot decode, so a run of damaged frames fails one read each
#: and the frames after it read without a seek (a seek into a damaged run can land frames later);
#: damage to the container's structure fails every read until a seek. The whole run may be
#: :data:`MAX_CONSECUTIVE_CORRUPT` long, so a few seeks fit in it.
READS_BEFORE_RESYNC = 10

#: Frame rates a video file's container may declare and be believed: above it (a header written
#: with a placeholder such as 1000) the file is timed by its container's clock, or by ``fps`` when given.
MAX_DECLARED_FPS = 1000.0

#: Frames a file may end short of its header's count without being reported as truncated: containers
#: that store a duration instead of a count give an estimate (duration x fps) that rounding can put
#: a frame or two too high.
FRAME_COUNT_SLACK = 2


@dataclass(frozen=True)
class Frame:
    """One frame of a source.

    Attributes:
        index: 0-based frame number in the source: a video file's frame position, an image
            folder's position in its sorted listing (an undecodable frame or image keeps its
            number, so the numbers match the source's and its ground truth's); keeps counting
            across the passes of a repeated source. Live sources: among the frames delivered.
        timestamp_s: seconds since the start: ``position / fps`` for files whose frame rate is
            known (given, or declared by the container), the container's clock for the others,
            wall-clock since opening for live sources, ``index / fps`` for folders; keeps
            increasing across the passes of a repeated source.
        image: (H, W, 3) uint8 BGR.
        name: the image's file name for image-folder sources (``"img_0042.jpg"``), else None.
    """

    index: int
    timestamp_s: float
    image: np.ndarray
    name: str | None = None


@dataclass
class SourceStats:
    """What happened while reading a source.

    Attributes:
        frames: frames delivered.
        corrupt_frames: frames or images that could not be decoded and were skipped
            (every pass of a repeated source counts).
        skipped_files: image-folder sources: each skipped image once, with the reason.
        reconnects: successful reopenings of a live source after it stopped.
        gave_up: True when a live source stayed down past the reconnect timeout.
        declared_frames: frames the video file's header declares, or images listed
            in a folder (one pass); None for live sources and files that declare none.
        ended_at_frame: frame position (0-based, in the file) where a video file's
            data ended early, or where the corrupt-frame limit ended it; None when it
            ended normally.
        end_reason: why it ended early: ``"truncated"`` (no data past ``ended_at_frame``),
            ``"corrupt_limit"`` (``corrupt_limit`` undecodable frames in a row) or ``"gone"`` (with
            ``repeat``: the file could not be opened again, or a folder pass read no image); None
            when it ended normally.
        corrupt_limit: undecodable frames in a row that end a video file
            (:data:`MAX_CONSECUTIVE_CORRUPT` unless the source was given another).
        passes: complete passes over a file or folder (see ``repeat`` in :func:`open_source`).
        dropped_frames: live sources read for the newest frame: frames read but replaced by a
            newer one before the loop asked for a frame (the loop was slower than the source).
    """

    frames: int = 0
    corrupt_frames: int = 0
    skipped_files: list[SkippedFile] = field(default_factory=list)
    reconnects: int = 0
    gave_up: bool = False
    declared_frames: int | None = None
    ended_at_frame: int | None = None
    end_reason: str | None = None
    corrupt_limit: int = MAX_CONSECUTIVE_CORRUPT
    passes: int = 0
    dropped_frames: int = 0

    @property
    def end_message(self) -> str | None:
        """One line on an early end (``"ended at frame 399 of 795: file truncated?"``), else None."""
        if self.end_reason == "truncated":
            return f"ended at frame {self.ended_at_frame} of {self.declared_frames}: file truncated?"
        if self.end_reason == "corrupt_limit":
            return (
                f"ended at frame {self.ended_at_frame} of {self.declared_frames}: {self.corrupt_limit} "
                "undecodable frames in a row (the corrupt-frame limit): file damaged?"
            )
        if self.end_reason == "gone":
            return f"ended after pass {self.passes}: the source could not be read again (moved or deleted?)"
        return None

    def to_dict(self) -> dict:
        """JSON-ready form (skipped files as ``{"file": name, "reason": why}``)."""
        return {
            "frames": self.frames,
            "corrupt_frames": self.corrupt_frames,
            "skipped_files": [{"file": s.path.name, "reason": s.reason} for s in self.skipped_files],
            "reconnects": self.reconnects,
            "gave_up": self.gave_up,
            "declared_frames": self.declared_frames,
            "ended_at_frame": self.ended_at_frame,
            "end_reason": self.end_reason,
            "end_message": self.end_message,
            "corrupt_limit": self.corrupt_limit,
            "passes": self.passes,
            "dropped_frames": self.dropped_frames,
        }


def classify_source(source: str) -> str:
    """Kind of a source string: ``"camera"``, ``"stream"``, ``"gstreamer"``, ``"folder"`` or ``"file"``.

    An existing folder or file is always a folder or file source, whatever its name
    (``clip!1.avi``, ``2024``). Otherwise: camera: a device index (``"0"``) or a
    ``/dev/video*`` path. Stream: an rtsp/rtmp/http(s)/udp/tcp URL. GStreamer: a
    pipeline string containing ``!`` (e.g. ``nvarguscamerasrc ! ... ! appsink`` for
    Jetson CSI cameras). Anything else is a (missing) file.
    """
    text = str(source).strip()
    try:
        path = Path(text)
        if path.is_dir():
            return "folder"
        if path.is_file():
            return "file"
    except (OSError, ValueError):  # not a usable path: a name too long (a long pipeline), a NUL byte
        pass
    if text.isdigit() or text.startswith("/dev/video"):
        return "camera"
    if text.lower().startswith(STREAM_PREFIXES):
        return "stream"
    if "!" in text:
        return "gstreamer"
    return "file"


def _default_capture(kind: str, source: str):
    source = opencv_name(source)  # a UTF-8 name held as surrogates (ASCII locale) crashes OpenCV as it is
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


#: Frame rate of an image folder with nothing that says otherwise: a folder of snapshots, one a second.
DEFAULT_FOLDER_FPS = 1.0


def sequence_info_file(folder: str | Path) -> Path | None:
    """The ``seqinfo.ini`` an image folder is timed by: in the folder itself, or in its parent when the
    folder is a MOTChallenge sequence's ``img1/``; None when neither holds one."""
    folder = Path(folder)
    return next((candidate / "seqinfo.ini" for candidate in (folder, folder.parent) if (candidate / "seqinfo.ini").is_file()), None)


def _sequence_of(folder: Path) -> SequenceInfo | None:
    """The MOTChallenge sequence an image folder belongs to (:func:`sequence_info_file`), or None."""
    info = sequence_info_file(folder)
    return read_sequence_info(info.parent) if info is not None else None


def _frame_rate(sequence: SequenceInfo | None, fps: float | None) -> tuple[float, str]:
    """The frame rate to time an image folder's frames by, and where it came from: ``fps`` when given
    (``"--fps"``); else the ``frameRate`` of its MOTChallenge ``seqinfo.ini`` (``"seqinfo.ini"``); else
    :data:`DEFAULT_FOLDER_FPS` (``"default"``). The tracker keeps lost tracks and refreshes appearance
    in seconds, so a sequence of video frames needs its real rate.

    Raises:
        ValueError: ``fps`` not a positive finite number.
    """
    if fps is not None:
        if not 0.0 < float(fps) < float("inf"):
            raise ValueError(f"fps must be a positive number of frames per second, got {fps}")
        return float(fps), "--fps"
    if sequence is not None and 0.0 < sequence.frame_rate < 1000.0:
        return sequence.frame_rate, "seqinfo.ini"
    return DEFAULT_FOLDER_FPS, "default"


class FrameSource(Closable):
    """An iterator of :class:`Frame` over one source; see :func:`open_source`.

    Attributes:
        kind: ``"file"``, ``"camera"``, ``"stream"``, ``"gstreamer"`` or ``"folder"``.
        name: the source as given.
        total_frames: frames to expect over all passes when known (files that
            declare a count, folders), else None (live sources, ``repeat=0``).
        fps: frames per second the frames are timed by: a folder's (the ``fps`` given, else its
            MOTChallenge ``seqinfo.ini``'s ``frameRate``, else :data:`DEFAULT_FOLDER_FPS`); a video
            file's (the ``fps`` given, else its container's when plausible, under
            :data:`MAX_DECLARED_FPS`); a live source's; or None (unknown: a file is then timed by
            its container's clock).
        declared_fps: the frame rate a video file's container declares (0 when it declares none).
        fps_source: where ``fps`` came from when not from the source itself: ``"--fps"`` (given),
            ``"seqinfo.ini"`` or ``"default"`` (folders); None otherwise.
        repeat: passes over a file or folder (0: until stopped).
        newest_only: live sources: read continuously, each frame asked for the newest one
            (:mod:`edge_reid.newest_frame`); False: every frame in order.
        stats: :class:`SourceStats`, updated while iterating.

    A MOTChallenge sequence folder (``seqinfo.ini`` and ``img1/``) is read from its image folder.

    Raises:
        SourceError: the source cannot be opened, a folder holds no image file,
            or ``repeat`` is asked of a live source.
        ValueError: ``repeat`` < 0; ``fps`` not positive, or given for a live source.
        DataError: a folder's MOTChallenge ``seqinfo.ini`` is not valid.
    """

    _consumed = False  # a class default too: subclasses that skip __init__ (frames held in memory) start unread

    def __init__(
        self,
        source: str,
        kind: str,
        reconnect_timeout_s: float = 30.0,
        capture_factory: Callable[[str, str], object] | None = None,
        max_consecutive_corrupt: int = MAX_CONSECUTIVE_CORRUPT,
        repeat: int = 1,
        newest_only: bool = True,
        fps: float | None = None,
    ) -> None:
        if fps is not None:
            if kind in ("camera", "stream", "gstreamer"):
                raise ValueError(f"fps sets the frame rate of a video file or image folder; a {kind} is timed as it delivers")
            if isinstance(fps, bool) or not 0.0 < float(fps) < float("inf"):
                raise ValueError(f"fps must be a positive number of frames per second, got {fps}")
        self.name = str(source)
        self.newest_only = bool(newest_only)
        self._capture_lock = threading.Lock()
        self._reading_thread: threading.Thread | None = None  # set while a reading thread may be inside a read
        self._release_pending = False
        self.kind = kind
        self.reconnect_timeout_s = float(reconnect_timeout_s)
        self.max_consecutive_corrupt = int(max_consecutive_corrupt)
        self.repeat = int(repeat)
        if self.repeat < 0:
            raise ValueError(f"repeat must be >= 0 (0: forever), got {repeat}")
        if self.repeat != 1 and self.live:
            raise SourceError(f"repeat applies to video files and image folders, not to a {kind} ({self.name})")
        self.stats = SourceStats(corrupt_limit=self.max_consecutive_corrupt)
        self._capture_factory = capture_factory or _default_capture
        self._stop = False
        self._consumed = False
        self._capture = None
        self.fps: float | None = None
        self.declared_fps = 0.0
        #: the container's frame rate where plausible, for positions from its clock (None: unknown)
        self._container_fps: float | None = None
        self.fps_source: str | None = None
        if kind == "folder":
            folder = Path(source)
            self._files = list_images(folder)
            sequence = _sequence_of(folder)
            if sequence is not None and sequence.folder == folder and not self._files:  # a sequence folder: its frames
                folder = folder / sequence.image_dir
                self._files = list_images(folder) if folder.is_dir() else []
            if not self._files:
                raise SourceError(f"image folder has no images ({', '.join(IMAGE_SUFFIXES)}): {folder}")
            self.stats.declared_frames = len(self._files)
            self.fps, self.fps_source = _frame_rate(sequence, fps)
        else:
            self._capture = self._open()
            if self._capture is None:
                raise SourceError(self._open_failure_message())
            self.declared_fps = float(self._capture.get(cv2.CAP_PROP_FPS) or 0.0)
            self._container_fps = self.declared_fps if 0.0 < self.declared_fps < MAX_DECLARED_FPS else None
            self.fps = self._container_fps
            if fps is not None:
                self.fps, self.fps_source = float(fps), "--fps"
            if kind == "file":
                count = int(self._capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
                self.stats.declared_frames = count if count > 0 else None
        declared = self.stats.declared_frames
        self.total_frames: int | None = declared * self.repeat if declared is not None and self.repeat else None

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

    @property
    def stopped(self) -> bool:
        """True once :meth:`stop` was called."""
        return self._stop

    def close(self) -> None:
        """Release the capture device or file.

        From another thread while this source is being read (a file, a folder or a camera), it
        stops the reading (as :meth:`stop`) and the reading thread releases the capture when its
        read returns, never under it (a stalled stream's read can take seconds)."""
        with self._capture_lock:
            reading = self._reading_thread
            if reading is not None and threading.current_thread() is not reading and reading.is_alive():
                self._stop = True
                self._release_pending = True
                return
            if self._capture is not None:
                self._capture.release()
                self._capture = None

    @property
    def consumed(self) -> bool:
        """True once iteration has started: a source is read once (open it again to read it again)."""
        return self._consumed

    def check_unread(self) -> None:
        """Raise ValueError when the source was iterated before (:attr:`consumed`), naming it."""
        if self._consumed:
            raise ValueError(f"{self.name} was read before: a FrameSource is read once; open_source() it again")

    def __iter__(self) -> Iterator[Frame]:
        """The frames, once.

        Raises:
            ValueError: the source was iterated before (its frames were taken, its capture released).
        """
        self.check_unread()
        self._consumed = True
        return self._frames()

    def _frames(self) -> Iterator[Frame]:
        reader = threading.current_thread()
        with self._capture_lock:
            self._reading_thread = reader  # close() from elsewhere leaves the release to it
        try:
            if self.live:
                yield from self._iter_live()
            else:
                yield from self._iter_passes()
        finally:  # this iteration reads no more (this may run in another thread, when a dropped iterator is collected)
            with self._capture_lock:
                if self._reading_thread is reader:
                    self._reading_thread = None
            self.close()

    def _iter_passes(self) -> Iterator[Frame]:
        """Pass after pass over a file or folder; each pass starts where the last one's clock and
        frame numbers ended."""
        offset_s, first_index = 0.0, 0
        while not self._stop:
            delivered_before = self.stats.frames
            if self.kind == "folder":
                duration_s, length = yield from self._folder_pass(first_index, first=self.stats.passes == 0)
            else:
                if self._capture is None:
                    self._capture = self._open()
                    if self._capture is None:  # the file went away between passes
                        self.stats.end_reason = self.stats.end_reason or "gone"
                        return
                duration_s, length = yield from self._file_pass(offset_s, first_index)
                self.close()
            if self._stop:
                return
            self.stats.passes += 1
            offset_s += duration_s
            first_index += length
            if self.stats.frames == delivered_before:  # a pass gave nothing: nothing to repeat
                if self.stats.passes > 1:  # the first pass read frames: the files went away since
                    self.stats.passes -= 1  # the empty pass is not counted as one
                    self.stats.end_reason = self.stats.end_reason or "gone"
                return
            if self.repeat and self.stats.passes >= self.repeat:
                return

    def _folder_pass(self, first_index: int, first: bool) -> Generator[Frame, None, tuple[float, int]]:
        """One pass over the folder's images, numbered by their place in the listing from
        ``first_index``; returns (0.0, images listed): a folder's clock is the frame number / fps."""
        for position, path in enumerate(self._files):
            if self._stop:
                break
            try:
                image = read_image(path)
            except UnreadableImageError as exc:
                self.stats.corrupt_frames += 1
                if first:
                    self.stats.skipped_files.append(exc.skipped())
                continue
            index = first_index + position
            self.stats.frames += 1
            yield Frame(index, index / self.fps, image, path.name)
        return 0.0, len(self._files)

    def _file_pass(self, offset_s: float, first_index: int) -> Generator[Frame, None, tuple[float, int]]:
        """One pass over a video file, frames numbered from ``first_index``; returns (its duration in
        seconds, frames it spanned), for the next pass's clock and numbers.

        A frame's number is its position in the file: counted while every read succeeds (a variable
        frame rate's clock would skip numbers where an interval is longer than the mean); after
        failed reads, from the container's clock (OpenCV's ``CAP_PROP_POS_MSEC``, the decoded frame's
        presentation time): the intervals since the last good frame, at the last pace read
        (:func:`frame_number`), where that moves on, else counted
        (``CAP_PROP_POS_FRAMES`` counts the frames decoded, so it falls behind after a damaged
        one). A damaged frame fails one read, and OpenCV's FFmpeg backend
        then reads on from the next one; damage to the file's structure can stop reading there
        until a seek re-synchronises it, so after every :data:`READS_BEFORE_RESYNC` failures in a
        row the file is sought to the first failed frame, then one frame further each time.
        :data:`MAX_CONSECUTIVE_CORRUPT` failures in a row end the file: as damaged when one of its
        last frames still reads, else as cut short (truncated)."""
        capture = self._capture
        declared = self.stats.declared_frames
        failures = 0  # failed reads since the last good frame
        last = -1  # the last good frame's position in the file
        last_ms = -1.0  # its presentation time (ms), -1 where the container gives none
        interval_ms: float | None = None  # the last interval between two frames read one after the other
        expected = 0  # the position the next read should give
        last_s = 0.0
        delivered = 0
        while not self._stop:
            ok, image = capture.read()
            position, time_ms = -1, -1.0
            if ok and image is not None and image.size:
                time_ms = float(capture.get(cv2.CAP_PROP_POS_MSEC) or 0.0) if self._container_fps else -1.0
                # Frames are counted; the clock places a frame only after failed reads (how many were
                # lost, or a seek's landing): a variable frame rate's longer intervals are no lost frames.
                position = (frame_number(time_ms, self._container_fps, last, last_ms, expected, interval_ms)
                            if failures else expected)
            if position > last:  # a frame after the last one (not one a seek went back to)
                self.stats.corrupt_frames += min(failures, position - last - 1)  # frames lost, not re-sync attempts
                if not failures and position == last + 1 and last_ms >= 0 and time_ms > last_ms:
                    interval_ms = time_ms - last_ms  # the local pace, read frame after frame
                failures, last, last_ms, expected = 0, position, time_ms, position + 1
                if image.ndim == 2:
                    image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
                if self.fps:
                    last_s = position / self.fps
                else:
                    last_s = float(capture.get(cv2.CAP_PROP_POS_MSEC) or 0.0) / 1000.0
                self.stats.frames += 1
                delivered += 1
                yield Frame(first_index + position, offset_s + last_s, image)
                continue
            if declared is None or last + 1 >= declared:
                break  # the end of the file
            failures += 1
            expected += 1
            resync = failures % READS_BEFORE_RESYNC == 0
            target = last + failures // READS_BEFORE_RESYNC
            if failures >= self.stats.corrupt_limit or (resync and target >= declared):
                self._end_of_readable_data(capture, declared, last, failures)
                break
            if resync:  # reading does not move on by itself: seek, a frame further each time
                capture.set(cv2.CAP_PROP_POS_FRAMES, target)
                expected = target
        if self.fps:
            interval_s = 1.0 / self.fps
        else:  # no frame rate: the pass's mean frame interval, so the next pass's clock still moves on
            interval_s = last_s / (delivered - 1) if delivered > 1 and last_s > 0 else 1e-3
        return last_s + interval_s, last + 1

    def _end_of_readable_data(self, capture, declared: int, last: int, failures: int) -> None:
        """Record why reading stopped short of the declared end after ``failures`` failed reads:
        damaged (one of the last frames still reads) or truncated (none does; not reported
        within :data:`FRAME_COUNT_SLACK` of the end, where a count may be estimated a little high)."""
        if self._reads_near_end(capture, declared, last):
            self.stats.corrupt_frames += failures
            self._ended_early(last + 1, "corrupt_limit")
        elif declared - (last + 1) > FRAME_COUNT_SLACK:
            self._ended_early(last + 1, "truncated")

    @staticmethod
    def _reads_near_end(capture, declared: int, last: int) -> bool:
        """Whether one of the file's last few declared frames after ``last`` can be read (damage
        in the middle), or none can (the data ends: truncated)."""
        for position in range(declared - 1, max(declared - 2 - FRAME_COUNT_SLACK, last), -1):
            capture.set(cv2.CAP_PROP_POS_FRAMES, position)
            ok, image = capture.read()
            if ok and image is not None and image.size:
                return True
        return False

    def _ended_early(self, position: int, reason: str) -> None:
        if self.stats.end_reason is None:  # the first pass that ended early is the one reported
            self.stats.ended_at_frame, self.stats.end_reason = position, reason

    def _reconnect(self, deadline: float, delay: float) -> float | None:
        """Reopen a dropped live source, waiting ``delay`` s first and doubling it (to 5 s) after each
        failed open, until ``deadline`` (``time.monotonic()``); returns the next wait, or None when
        the source could not be reopened in time (or a stop was asked)."""
        self.close()
        while not self._stop and time.monotonic() < deadline:
            time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
            self._capture = self._open()
            delay = min(delay * 2.0, 5.0)
            if self._capture is not None:
                self.stats.reconnects += 1
                return delay
        self.stats.gave_up = not self._stop
        return None

    def _served_frame_count(self) -> float:
        """The frame count a stream declares (> 0: a video file served over the network), else 0."""
        if self.kind != "stream" or self._capture is None:
            return 0.0
        return float(self._capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0.0)

    def _deliver(self, timestamp_s: float, image: np.ndarray) -> Frame:
        index = self.stats.frames
        self.stats.frames += 1
        return Frame(index, timestamp_s, image)

    def _iter_live(self) -> Iterator[Frame]:
        """Every frame in order, or (``newest_only``) the newest frame read each time one is asked for.

        A stream that declares a frame count is a video file served over the network, read as fast
        as it downloads: every frame in order, as for a local file."""
        if not self.newest_only or self._served_frame_count() > 0:
            for timestamp_s, image in self._read_live():
                yield self._deliver(timestamp_s, image)
            return
        reader = NewestFrameReader(self._read_live_then_release, lambda: self._stop)
        try:
            for timestamp_s, image in reader:
                self.stats.dropped_frames = reader.dropped
                yield self._deliver(timestamp_s, image)
            self.stats.dropped_frames = reader.dropped
        finally:
            self._stop = True
            reader.join(2.0)  # a read blocked in OpenCV cannot be interrupted: close() then leaves the release to it

    def _read_live_then_release(self) -> Iterator[tuple[float, np.ndarray]]:
        """:meth:`_read_live` in the newest-frame reader's thread, which is then the reading thread."""
        with self._capture_lock:
            iterating, self._reading_thread = self._reading_thread, threading.current_thread()
        try:
            yield from self._read_live()
        finally:
            with self._capture_lock:
                self._reading_thread = None if iterating is None or self._release_pending else iterating
                if self._release_pending and self._capture is not None:
                    self._capture.release()
                    self._capture = None

    def _read_live(self) -> Iterator[tuple[float, np.ndarray]]:
        """``(timestamp_s, image)`` of every frame read, until the source has delivered none for
        ``reconnect_timeout_s`` (however often it could be reopened in that time: a stream that
        accepts the connection but sends nothing counts as down), or until a stop. The backoff
        restarts with each frame that arrives."""
        started = time.monotonic()
        down_since: float | None = None
        delay = 0.5
        since_open = 0
        while not self._stop and self._capture is not None:
            ok, image = self._capture.read()
            if ok and image is not None and image.size:
                if image.ndim == 2:
                    image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
                down_since, delay = None, 0.5
                since_open += 1
                yield time.monotonic() - started, image
                continue
            declared = self._served_frame_count()
            if declared > 0 and since_open >= declared - FRAME_COUNT_SLACK:
                return  # a video file served over HTTP reached its end: reopening would play it again
            since_open = 0
            if down_since is None:
                down_since = time.monotonic()
            next_delay = self._reconnect(down_since + self.reconnect_timeout_s, delay)
            if next_delay is None:
                return
            delay = next_delay


def frame_number(
    time_ms: float, fps: float | None, last: int, last_ms: float, expected: int, interval_ms: float | None = None
) -> int:
    """The position in a video file of the frame just read after failed reads, or -1 when it is not after the last one.

    Args:
        time_ms: the frame's presentation time in ms (OpenCV's ``CAP_PROP_POS_MSEC``); < 0 when
            the container gives none.
        fps: the container's frame rate (None: unknown, so frames are counted).
        last: the last frame's position (-1 before the first); last_ms its time (< 0: none).
        expected: the position the read was expected to give (frames and failed reads counted).
        interval_ms: the last interval between two frames read one after the other, ms (None:
            unknown, 1000 / ``fps``): a variable frame rate's local pace, not the file's mean.

    Returns:
        ``last`` plus the frame intervals since the last frame's time, at least 1, where there
        is a time and an earlier frame with one (from the clock alone, ``round(time_ms * fps /
        1000)``, where there is none); -1 when the time did not move on (a seek that went back
        to an earlier frame); else (no clock, or one that stays at 0) ``expected``.
    """
    if fps is None or time_ms < 0 or (time_ms == 0 and last_ms <= 0):
        return expected  # no clock, or none that has moved yet (some containers report 0 throughout)
    if time_ms <= last_ms:
        return -1
    if last < 0 or last_ms < 0:  # no earlier frame with a time: the clock alone
        return max(int(round(time_ms * fps / 1000.0)), last + 1)
    step_ms = interval_ms if interval_ms is not None and interval_ms > 0 else 1000.0 / fps
    return last + max(1, int(round((time_ms - last_ms) / step_ms)))


def open_source(
    source: str | os.PathLike | int, reconnect_timeout_s: float = 30.0, repeat: int = 1, newest_only: bool = True,
    fps: float | None = None,
) -> FrameSource:
    """Open a frame source from what a user typed.

    Args:
        source: video file path, camera index or ``/dev/videoN``, stream URL,
            GStreamer pipeline string, or a folder of images (sorted by name); a
            string naming an existing file or folder is always that file or folder
            (:func:`classify_source`), an int always a camera index.
        reconnect_timeout_s: how long a dropped live source is retried, seconds.
        repeat: passes over a video file or image folder, one after the other
            (0: until stopped); frame indices and timestamps keep increasing.
        newest_only: a camera, stream or pipeline is read continuously and each frame asked
            for is the newest read; the ones in between are dropped (``stats.dropped_frames``).
            False: every frame in order, however far behind the loop falls. Files and
            folders always give every frame.
        fps: frames per second to time the frames by (the tracker counts in seconds): an image
            folder's (None: its MOTChallenge ``seqinfo.ini``'s, beside the images or in the folder
            above, else 1), or a video file's instead of the rate its header declares (None: the
            header's, for a header that is wrong). Not for live sources.

    Raises:
        SourceError: the file or folder does not exist, it cannot be opened, a video file's,
            camera's, URL's or pipeline's name is not valid UTF-8 (OpenCV would crash on it), or
            ``repeat`` is asked of a camera, stream or pipeline.
        ValueError: ``repeat`` < 0; a bad ``fps`` (see :class:`FrameSource`).
        DataError: an image folder's MOTChallenge ``seqinfo.ini`` is not valid.
        TypeError: ``source`` is neither a string, a path nor an int (frames already in memory go
            to ``Pipeline.process``, one at a time).
    """
    if isinstance(source, bool) or not isinstance(source, (str, int, os.PathLike)):
        raise TypeError(
            f"a source is a file or folder path, a URL, a GStreamer pipeline or a camera index, not a {type(source).__name__}; "
            "for frames already in memory call Pipeline.process(frame) on each"
        )
    text = str(source).strip()
    kind = "camera" if isinstance(source, int) else classify_source(text)
    if kind != "folder" and not is_utf8_name(text):  # a folder's images are read as bytes, never by name
        raise SourceError(not_utf8_message(text, "source"))
    if kind == "file" and not Path(text).is_file():
        raise SourceError(f"source not found: {text}; give a video file, an image folder, a camera (0, /dev/video0), a URL or a GStreamer pipeline")
    if kind == "camera" and text.startswith("/dev/") and not Path(text).exists():
        raise SourceError(f"camera not found: {text}; list cameras with: ls /dev/video*")
    return FrameSource(
        text, kind, reconnect_timeout_s=reconnect_timeout_s, repeat=repeat, newest_only=newest_only, fps=fps
    )
