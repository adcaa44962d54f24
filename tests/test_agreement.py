"""FP32-vs-quantized agreement on an unlabelled pool."""

import numpy as np
import pytest

from edge_reid.evaluation.agreement import compare_embeddings, nearest_neighbours


def _unit(x):
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_identical_embeddings_agree_fully():
    pool = _unit(np.random.default_rng(0).normal(size=(50, 16)))
    result = compare_embeddings(pool, pool.copy())
    assert result.crops == 50 and result.top1 == 1.0 and result.top5 == 1.0
    assert result.mean_cosine == pytest.approx(1.0, abs=1e-6) and result.p1_cosine == pytest.approx(1.0, abs=1e-6)


def test_swapped_neighbour_is_counted():
    # Points on a line: 0, 1, 3, 6, 10, 15, 21 (1-D embeddings lifted to the unit circle
    # would tie, so use orthogonal-ish 2-D angles). Crop 0's nearest is crop 1.
    angles = np.array([0.0, 0.1, 0.3, 0.6, 1.0, 1.5, 2.1])
    ref = np.stack([np.cos(angles), np.sin(angles)], 1).astype(np.float32)
    assert nearest_neighbours(ref, 2)[0].tolist() == [1, 2]
    moved = angles.copy()
    moved[2] = 0.05  # crop 2 now sits between 0 and 1: nearest of 0, 1 and 2 change
    cand = np.stack([np.cos(moved), np.sin(moved)], 1).astype(np.float32)
    result = compare_embeddings(ref, cand)
    ref_nn, cand_nn = nearest_neighbours(ref, 1)[:, 0], nearest_neighbours(cand, 1)[:, 0]
    assert result.top1 == pytest.approx(np.mean(ref_nn == cand_nn))
    assert 0.0 < result.top1 < 1.0
    assert result.mean_cosine == pytest.approx((6 + np.cos(0.25)) / 7, abs=1e-6)
    assert result.p1_cosine < 1.0


def test_input_checks():
    with pytest.raises(ValueError, match="shape"):
        compare_embeddings(np.zeros((10, 4)), np.zeros((10, 5)))
    with pytest.raises(ValueError, match="at least 7"):
        compare_embeddings(np.eye(4), np.eye(4))


def test_same_person_agreement_forgives_swaps_between_views_fp32_matches():
    # Two people, each seen three times; views of one person are nearly tied neighbours.
    rng = np.random.default_rng(1)
    people = _unit(rng.normal(size=(2, 32)))
    ref = _unit(np.repeat(people, 4, axis=0) + 0.05 * rng.normal(size=(8, 32)))
    # The candidate swaps crop 0's two nearest views of person 0: top-1 changes, the person does not.
    sims = ref @ ref.T
    np.fill_diagonal(sims, -1)
    first, second = np.argsort(-sims[0])[:2]
    cand = ref.copy()
    cand[0] = _unit((ref[0] + 3.0 * (ref[second] - ref[first]))[None])[0]
    result = compare_embeddings(ref, cand, same_person_similarity=0.8)
    assert result.top1 < 1.0
    assert result.top1_same_person == 1.0
    # With a threshold no pair of views reaches, a swap counts as disagreement there too.
    assert compare_embeddings(ref, cand, same_person_similarity=1.01).top1_same_person == result.top1


def test_swaps_at_fp32_near_ties_are_counted_apart():
    # Crop 0's two nearest neighbours are tied to within 0.0002 cosine in FP32; crop 4's are clearly apart.
    angles = np.array([0.0, 0.1, -0.1002, 1.0, 2.0, 2.3, 2.9, 3.1])
    ref = np.stack([np.cos(angles), np.sin(angles)], 1).astype(np.float32)
    cand = ref.copy()
    cand[0] = _unit(np.array([[np.cos(-0.001), np.sin(-0.001)]]))[0]  # a tiny move swaps the tie
    result = compare_embeddings(ref, cand)
    assert result.top1 < 1.0 and result.top1_outside_ties == 1.0
    assert result.near_ties == pytest.approx(1 / 8)
    moved = ref.copy()
    moved[4] = _unit(np.array([[np.cos(2.95), np.sin(2.95)]]))[0]  # crop 4 moves next to crop 6: a swap outside any tie
    clear = compare_embeddings(ref, moved)
    assert clear.top1_outside_ties < 1.0
    assert clear.to_dict()["fp32_near_ties_percent"] == pytest.approx(12.5)


def test_top5_overlap_and_p1_cosine_match_hand_counts():
    # Seven crops on the unit circle (cosine similarity falls with the angle between them); with seven
    # crops each top-5 list is every other crop but the farthest one, so a crop's overlap is 5 when
    # FP32 and the candidate leave out the same crop, else 4.
    angles = np.array([0.0, 0.1, 0.3, 0.6, 1.0, 1.5, 2.1])
    ref = np.stack([np.cos(angles), np.sin(angles)], 1).astype(np.float32)
    moved = angles.copy()
    moved[0] = 1.2  # crop 0 moves between crops 4 and 5
    cand = np.stack([np.cos(moved), np.sin(moved)], 1).astype(np.float32)
    # Farthest crop, FP32:      6, 6, 6, 6, 6, 0, 0
    # Farthest crop, candidate: 1, 6, 6, 6, 6, 1, 1
    # Overlap:                  4, 5, 5, 5, 5, 4, 4  -> 32 of 35
    result = compare_embeddings(ref, cand)
    assert result.top5 == pytest.approx(32 / 35)
    cosines = [np.cos(1.2), 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]  # only crop 0 moved, by 1.2 rad
    assert result.mean_cosine == pytest.approx(np.mean(cosines), abs=1e-6)
    assert result.p1_cosine == pytest.approx(np.percentile(cosines, 1), abs=1e-6)
