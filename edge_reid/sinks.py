"""Where results go: a JSON-lines event log, MOTChallenge rows, an annotated video, a window.

Every file sink checks its path before any work starts
(:func:`edge_reid.output_paths.check_writable`)
and is flushed and closed on exit, Ctrl-C included.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np

from edge_reid.errors import OutputPathError
from edge_reid.motchallenge import MotWriter
from edge_reid.output_paths import check_writable
from edge_reid.pipeline import FrameResult, Person


def identity_color(identity_id: int) -> tuple[int, int, int]:
    """A stable, well-separated BGR colour for an identity (golden-ratio hue steps)."""
    hue = int((identity_id * 0.618033988749895 % 1.0) * 180)
    hsv = np.uint8([[[hue, 200, 255]]])
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

    Labels never cover each other (:func:`place_labels`).
    """
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


class EventsSink:
    """Writes one JSON object per tracked person and frame to a ``.jsonl`` file.

    Each line: ``{"frame": int, "timestamp_s": float, "bbox": [x1, y1, x2, y2] (pixels),
    "score": float, "track_id": int, "identity": int, "name": str or null, "similarity": float,
    "new": bool, "state": "new" | "tracked" | "refound"}`` (see :class:`~edge_reid.pipeline.Person`).

    Past-frame boxes (:class:`~edge_reid.pipeline.PastPerson`) follow their frame's lines, each
    with ``"past_frame": true``, the earlier frame's own ``"frame"`` and ``"timestamp_s"``,
    ``"reported_at"`` (the frame that revealed it) and ``"state": "tentative" | "interpolated"``.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = check_writable(path, "events")
        self._file = open(self.path, "w", encoding="utf-8")
        self.count = 0

    def write(self, result: FrameResult) -> None:
        """Append the people of one frame."""
        for person in result.people:
            record = {
                "frame": result.frame_index,
                "timestamp_s": round(result.timestamp_s, 4),
                "bbox": [round(v, 1) for v in person.bbox],
                "score": round(person.score, 4),
                "track_id": person.track_id,
                "identity": person.identity_id,
                "name": person.name,
                "similarity": round(person.similarity, 4),
                "new": person.is_new,
                "state": person.state,
            }
            self._file.write(json.dumps(record) + "\n")
            self.count += 1
        for past in result.past:
            record = {
                "frame": past.frame_index, "timestamp_s": round(past.timestamp_s, 4), "bbox": [round(v, 1) for v in past.bbox],
                "score": round(past.score, 4), "track_id": past.track_id, "identity": past.identity_id, "name": past.name,
                "state": past.kind, "past_frame": True, "reported_at": result.frame_index,
            }
            self._file.write(json.dumps(record) + "\n")
            self.count += 1

    def close(self) -> None:
        """Flush and close (idempotent)."""
        if not self._file.closed:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()


class MotSink:
    """Writes MOTChallenge rows (``frame, id, left, top, width, height, score, -1, -1, -1``, frame 1-based).

    The id is the person's identity (the same person keeps it across tracks and runs), so
    any MOT tool (``edge-reid eval-mot``, TrackEval) scores the identities users see.
    People without an identity yet (no embedding so far) are not written.

    Past-frame boxes (:attr:`~edge_reid.pipeline.FrameResult.past`: a track's hits before it
    was confirmed, its interpolated boxes across a lost gap) are written when they become known,
    after the current frame's rows, with their own frame number: the file is then not in frame
    order, which MOTChallenge files need not be (TrackEval and ``edge-reid eval-mot`` group rows by frame).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = check_writable(path, "MOT results")
        self._writer = MotWriter(self.path)

    @property
    def rows(self) -> int:
        """Rows written so far."""
        return self._writer.rows

    def write(self, result: FrameResult) -> None:
        """Append the identified people of one frame."""
        known = result.identities.identity_ids >= 1
        self._writer.write_frame(result.frame_index, result.identities.identity_ids[known], result.tracked.boxes[known],
                                 result.tracked.scores[known])
        for past in result.past:
            if past.identity_id >= 1:
                self._writer.write_frame(past.frame_index, [past.identity_id], [past.bbox], [past.score])

    def close(self) -> None:
        """Flush and close (idempotent)."""
        self._writer.close()


class VideoSink:
    """Writes the annotated frames to a video file (MP4 with the ``mp4v`` codec by default).

    The writer opens on the first frame (its size is not known before).

    Raises:
        OutputPathError: on creation, when the path cannot be written; on the first frame,
            when OpenCV cannot open a writer for this container.
    """

    def __init__(self, path: str | Path, fps: float = 10.0, fourcc: str = "mp4v") -> None:
        self.path = check_writable(path, "output video")
        self.fps = float(fps) if fps and fps > 0 else 10.0
        self.fourcc = fourcc
        self._writer: cv2.VideoWriter | None = None
        self.frames = 0

    def write(self, result: FrameResult) -> None:
        """Draw the result on a copy of its frame and append it."""
        image = draw_result(result.image.copy(), result)
        if self._writer is None:
            height, width = image.shape[:2]
            self._writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*self.fourcc), self.fps, (width, height))
            if not self._writer.isOpened():
                raise OutputPathError(f"OpenCV cannot write video {self.path}; use a .mp4 or .avi file name")
        self._writer.write(image)
        self.frames += 1

    def close(self) -> None:
        """Finish the file (idempotent)."""
        if self._writer is not None:
            self._writer.release()
            self._writer = None


class DisplaySink:
    """Shows annotated frames in a window; ``q`` or Esc asks the run to stop.

    Raises:
        OutputPathError: this OpenCV build or machine has no display.
    """

    WINDOW = "edge-reid"

    def __init__(self) -> None:
        if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY") and os.name != "nt":
            raise OutputPathError("--display needs a screen, and neither DISPLAY nor WAYLAND_DISPLAY is set")
        try:
            cv2.namedWindow(self.WINDOW, cv2.WINDOW_NORMAL)
        except cv2.error:
            raise OutputPathError(
                "--display: this OpenCV has no GUI support (opencv-python-headless); install opencv-python or use --output"
            ) from None
        self.quit_requested = False

    def write(self, result: FrameResult) -> None:
        """Show one annotated frame."""
        cv2.imshow(self.WINDOW, draw_result(result.image.copy(), result))
        if cv2.waitKey(1) & 0xFF in (ord("q"), 27):
            self.quit_requested = True

    def close(self) -> None:
        """Close the window."""
        cv2.destroyAllWindows()
