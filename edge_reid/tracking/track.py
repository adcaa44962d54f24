"""One tracked person and its lifecycle: tentative -> tracked <-> lost -> removed.

- **tentative**: started from one confident detection; it must be matched in each
  of the next frames until it has ``confirm_hits`` hits, or it is removed. Never
  reported, so a false detection that lasts a frame or two disappears
  (DeepSORT's ``n_init``, DeepStream's ``probationAge``).
- **tracked**: confirmed and matched in the latest frame; reported.
- **lost**: confirmed but not matched; predicted forward and still matched
  against new detections until, at the end of a frame, it has been unseen for
  longer than ``max_lost_s`` seconds (ByteTrack's ``track_buffer``, in seconds
  rather than frames: so it may be re-found in the next frame), and never once
  unseen for more than twice that (a stalled stream;
  :data:`~edge_reid.tracking.tracker.LOST_STALE_FACTOR`).
- **removed**: dropped by the tracker.

**Past-frame boxes.** A track is reported from its ``confirm_hits``-th hit, and not while it is
lost; once it is confirmed, or re-found within its lost period, the frames it was not reported
in are known to have held this person. The tracker then hands them out once, as
:class:`PastBox` rows of those earlier frames (:attr:`Track.past`): the filtered boxes of the
tentative hits, and for a lost gap boxes interpolated linearly in time between the last box before
the gap and the box that ends it (with camera-motion compensation, both carried by the camera's
motion to each gap frame: linear in the scene, not in the image). This is DeepStream's past-frame
output (``enablePastFrame``: a confirmed target's probation boxes and a re-found target's
shadow-tracking boxes are reported late, with their own frame numbers) with ByteTrack's gap
interpolation (linear, used by its MOT submissions offline) done online, when the gap closes. The
current frame is never delayed.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

import numpy as np

from edge_reid.tracking.boxes import cumulative_warps, warp_box, xywh_to_xyxy

#: Seconds by which two times must differ to count as different (1 us). Frame times are floats: with
#: epoch seconds (~1.7e9, a step of 2.4e-7 s) the time between two frames is rounded otherwise than
#: with times from 0, so a comparison at a boundary (a track unseen for exactly ``max_lost_s``)
#: would depend on the clock's origin; within this tolerance it does not.
TIME_TOLERANCE_S = 1e-6


class TrackState(str, Enum):
    """Lifecycle state of a :class:`Track`."""

    TENTATIVE = "tentative"
    TRACKED = "tracked"
    LOST = "lost"
    REMOVED = "removed"


@dataclass(frozen=True)
class PastBox:
    """A track's box in an earlier frame, learned late (see the module's "Past-frame boxes").

    Attributes:
        update: 0-based number of the :meth:`~edge_reid.tracking.tracker.Tracker.update` call
            (frame) the box belongs to.
        timestamp_s: that frame's timestamp, seconds, as given to the tracker.
        box: (4,) float64 x1, y1, x2, y2 pixels.
        score: the detection's confidence for a tentative hit; for an interpolated box (no
            detection of its own) the lower of the two detections around the gap.
        kind: ``"tentative"`` (a hit before confirmation) or ``"interpolated"`` (a lost gap).
    """

    update: int
    timestamp_s: float
    box: np.ndarray
    score: float
    kind: str


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
        first_seen_s: time of the first detection, seconds on the tracker's own clock
            (:attr:`Tracker.clock_s <edge_reid.tracking.tracker.Tracker.clock_s>`: from 0, never going
            back), not the caller's timestamps.
        last_seen_s: time of the latest matched detection, seconds (the same clock).
        last_embedded_s: time of the latest clean embedding, seconds (the same clock; None before the first).
        history: clean embeddings, oldest first, each (D,) float32 L2-normalised, bounded.
        last_embedding: the latest embedding, clean or not ((D,) float32), None before the first.
        detection_index: index of the matched detection in the latest update's input, -1 if unmatched.
        refound: True when the latest update matched the track after it had been lost.
        confirmed_now: True when the latest update confirmed the track.
        past: :class:`PastBox` rows learned in the latest update (the tentative hits of a track
            confirmed now, or the gap of a track re-found now); empty otherwise.
        last_matched_update: update number of the latest matched detection.
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
        self._history_stacked: np.ndarray | None = None  # history_array's, for _history_key
        self._history_key: tuple[int, np.ndarray, np.ndarray] | None = None  # length, first and last views
        self.last_embedding: np.ndarray | None = None
        self.detection_index = -1
        self.refound = False
        self.confirmed_now = False
        self.past: list[PastBox] = []
        self.last_matched_update = -1
        self.last_box_filtered: np.ndarray | None = None
        self._last_clock = float(timestamp_s)
        self._last_score = self.score
        self._pending: list[PastBox] = []

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
        """(H, D) float32 clean embeddings, oldest first, or None when there are none.

        Read-only, and shared: stacked again only after views were added or dropped (the tracker asks
        for it in every frame the track is near an embedded detection; up to 100 views). A view changed
        in place, or replaced in the middle of :attr:`history`, is not seen: append, as
        :meth:`add_embedding` does."""
        history = self.history
        if not history:
            return None
        key = self._history_key  # the first and last views it was stacked from, held: never a reused id
        if key is None or key[0] != len(history) or key[1] is not history[0] or key[2] is not history[-1]:
            stacked = np.stack(history)
            stacked.setflags(write=False)
            self._history_stacked, self._history_key = stacked, (len(history), history[0], history[-1])
        return self._history_stacked

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
        """Record a matched detection (the Kalman update is done by the tracker).

        Args:
            box: (4,) the detection's x1, y1, x2, y2 in pixels.
            score: its confidence in [0, 1].
            timestamp_s: the frame's time, seconds.
            detection_index: its row in the frame's detections.
            confirm_hits: hits that confirm a tentative track (``TrackerConfig.confirm_hits``).
        """
        self.refound = self.state == TrackState.LOST
        self.box = np.asarray(box, np.float32).copy()
        self.score = float(score)
        self.hits += 1
        self.last_seen_s = float(timestamp_s)
        self.detection_index = int(detection_index)
        self.confirmed_now = self.state == TrackState.TENTATIVE and self.hits >= confirm_hits
        if self.state == TrackState.LOST or self.confirmed_now:
            self.state = TrackState.TRACKED

    @property
    def oldest_pending_update(self) -> int:
        """The oldest update whose frame this track may still hand out as a past-frame box
        (its first tentative hit, or its latest match)."""
        return self._pending[0].update if self._pending else self.last_matched_update

    def record_filtered(self, update: int, timestamp_s: float, clock_s: float, box: np.ndarray,
                        recent: list[tuple[int, float, float]]) -> None:
        """After a matched update, note the filtered box and fill :attr:`past` when the track was
        confirmed or re-found in this update.

        Args:
            update: this update's number; timestamp_s: its timestamp; clock_s: the tracker's clock, seconds.
            box: (4,) filtered box x1, y1, x2, y2 pixels.
            recent: ``(update, timestamp_s, clock_s, warp)`` of the tracker's recent updates, oldest
                first (must reach back to this track's previous match when it was lost); ``warp``
                (2, 3) maps the previous update's pixels to this one's (the camera's motion; the
                identity without compensation).
        """
        box = np.asarray(box, np.float64).copy()
        if self.state == TrackState.TRACKED and self.confirmed_now:
            self.past = self._pending
            self._pending = []
        elif self.state == TrackState.TENTATIVE:
            self._pending.append(PastBox(update, timestamp_s, box, self.score, "tentative"))
        if self.refound and self.last_box_filtered is not None:
            start_update, start_box = self.last_matched_update, self.last_box_filtered
            start_clock, start_score = self._last_clock, self._last_score
            steps = [entry for entry in recent if start_update < entry[0] <= update]
            span = clock_s - start_clock
            score = min(start_score, self.score)
            # maps[k]: pixels of the last frame before the gap -> those of steps[k - 1]'s frame
            maps = cumulative_warps(entry[3] for entry in steps)
            back_from_now = np.linalg.inv(maps[-1])
            for position, (number, stamp, clock, _) in enumerate(steps[:-1], start=1):
                weight = (clock - start_clock) / span if span > 0 else position / len(steps)
                # Both ends seen from this gap frame: the last box moved on by the camera's motion
                # since, the new box moved back by the motion to come (linear in the scene, not the image).
                before = warp_box(maps[position], start_box)
                after = warp_box(maps[position] @ back_from_now, box)
                self.past.append(PastBox(number, stamp, (1.0 - weight) * before + weight * after, score, "interpolated"))
        self.last_matched_update = int(update)
        self.last_box_filtered = box
        self._last_clock = float(clock_s)
        self._last_score = self.score

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
        """Remove a lost track not seen for more than ``max_lost_s`` seconds (by more than
        :data:`TIME_TOLERANCE_S`: unseen for exactly ``max_lost_s`` it is kept, whatever the clock's origin)."""
        if self.state == TrackState.LOST and now_s - self.last_seen_s > max_lost_s + TIME_TOLERANCE_S:
            self.state = TrackState.REMOVED


def kalman_boxes(tracks: Sequence[Track]) -> np.ndarray:
    """(T, 4) float64 x1, y1, x2, y2 pixels: :attr:`Track.kalman_box` of each track, in one conversion
    ((0, 4) for no tracks)."""
    if not tracks:
        return np.zeros((0, 4))
    return xywh_to_xyxy(np.stack([t.mean[:4] for t in tracks]))
