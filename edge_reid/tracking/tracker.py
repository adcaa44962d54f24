"""The multi-object tracker: Kalman prediction, ByteTrack's two-stage association with BoT-SORT's fused cost.

Per frame (:meth:`Tracker.update`), following ByteTrack (Y. Zhang et al., "ByteTrack:
Multi-Object Tracking by Associating Every Detection Box", ECCV 2022) and BoT-SORT
(N. Aharon et al., 2022):

1. lost tracks unseen for longer than :data:`LOST_STALE_FACTOR` x ``max_lost_s`` at the frame's
   time (a stalled stream) are removed; every other track is predicted to the frame's time
   (:mod:`~edge_reid.tracking.kalman`), and moved by the camera's motion when a
   :class:`~edge_reid.tracking.camera_motion.CameraMotion` is given;
2. confirmed tracks (tracked and lost) are matched to the **high-score** detections
   with the fused IoU + appearance cost (:func:`~edge_reid.tracking.association.fuse_costs`);
3. tracks still unmatched that were tracked in the previous frame are matched to the
   **low-score** detections by IoU alone: partly occluded people score low but stay tracked;
   after a **stall** (a step longer than :data:`STALL_FRAME_INTERVALS` typical frame intervals and
   :data:`STALL_MIN_S`: a stream that stopped, people moving meanwhile, so few are still near a
   prediction seconds ahead), confirmed tracks still unmatched are matched to the remaining
   high-score detections by appearance, inside the Kalman gate grown over the stall (DeepSORT:
   :data:`STALL_APPEARANCE_DISTANCE`); without embeddings nothing changes;
4. tentative tracks are matched to the remaining high-score detections (fused cost; a pair
   the IoU gate refuses may pass the Kalman filter's gate, which widens with the time between
   frames: :func:`~edge_reid.tracking.association.gated_motion_cost`);
5. remaining high-score detections confident enough start tentative tracks, except one lying on a
   detection matched or started in this frame (IoU >= ``duplicate_iou``: the same person given
   twice, by a detector without NMS or two detectors merged), counted in ``duplicate_boxes``;
6. tracks unmatched become lost (or, if tentative, are removed); lost tracks unseen
   for longer than ``max_lost_s`` are removed (ByteTrack's rule: a lost track can be re-found
   in the first frame after ``max_lost_s``, up to the bound of step 1; a tracked track is
   matched whatever the time to the next frame); a lost track lying on a tracked one
   (IoU >= ``duplicate_iou``) is a duplicate and the younger of the two is removed.

Times are the caller's timestamps made monotonic: a timestamp that repeats or goes
backwards counts as no time passing, so nothing jumps. A step back of less than
:data:`CLOCK_RESTART_S` is jitter (frames out of order): the next step forward is measured
from the newest timestamp seen, so jitter adds no time. A step back further than that is a
restarted clock (a camera that reconnected): later steps are measured from there.
"""

from __future__ import annotations

import statistics
import warnings
from collections import deque
from typing import TYPE_CHECKING

import numpy as np

from edge_reid.detections import Detections
from edge_reid.errors import TimestampWarning, caller_stacklevel
from edge_reid.timing import StreamClock
from edge_reid.unit_vectors import check_unit_rows
from edge_reid.tracking.association import (
    FORBIDDEN,
    GATED_LIMIT,
    appearance_similarity,
    fuse_costs,
    gated_motion_cost,
    iou_cost,
    linear_assignment,
    pairs_appearance_can_change,
)
from edge_reid.tracking.boxes import coverage_matrix, iou_matrix, xywh_to_xyxy, xyxy_to_xywh
from edge_reid.tracking.config import TrackerConfig
from edge_reid.tracking.kalman import GATE_CHI2_95, BoxKalmanFilter
from edge_reid.thresholds import at_least
from edge_reid.tracking.track import Track, TrackState, kalman_boxes
from edge_reid.tracking.warp import IDENTITY_WARP
from edge_reid.values import MAX_TIMESTAMP_S, check_seconds, not_seconds_hint

if TYPE_CHECKING:  # imported when used: CameraMotion needs OpenCV, a fixed camera's Tracker does not
    from edge_reid.tracking.camera_motion import CameraMotion


#: Seconds a timestamp must go back, from the newest seen, to count as a restarted clock (a camera
#: that reconnected) rather than jitter: bounds both the time jitter can add and how long a
#: restarted clock can stand still.
CLOCK_RESTART_S = 1.0

#: Updates in a row with no time passing after which the caller's clock is taken to stand still
#: (a :class:`~edge_reid.errors.TimestampWarning`, once per standstill): no camera repeats a time for 100 frames
#: (over 3 s at 30 fps), while tracks stop moving and lost ones never expire. A live camera's
#: ``CAP_PROP_POS_MSEC`` often reads 0.
STILL_CLOCK_UPDATES = 100

#: A lost track is matched until, at the end of an update, it has been unseen for longer than
#: ``max_lost_s`` (ByteTrack's ``track_buffer`` rule: so it may still be re-found in the next
#: frame, one frame interval later, which at 1 image/s keeps a track through one missed detection).
#: That grace is bounded: a lost track unseen for more than this many times ``max_lost_s`` at a
#: frame's time (a stalled stream, a slow loop) is removed before association, never re-found.
LOST_STALE_FACTOR = 2.0

#: A step between two frames longer than this many typical frame intervals (the median of the recent
#: steps), and than :data:`STALL_MIN_S`, is a stall (a stream that stopped and came back, people moving
#: meanwhile): confirmed tracks still unmatched then get a second chance by appearance
#: (:data:`STALL_APPEARANCE_DISTANCE`). Three intervals: more than two frames in a row missing.
STALL_FRAME_INTERVALS = 3.0
#: The shortest stall, seconds (exclusive): at 10 fps, five frames or more missing.
STALL_MIN_S = 0.5
#: After a stall, a confirmed track unmatched by IoU may take a high-score detection inside its Kalman
#: filter's 95% gate (:data:`~edge_reid.tracking.kalman.GATE_CHI2_95`, on the covariance grown over the
#: stall) whose half cosine distance ``(1 - s) / 2`` to the track's embedding history is at most this:
#: DeepSORT's appearance matching (N. Wojke et al., 2017: Mahalanobis gate, nearest-neighbour cosine
#: distance, ``max_cosine_distance`` 0.2, i.e. similarity >= 0.8).
STALL_APPEARANCE_DISTANCE = 0.1
#: Recent steps whose median is the typical frame interval.
STALL_RECENT_STEPS = 32


def overlapped_mask(boxes: np.ndarray, overlap: float) -> np.ndarray:
    """(N,) bool: which of N boxes (x1, y1, x2, y2) have more than ``overlap`` of their area covered by another."""
    coverage = coverage_matrix(boxes, boxes)
    np.fill_diagonal(coverage, 0.0)
    return (coverage > overlap).any(axis=1) if coverage.size else np.zeros(len(boxes), bool)


class Tracker:
    """Follows people from frame to frame by motion and appearance.

    Usable with any detector: give each frame's :class:`~edge_reid.detections.Detections`,
    optionally their ReID embeddings, and the frame's time.

    Args:
        config: :class:`TrackerConfig` (default: the published defaults it lists).
        camera_motion: a :class:`~edge_reid.tracking.camera_motion.CameraMotion` to compensate
            a moving camera (then every update needs the frame's image); None for a fixed camera.

    Attributes:
        tracks: live tracks (tentative, tracked, lost).
        clock_s: the tracker's time, seconds: the sum of the forward steps, each from the newest
            timestamp seen before it (since the first timestamp or the latest restart of the
            caller's clock, a step back of more than :data:`CLOCK_RESTART_S`).
        ignored_boxes: boxes without area ignored so far.
        duplicate_boxes: detections so far that started no track because they lay on one matched or
            started in the same frame (IoU >= ``duplicate_iou``).
        confirmed_total: tracks confirmed so far.
        updates: :meth:`update` calls so far (the number of the next one; past-frame boxes,
            :attr:`Track.past <edge_reid.tracking.track.Track.past>`, name their frame by it).

    Example:
        >>> tracker = Tracker()                                                  # doctest: +SKIP
        >>> tracked = tracker.update(Detections.from_boxes(boxes, scores), None, timestamp_s=0.1)  # doctest: +SKIP
        >>> tracked.track_ids                                                    # doctest: +SKIP
    """

    def __init__(self, config: TrackerConfig | None = None, camera_motion: CameraMotion | None = None) -> None:
        self.config = config or TrackerConfig()
        self.camera_motion = camera_motion
        self.kalman = BoxKalmanFilter()
        self.tracks: list[Track] = []
        self.clock_s = 0.0
        self.ignored_boxes = 0
        self.duplicate_boxes = 0
        self.confirmed_total = 0
        self._newest_timestamp: float | None = None
        self._still_updates = 0  # updates in a row in which no time passed (STILL_CLOCK_UPDATES)
        self._warned_not_seconds = False  # a timestamp in milliseconds or nanoseconds was warned of
        self._stream_clock = StreamClock()  # the time of updates given without one
        self._predicted_for: tuple[int, float] | None = None  # (update, timestamp) predict last ran for
        self._warp = IDENTITY_WARP  # the camera's motion into the frame predict last ran for
        self._next_id = 1
        self.updates = 0
        self._recent: deque[tuple[int, float, float, np.ndarray]] = deque()  # (update, timestamp, clock, warp)
        self._steps: deque[float] = deque(maxlen=STALL_RECENT_STEPS)  # recent steps forward, seconds
        self._stalled = False  # the latest predict's step was a stall (STALL_FRAME_INTERVALS)
        self._dim: int | None = None  # D of the first embeddings given: the tracks' histories hold D-d ones

    def continue_counting(self, previous: "Tracker") -> None:
        """Take up ``previous``'s counts (a new tracker for the same stream, e.g. after its frames changed
        size): new track ids go on from its last one, and ``confirmed_total``, ``ignored_boxes`` and
        ``duplicate_boxes`` add up."""
        self._next_id = max(self._next_id, previous._next_id)
        self.confirmed_total += previous.confirmed_total
        self.ignored_boxes += previous.ignored_boxes
        self.duplicate_boxes += previous.duplicate_boxes

    # -- reading --------------------------------------------------------------------------
    def get(self, track_id: int) -> Track | None:
        """The live track with this id, or None."""
        return next((t for t in self.tracks if t.track_id == track_id), None)

    # -- the frame loop ---------------------------------------------------------------------
    def predict(self, timestamp_s: float | None, image: np.ndarray | None = None) -> None:
        """Move every live track to the frame at ``timestamp_s`` (once per frame; :meth:`update` calls it).

        Lost tracks unseen for longer than :data:`LOST_STALE_FACTOR` x ``max_lost_s`` by then are
        removed first: they cannot be matched in this frame. Call it before :meth:`update` to read the predicted boxes first (e.g.
        to decide what to embed).

        Args:
            timestamp_s: the frame's time in seconds. The tracks move by the time since the
                newest timestamp seen: none when it repeats or goes back (see :data:`CLOCK_RESTART_S`).
                None: as in :meth:`update`, the time of this call on the tracker's stream clock; if
                this frame was predicted already, nothing changes (:meth:`update` without a time
                then keeps the time read here).
            image: (H, W, 3) uint8 BGR frame; needed when the tracker compensates camera motion.

        Raises:
            ValueError: ``timestamp_s`` is NaN or infinite; camera motion on but no image, or one
                that is not a non-empty uint8 BGR frame (raised before any track moves).
            TypeError: ``timestamp_s`` is not a number (text such as ``"0.1"``, a bool).

        Warns:
            TimestampWarning: once per tracker, a ``timestamp_s`` after
                :data:`~edge_reid.values.MAX_TIMESTAMP_S` (1e11 s, the year 5138):
                milliseconds or nanoseconds since 1970, where seconds are expected.
        """
        if timestamp_s is None:
            if self._predicted_for is not None and self._predicted_for[0] == self.updates:
                return  # this frame was predicted already (plan_embeddings): its time stands
            timestamp_s = self._stream_clock.seconds()
        timestamp = check_seconds(timestamp_s, "timestamp_s")
        if self._predicted_for == (self.updates, timestamp):
            return  # this frame's prediction is done (plan_embeddings predicts before update does)
        self._warp = IDENTITY_WARP
        if self.camera_motion is not None:  # estimated first: a frame it refuses leaves every track where it was
            if image is None:
                raise ValueError("this Tracker compensates camera motion: pass the frame's image")
            self._warp = self.camera_motion.estimate(image, needed=bool(self.tracks))
        step = 0.0
        if self._newest_timestamp is None or timestamp < self._newest_timestamp - CLOCK_RESTART_S:
            self._newest_timestamp = timestamp  # the first frame, or a restarted clock
        elif timestamp > self._newest_timestamp:
            step = timestamp - self._newest_timestamp
            self._newest_timestamp = timestamp
        self._predicted_for = (self.updates, timestamp)
        if not self._warned_not_seconds and timestamp > MAX_TIMESTAMP_S:
            self._warned_not_seconds = True
            warnings.warn(
                f"timestamp_s {not_seconds_hint(timestamp)}; max_lost_s and the motion model count in the units given, so "
                "a lost track is dropped at once, never re-found",
                TimestampWarning, stacklevel=caller_stacklevel(),
            )
        # a stall: a step far longer than the typical one (known from one step on)
        self._stalled = bool(self._steps) and step > max(STALL_FRAME_INTERVALS * statistics.median(self._steps), STALL_MIN_S)
        if step > 0:
            self._steps.append(step)
        self.clock_s += step
        self._still_updates = 0 if step > 0 else self._still_updates + 1
        if self._still_updates == STILL_CLOCK_UPDATES:
            warnings.warn(
                f"timestamp_s has not moved forward for {STILL_CLOCK_UPDATES} frames in a row (it reads {timestamp_s!r}): "
                "tracks stand still and lost ones never expire. Give each frame its time in seconds (a live "
                "camera's CAP_PROP_POS_MSEC often reads 0, and is in milliseconds), or None for the monotonic clock",
                TimestampWarning, stacklevel=caller_stacklevel(),
            )
        for track in self.tracks:  # before association: never re-found after a stall (LOST_STALE_FACTOR)
            track.expire(self.clock_s, LOST_STALE_FACTOR * self.config.max_lost_s)
        if any(t.state == TrackState.REMOVED for t in self.tracks):
            self.tracks = [t for t in self.tracks if t.state != TrackState.REMOVED]
        if self.tracks:
            means = np.stack([t.mean for t in self.tracks])
            covariances = np.stack([t.covariance for t in self.tracks])
            not_tracked = np.array([t.state != TrackState.TRACKED for t in self.tracks])
            means[not_tracked, 6:8] = 0.0  # lost and tentative tracks keep their size (BoT-SORT)
            means, covariances = self.kalman.predict(means, covariances, step)
            if self._warp is not IDENTITY_WARP:  # only ever set by self.camera_motion
                means, covariances = self.camera_motion.apply(self._warp, means, covariances)
            for track, mean, covariance in zip(self.tracks, means, covariances):
                track.mean, track.covariance = mean, covariance

    def update(
        self,
        detections: Detections,
        embeddings: np.ndarray | None = None,
        timestamp_s: float | None = None,
        embedded: np.ndarray | None = None,
        image: np.ndarray | None = None,
    ) -> Detections:
        """Track one frame's detections.

        Args:
            detections: the frame's people; boxes x1, y1, x2, y2 pixels, scores in [0, 1].
                Boxes with no area are ignored (counted in :attr:`ignored_boxes`); a box lying on
                one matched or starting a track in this frame (IoU >= ``duplicate_iou``) starts no
                track of its own (counted in :attr:`duplicate_boxes`).
            embeddings: (N, D) float32 L2-normalised ReID embeddings of the detections, or
                None to track by motion alone. D >= 1, the same in every update: the first
                embeddings given fix it (one ReID model per tracker).
            timestamp_s: the frame's time in seconds, not milliseconds (repeats and steps back count as
                0 s; the next step forward is measured from the newest timestamp seen, see :data:`CLOCK_RESTART_S`;
                :data:`STILL_CLOCK_UPDATES` frames in a row without time passing warn, once per standstill).
                None: the time of this call, seconds since this tracker's first update (monotonic
                clock), for a live camera, or the time :func:`~edge_reid.tracking.plan_embeddings`
                read for this frame; give a video's own frame times instead. Give it on every
                update or on none (the motion model and ``max_lost_s`` count in these seconds).
            embedded: (N,) bool, which rows of ``embeddings`` hold an embedding (default:
                all when ``embeddings`` is given). Rows not embedded are matched by motion.
            image: (H, W, 3) uint8 BGR frame, needed with camera-motion compensation.

        Returns:
            One row per confirmed track matched in this frame, in the order of the input
            detections: the track's Kalman-filtered box (x1, y1, x2, y2 pixels: the detection
            smoothed by the motion model, as ByteTrack and BoT-SORT report), the detection's
            score, and ``track_ids``. Tentative and lost tracks are not reported; a track
            confirmed or re-found in this update also holds the boxes of the earlier frames it
            was not reported in, in :attr:`Track.past <edge_reid.tracking.track.Track.past>`.

        Raises:
            ValueError: NaN or infinite boxes or scores, embeddings of the wrong shape (not N
                rows, D < 1, or another D than the first embeddings this tracker was given) or
                with NaN/Inf in an embedded row or an embedded row not of unit length, a
                non-finite timestamp. Raised before anything changes.
            TypeError: ``detections`` is not a :class:`~edge_reid.detections.Detections`; ``timestamp_s``
                is not a number (text such as ``"0.1"``, a bool).

        Warns:
            TimestampWarning: ``timestamp_s`` stands still for :data:`STILL_CLOCK_UPDATES` frames, or is
                in milliseconds or nanoseconds (after 1e11 s), once per standstill and once per tracker (see :meth:`predict`).
        """
        boxes, scores, embeddings, embedded = self._check(detections, embeddings, embedded)
        self.predict(timestamp_s, image)
        timestamp_s = self._predicted_for[1]  # None: the time predict read (here or in plan_embeddings)
        if embeddings is not None and len(embeddings) and self._dim is None:
            self._dim = int(embeddings.shape[1])
        config = self.config
        now = self.clock_s
        self._update = self.updates
        self.updates += 1
        self._recent.append((self._update, float(timestamp_s), now, self._warp))
        for track in self.tracks:
            track.detection_index = -1
            track.refound = False
            track.confirmed_now = False
            track.past = []

        valid = ((boxes[:, 2] - boxes[:, 0]) > 0) & ((boxes[:, 3] - boxes[:, 1]) > 0)
        self.ignored_boxes += int((~valid).sum())
        is_high, above_low = at_least(scores, config.high_score), at_least(scores, config.low_score)
        high = np.flatnonzero(valid & is_high)
        low = np.flatnonzero(valid & above_low & ~is_high)
        considered = np.flatnonzero(valid & above_low)
        clean = np.zeros(len(boxes), bool)
        clean[considered] = ~overlapped_mask(boxes[considered], config.overlap)

        confirmed = [t for t in self.tracks if t.is_confirmed]
        tentative = [t for t in self.tracks if t.state == TrackState.TENTATIVE]
        matched: list[tuple[Track, int]] = []

        # 1. confirmed tracks x high-score detections, fused cost
        pairs, unmatched_tracks, unmatched_high = self._associate(confirmed, high, boxes, embeddings, embedded, config.min_iou, fused=True)
        matched += [(confirmed[t], int(high[d])) for t, d in pairs]
        # 2. tracks tracked until now x low-score detections, IoU only
        previously_tracked = [confirmed[i] for i in unmatched_tracks if confirmed[i].state == TrackState.TRACKED]
        pairs, unmatched_second, _ = self._associate(previously_tracked, low, boxes, None, embedded, config.min_iou_low, fused=False)
        matched += [(previously_tracked[t], int(low[d])) for t, d in pairs]
        remaining = high[unmatched_high]
        if self._stalled:  # 2b. after a stall: confirmed tracks still unmatched x remaining high-score, by appearance
            taken = {previously_tracked[t].track_id for t, _ in pairs}
            left = [confirmed[i] for i in unmatched_tracks if confirmed[i].track_id not in taken]
            pairs, _, unmatched_stalled = self._associate_after_stall(left, remaining, boxes, embeddings, embedded)
            matched += [(left[t], int(remaining[d])) for t, d in pairs]
            remaining = remaining[unmatched_stalled]
        found = {track.track_id for track, _ in matched}
        for index in unmatched_second:
            if previously_tracked[index].track_id not in found:
                previously_tracked[index].mark_missed()
        # 3. tentative tracks x remaining high-score detections, fused cost
        pairs, unmatched_tentative, unmatched_remaining = self._associate(
            tentative, remaining, boxes, embeddings, embedded, config.min_iou_tentative, fused=True,
            gate_chi2=config.tentative_gate_chi2,
        )
        matched += [(tentative[t], int(remaining[d])) for t, d in pairs]
        for index in unmatched_tentative:
            tentative[index].mark_missed()

        self._apply_matches(matched, boxes, scores, embeddings, embedded, clean, now)
        # 4. new tentative tracks, none from a detection lying on one matched or started in this frame
        #    (the same person given twice: a detector without NMS, two detectors merged)
        starts = at_least(scores, config.new_track_score)
        candidates = [int(i) for i in remaining[unmatched_remaining] if starts[i]]
        if candidates:
            taken = [row for _, row in matched]
            pool = np.array(taken + candidates, np.int64)
            duplicate = iou_matrix(boxes[candidates], boxes[pool]) >= config.duplicate_iou  # (C, matched + C)
            kept = np.arange(len(pool)) < len(taken)
            for k, index in enumerate(candidates):
                if (duplicate[k] & kept).any():
                    self.duplicate_boxes += 1
                    continue
                kept[len(taken) + k] = True
                self._start_track(index, boxes, scores, embeddings, embedded, clean, now)
        # 5. expiry and duplicates
        for track in self.tracks:
            track.expire(now, config.max_lost_s)
        self._remove_duplicates()
        self.tracks = [t for t in self.tracks if t.state != TrackState.REMOVED]
        oldest = min((t.oldest_pending_update for t in self.tracks), default=self._update)
        while self._recent and self._recent[0][0] < oldest:
            self._recent.popleft()

        reported = sorted((t for t in self.tracks if t.state == TrackState.TRACKED and t.detection_index >= 0),
                          key=lambda t: t.detection_index)
        rows = np.array([t.detection_index for t in reported], np.int64)
        filtered = kalman_boxes(reported)
        return Detections(
            filtered.astype(np.float32), scores[rows].astype(np.float32), np.array([t.track_id for t in reported], np.int64)
        )

    def remove(self, track_id: int) -> None:
        """Drop a live track (e.g. a lost one whose person was found under another track)."""
        self.tracks = [t for t in self.tracks if t.track_id != track_id]

    # -- internals --------------------------------------------------------------------------
    def _check(self, detections: Detections, embeddings, embedded):
        if not isinstance(detections, Detections):
            raise TypeError(f"detections must be a Detections (Detections.from_boxes(boxes, scores)), got {type(detections).__name__}")
        boxes = np.asarray(detections.boxes, np.float64).reshape(-1, 4)
        scores = np.asarray(detections.scores, np.float64).reshape(-1)
        if scores.shape[0] != boxes.shape[0]:
            raise ValueError(f"{boxes.shape[0]} boxes but {scores.shape[0]} scores")
        bad = ~np.isfinite(boxes).all(axis=1) | ~np.isfinite(scores)
        if bad.any():
            rows = np.flatnonzero(bad)
            raise ValueError(
                f"detections contain NaN or infinite values (rows {rows[:5].tolist()}{'...' if rows.size > 5 else ''}): "
                "check the detector's output before tracking"
            )
        count = boxes.shape[0]
        if embeddings is None:
            return boxes, scores, None, np.zeros(count, bool)
        vectors = np.asarray(embeddings, np.float32)
        if vectors.ndim != 2 or vectors.shape[0] != count:
            raise ValueError(f"embeddings must be ({count}, D) for {count} detections, got {vectors.shape}")
        if count and vectors.shape[1] < 1:
            raise ValueError(f"embeddings must be ({count}, D) with D >= 1, got {vectors.shape}")
        if count and self._dim is not None and vectors.shape[1] != self._dim:
            raise ValueError(
                f"embeddings are {vectors.shape[1]}-d, this tracker's tracks hold {self._dim}-d ones (the first embeddings "
                "it was given): use one ReID model per Tracker (a new Tracker for another model)"
            )
        mask = np.ones(count, bool) if embedded is None else np.asarray(embedded, bool).reshape(-1)
        if mask.shape[0] != count:
            raise ValueError(f"embedded must be ({count},) bool, got {mask.shape}")
        if mask.any() and not np.isfinite(vectors[mask]).all():
            raise ValueError("embeddings contain NaN or infinite values")
        if mask.any():
            check_unit_rows(vectors[mask])  # the appearance costs are 1 - cosine similarity
        return boxes, scores, vectors, mask

    def _associate(self, tracks, columns, boxes, embeddings, embedded, min_iou, fused, gate_chi2=0.0):
        """Match ``tracks`` to the detections ``columns``; returns (pairs, unmatched track rows, unmatched columns).

        ``gate_chi2`` > 0 also admits pairs below ``min_iou`` inside the tracks' Kalman gate
        (:func:`~edge_reid.tracking.association.gated_motion_cost`)."""
        if not tracks or columns.size == 0:
            return np.zeros((0, 2), np.int64), np.arange(len(tracks)), np.arange(columns.size)
        predicted = kalman_boxes(tracks)
        cost = iou_cost(predicted, boxes[columns])
        limit = 1.0 - min_iou + 1e-9
        if gate_chi2 > 0:
            distance = self.kalman.gating_distance(
                np.stack([t.mean for t in tracks]), np.stack([t.covariance for t in tracks]), xyxy_to_xywh(boxes[columns])
            )
            cost, limit = gated_motion_cost(cost, distance, min_iou, gate_chi2), GATED_LIMIT
        if fused and embeddings is not None:
            config = self.config
            wanted = pairs_appearance_can_change(cost, limit, config.proximity) & embedded[columns][None, :]
            # a history (up to 100 views) is stacked only for a track with a pair to score
            histories = [track.history_array() if wanted[row].any() else None for row, track in enumerate(tracks)]
            similarity = appearance_similarity(histories, embeddings[columns], embedded[columns], wanted)
            cost = fuse_costs(cost, similarity, config.proximity, config.appearance_thresh, config.veto_similarity)
        return linear_assignment(cost, limit)

    def _associate_after_stall(self, tracks, columns, boxes, embeddings, embedded):
        """After a stall, match ``tracks`` to the detections ``columns`` by appearance alone (DeepSORT):
        a pair inside the track's Kalman gate (:data:`~edge_reid.tracking.kalman.GATE_CHI2_95`) whose half
        cosine distance is at most :data:`STALL_APPEARANCE_DISTANCE`, the nearest in appearance first.
        Without embeddings (or a track without clean ones) nothing is matched here."""
        if embeddings is None or not tracks or columns.size == 0 or not embedded[columns].any():
            return np.zeros((0, 2), np.int64), np.arange(len(tracks)), np.arange(columns.size)
        inside = self.kalman.gating_distance(
            np.stack([t.mean for t in tracks]), np.stack([t.covariance for t in tracks]), xyxy_to_xywh(boxes[columns])
        ) <= GATE_CHI2_95
        inside &= embedded[columns][None, :]
        histories = [track.history_array() if inside[row].any() else None for row, track in enumerate(tracks)]
        similarity = appearance_similarity(histories, embeddings[columns], embedded[columns], inside)
        distance = (1.0 - np.nan_to_num(similarity, nan=-1.0)) / 2.0  # unknown: 1, never matched
        cost = np.where(inside & (distance <= STALL_APPEARANCE_DISTANCE), distance, FORBIDDEN)
        return linear_assignment(cost, STALL_APPEARANCE_DISTANCE + 1e-9)

    def _apply_matches(self, matched, boxes, scores, embeddings, embedded, clean, now) -> None:
        if not matched:
            return
        tracks = [track for track, _ in matched]
        rows = np.array([row for _, row in matched], np.int64)
        means, covariances = self.kalman.update(
            np.stack([t.mean for t in tracks]), np.stack([t.covariance for t in tracks]), xyxy_to_xywh(boxes[rows])
        )
        recent = list(self._recent)
        filtered = xywh_to_xyxy(means[:, :4])  # each track's kalman_box once its mean is set
        for track, row, mean, covariance, box in zip(tracks, rows, means, covariances, filtered):
            track.mean, track.covariance = mean, covariance
            track.mark_matched(boxes[row], scores[row], now, int(row), self.config.confirm_hits)
            track.record_filtered(self._update, recent[-1][1], now, box, recent)
            self.confirmed_total += int(track.confirmed_now)
            if embeddings is not None and embedded[row]:
                track.add_embedding(embeddings[row], now, bool(clean[row]))

    def _start_track(self, row, boxes, scores, embeddings, embedded, clean, now) -> None:
        mean, covariance = self.kalman.initiate(xyxy_to_xywh(boxes[row : row + 1]))
        track = Track(self._next_id, mean[0], covariance[0], boxes[row], scores[row], now, self.config.history_size)
        self._next_id += 1
        track.detection_index = row
        if self.config.confirm_hits <= 1:
            track.state = TrackState.TRACKED
            track.confirmed_now = True
            self.confirmed_total += 1
        track.record_filtered(self._update, self._recent[-1][1], now, track.kalman_box, [])
        if embeddings is not None and embedded[row]:
            track.add_embedding(embeddings[row], now, bool(clean[row]))
        self.tracks.append(track)

    def _remove_duplicates(self) -> None:
        tracked = [t for t in self.tracks if t.state == TrackState.TRACKED]
        lost = [t for t in self.tracks if t.state == TrackState.LOST]
        if not tracked or not lost:
            return
        overlap = iou_matrix(kalman_boxes(tracked), kalman_boxes(lost))
        for i, j in zip(*np.nonzero(overlap >= self.config.duplicate_iou)):
            a, b = tracked[i], lost[j]
            if a.state == TrackState.REMOVED or b.state == TrackState.REMOVED:
                continue
            younger = a if (a.last_seen_s - a.first_seen_s) < (b.last_seen_s - b.first_seen_s) else b
            younger.state = TrackState.REMOVED
            younger.detection_index = -1
