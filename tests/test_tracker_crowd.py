"""A crowd, tracked for long enough that every track holds a long appearance history: appearance is scored
only for the pairs whose cost it can still bring under the assignment limit, with the same tracks as when
every pair is scored. Before, every track's history (up to 100 views) was scored against every embedded
detection of the frame, wherever it was, and every track's history stacked into an array each frame: in a
steady crowd the tracker's time per frame grew with the histories for 100 s (benchmarks/tracker_crowd.py
measures it side by side)."""

from __future__ import annotations

import numpy as np
import pytest

import edge_reid.tracking.tracker as tracker_module
from edge_reid.detections import Detections
from edge_reid.tracking import Tracker, TrackerConfig
from edge_reid.tracking.association import appearance_similarity

PEOPLE, FPS, SECONDS = 30, 10.0, 12.0


def _crowd_run(config: TrackerConfig, seed: int = 0) -> list[list[tuple[int, tuple[float, ...]]]]:
    """Each frame's (track id, box) pairs for a crowd on a grid, walking, with detections missed now and then
    and two people swapping places through each other."""
    rng = np.random.default_rng(seed)
    columns = 6
    x = (np.arange(PEOPLE) % columns) * 120.0 + 20.0
    y = (np.arange(PEOPLE) // columns) * 210.0 + 20.0
    looks = rng.normal(size=(PEOPLE, 64)).astype(np.float32)
    looks /= np.linalg.norm(looks, axis=1, keepdims=True)
    tracker, frames = Tracker(config), []
    for frame in range(int(SECONDS * FPS)):
        t = frame / FPS
        left = x + 6.0 * t + rng.normal(0, 1.0, PEOPLE)
        left[0] += 40.0 * t  # walks through the person on its right, who walks back through it
        left[1] -= 40.0 * t
        boxes = np.stack([left, y, left + 50.0, y + 120.0], axis=1) + rng.normal(0, 1.0, (PEOPLE, 4))
        seen = rng.random(PEOPLE) > 0.05
        vectors = looks + rng.normal(0, 0.05, looks.shape).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        detections = Detections.from_boxes(boxes[seen].astype(np.float32), np.full(seen.sum(), 0.9, np.float32))
        tracked = tracker.update(detections, vectors[seen], t)
        frames.append([(int(i), tuple(np.round(b, 3))) for i, b in zip(tracked.track_ids, tracked.boxes)])
    return frames


@pytest.mark.parametrize("config", [TrackerConfig(), TrackerConfig(proximity=0.1), TrackerConfig(veto_similarity=-1.0)],
                         ids=["defaults", "proximity below the IoU gate", "no veto"])
def test_scoring_only_the_pairs_appearance_can_change_gives_the_same_tracks(config, monkeypatch):
    sparse = _crowd_run(config)
    monkeypatch.setattr(tracker_module, "pairs_appearance_can_change", lambda cost, limit, proximity: np.ones(cost.shape, bool))
    every_pair = _crowd_run(config)
    assert sparse == every_pair
    assert len({track_id for frame in sparse for track_id, _ in frame}) >= PEOPLE


def test_far_apart_pairs_are_not_scored(monkeypatch):
    scored, possible = [], []

    stacked = []

    def counting(histories, embeddings, embedded, wanted=None):
        possible.append(len(histories) * int(embedded.sum()))
        scored.append(int((wanted & embedded).sum()))
        stacked.append((sum(h is not None for h in histories), int((wanted & embedded).any(axis=1).sum())))
        return appearance_similarity(histories, embeddings, embedded, wanted)

    monkeypatch.setattr(tracker_module, "appearance_similarity", counting)
    _crowd_run(TrackerConfig())
    assert sum(possible) > 50 * PEOPLE * PEOPLE
    assert sum(scored) < 0.1 * sum(possible), "each track is scored against the few detections near it, not the crowd"
    assert all(histories <= rows_with_pairs for histories, rows_with_pairs in stacked), "histories stacked only where used"


def test_appearance_similarity_scores_only_the_wanted_pairs():
    histories = [np.eye(3, dtype=np.float32)[:2], np.eye(3, dtype=np.float32)[2:]]
    embeddings = np.eye(3, dtype=np.float32)
    wanted = np.array([[True, False, True], [False, False, True]])
    similarity = appearance_similarity(histories, embeddings, np.array([True, True, True]), wanted)
    assert np.isnan(similarity[~wanted]).all() and similarity[wanted].tolist() == [1.0, 0.0, 1.0]


def test_with_proximity_below_the_iou_gate_appearance_keeps_a_track_through_a_jump():
    """proximity 0.1 < min_iou 0.2: a confirmed track's next box overlaps its prediction at IoU 0.14, under the IoU
    gate, but appearance (the same look) may lower the pair's cost there: the pair must be scored, so the track
    keeps its id (scoring only the pairs motion admits gave a new track)."""
    look = np.zeros(8, np.float32)
    look[0] = 1.0
    tracker = Tracker(TrackerConfig(proximity=0.1))
    box = np.array([100, 100, 150, 220], np.float32)
    for frame in range(5):
        tracked = tracker.update(Detections.from_boxes(box[None], [0.9]), look[None], frame / 10)
    jumped = box + np.array([38, 0, 38, 0], np.float32)
    after = tracker.update(Detections.from_boxes(jumped[None], [0.9]), look[None], 0.5)
    assert after.track_ids.tolist() == tracked.track_ids.tolist() == [1]
