"""One tracked person and its lifecycle: tentative -> tracked <-> lost -> removed.

- **tentative**: started from one confident detection; it must be matched in each
  of the next frames until it has ``confirm_hits`` hits, or it is removed. Never
  reported, so a false detection that lasts a frame or two disappears
  (DeepSORT's ``n_init``, DeepStream's ``probationAge``).
- **tracked**: confirmed and matched in the latest frame; reported.
- **lost**: confirmed but not matched; predicted forward and still matched
  against new detections, for at most ``max_lost_s`` seconds since it was last
  seen (ByteTrack's ``track_buffer``, in seconds rather than frames).
- **removed**: dropped by the tracker.
"""

from __future__ import annotations

from collections import deque
from enum import Enum

import numpy as np

from edge_reid.tracking.boxes import xywh_to_xyxy


class TrackState(str, Enum):
    """Lifecycle state of a :class:`Track`."""

    TENTATIVE = "tentative"
    TRACKED = "tracked"
    LOST = "lost"
    REMOVED = "removed"


class Track:
    """A person followed over frames.

    Attributes:
        track_id: unique id within its :class:`~edge_reid.tracking.tracker.Tracker`, from 1 upwards.
        state: :class:`TrackState`.
        mean: (8,) float64 Kalman state, centre x, y, width, height (pixels) and their velocities (pixels/s).
        covariance: (8, 8) float64 Kalman covariance.
        box: (4,) float32 x1, y1, x2, y2 pixels of the latest matched detection.
        score: detector confidence of the latest matched detection.
        hits: frames in which the track was matched.
        first_seen_s: time of the first detection, seconds.
        last_seen_s: time of the latest matched detection, seconds.
        last_embedded_s: time of the latest clean embedding, seconds (None before the first).
        history: clean embeddings, oldest first, each (D,) float32 L2-normalised, bounded.
        last_embedding: the latest embedding, clean or not ((D,) float32), None before the first.
        detection_index: index of the matched detection in the latest update's input, -1 if unmatched.
        refound: True when the latest update matched the track after it had been lost.
        confirmed_now: True when the latest update confirmed the track.
    """

    def __init__(
        self,
        track_id: int,
        mean: np.ndarray,
        covariance: np.ndarray,
        box: np.ndarray,
        score: float,
        timestamp_s: float,
        history_size: int,
    ) -> None:
        self.track_id = int(track_id)
        self.state = TrackState.TENTATIVE
        self.mean = mean
        self.covariance = covariance
        self.box = np.asarray(box, np.float32).copy()
        self.score = float(score)
        self.hits = 1
        self.first_seen_s = float(timestamp_s)
        self.last_seen_s = float(timestamp_s)
        self.last_embedded_s: float | None = None
        self.history: deque[np.ndarray] = deque(maxlen=int(history_size))
        self.last_embedding: np.ndarray | None = None
        self.detection_index = -1
        self.refound = False
        self.confirmed_now = False

    def __repr__(self) -> str:
        return f"Track({self.track_id}, {self.state.value}, hits={self.hits})"

    @property
    def is_confirmed(self) -> bool:
        """True once the track has left probation (tracked or lost)."""
        return self.state in (TrackState.TRACKED, TrackState.LOST)

    @property
    def kalman_box(self) -> np.ndarray:
        """(4,) float64 x1, y1, x2, y2 pixels of the Kalman state: the prediction before an update,
        the filtered estimate after it."""
        return xywh_to_xyxy(self.mean[None, :4])[0]

    def history_array(self) -> np.ndarray | None:
        """(H, D) float32 clean embeddings, oldest first, or None when there are none."""
        return np.stack(self.history) if self.history else None

    def add_embedding(self, embedding: np.ndarray, timestamp_s: float, clean: bool) -> None:
        """Record a (D,) L2-normalised embedding of the matched detection.

        Only a clean one (no other person overlapping the crop) joins the history
        (the oldest drops out when full) and counts as a refresh.
        """
        vector = np.asarray(embedding, np.float32).copy()
        self.last_embedding = vector
        if clean:
            self.history.append(vector)
            self.last_embedded_s = float(timestamp_s)

    def mark_matched(self, box: np.ndarray, score: float, timestamp_s: float, detection_index: int, confirm_hits: int) -> None:
        """Record a matched detection (the Kalman update is done by the tracker)."""
        self.refound = self.state == TrackState.LOST
        self.box = np.asarray(box, np.float32).copy()
        self.score = float(score)
        self.hits += 1
        self.last_seen_s = float(timestamp_s)
        self.detection_index = int(detection_index)
        self.confirmed_now = self.state == TrackState.TENTATIVE and self.hits >= confirm_hits
        if self.state == TrackState.LOST or self.confirmed_now:
            self.state = TrackState.TRACKED

    def mark_missed(self) -> None:
        """Not matched in this frame: a tentative track is removed, a tracked one becomes lost."""
        self.detection_index = -1
        self.refound = False
        self.confirmed_now = False
        if self.state == TrackState.TENTATIVE:
            self.state = TrackState.REMOVED
        elif self.state == TrackState.TRACKED:
            self.state = TrackState.LOST

    def expire(self, now_s: float, max_lost_s: float) -> None:
        """Remove a lost track not seen for more than ``max_lost_s`` seconds."""
        if self.state == TrackState.LOST and now_s - self.last_seen_s > max_lost_s:
            self.state = TrackState.REMOVED
