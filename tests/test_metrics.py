"""The Market-1501 protocol on a hand-built distance matrix whose answers are worked out below."""

import numpy as np
import pytest

from edge_reid.evaluation.metrics import cosine_distance, evaluate_market1501

# Gallery:      g0        g1        g2        g3         g4              g5
G_PIDS = np.array([1, 2, 1, -1, 0, 1])  # g3 junk, g4 distractor
G_CAMS = np.array([1, 2, 2, 3, 2, 3])
# Queries: q0 = person 1 seen by camera 1, q1 = person 2 camera 1,
# q2 = person 3 (not in the gallery), q3 = a distractor used as a query.
Q_PIDS = np.array([1, 2, 3, 0])
Q_CAMS = np.array([1, 1, 1, 1])
DIST = np.array(
    [
        # g0   g1   g2   g3   g4   g5
        [0.1, 0.3, 0.4, 0.2, 0.5, 0.6],  # q0
        [0.9, 0.05, 0.1, 0.8, 0.7, 0.6],  # q1
        [0.1, 0.2, 0.3, 0.4, 0.5, 0.6],  # q2
        [0.5, 0.5, 0.5, 0.5, 0.1, 0.5],  # q3
    ]
)


def test_protocol_on_hand_built_matrix():
    # q0 ranks g0 g3 g1 g2 g4 g5. g0 is person 1 on q0's own camera 1: removed.
    #    g3 is junk: removed. Left: g1 (no), g2 (yes), g4 (no, distractor), g5 (yes).
    #    First hit at rank 2. AP = mean(precision at hits) = (1/2 + 2/4) / 2 = 0.5.
    # q1 ranks g1 first: person 2 on camera 2, a hit at rank 1. AP = 1.
    # q2 has no person 3 in the gallery: skipped.
    # q3 is a distractor: it has no identity, so g4 is no match: skipped.
    # CMC rank-1 = (0 + 1) / 2 = 0.5, rank-2 onwards = 1. mAP = (0.5 + 1) / 2 = 0.75.
    scores = evaluate_market1501(DIST, Q_PIDS, G_PIDS, Q_CAMS, G_CAMS, max_rank=5)
    assert scores.num_valid_queries == 2 and scores.num_queries == 4
    np.testing.assert_allclose(scores.cmc, [0.5, 1.0, 1.0, 1.0, 1.0])
    assert scores.mAP == pytest.approx(0.75)
    assert scores.to_dict() == {"rank1": 50.0, "rank5": 100.0, "mAP": 75.0, "valid_queries": 2, "queries": 4}


def test_same_camera_rule_matters():
    # Give g0 (person 1, camera 1) camera 4: it is now a valid hit at rank 1 for q0.
    # q0's kept list: g0 (yes), g1 (no), g2 (yes), g4 (no), g5 (yes): AP = (1/1 + 2/3 + 3/5) / 3.
    cams = G_CAMS.copy()
    cams[0] = 4
    scores = evaluate_market1501(DIST, Q_PIDS, G_PIDS, Q_CAMS, cams, max_rank=3)
    np.testing.assert_allclose(scores.cmc, [1.0, 1.0, 1.0])
    assert scores.mAP == pytest.approx(((1 + 2 / 3 + 3 / 5) / 3 + 1.0) / 2)


def test_junk_is_ignored_but_distractors_count():
    # Make the distractor g4 the closest to q1: q1's first hit drops to rank 2 (AP 1/2).
    # Moving junk g3 to the front instead changes nothing.
    dist = DIST.copy()
    dist[1, 4] = 0.0
    scores = evaluate_market1501(dist, Q_PIDS, G_PIDS, Q_CAMS, G_CAMS, max_rank=2)
    np.testing.assert_allclose(scores.cmc, [0.0, 1.0])
    assert scores.mAP == pytest.approx((0.5 + 0.5) / 2)
    dist = DIST.copy()
    dist[1, 3] = 0.0
    assert evaluate_market1501(dist, Q_PIDS, G_PIDS, Q_CAMS, G_CAMS).mAP == pytest.approx(0.75)


def test_short_gallery_pads_cmc_and_errors_are_clear():
    scores = evaluate_market1501(DIST, Q_PIDS, G_PIDS, Q_CAMS, G_CAMS, max_rank=10)
    assert scores.cmc.shape == (10,) and scores.rank(10) == 1.0
    with pytest.raises(ValueError, match="no query has a correct match"):
        evaluate_market1501(DIST[2:3], Q_PIDS[2:3], G_PIDS, Q_CAMS[2:3], G_CAMS)
    with pytest.raises(ValueError, match="does not match"):
        evaluate_market1501(DIST, Q_PIDS[:2], G_PIDS, Q_CAMS, G_CAMS)


def test_cosine_distance():
    a = np.array([[1.0, 0.0], [0.0, 1.0]], np.float32)
    b = np.array([[1.0, 0.0], [-1.0, 0.0], [0.6, 0.8]], np.float32)
    np.testing.assert_allclose(cosine_distance(a, b), [[0.0, 2.0, 0.4], [1.0, 1.0, 0.2]], atol=1e-6)


def test_a_rank_beyond_the_curve_is_refused_not_read_as_the_last_one():
    """rank(20) on a 10-long curve gave rank-10's value under the label rank20, and rank(0) the last value."""
    scores = evaluate_market1501(DIST, Q_PIDS, G_PIDS, Q_CAMS, G_CAMS, max_rank=5)
    assert scores.rank(1) == 0.5 and scores.rank(5) == 1.0
    for k in (0, 6, 20):
        with pytest.raises(ValueError, match=f"rank {k} is outside this CMC curve's ranks 1..5"):
            scores.rank(k)
    with pytest.raises(ValueError, match="rank 10 is outside"):
        scores.to_dict(ranks=(1, 10))
    with pytest.raises(ValueError, match="max_rank must be >= 1, got 0"):
        evaluate_market1501(DIST, Q_PIDS, G_PIDS, Q_CAMS, G_CAMS, max_rank=0)
