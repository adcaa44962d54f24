import numpy as np
import pytest

from edge_reid.tracking.association import (
    FORBIDDEN,
    GATED_LIMIT,
    appearance_similarity,
    fuse_costs,
    gated_motion_cost,
    iou_cost,
    linear_assignment,
)
from edge_reid.tracking.boxes import coverage_matrix, iou_matrix, xywh_to_xyxy, xyxy_to_xywh


def test_box_geometry():
    a = np.array([[0, 0, 10, 10], [0, 0, 0, 10]], float)
    b = np.array([[5, 0, 15, 10], [20, 20, 30, 30]], float)
    np.testing.assert_allclose(iou_matrix(a, b), [[50 / 150, 0], [0, 0]])
    np.testing.assert_allclose(iou_cost(a, b), 1 - iou_matrix(a, b))
    np.testing.assert_allclose(coverage_matrix(a[:1], b), [[0.5, 0]])
    np.testing.assert_allclose(xywh_to_xyxy(xyxy_to_xywh(b)), b)
    assert iou_matrix(np.zeros((0, 4)), b).shape == (0, 2)


def test_appearance_is_best_over_history_and_nan_where_unknown():
    history = np.array([[1.0, 0.0], [0.0, 1.0]], np.float32)
    embeddings = np.array([[0.6, 0.8], [1.0, 0.0], [0.0, 0.0]], np.float32)
    similarity = appearance_similarity([history, None], embeddings, np.array([True, True, False]))
    np.testing.assert_allclose(similarity[0, :2], [0.8, 1.0], atol=1e-6)
    assert np.isnan(similarity[0, 2]) and np.isnan(similarity[1]).all()


def test_fused_cost_gates_both_ways():
    motion = np.array([[0.3, 0.3, 0.9, 0.3]])  # IoU 0.7, 0.7, 0.1, 0.7
    similarity = np.array([[0.9, 0.55, 0.99, np.nan]])
    cost = fuse_costs(motion, similarity, proximity=0.5, appearance_thresh=0.2, veto_similarity=0.5)
    assert cost[0, 0] == pytest.approx(0.05)  # close and alike: appearance lowers the cost
    assert cost[0, 1] == pytest.approx(0.3)  # close, not alike enough, not clearly different: motion
    assert cost[0, 2] == pytest.approx(0.9)  # alike but far apart: appearance cannot join them
    assert cost[0, 3] == pytest.approx(0.3)  # no embedding: motion
    vetoed = fuse_costs(motion, np.array([[0.3, 0.3, 0.3, 0.3]]), 0.5, 0.2, 0.5)
    assert (vetoed == FORBIDDEN).all()  # clearly different: never, whatever the overlap


def test_assignment_respects_the_limit_and_keeps_a_cheap_pair():
    cost = np.array([[0.1, 0.7], [0.7, FORBIDDEN]])
    # Two costly pairs (0.7 + 0.7) are not worth the cheap one (0.1) left alone plus two unmatched.
    matches, tracks, detections = linear_assignment(cost, 0.8)
    assert matches.tolist() == [[0, 0]] and tracks.tolist() == [1] and detections.tolist() == [1]
    matches, _, _ = linear_assignment(np.array([[0.9]]), 0.8)
    assert matches.shape == (0, 2)
    matches, tracks, detections = linear_assignment(np.zeros((0, 3)), 0.8)
    assert matches.shape == (0, 2) and detections.tolist() == [0, 1, 2]


def test_gated_cost_admits_what_either_gate_admits_iou_pairs_first():
    motion = np.array([[0.2, 0.9, 0.95, 0.9, 0.4]])  # IoU 0.8, 0.1, 0.05, 0.1, 0.6
    distance = np.array([[50.0, 1.0, 5.0, 12.0, 0.5]])  # squared Mahalanobis
    cost = gated_motion_cost(motion, distance, min_iou=0.3, gate_chi2=9.4877)
    assert cost[0, 0] == pytest.approx(0.2)  # the IoU gate admits it, the filter's gate would not: kept
    assert cost[0, 4] == pytest.approx(0.4)  # both admit: the IoU cost
    assert 0.7 < cost[0, 1] < cost[0, 2] <= 1.0  # only the filter's gate: after every IoU pair, nearer first
    assert cost[0, 3] == FORBIDDEN  # neither
    matches, _, _ = linear_assignment(cost, GATED_LIMIT)
    assert matches.tolist() == [[0, 0]]
    matches, _, _ = linear_assignment(cost[:, 1:4], GATED_LIMIT)
    assert matches.tolist() == [[0, 0]]  # the nearest of the gate-only pairs
    # Appearance still vetoes a gate-only pair and never lowers its cost (it is far below `proximity`).
    fused = fuse_costs(cost[:, 1:3], np.array([[0.3, 0.99]]), proximity=0.5, appearance_thresh=0.2, veto_similarity=0.5)
    assert fused[0, 0] == FORBIDDEN and fused[0, 1] == pytest.approx(cost[0, 2])
    with pytest.raises(ValueError, match="gate_chi2"):
        gated_motion_cost(motion, distance, 0.3, 0.0)


def test_linear_assignment_unmatched_rows_and_columns_match_setdiff_on_random_costs():
    # the unmatched tracks and detections are the ascending indices not in a pair (np.setdiff1d's answer)
    rng = np.random.default_rng(7)
    for _ in range(300):
        rows, cols = int(rng.integers(0, 9)), int(rng.integers(0, 9))
        cost = rng.uniform(0.0, 1.2, (rows, cols))
        cost[rng.random((rows, cols)) < 0.3] = FORBIDDEN
        matches, unmatched_tracks, unmatched_detections = linear_assignment(cost, 0.8)
        if rows and cols:
            assert unmatched_tracks.dtype == np.int64 and unmatched_detections.dtype == np.int64
            np.testing.assert_array_equal(unmatched_tracks, np.setdiff1d(np.arange(rows), matches[:, 0]))
            np.testing.assert_array_equal(unmatched_detections, np.setdiff1d(np.arange(cols), matches[:, 1]))
        assert len(matches) + len(unmatched_tracks) == rows and len(matches) + len(unmatched_detections) == cols
