"""Where results go: a JSON-lines event log, MOTChallenge rows, an annotated video, a window.

Every file sink checks its path before any work starts
(:func:`edge_reid.output_paths.check_writable`)
and is flushed and closed on exit, Ctrl-C included. A write that fails (disk full,
I/O error, a video writer that wrote nothing) raises
:class:`~edge_reid.errors.OutputWriteError` naming the file and the cause; what was
written before stays valid (the text outputs hold whole lines of whole frames).
"""

from __future__ import annotations

import contextlib
import functools
import json
import numbers
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from edge_reid.closing import Closable
from edge_reid.errors import OutputPathError, OutputWriteError
from edge_reid.line_output import LineOutput
from edge_reid.mot_writer import MotWriter
from edge_reid.opencv_names import is_utf8_name, not_utf8_message, opencv_name
from edge_reid.output_paths import check_writable, is_standard_output
from edge_reid.results import FrameResult, Person

if TYPE_CHECKING:
    import cv2

# OpenCV (and edge_reid.sources, which needs it) is imported by the functions that draw, show or
# write video, not here: EventsSink and MotSink users never load it.


def identity_color(identity_id: int) -> tuple[int, int, int]:
    """A stable, well-separated BGR colour for an identity (golden-ratio hue steps)."""
    import cv2

    hue = int((identity_id * 0.618033988749895 % 1.0) * 180)
    hsv = np.array([[[hue, 200, 255]]], np.uint8)
    b, g, r = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0]
    return int(b), int(g), int(r)


def person_label(person: Person) -> str:
    """The text drawn for a person: ``#identity name`` (``track N`` while it has no identity)."""
    if person.identity_id < 1:
        return f"track {person.track_id}"
    return f"#{person.identity_id}" + (f" {person.name}" if person.name else "")


def place_labels(boxes: list[tuple[int, int, int, int]], sizes: list[tuple[int, int]], width: int, height: int) -> list[tuple[int, int]]:
    """Top-left corners for labels that do not cover each other.

    Each label goes just above its box if that spot is free, else just below it, else
    as close above as it fits without touching a label already placed (labels are
    placed in order; all stay inside the image).

    Args:
        boxes: per person, x1, y1, x2, y2 pixels.
        sizes: per label, (width, height) pixels.
        width: image width, pixels.
        height: image height, pixels.

    Returns:
        Per label, its (x, y) top-left corner.
    """
    placed: list[tuple[int, int, int, int]] = []
    corners = []

    def free(x: int, y: int, w: int, h: int) -> bool:
        return all(x + w <= a or a + c <= x or y + h <= b or b + d <= y for a, b, c, d in placed)

    for (x1, y1, x2, y2), (w, h) in zip(boxes, sizes):
        x = int(min(max(0, x1), max(0, width - w)))
        tries = [y1 - h, y2] + [y1 - h - step * h for step in range(1, 8)] + [y2 + step * h for step in range(1, 8)]
        spot = next((y for y in tries if 0 <= y <= height - h and free(x, y, w, h)), None)
        if spot is None:
            spot = int(min(max(0, y1 - h), max(0, height - h)))
        placed.append((x, spot, w, h))
        corners.append((x, spot))
    return corners


def draw_result(image: np.ndarray, result: FrameResult) -> np.ndarray:
    """Draw each person's box and a label (``#identity name``) onto ``image`` in place; returns it.

    Args:
        image: (H, W, 3) uint8 BGR frame the result's boxes are in (pixels), e.g. a copy of ``result.image``.
        result: the frame's tracked people.

    Labels never cover each other (:func:`place_labels`).
    """
    import cv2

    people = result.people
    boxes = [tuple(int(round(v)) for v in person.bbox) for person in people]
    labels = [person_label(person) for person in people]
    sizes = []
    for label in labels:
        (text_w, text_h), baseline = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, 0.45, 1)
        sizes.append((text_w + 2, text_h + baseline + 2))
    for person, (x1, y1, x2, y2) in zip(people, boxes):
        cv2.rectangle(image, (x1, y1), (x2, y2), identity_color(max(person.identity_id, 0)), 2)
    for person, label, (w, h), (x, y) in zip(people, labels, sizes, place_labels(boxes, sizes, image.shape[1], image.shape[0])):
        color = identity_color(max(person.identity_id, 0))
        cv2.rectangle(image, (x, y), (x + w, y + h), color, -1)
        cv2.putText(image, label, (x + 1, y + h - 4), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    return image


class EventsSink(Closable):
    """Writes one JSON object per tracked person and frame to a ``.jsonl`` file, or to standard output.

    Each line: ``{"frame": int, "file": str (image-folder sources only), "timestamp_s": float,
    "bbox": [x1, y1, x2, y2] (pixels), "score": float, "track_id": int, "identity": int,
    "name": str or null, "similarity": float, "new": bool, "state": "new" | "tracked" | "refound"}``
    (see :class:`~edge_reid.results.Person`). ``"frame"`` (and ``"reported_at"``) count from 0, the
    frame's index in its source (:class:`MotSink` rows count from 1). A frame's lines are written at once, unbuffered:
    after a failed write the file holds every line of the frames before, each whole. A program following the file
    finds them as soon as :meth:`write` returns (a pipe too, with ``"-"``); one polling a file may catch the write
    half-copied at a page boundary, so it takes a line once its ``"\\n"`` is there. Lines are strict JSON (the
    pipeline hands out finite numbers only), non-ASCII names escaped (``\\u00eb``).

    Past-frame boxes (:class:`~edge_reid.results.PastPerson`) follow their frame's lines with the
    same keys plus ``"past_frame": true`` and ``"reported_at"`` (the frame that revealed them); their
    ``"frame"``, ``"file"`` and ``"timestamp_s"`` are the earlier frame's, ``"similarity"`` is null,
    ``"new"`` false and ``"state"`` is ``"tentative"`` or ``"interpolated"``. Readers that want
    one line per live person and frame skip lines with ``"past_frame"``.

    Args:
        path: the ``.jsonl`` file (created or truncated), or ``"-"`` for standard output.

    Raises:
        OutputPathError: the path cannot be written (checked on creation).
        OutputWriteError: from :meth:`write` and :meth:`close`, a write failed (disk full, I/O error).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = path if is_standard_output(path) else check_writable(path, "events")
        self._output = LineOutput(self.path, "events")

    @property
    def count(self) -> int:
        """Lines (person-frames) written so far."""
        return self._output.lines

    def write(self, result: FrameResult) -> None:
        """Append the people of one frame.

        Raises:
            OutputWriteError: the write failed (the file keeps the whole lines before).
            ValueError: the sink was closed.
        """
        lines = []
        for person in result.people:
            record: dict[str, object] = {"frame": result.frame_index}
            if result.file_name is not None:
                record["file"] = result.file_name
            record.update(
                timestamp_s=round(result.timestamp_s, 4),
                bbox=[round(v, 1) for v in person.bbox],
                score=round(person.score, 4),
                track_id=person.track_id,
                identity=person.identity_id,
                name=person.name,
                similarity=round(person.similarity, 4),
                new=person.is_new,
                state=person.state,
            )
            lines.append(json.dumps(record) + "\n")
        for past in result.past:
            record = {"frame": past.frame_index}
            if past.file_name is not None:
                record["file"] = past.file_name
            record.update(timestamp_s=round(past.timestamp_s, 4), bbox=[round(v, 1) for v in past.bbox],
                          score=round(past.score, 4), track_id=past.track_id, identity=past.identity_id,
                          name=past.name, similarity=None, new=False, state=past.kind, past_frame=True,
                          reported_at=result.frame_index)
            lines.append(json.dumps(record) + "\n")
        self._output.write("".join(lines))

    def close(self) -> None:
        """Sync and close (idempotent)."""
        self._output.close()


def frame_names_path(mot_path: str | Path) -> Path:
    """The sidecar of a MOTChallenge file that names each frame's image: ``out.txt.frames.jsonl`` for ``out.txt``."""
    return Path(f"{mot_path}.frames.jsonl")


class MotSink(Closable):
    """Writes MOTChallenge rows (``frame, id, left, top, width, height, score, -1, -1, -1``, frame 1-based).

    The id is the person's identity (the same person keeps it across tracks and runs), so
    any MOT tool (``edge-reid eval-mot``, TrackEval) scores the identities users see.
    People without an identity yet (no embedding so far) are not written. A frame's rows are
    written at once, unbuffered: after a failed write the file holds the rows of the frames before.

    Past-frame boxes (:attr:`~edge_reid.results.FrameResult.past`: a track's hits before it
    was confirmed, its interpolated boxes across a lost gap) are written when they become known,
    after the current frame's rows, with their own frame number: the file is then not in frame
    order, which MOTChallenge files need not be (TrackEval and ``edge-reid eval-mot`` group rows by frame).

    The format has no column for a file name, so for image-folder sources a sidecar,
    :func:`frame_names_path` (``out.txt.frames.jsonl``), gets one line per frame,
    ``{"frame": 1, "file": "img_0001.jpg"}``, with the frame number the rows use.

    Args:
        path: the ``.txt`` file (created or truncated), or ``"-"`` for standard output (then no
            sidecar is written; the events carry the file names).

    Raises:
        OutputPathError: the path cannot be written (checked on creation).
        OutputWriteError: from :meth:`write` and :meth:`close`, a write failed (disk full, I/O error).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = path if is_standard_output(path) else check_writable(path, "MOT results")
        self._writer = MotWriter(self.path)
        self._names: LineOutput | None = None
        self._closed = False

    @property
    def rows(self) -> int:
        """Rows written so far."""
        return self._writer.rows

    def write(self, result: FrameResult) -> None:
        """Append the identified people of one frame (and, for an image, the frame's file name to the sidecar).

        Raises:
            OutputWriteError: the write failed (the file keeps the whole rows before).
            ValueError: the sink was closed (nothing is written, no sidecar created).
        """
        if self._closed:
            raise ValueError(f"the MOT results file {self.path} is closed; open a new MotSink to write again")
        if result.file_name is not None and not is_standard_output(self.path):
            if self._names is None:
                self._names = LineOutput(frame_names_path(self.path), "MOT frame names")
            self._names.write(json.dumps({"frame": result.frame_index + 1, "file": result.file_name}) + "\n")
        known = result.identities.identity_ids >= 1
        self._writer.write_frame(result.frame_index, result.identities.identity_ids[known], result.tracked.boxes[known],
                                 result.tracked.scores[known])
        for past in result.past:
            if past.identity_id >= 1:
                self._writer.write_frame(past.frame_index, [past.identity_id], [past.bbox], [past.score])

    def close(self) -> None:
        """Sync and close the rows and the sidecar (idempotent); the first failure is raised after both are closed."""
        self._closed = True
        failure = None
        for output in (self._writer, self._names):
            try:
                if output is not None:
                    output.close()
            except OutputWriteError as exc:
                failure = failure or exc
        if failure is not None:
            raise failure


def video_frame_count(path: str | Path, most: int) -> int | None:
    """Frames a video file holds: its container's count, or (where it has none) the frames that
    decode, counted up to ``most``; None when OpenCV cannot open the file."""
    import cv2

    capture = cv2.VideoCapture(opencv_name(path))
    try:
        if not capture.isOpened():
            return None
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        if count > 0:
            return count
        count = 0
        while count < most and capture.grab():
            count += 1
        return count
    finally:
        capture.release()


def _free_space_note(path: Path) -> str:
    """Why a write may have failed, from the free space of the file's file system."""
    try:
        status = os.statvfs(path.parent if str(path.parent) else ".")
    except (OSError, AttributeError):
        return "an I/O error?"
    free = status.f_bavail * status.f_frsize
    if free < 1 << 20:
        return f"{free} bytes free on its file system: disk full"
    return f"{free / (1 << 20):.0f} MiB free on its file system: an I/O or codec error?"


#: Containers :class:`VideoSink` writes (with its default codec mp4v; each checked to read back frame by frame).
VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov", ".m4v")


def check_video_name(path: str | Path, fourcc: str = "mp4v") -> None:
    """Refuse an output video name OpenCV would not write as one video: an image name or a ``%`` pattern (written
    as single images, over whatever files match), and, with the default codec mp4v, another suffix than
    :data:`VIDEO_SUFFIXES` (.gif fails only after the run); another codec's containers are left to the probe. A
    name that is not valid UTF-8 is refused too (OpenCV's writer would crash the process on it).

    Raises:
        OutputPathError: naming the path and the suffixes to use, or saying to rename.
    """
    from edge_reid.data.images import is_image_file

    if not is_utf8_name(path):
        raise OutputPathError(not_utf8_message(path, "output video"))
    path = Path(path)
    if "%" in path.name or is_image_file(path) or (fourcc == "mp4v" and path.suffix.lower() not in VIDEO_SUFFIXES):
        raise OutputPathError(
            f"output video {path}: not a video file name (OpenCV writes an image name, or a % pattern, as single "
            f"images over whatever files match); use one ending in {', '.join(VIDEO_SUFFIXES)}"
        )


class VideoSink(Closable):
    """Writes the annotated frames to a video file (MP4 with the ``mp4v`` codec by default).

    OpenCV's writer is tried on a probe file when the sink is created (an unsupported
    container fails before any work), and opens for real on the first frame (its size is
    not known before). A video has one frame size: later frames of another size (a folder of
    images of different sizes, a camera that came back at another resolution) are resized to it. OpenCV reports little when the disk fills (a failed frame from
    OpenCV 5, nothing from 4.x), so at close the file is read back and must hold every frame
    written (give or take :data:`~edge_reid.sources.FRAME_COUNT_SLACK` for containers that
    only estimate their count).

    Args:
        path: the video file (``.mp4``, ``.avi``, ...).
        fps: its frame rate, frames per second (the source's, for playback at its pace).
        fourcc: the codec's four characters.

    Raises:
        ValueError: ``fps`` is not a number > 0.
        OutputPathError: on creation, when the path cannot be written or OpenCV has no writer
            for this container and codec.
        OutputWriteError: from :meth:`write`, a frame could not be written; from :meth:`close`,
            the file does not hold the frames written (disk full, I/O error). The message says
            how many frames the file holds.
    """

    def __init__(self, path: str | Path, fps: float = 10.0, fourcc: str = "mp4v") -> None:
        if isinstance(fps, bool) or not isinstance(fps, numbers.Real) or not 0 < fps < float("inf"):
            raise ValueError(f"fps must be a frame rate > 0 (frames per second), got {fps!r}")
        check_video_name(path, fourcc)  # before anything is made
        self.path = check_writable(path, "output video")
        self.fps = float(fps)
        self.fourcc = fourcc
        self._writer: cv2.VideoWriter | None = None
        self._size: tuple[int, int] | None = None  # (width, height) of the video, from its first frame
        self._failed: str | None = None
        self._closed = False
        self.frames = 0
        self._probe()

    def _probe(self) -> None:
        """Write two small frames to a file of the same suffix beside the target: a container OpenCV
        cannot write (or writes one image of, as FFmpeg's image muxer does for .jpg) is refused before any work."""
        import cv2

        fd, probe = tempfile.mkstemp(prefix=".edge-reid-probe-", suffix=self.path.suffix, dir=self.path.parent)
        os.close(fd)
        try:
            try:
                writer = cv2.VideoWriter(opencv_name(probe), cv2.VideoWriter_fourcc(*self.fourcc), self.fps, (64, 64))
            except cv2.error:  # a backend that raises instead of returning a closed writer: refused below
                writer = None
            opened = writer is not None and writer.isOpened()
            if opened:
                blank = np.zeros((64, 64, 3), np.uint8)
                writer.write(blank)
                writer.write(blank)
            if writer is not None:
                writer.release()
            opened = opened and os.path.getsize(probe) > 0
        finally:
            with contextlib.suppress(OSError):
                os.unlink(probe)
        if not opened:
            raise OutputPathError(
                f"OpenCV cannot write video {self.path} (codec {self.fourcc}, container {self.path.suffix or 'none'}): "
                "use a .mp4 or .avi file name"
            )

    def write(self, result: FrameResult) -> None:
        """Draw the result on a copy of its frame and append it.

        Raises:
            OutputWriteError: OpenCV cannot open the file or reports a failed frame (names the file
                and how many frames it holds); every later write raises it again (the file is
                never reopened, which would empty it).
            ValueError: the sink was closed.
        """
        if self._closed:
            raise ValueError(f"the output video {self.path} is closed; open a new VideoSink to write again")
        if self._failed is not None:
            raise OutputWriteError(self._failed, self.path)
        import cv2

        image = draw_result(result.image.copy(), result)
        if self._size is None:
            self._size = (image.shape[1], image.shape[0])
            try:
                self._writer = cv2.VideoWriter(opencv_name(self.path), cv2.VideoWriter_fourcc(*self.fourcc), self.fps, self._size)
            except cv2.error as exc:  # a backend that raises instead of returning a closed writer
                self._failed = f"cannot write video {self.path}: OpenCV could not open it ({str(exc).strip().splitlines()[-1]})"
                raise OutputWriteError(self._failed, self.path) from None
            if not self._writer.isOpened():
                self._writer = None
                self._failed = f"cannot write video {self.path}: OpenCV could not open it ({_free_space_note(self.path)})"
                raise OutputWriteError(self._failed, self.path)
        if (image.shape[1], image.shape[0]) != self._size:
            image = cv2.resize(image, self._size, interpolation=cv2.INTER_AREA)
        if self._writer.write(image) is False:  # OpenCV >= 5 reports a failed frame; 4.x returns None (checked at close)
            writer, self._writer = self._writer, None
            writer.release()
            self._failed = (
                f"cannot write video {self.path}: frame {self.frames + 1} failed ({_free_space_note(self.path)}); "
                f"{self._content(video_frame_count(self.path, self.frames + 1), 'before it')}"
            )
            raise OutputWriteError(self._failed, self.path)
        self.frames += 1

    def _content(self, held: int | None, which: str) -> str:
        if held is None:
            return f"the file cannot be read back: none of the {self.frames} frames {which} is usable"
        return f"the file holds {held} of the {self.frames} frames {which}"

    def close(self) -> None:
        """Finish the file and check that it holds every frame written (idempotent).

        Raises:
            OutputWriteError: the file cannot be read back, or holds fewer frames than were written.
        """
        self._closed = True
        if self._writer is None:
            return
        writer, self._writer = self._writer, None
        writer.release()
        from edge_reid.sources import FRAME_COUNT_SLACK

        held = video_frame_count(self.path, self.frames + 1)
        if held is None or held + FRAME_COUNT_SLACK < self.frames:
            raise OutputWriteError(
                f"cannot write video {self.path}: {self._content(held, 'written')} ({_free_space_note(self.path)})", self.path
            )


_NO_GUI_MESSAGE = (
    "--display: this OpenCV has no GUI support (opencv-python-headless); install opencv-python or use --output"
)
_NO_GUI_EXIT = 3
_WINDOW_PROBE_TIMEOUT_S = 20.0
# Run in a child process by DisplaySink.check_screen: opens and closes one window.
_WINDOW_PROBE = f"""
import sys
import cv2
try:
    cv2.namedWindow("edge-reid probe", cv2.WINDOW_NORMAL)
except cv2.error:
    sys.exit({_NO_GUI_EXIT})
cv2.destroyAllWindows()
cv2.waitKey(1)
"""


@functools.lru_cache(maxsize=None)
def _window_probe_error(screen: str, script: str) -> str | None:
    """Run the window probe ``script`` in a child process; None when it opened a window, else the
    error to give for ``screen``. Cached: ``run --display`` checks before work starts and again
    when the window is made, with one probe."""
    try:
        probe = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=_WINDOW_PROBE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return f"--display: no window opened on screen {screen!r} within {_WINDOW_PROBE_TIMEOUT_S:.0f} s; check DISPLAY or use --output"
    if probe.returncode == _NO_GUI_EXIT:
        return _NO_GUI_MESSAGE
    if probe.returncode != 0:
        lines = [line.strip() for line in probe.stderr.splitlines() if line.strip()]
        cause = lines[0] if lines else f"the probe exited with status {probe.returncode}"
        return f"--display: cannot open a window on screen {screen!r} ({cause}); check DISPLAY or use --output"
    return None


class DisplaySink(Closable):
    """Shows annotated frames in a window; ``q`` or Esc asks the run to stop.

    Raises:
        OutputPathError: this OpenCV build or machine has no display.
    """

    WINDOW = "edge-reid"

    @staticmethod
    def check_screen() -> None:
        """Fail early (before models load and outputs are created) where no window can be opened.

        A window is first opened in a child process: where the named screen cannot be
        reached, OpenCV's Qt build aborts the whole process (SIGABRT) instead of raising,
        which would lose the run's outputs. The probe (a Python start and an OpenCV import)
        runs once per screen and process, only with ``--display``.

        Raises:
            OutputPathError: neither ``DISPLAY`` nor ``WAYLAND_DISPLAY`` is set (Linux, macOS),
                this OpenCV has no GUI support (opencv-python-headless), or the probe window
                could not be opened (the message gives the screen and OpenCV's first line).
        """
        screen = os.environ.get("WAYLAND_DISPLAY") or os.environ.get("DISPLAY")
        if not screen and os.name != "nt":
            raise OutputPathError("a display window (--display, DisplaySink) needs a screen, and neither DISPLAY nor WAYLAND_DISPLAY is set")
        screen = screen or "desktop"  # Windows names no screen
        error = _window_probe_error(screen, _WINDOW_PROBE)
        if error is not None:
            raise OutputPathError(error)

    def __init__(self) -> None:
        import cv2

        self.check_screen()
        try:
            cv2.namedWindow(self.WINDOW, cv2.WINDOW_NORMAL)
        except cv2.error:
            raise OutputPathError(_NO_GUI_MESSAGE) from None
        self.quit_requested = False

    def write(self, result: FrameResult) -> None:
        """Show one annotated frame."""
        import cv2

        cv2.imshow(self.WINDOW, draw_result(result.image.copy(), result))
        if cv2.waitKey(1) & 0xFF in (ord("q"), 27):
            self.quit_requested = True

    def close(self) -> None:
        """Close the window."""
        import cv2

        cv2.destroyAllWindows()
