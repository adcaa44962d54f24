"""Where results go: a JSON-lines event log, an annotated video, a window, and the run summary.

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
from edge_reid.output_paths import check_writable
from edge_reid.pipeline import FrameResult


def identity_color(identity_id: int) -> tuple[int, int, int]:
    """A stable, well-separated BGR colour for an identity (golden-ratio hue steps)."""
    hue = int((identity_id * 0.618033988749895 % 1.0) * 180)
    hsv = np.uint8([[[hue, 200, 255]]])
    b, g, r = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0]
    return int(b), int(g), int(r)


def draw_result(image: np.ndarray, result: FrameResult) -> np.ndarray:
    """Draw boxes and identity labels (``#id sim``) onto ``image`` in place; returns it."""
    for box, identity, similarity, is_new in zip(result.boxes, result.identity_ids, result.similarities, result.is_new):
        x1, y1, x2, y2 = (int(round(v)) for v in box)
        color = identity_color(int(identity))
        cv2.rectangle(image, (x1, y1), (x2, y2), color, 2)
        label = f"#{identity}" + (" new" if is_new else f" {similarity:.2f}")
        (text_w, text_h), baseline = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, 0.45, 1)
        top = max(0, y1 - text_h - baseline - 2)
        cv2.rectangle(image, (x1, top), (x1 + text_w + 2, top + text_h + baseline + 2), color, -1)
        cv2.putText(image, label, (x1 + 1, top + text_h + 1), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    return image


class EventsSink:
    """Writes one JSON object per detection to a ``.jsonl`` file.

    Each line: ``{"frame": int, "timestamp_s": float, "bbox": [x1, y1, x2, y2] (pixels),
    "score": float, "identity": int, "similarity": float, "new": bool}``.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = check_writable(path, "events")
        self._file = open(self.path, "w", encoding="utf-8")
        self.count = 0

    def write(self, result: FrameResult) -> None:
        """Append the detections of one frame."""
        for person in result.people:
            record = {
                "frame": result.frame_index,
                "timestamp_s": round(result.timestamp_s, 4),
                "bbox": [round(v, 1) for v in person.bbox],
                "score": round(person.score, 4),
                "identity": person.identity_id,
                "similarity": round(person.similarity, 4),
                "new": person.is_new,
            }
            self._file.write(json.dumps(record) + "\n")
            self.count += 1

    def close(self) -> None:
        """Flush and close (idempotent)."""
        if not self._file.closed:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()


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
