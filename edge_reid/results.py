"""What the loop hands its sinks and callers: one :class:`FrameResult` per frame, with
:class:`Person` rows and :class:`PastPerson` boxes learned late (small frozen dataclasses, no
behaviour; the pipeline builds them, sinks and applications read them)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from edge_reid.detections import Detections

if TYPE_CHECKING:
    from edge_reid.identities import Identities


@dataclass(frozen=True)
class Person:
    """One tracked person with an identity.

    Attributes:
        bbox: (x1, y1, x2, y2) in pixels of the frame (the track's filtered box).
        score: detector confidence in [0, 1] of the matched detection.
        track_id: the tracker's id (>= 1); a person keeps it while followed without a break.
        identity_id: gallery identity id (>= 1), kept across breaks and runs; -1 while unknown.
        name: the identity's enrolled name, or None.
        similarity: cosine similarity in [-1, 1] of the track to its identity when it was
            matched; 0 when the track created the identity.
        is_new: True in the frame where this track created its identity.
        state: ``"new"`` (first frame reported), ``"tracked"``, or ``"refound"`` (back after being lost).
    """

    bbox: tuple[float, float, float, float]
    score: float
    track_id: int
    identity_id: int
    name: str | None
    similarity: float
    is_new: bool
    state: str


@dataclass(frozen=True)
class PastPerson:
    """A person's box in an earlier frame, learned in this one (past-frame output).

    A track is reported from its confirming hit on, and not while it is lost. Once it is
    confirmed, or re-found within its lost period, the frames in between are known to have held
    this person; their boxes come with the frame that learned them (DeepStream's past-frame
    data): the tentative hits before confirmation, and boxes interpolated linearly in time across
    a lost gap (ByteTrack's interpolation, done when the gap closes). Frames already handed out
    are never held back for them.

    Attributes:
        frame_index: 0-based index, in its source, of the earlier frame the box belongs to.
        timestamp_s: that frame's time, seconds.
        bbox: (x1, y1, x2, y2) pixels of that frame, clipped to it.
        score: detector confidence in [0, 1] (an interpolated box: the lower of the two
            detections around the gap).
        track_id: the tracker's id.
        identity_id: the track's identity (as in this frame), -1 while unknown.
        name: the identity's enrolled name, or None.
        kind: ``"tentative"`` (a hit before the track was confirmed) or ``"interpolated"`` (a lost gap).
        file_name: the earlier frame's image file name for image-folder sources, else None.
    """

    frame_index: int
    timestamp_s: float
    bbox: tuple[float, float, float, float]
    score: float
    track_id: int
    identity_id: int
    name: str | None
    kind: str
    file_name: str | None = None


@dataclass(frozen=True)
class FrameResult:
    """What one frame shows: tracked people and their identities.

    Attributes:
        frame_index: 0-based index of the frame in its source.
        timestamp_s: time of the frame in seconds.
        image: (H, W, 3) uint8 BGR frame (not copied: do not keep it past the next frame of a live source
            if you modify it).
        tracked: the people of confirmed tracks seen in this frame: boxes (N, 4) float32 x1, y1, x2, y2
            pixels, clipped to the frame; scores (N,); track_ids (N,) int64.
        identities: :class:`~edge_reid.identities.Identities`, row i for person i of ``tracked``.
        states: N track states, ``"new"``, ``"tracked"`` or ``"refound"``.
        detections: people the detector found (or the caller gave) in this frame, before tracking.
        embedded: crops embedded by the ReID model in this frame.
        skipped_boxes: boxes dropped as empty, outside the frame or too small.
        file_name: the image's file name for image-folder sources (``"img_0042.jpg"``), else None.
        past: boxes of earlier frames learned in this one (:class:`PastPerson`), oldest frame first;
            empty when the pipeline's ``past_frames`` is off.
    """

    frame_index: int
    timestamp_s: float
    image: np.ndarray
    tracked: Detections
    identities: Identities
    states: tuple[str, ...]
    detections: int = 0
    embedded: int = 0
    skipped_boxes: int = 0
    file_name: str | None = None
    past: tuple[PastPerson, ...] = ()

    def __len__(self) -> int:
        return len(self.tracked)

    @property
    def people(self) -> list[Person]:
        """The tracked people as :class:`Person` objects."""
        ids = self.identities
        return [
            Person(tuple(float(v) for v in box), float(score), int(track), int(identity), name, float(sim), bool(new), state)
            for box, score, track, identity, name, sim, new, state in zip(
                self.tracked.boxes, self.tracked.scores, self.tracked.track_ids, ids.identity_ids, ids.names,
                ids.similarities, ids.is_new, self.states,
            )
        ]
