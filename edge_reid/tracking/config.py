"""The tracker's constants (a light module: dataclasses, math and the number test of :mod:`edge_reid.values`)."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

from edge_reid.values import is_integer, is_real

#: Fields that count things: integers (a bool is refused as a count).
_COUNTS = ("confirm_hits", "history_size")
#: IoU gates: at 0 a gate would admit every pair (boxes that do not overlap at all), so they are in (0, 1].
_IOU_GATES = ("min_iou", "min_iou_low", "min_iou_tentative", "proximity", "duplicate_iou")


@dataclass(frozen=True)
class TrackerConfig:
    """The tracker's constants, with where each default comes from.

    Score thresholds are compared with the detections' scores in float32, as
    :class:`~edge_reid.detections.Detections` stores them: a score given as exactly a
    threshold is at it.

    Attributes:
        high_score: detections at or above this confidence take part in the first
            association and may confirm tracks (BoT-SORT ``track_high_thresh`` 0.6;
            ByteTrack's ``track_thresh`` is 0.5).
        low_score: detections from here up to ``high_score`` only extend tracked
            tracks, by IoU (ByteTrack/BoT-SORT ``track_low_thresh`` 0.1).
        new_track_score: an unmatched detection starts a track only at or above this
            (BoT-SORT ``new_track_thresh`` 0.7; ByteTrack's ``track_thresh + 0.1``). Only
            high-score detections start tracks, so a value below ``high_score`` acts as
            ``high_score`` (allowed: a sensitivity run may halve one constant alone).
        min_iou: least IoU for a first-stage (high-score) match, in (0, 1] (ByteTrack/BoT-SORT
            ``match_thresh`` 0.8 on the cost ``1 - IoU``).
        min_iou_low: least IoU for a second-stage (low-score) match, in (0, 1] (ByteTrack: cost limit 0.5).
        min_iou_tentative: least IoU for a tentative track's match, in (0, 1] (ByteTrack: cost limit 0.7).
        tentative_gate_chi2: a tentative track may also match a high-score detection below
            ``min_iou_tentative`` that its Kalman filter places within this squared Mahalanobis
            distance (DeepSORT's gate ``chi2inv95[4]``, 9.4877). A tentative track's velocity
            is not yet known and the filter's uncertainty grows with the seconds since its last
            box, so this gate widens with the time between frames; the IoU gates, published for
            25-30 fps video, do not, and at a few frames per second a walking person's second
            box no longer overlaps the first enough to confirm a track (docs/tracking.md, "Low
            frame rates"). 0: the IoU gate alone (ByteTrack, DeepSORT).
        proximity: least IoU at which appearance may lower a pair's cost, in (0, 1] (BoT-SORT
            ``proximity_thresh`` 0.5): appearance never joins boxes that do not overlap.
        appearance_thresh: largest half cosine distance ``(1 - s) / 2`` counted as alike
            (BoT-SORT's ``appearance_thresh`` form). Cosine thresholds belong to a model: 0.2
            is similarity 0.6, the bundled OSNet's same-person threshold at a 1% false-match
            rate on labelled crops (BoT-SORT's 0.25, similarity 0.5, was set for its own
            FastReID model; measurements: docs/tracking.md, "The constants").
        veto_similarity: pairs whose embeddings are less similar than this (cosine) are
            never matched, whatever their overlap: clearly different people. 0.5: below
            every same-person pair of the bundled OSNet on labelled crops (mot17-reid-mini),
            above most different-person pairs (docs/tracking.md, "The constants").
            For another model, calibrate both with ``edge-reid gallery threshold``.
        confirm_hits: consecutive hits that confirm a tentative track, an integer >= 1 (DeepSORT ``n_init`` 3,
            DeepStream ``probationAge`` 3; ByteTrack/BoT-SORT confirm at 2).
        max_lost_s: seconds a lost track is kept and re-matchable (ByteTrack/BoT-SORT
            ``track_buffer`` 30 frames at 30 fps, OC-SORT/StrongSORT ``max_age`` 30: 1 s); as in
            ByteTrack it can still be re-found in the first frame after, but never once unseen for
            more than twice this (:data:`~edge_reid.tracking.tracker.LOST_STALE_FACTOR`).
        history_size: clean embeddings kept per track, an integer >= 1 (DeepSORT ``nn_budget`` and
            DeepStream ``reidHistorySize``: 100).
        duplicate_iou: a lost and a tracked track overlapping this much (IoU, in (0, 1]) are one
            person (BoT-SORT's ``remove_duplicate_stracks``: IoU distance < 0.15); so are two
            detections of one frame: one lying on a detection matched or starting a track starts
            none. Detections after NMS at IoU 0.45 (the bundled detector's) never overlap this much.
        overlap: a detection with more than this fraction of its area covered by
            another detection is *overlapped*: its crop shows two people, so its
            embedding is used to match in this frame but never kept.

    Raises:
        ValueError: a value outside its range (raised on construction).
        TypeError: a value that is not a number, or for ``confirm_hits`` and ``history_size``
            not an integer (a bool is neither); the message names the field.
    """

    high_score: float = 0.6
    low_score: float = 0.1
    new_track_score: float = 0.7
    min_iou: float = 0.2
    min_iou_low: float = 0.5
    min_iou_tentative: float = 0.3
    tentative_gate_chi2: float = 9.4877  # kalman.GATE_CHI2_95 (this module imports no numpy)
    proximity: float = 0.5
    appearance_thresh: float = 0.2
    veto_similarity: float = 0.5
    confirm_hits: int = 3
    max_lost_s: float = 1.0
    history_size: int = 100
    duplicate_iou: float = 0.85
    overlap: float = 0.1

    def __post_init__(self) -> None:
        for item in fields(self):
            value = getattr(self, item.name)
            count = item.name in _COUNTS
            if not (is_integer(value) if count else is_real(value)):
                raise TypeError(f"TrackerConfig.{item.name} must be {'an integer' if count else 'a number'}, got {value!r}")
            if not math.isfinite(value):
                raise ValueError(f"TrackerConfig.{item.name} must be finite, got {value}")
        for name in _IOU_GATES:
            if not 0.0 < getattr(self, name) <= 1.0:
                raise ValueError(f"TrackerConfig.{name} must be in (0, 1] (an IoU gate: 0 admits boxes that do not overlap), "
                                 f"got {getattr(self, name)}")
        for name in ("high_score", "low_score", "new_track_score", "appearance_thresh", "overlap"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"TrackerConfig.{name} must be in [0, 1], got {getattr(self, name)}")
        if not -1.0 <= self.veto_similarity <= 1.0:
            raise ValueError(f"TrackerConfig.veto_similarity must be a cosine similarity in [-1, 1], got {self.veto_similarity}")
        if self.low_score > self.high_score:
            raise ValueError(f"TrackerConfig.low_score ({self.low_score}) must not exceed high_score ({self.high_score})")
        if self.confirm_hits < 1 or self.history_size < 1:
            raise ValueError("TrackerConfig.confirm_hits and history_size must be >= 1")
        if self.tentative_gate_chi2 < 0:
            raise ValueError(f"TrackerConfig.tentative_gate_chi2 must be >= 0 (0: IoU gate alone), got {self.tentative_gate_chi2}")
        if self.max_lost_s < 0:
            raise ValueError(f"TrackerConfig.max_lost_s must be >= 0 seconds, got {self.max_lost_s}")
