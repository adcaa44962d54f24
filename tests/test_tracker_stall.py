"""The tracker after a stall: a stream that stops for seconds and comes back, people having moved on.

Defect: after a stall, confirmed tracks were matched only by IoU with their predicted boxes; a walker
who slowed down, turned or stopped is far from a prediction seconds ahead, so most tracks were lost
and everyone started a new track (on vtest's real detections, of the people tracked before a stall,
33 of 151 kept their track after 3 s, 16 of 140 after 5 s). Now a confirmed track still unmatched
after a stall may take a detection inside its Kalman gate whose appearance is near its own
(DeepSORT's matching); at ordinary frame intervals nothing changes."""

import numpy as np

from edge_reid.detections import Detections
from edge_reid.tracking import Tracker

W, H = 40.0, 100.0
DIM = 16


def _box(x: float, y: float = 300.0) -> list[float]:
    return [x - W / 2, y - H / 2, x + W / 2, y + H / 2]


def _unit(vector) -> np.ndarray:
    v = np.asarray(vector, np.float64)
    return (v / np.linalg.norm(v)).astype(np.float32)


LOOK = _unit(np.random.default_rng(0).normal(size=DIM))
_OTHER = _unit(np.random.default_rng(1).normal(size=DIM))


def _similar(similarity: float) -> np.ndarray:
    """A look with exactly this cosine similarity to LOOK."""
    orthogonal = _unit(_OTHER - float(_OTHER @ LOOK) * LOOK)
    return _unit(similarity * LOOK + np.sqrt(1.0 - similarity**2) * orthogonal)


def _walk_then(step_s: float, x_after: float, look_after, interval_s: float = 0.1):
    """A person walks right at 30 px/s for 20 frames of ``interval_s``, the stream stops for ``step_s``
    and comes back with the person at ``x_after`` looking like ``look_after`` (None: no embeddings).
    Returns (the track's id before, the ids reported after)."""
    tracker = Tracker()
    t = 0.0
    for i in range(20):
        t = i * interval_s
        embeddings = None if look_after is None else LOOK[None]
        tracked = tracker.update(Detections.from_boxes([_box(100 + 30 * t)], [0.9]), embeddings, t)
    (before,) = tracked.track_ids.tolist()
    embeddings = None if look_after is None else np.asarray(look_after, np.float32)[None]
    after = tracker.update(Detections.from_boxes([_box(x_after)], [0.9]), embeddings, t + step_s)
    return before, after.track_ids.tolist()


def test_a_walker_who_stopped_during_a_stall_keeps_their_track_by_appearance():
    # Last seen at 157 px; predicted at 247 px 3 s later, seen at 170: the boxes do not overlap.
    before, after = _walk_then(3.0, 170.0, _similar(0.9))
    assert after == [before]
    # After 10 s too (the filter's gate has grown with the time; appearance decides).
    before, after = _walk_then(10.0, 120.0, _similar(0.9))
    assert after == [before]


def test_after_a_stall_a_different_look_or_no_embedding_starts_a_new_track():
    from edge_reid.tracking.tracker import STALL_APPEARANCE_DISTANCE

    # Similarity 0.7: above the veto (0.5) but below DeepSORT's 0.8: not the same person.
    assert 1.0 - 2.0 * STALL_APPEARANCE_DISTANCE == 0.8
    assert _walk_then(3.0, 170.0, _similar(0.7))[1] == []  # a new tentative track, not reported yet
    # Motion alone (no embeddings): as before, IoU with the prediction only.
    assert _walk_then(3.0, 170.0, None)[1] == []
    # The prediction still wins where it overlaps: the walker who kept walking is kept with any look.
    before, after = _walk_then(3.0, 157.0 + 90.0, _similar(0.7))
    assert after == [before]


def test_only_a_step_much_longer_than_the_usual_one_is_a_stall():
    from edge_reid.tracking.tracker import STALL_FRAME_INTERVALS, STALL_MIN_S

    assert (STALL_FRAME_INTERVALS, STALL_MIN_S) == (3.0, 0.5)
    # A stream at one frame every 1.5 s: a step of 3 s is two intervals, no stall, IoU alone.
    before, after = _walk_then(3.0, 100 + 30 * 28.5 + 13.0, _similar(0.95), interval_s=1.5)
    assert after == []
    # 5 s is more than three intervals: a stall, matched by appearance.
    before, after = _walk_then(5.0, 100 + 30 * 28.5 + 13.0, _similar(0.95), interval_s=1.5)
    assert after == [before]
    # At 10 fps a step of 0.4 s (three frames missing) is no stall: below STALL_MIN_S. Seen 29 px behind
    # the prediction (169 px): no IoU, but inside the Kalman gate, where a stall would match by appearance.
    assert _walk_then(0.4, 140.0, _similar(0.95))[1] == []


def test_after_a_stall_two_people_get_their_own_tracks_back_by_appearance():
    """Two people walking side by side swap places during a stall: neither is near a prediction, each
    lies inside both tracks' grown gates, and appearance gives each their own track."""
    other = _similar(0.0)
    tracker = Tracker()
    for i in range(20):
        t = i / 10
        tracked = tracker.update(Detections.from_boxes([_box(100 + 20 * t), _box(300 + 20 * t)], [0.9, 0.9]),
                                 np.stack([LOOK, other]), t)
    first, second = tracked.track_ids.tolist()
    # 4 s later: the predictions lie at 218 and 418; A is seen at 330, B at 150: no IoU with either.
    after = tracker.update(Detections.from_boxes([_box(330), _box(150)], [0.9, 0.9]), np.stack([LOOK, other]), 1.9 + 4.0)
    assert after.track_ids.tolist() == [first, second]


def test_a_track_kept_over_a_stall_is_not_reported_as_re_found():
    """It was tracked up to the stall: matched by appearance, it was never lost (no re-found event)."""
    tracker = Tracker()
    for i in range(20):
        tracker.update(Detections.from_boxes([_box(100 + 3 * i)], [0.9]), LOOK[None], i / 10)
    (track,) = tracker.tracks
    after = tracker.update(Detections.from_boxes([_box(170.0)], [0.9]), _similar(0.9)[None], 1.9 + 3.0)
    assert after.track_ids.tolist() == [track.track_id] and not track.refound
