"""Which detections are embedded: new, tentative, overlapped, ambiguous, due; never the clear ones."""

import numpy as np
import pytest

from edge_reid.detections import Detections
from edge_reid.tracking import Tracker, TrackerConfig, plan_embeddings

DIM = 8


def _box(x: float, y: float = 300.0) -> list[float]:
    return [x - 20, y - 50, x + 20, y + 50]


def _step(tracker, xs, t, scores=None, refresh_s=1.0):
    detections = Detections.from_boxes(np.array([_box(x) for x in xs], np.float32).reshape(-1, 4), scores or [0.9] * len(xs))
    plan = plan_embeddings(tracker, detections, t, refresh_s)
    embeddings = np.eye(DIM, dtype=np.float32)[: len(xs)]  # each person looks like themself, unlike the others
    tracker.update(detections, embeddings, t, embedded=plan)
    return plan.tolist()


def test_new_and_tentative_are_embedded_then_clear_tracks_are_not():
    tracker = Tracker()
    plans = [_step(tracker, [100 + 5 * i, 400 + 5 * i], i / 10) for i in range(6)]
    assert plans[:3] == [[True, True]] * 3
    assert plans[3:] == [[False, False]] * 3


def test_refresh_when_due():
    tracker = Tracker()
    plans = [_step(tracker, [100 + 5 * i], i / 10, refresh_s=0.5) for i in range(9)]
    # embedded while tentative (0.0-0.2), then again once the latest clean embedding is 0.5 s old
    assert [p[0] for p in plans] == [True, True, True, False, False, False, False, True, False]


def test_overlapping_people_and_weak_detections():
    tracker = Tracker()
    for i in range(4):
        _step(tracker, [100 + 5 * i, 300 - 5 * i], i / 10)
    # they come close: each box covers part of the other
    plan = _step(tracker, [190, 210], 0.4)
    assert plan == [True, True]
    weak = _step(tracker, [180, 600], 0.5, scores=[0.3, 0.3])
    assert weak == [False, False]  # low-score detections are matched by IoU only


def test_bad_refresh_is_refused():
    with pytest.raises(ValueError, match="refresh_s"):
        plan_embeddings(Tracker(), Detections.empty(), 0.0, refresh_s=0)


def test_a_score_exactly_at_high_score_is_embedded():
    """Defect: float32 scores compared with float64 thresholds put a detection scored exactly at
    ``high_score`` (0.9 stored as 0.89999998) below it: a new person was not embedded."""
    tracker = Tracker(TrackerConfig(high_score=0.9, new_track_score=0.9))
    assert plan_embeddings(tracker, Detections.from_boxes([_box(100)], [0.9]), 0.0).tolist() == [True]


def test_no_timestamp_is_the_trackers_stream_clock_as_in_update():
    """Defect: ``plan_embeddings(tracker, detections, None)`` raised an unnamed TypeError, while
    ``Tracker.update`` takes None as the time of the call on the tracker's stream clock."""
    tracker = Tracker()
    tracker._stream_clock.seconds = iter([0.0, 0.5, 1.0, 1.5]).__next__  # each reading 0.5 s later
    for _ in range(2):
        detections = Detections.from_boxes([_box(100)], [0.9])
        assert plan_embeddings(tracker, detections, None).tolist() == [True]
        tracker.update(detections, None, None)
    assert tracker.clock_s == 0.5  # one reading per frame: update keeps the time plan_embeddings read
