"""Identities on top of tracks: who each confirmed track is, from the gallery.

A tracker knows that a box in this frame is the same person as a box in the
previous one; the gallery knows people across time and runs (enrolled names,
people who left and came back). :class:`TrackIdentities` joins them:

- A confirmed track gets an identity **once**, from its appearance template (the
  mean of its latest clean embeddings, L2-normalised: temporal average pooling, as
  video ReID does). Candidates:

  - the identity of a *lost* track whose Kalman gate (DeepSORT's chi-square 95%
    gate) holds the new track's box, at the gallery's ``threshold``: a person
    re-found after a short break; the lost track is then dropped from the tracker;
  - an identity no live track holds (someone gone for longer, an enrolled person),
    on appearance alone: a *named* identity (enrolled, or named by the user) at the
    stricter ``reid_threshold``, an unnamed one (made by a run) at the strictest
    ``unnamed_reid_threshold`` (see :data:`~edge_reid.defaults.UNNAMED_REID_THRESHOLD`),
    and only when it stands out: no other identity passes the lower of the two, or the
    best is clearly nearer than the runner-up (Lowe's ratio test on the unit sphere,
    :data:`DISTINCT_RATIO`). Two identities that look equally like the person:
    appearance cannot tell, so no guess; unless each reaches its own threshold, no two
    names are among them and no track holds one: by the strictest test they are all that
    person (copies a run made on earlier returns, a run's identity for someone enrolled or
    named since, identities named alike), and the named one is taken, else the oldest.

  Never an identity held by a track in view (two live tracks never share one), nor
  one the track resembles no more than someone in view. Otherwise the track
  creates a new identity from its clean embeddings (from its latest embedding when
  it has none yet: a person confirmed while overlapped must still be named).
- The track **keeps** its identity while it lives. Each fresh clean embedding (one
  per second, :mod:`~edge_reid.tracking.embedding_policy`) re-checks it against the
  identity (:meth:`~edge_reid.matching.gallery.Gallery.observe`): a view still alike
  (at least the threshold) and novel joins the identity's stored views; one that no
  longer looks like it (the tracker may have followed someone else through a crossing)
  is not stored, so the identity is never taught another person's appearance.
- A track without any embedding (motion-only use) has identity -1 until it gets one.
- A track whose identity was removed from the gallery (``Gallery.remove``: a person asking to
  be forgotten) no longer holds it: it is identified again like a new confirmed track, so gets
  a new identity (or another stored one it matches).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edge_reid.defaults import REID_THRESHOLD, UNNAMED_REID_THRESHOLD
from edge_reid.detections import Detections
from edge_reid.matching.assignment import assign_unique
from edge_reid.matching.gallery import Gallery, check_timestamp
from edge_reid.thresholds import at_least, margin_over
from edge_reid.tracking.kalman import GATE_CHI2_95, BoxKalmanFilter
from edge_reid.tracking.track import Track, TrackState
from edge_reid.tracking.tracker import Tracker
from edge_reid.unit_vectors import mean_direction

#: Clean embeddings (most recent: about 10 s of a track at one refresh per second) averaged into its template.
TEMPLATE_SIZE = 10
#: Candidate identities examined per track beyond the number of tracks being identified.
EXTRA_CANDIDATES = 4
#: Lowe's ratio test (Lowe, "Distinctive image features from scale-invariant keypoints", IJCV 2004:
#: nearest / second-nearest Euclidean distance < 0.8): when two identities pass the lower of
#: ``reid_threshold`` and ``unnamed_reid_threshold``,
#: the best is taken only if its distance on the unit sphere, sqrt(2 (1 - cosine)), is below 0.8
#: of the runner-up's. Without it a person seen again after a duplicate identity was made (a
#: video played in a loop, a kiosk's regular) is ambiguous forever and gets a new identity each time.
DISTINCT_RATIO = 0.8


def stands_out(best: float, runner_up: float, ratio: float = DISTINCT_RATIO) -> bool:
    """Lowe's ratio test on cosine similarities in [-1, 1]: whether ``best`` is clearly nearer than
    ``runner_up`` (Euclidean distance of unit vectors, sqrt(2 (1 - cosine)), below ``ratio`` times it)."""
    near, far = max(1.0 - best, 0.0), max(1.0 - runner_up, 0.0)
    return far > 0.0 and near < (ratio * ratio) * far


@dataclass(frozen=True)
class Identities:
    """Identities of N tracked detections (rows match the tracked :class:`~edge_reid.detections.Detections`).

    Attributes:
        identity_ids: (N,) int64 gallery identity ids (>= 1), -1 while a track has no embedding yet.
        names: N names of enrolled identities (None for unnamed ones).
        similarities: (N,) float32 cosine similarity in [-1, 1] of the track's template to its
            identity when the track took it (later sightings do not change it); 0 for identities
            the track created.
        is_new: (N,) bool, True in the frame where the track created its identity.
    """

    identity_ids: np.ndarray
    names: tuple[str | None, ...]
    similarities: np.ndarray
    is_new: np.ndarray

    def __len__(self) -> int:
        return int(self.identity_ids.shape[0])

    @staticmethod
    def empty() -> "Identities":
        """No identities."""
        return Identities(np.zeros(0, np.int64), (), np.zeros(0, np.float32), np.zeros(0, bool))


def template(track: Track) -> np.ndarray | None:
    """(D,) float32 L2-normalised mean of the track's latest clean embeddings (its latest embedding
    of any kind when it has no clean one), or None without embeddings."""
    if track.history:
        recent = track.history_array()[-TEMPLATE_SIZE:]
    elif track.last_embedding is not None:
        recent = track.last_embedding[None, :]
    else:
        return None
    return mean_direction(recent)


class TrackIdentities:
    """Gives each confirmed track a gallery identity and keeps it.

    Args:
        gallery: the identity :class:`~edge_reid.matching.gallery.Gallery`.
        reid_threshold: least cosine similarity in [-1, 1] for a track to take a *named*
            identity (enrolled, or named by the user) that no motion supports. Stricter than the
            gallery's ``threshold`` (which applies when a lost track's motion gate supports the
            match), because a new track is compared with every stored identity: see
            docs/tracking.md. Default: the bundled OSNet's similarity at a 0.01% false-match
            rate on labelled crops.
        unnamed_reid_threshold: the same for an *unnamed* identity (one a run made: someone gone
            for longer than the tracker keeps lost tracks). Default: above every different-person
            pair of the labelled crops (:data:`~edge_reid.defaults.UNNAMED_REID_THRESHOLD` says why).

    Raises:
        ValueError: a threshold outside [-1, 1] or NaN.
    """

    def __init__(
        self, gallery: Gallery, reid_threshold: float = REID_THRESHOLD, unnamed_reid_threshold: float = UNNAMED_REID_THRESHOLD
    ) -> None:
        for name, value in (("reid_threshold", reid_threshold), ("unnamed_reid_threshold", unnamed_reid_threshold)):
            if not -1.0 <= value <= 1.0:
                raise ValueError(f"{name} must be a cosine similarity in [-1, 1], got {value}")
        self.gallery = gallery
        self.reid_threshold = float(reid_threshold)
        self.unnamed_reid_threshold = float(unnamed_reid_threshold)
        self.kalman = BoxKalmanFilter()
        self._identity_of: dict[int, int] = {}  # track id -> identity id
        self._similarity_of: dict[int, float] = {}

    def identity_of(self, track_id: int) -> int:
        """The identity of a live track, or -1."""
        return self._identity_of.get(int(track_id), -1)

    def held_identities(self) -> set[int]:
        """Identities held by live tracks (kept by pruning)."""
        return set(self._identity_of.values())

    @property
    def contest_threshold(self) -> float:
        """The lower of the two thresholds: identities at or above it compete for a track taken on appearance
        alone, and the best is taken only if it stands out (:func:`stands_out`) and reaches its own threshold."""
        return min(self.reid_threshold, self.unnamed_reid_threshold)

    def reid_threshold_of(self, identity: int) -> float:
        """The cosine similarity in [-1, 1] a track needs to take ``identity`` on appearance alone (no motion
        support): ``reid_threshold`` for a named identity, ``unnamed_reid_threshold`` otherwise (an id not in
        the gallery included)."""
        named = identity in self.gallery and self.gallery.get(identity).name is not None
        return self.reid_threshold if named else self.unnamed_reid_threshold

    def update(self, tracker: Tracker, tracked: Detections, now_s: float | None = None) -> Identities:
        """Identify the tracks reported in one frame.

        A track whose identity is no longer in the gallery (removed meanwhile) is identified
        again, as a track without one.

        Args:
            tracker: the tracker that produced ``tracked`` (its tracks hold the embeddings).
            tracked: the frame's tracked detections (``track_ids`` set), from :meth:`Tracker.update`.
            now_s: time for the gallery's sightings, seconds since 1970 (default: wall clock, so that a
                saved gallery keeps meaningful times).

        Returns:
            :class:`Identities`, one row per tracked detection.

        Raises:
            TypeError, ValueError: ``now_s`` is not a time the gallery can hold
                (:func:`~edge_reid.matching.gallery.check_timestamp`), raised before anything changes.
        """
        if now_s is not None:
            now_s = check_timestamp(now_s, "now_s")
        live = {t.track_id: t for t in tracker.tracks}
        # A track that died, or whose identity was removed from the gallery (a "forget me"
        # request): the latter is unidentified again and gets an identity by the usual rules.
        for track_id in [t for t, i in self._identity_of.items() if t not in live or i not in self.gallery]:
            del self._identity_of[track_id]
            self._similarity_of.pop(track_id, None)
        ids = [] if tracked.track_ids is None else tracked.track_ids.tolist()
        tracks = [live[track_id] for track_id in ids]
        pending = [t for t in tracks if t.track_id not in self._identity_of]
        created = self._identify(tracker, pending, live, now_s) if pending else set()
        identified_now = {t.track_id for t in pending}  # their sighting is recorded by _identify: once a frame
        for track in tracks:
            if track.track_id in self._identity_of and track.track_id not in identified_now:
                fresh = track.last_embedded_s is not None and track.last_embedded_s == tracker.clock_s and track.history
                self.gallery.observe(self._identity_of[track.track_id], track.history[-1] if fresh else None, timestamp=now_s)
        identity_ids = np.array([self._identity_of.get(t, -1) for t in ids], np.int64)
        names = tuple(self.gallery.get(i).name if i in self.gallery else None for i in identity_ids.tolist())
        similarities = np.array([self._similarity_of.get(t, 0.0) for t in ids], np.float32)
        is_new = np.array([t in created for t in ids], bool)
        return Identities(identity_ids, names, similarities, is_new)

    # -- internals ----------------------------------------------------------------------------
    def _identify(self, tracker: Tracker, pending: list[Track], live: dict[int, Track], now_s: float | None) -> set[int]:
        """Match pending tracks to identities; returns the ids of tracks that created a new identity."""
        ready = [(t, v) for t in pending if (v := template(t)) is not None]
        if not ready:
            return set()
        asking = {t.track_id for t, _ in ready}
        holder_of = {identity: live[track_id] for track_id, identity in self._identity_of.items() if track_id not in asking}
        candidates, margin = self._candidates([v for _, v in ready], [t for t, _ in ready], holder_of)
        columns = assign_unique(margin, 0.0) if candidates.size else np.full(len(ready), -1, np.int64)
        created = set()
        for row, (track, vector) in enumerate(ready):
            if columns[row] >= 0:
                identity = int(candidates[columns[row]])
                holder = holder_of.get(identity)
                if holder is not None:  # a lost track: its person is this one now
                    tracker.remove(holder.track_id)
                    del self._identity_of[holder.track_id]
                    self._similarity_of.pop(holder.track_id, None)
                self._identity_of[track.track_id] = identity
                self._similarity_of[track.track_id] = float(self.gallery.similarity(identity, vector)[0])
                self.gallery.observe(identity, track.history[-1] if track.history else None, timestamp=now_s)
            else:
                rows = track.history_array() if track.history else vector[None, :]
                identity = self.gallery.add(self.gallery.novel_views(rows), timestamp=now_s)
                self._identity_of[track.track_id] = identity
                self._similarity_of[track.track_id] = 0.0
                created.add(track.track_id)
        return created

    def _rivals_of_one_person(self, scores: list[float], identities: list[int], held: set[int]) -> set[int]:
        """The identity to take when no passing identity stands out (``scores`` best first, each at least
        :attr:`contest_threshold`): the rivals (those not clearly worse than the best) all reach their own
        thresholds, carry at most one name between them and none is ``held`` by a track (in view or lost),
        so by the strictest test they are all this person: copies of one person a run made on earlier
        returns (each made when the person's first views fell short of the threshold), a run's identity for
        someone the user enrolled or named since, or identities named alike (the way to merge them). The
        best-scoring named one, else the oldest (the lowest id: the one the person was first given, so
        every return gets the same identity), instead of one more copy, which would leave the person
        contested on every later return and make the contest likelier each time. Empty otherwise (two
        names, a rival below its own threshold, or one held by a track, whose person is elsewhere:
        appearance cannot say who it is)."""
        rivals = [(score, identity) for score, identity in zip(scores, identities) if not stands_out(scores[0], score)]
        if any(identity in held or not at_least(score, self.reid_threshold_of(identity)) for score, identity in rivals):
            return set()
        named = [identity for _, identity in rivals if self.gallery.get(identity).name is not None]
        if len({self.gallery.get(identity).name for identity in named}) > 1:
            return set()
        return {named[0] if named else min(identity for _, identity in rivals)}

    def _candidates(self, templates: list[np.ndarray], tracks: list[Track], holder_of: dict[int, Track]):
        """Candidate identities (K,) and the (P, K) margin of each track's similarity over the threshold
        that applies (-inf where the identity is not a candidate for that track)."""
        if not len(self.gallery):
            return np.zeros(0, np.int64), np.zeros((len(templates), 0), np.float32)
        queries = np.stack(templates)
        scores, found = self.gallery.search(queries, len(templates) + len(holder_of) + EXTRA_CANDIDATES)
        candidates = np.unique(found[found >= 1])
        margin = np.full((len(templates), candidates.size), -np.inf, np.float32)
        lost = [(identity, holder) for identity, holder in holder_of.items() if holder.state == TrackState.LOST]
        gated: set[tuple[int, int]] = set()
        if lost:
            boxes = np.stack([t.mean[:4] for t in tracks])
            distance = self.kalman.gating_distance(
                np.stack([h.mean for _, h in lost]), np.stack([h.covariance for _, h in lost]), boxes
            )
            gated = {(row, identity) for (identity, _), near in zip(lost, distance <= GATE_CHI2_95) for row in np.flatnonzero(near)}
        for row in range(len(templates)):
            visible = [s for s, i in zip(scores[row], found[row]) if i in holder_of and holder_of[i].state != TrackState.LOST]
            best_visible = max(visible, default=-np.inf)
            # Two or more identities pass the lower of the two strict thresholds: only the best may be taken
            # without the motion gate's support, only if it stands out (else appearance cannot tell them
            # apart), and only at its own threshold (named or unnamed) below.
            strict = at_least(scores[row], self.contest_threshold) & (found[row] >= 1)
            order = np.argsort(-scores[row][strict])
            passing, passing_ids = scores[row][strict][order], found[row][strict][order]
            contested = passing.size > 1
            takeable = {int(passing_ids[0])} if contested and stands_out(float(passing[0]), float(passing[1])) else set()
            if contested and not takeable:
                takeable = self._rivals_of_one_person(passing.tolist(), passing_ids.tolist(), set(holder_of))
            for score, identity in zip(scores[row].tolist(), found[row].tolist()):
                holder = holder_of.get(identity)
                if identity < 1 or (holder is not None and holder.state != TrackState.LOST):
                    continue  # held by a track in view: two live tracks never share an identity
                if score <= best_visible:
                    continue  # looks at least as much like someone in view elsewhere: not telling
                supported = (row, identity) in gated
                if holder is not None and not supported:
                    continue  # a lost track elsewhere: its person cannot be here
                if not supported and contested and identity not in takeable:
                    continue
                threshold = self.gallery.threshold if supported else self.reid_threshold_of(identity)
                margin[row, np.searchsorted(candidates, identity)] = margin_over(score, threshold)  # 0 exactly at it
        return candidates, margin
