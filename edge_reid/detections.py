"""Person boxes: the :class:`Detections` dataclass and box sanitising (clip, drop degenerate/tiny)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Detections:
    """Person boxes found in one frame.

    Attributes:
        boxes: (N, 4) float32, x1, y1, x2, y2 in pixels of the frame, x2 > x1, y2 > y1.
        scores: (N,) float32 detector confidence in [0, 1].
        track_ids: (N,) int64 id of the track each box belongs to, or None before tracking
            (:meth:`edge_reid.tracking.Tracker.update` returns detections with it set).
        too_small: people the detector found but left out for being shorter than its minimum
            height (:class:`~edge_reid.detector.PersonDetector`'s ``min_box_height``), counted
            so that a run can say how many it skipped.

    Raises:
        ValueError: ``boxes`` not (N, 4) (one box (4,) and an empty array are taken), scores or
            track ids not N values, a finite score outside [0, 1] (NaN and Inf pass here and are
            refused by the tracker and the pipeline, which name the rows).
    """

    boxes: np.ndarray
    scores: np.ndarray
    track_ids: np.ndarray | None = None
    too_small: int = 0

    def __post_init__(self) -> None:
        # Checked here, not only in from_boxes: (4, N) boxes were reshaped into invented ones, and
        # percentages (35.0) confirmed tracks, when a Detections was built directly.
        boxes = box_rows(self.boxes)
        scores = np.asarray(self.scores, dtype=np.float32)
        if scores.size != boxes.shape[0]:
            raise ValueError(f"{boxes.shape[0]} boxes but {scores.size} scores")
        scores = scores.reshape(-1)
        outside = np.isfinite(scores) & ((scores < 0) | (scores > 1))
        if outside.any():
            raise ValueError(
                f"scores must be confidences in [0, 1], got {float(scores[outside][0])}: scale your detector's scores"
            )
        object.__setattr__(self, "boxes", boxes)
        object.__setattr__(self, "scores", scores)
        if self.track_ids is not None:
            track_ids = np.asarray(self.track_ids, dtype=np.int64).reshape(-1)
            if track_ids.shape[0] != boxes.shape[0]:
                raise ValueError(f"{boxes.shape[0]} boxes but {track_ids.shape[0]} track ids")
            object.__setattr__(self, "track_ids", track_ids)

    def __len__(self) -> int:
        return int(self.boxes.shape[0])

    def __getitem__(self, index) -> "Detections":
        """The detections selected by a boolean mask, an index array or a slice (a new object)."""
        return Detections(
            self.boxes[index], self.scores[index], None if self.track_ids is None else self.track_ids[index]
        )

    @staticmethod
    def empty(too_small: int = 0) -> "Detections":
        """No detections (``too_small``: see the attribute)."""
        return Detections(np.zeros((0, 4), np.float32), np.zeros((0,), np.float32), too_small=too_small)

    @staticmethod
    def from_boxes(boxes, scores=None) -> "Detections":
        """Detections from a caller's own detector.

        Args:
            boxes: (N, 4) array-like, x1, y1, x2, y2 in pixels.
            scores: (N,) array-like in [0, 1], or None (all 1.0).

        Raises:
            ValueError: shapes do not fit (N, 4) and (N,), or a score outside [0, 1] (the
                tracker's thresholds are confidences; NaN is refused later, by the pipeline).
        """
        box_array = box_rows(boxes)
        return Detections(box_array, np.ones((box_array.shape[0],), np.float32) if scores is None else scores)


def box_rows(boxes) -> np.ndarray:
    """``boxes`` as an (N, 4) float32 array of x1, y1, x2, y2 rows.

    Args:
        boxes: (N, 4) array-like; one box as (4,); an empty sequence is (0, 4).

    Raises:
        ValueError: any other shape, e.g. a detector's (N, 6) rows of box, score and class
            (the message says to take the first four columns); rows of different lengths; text.
    """
    try:
        array = np.asarray(boxes, dtype=np.float32)
    except (TypeError, ValueError):  # rows of different lengths, text: numpy's own message says neither
        raise ValueError(
            f"boxes must be (N, 4) rows of x1, y1, x2, y2 pixels (numbers), got {type(boxes).__name__} {str(boxes)[:80]}"
        ) from None
    if array.size == 0:
        return np.zeros((0, 4), np.float32)
    if array.shape == (4,):
        return array.reshape(1, 4)
    if array.ndim != 2 or array.shape[1] != 4:
        hint = ": take the box columns, e.g. boxes[:, :4]" if array.ndim == 2 and array.shape[1] > 4 else ""
        raise ValueError(f"boxes must be (N, 4) rows of x1, y1, x2, y2 pixels, got shape {array.shape}{hint}")
    return array


def sanitize_boxes(
    boxes: np.ndarray, frame_height: int, frame_width: int, min_box_height: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """Clip boxes to the frame and find those worth embedding.

    Args:
        boxes: (N, 4) float, x1, y1, x2, y2 in pixels; may lie partly or wholly outside the frame.
        frame_height: frame height in pixels.
        frame_width: frame width in pixels.
        min_box_height: boxes shorter than this (pixels, after clipping) are dropped.

    Returns:
        ``(clipped, keep)``: (N, 4) float32 boxes clipped to the frame, and an (N,)
        bool mask of the boxes at least 1 pixel wide and ``max(1, min_box_height)`` pixels
        tall after clipping, with finite coordinates. Boxes thinner than a pixel and boxes
        wholly outside the frame have ``keep`` False.
    """
    clipped = np.asarray(boxes, dtype=np.float32).reshape(-1, 4).copy()
    finite = np.isfinite(clipped).all(axis=1)
    clipped[~finite] = 0.0
    np.clip(clipped[:, 0::2], 0.0, float(frame_width), out=clipped[:, 0::2])
    np.clip(clipped[:, 1::2], 0.0, float(frame_height), out=clipped[:, 1::2])
    widths = clipped[:, 2] - clipped[:, 0]
    heights = clipped[:, 3] - clipped[:, 1]
    keep = finite & (widths >= 1.0) & (heights >= max(1.0, float(min_box_height)))
    return clipped, keep

