"""k-reciprocal re-ranking: same numbers as the authors' reference code, and it helps where it should."""

import numpy as np
import pytest

from edge_reid.evaluation.metrics import cosine_distance, evaluate_market1501
from edge_reid.evaluation.rerank import re_ranking


def _reference_re_ranking(q_g_dist, q_q_dist, g_g_dist, k1=20, k2=6, lambda_value=0.3):
    """Z. Zhong's published re_ranking (github.com/zhunzhong07/person-re-ranking), dense, kept literal."""
    original_dist = np.concatenate(
        [np.concatenate([q_q_dist, q_g_dist], axis=1), np.concatenate([q_g_dist.T, g_g_dist], axis=1)], axis=0
    )
    original_dist = np.power(original_dist, 2).astype(np.float32)
    original_dist = np.transpose(1.0 * original_dist / np.max(original_dist, axis=0))
    V = np.zeros_like(original_dist).astype(np.float32)
    initial_rank = np.argsort(original_dist, kind="stable").astype(np.int32)
    query_num = q_g_dist.shape[0]
    all_num = q_g_dist.shape[0] + q_g_dist.shape[1]
    for i in range(all_num):
        forward_k_neigh_index = initial_rank[i, : k1 + 1]
        backward_k_neigh_index = initial_rank[forward_k_neigh_index, : k1 + 1]
        fi = np.where(backward_k_neigh_index == i)[0]
        k_reciprocal_index = forward_k_neigh_index[fi]
        k_reciprocal_expansion_index = k_reciprocal_index
        for j in range(len(k_reciprocal_index)):
            candidate = k_reciprocal_index[j]
            half = int(np.around(k1 / 2.0)) + 1
            candidate_forward_k_neigh_index = initial_rank[candidate, :half]
            candidate_backward_k_neigh_index = initial_rank[candidate_forward_k_neigh_index, :half]
            fi_candidate = np.where(candidate_backward_k_neigh_index == candidate)[0]
            candidate_k_reciprocal_index = candidate_forward_k_neigh_index[fi_candidate]
            if len(np.intersect1d(candidate_k_reciprocal_index, k_reciprocal_index)) > 2.0 / 3 * len(candidate_k_reciprocal_index):
                k_reciprocal_expansion_index = np.append(k_reciprocal_expansion_index, candidate_k_reciprocal_index)
        k_reciprocal_expansion_index = np.unique(k_reciprocal_expansion_index)
        weight = np.exp(-original_dist[i, k_reciprocal_expansion_index])
        V[i, k_reciprocal_expansion_index] = 1.0 * weight / np.sum(weight)
    original_dist = original_dist[:query_num,]
    if k2 != 1:
        V_qe = np.zeros_like(V, dtype=np.float32)
        for i in range(all_num):
            V_qe[i, :] = np.mean(V[initial_rank[i, :k2], :], axis=0)
        V = V_qe
    invIndex = [np.where(V[:, i] != 0)[0] for i in range(all_num)]
    jaccard_dist = np.zeros_like(original_dist, dtype=np.float32)
    for i in range(query_num):
        temp_min = np.zeros(shape=[1, all_num], dtype=np.float32)
        indNonZero = np.where(V[i, :] != 0)[0]
        indImages = [invIndex[ind] for ind in indNonZero]
        for j in range(len(indNonZero)):
            temp_min[0, indImages[j]] = temp_min[0, indImages[j]] + np.minimum(V[i, indNonZero[j]], V[indImages[j], indNonZero[j]])
        jaccard_dist[i] = 1 - temp_min / (2.0 - temp_min)
    final_dist = jaccard_dist * (1 - lambda_value) + original_dist * lambda_value
    return final_dist[:query_num, query_num:]


def _clustered_set(seed, persons=40, per_person=8, dim=32, noise=0.9):
    """Gallery: ``per_person`` noisy views of each person on cameras 2..; queries: one noisy view each, camera 1."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(persons, dim))
    gallery = np.repeat(centers, per_person, 0) + rng.normal(size=(persons * per_person, dim)) * noise
    query = centers + rng.normal(size=(persons, dim)) * noise
    unit = lambda x: (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    g_pids = np.repeat(np.arange(1, persons + 1), per_person)
    g_cams = np.tile(np.arange(2, per_person + 2), persons)
    q_pids, q_cams = np.arange(1, persons + 1), np.ones(persons, int)
    return unit(query), unit(gallery), q_pids, g_pids, q_cams, g_cams


def test_matches_the_reference_implementation():
    query, gallery, *_ = _clustered_set(seed=1, persons=12, per_person=5)
    qg, qq, gg = cosine_distance(query, gallery), cosine_distance(query, query), cosine_distance(gallery, gallery)
    for k1, k2 in ((20, 6), (6, 3), (4, 1)):
        ours = re_ranking(qg, qq, gg, k1=k1, k2=k2)
        np.testing.assert_allclose(ours, _reference_re_ranking(qg, qq, gg, k1=k1, k2=k2), atol=2e-5)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_re_ranking_raises_map_on_clustered_identities(seed):
    # Known behaviour (paper, Table 3): with several gallery views per person, the
    # k-reciprocal sets pull in the person's other views, so mAP rises clearly.
    query, gallery, q_pids, g_pids, q_cams, g_cams = _clustered_set(seed)
    plain = evaluate_market1501(cosine_distance(query, gallery), q_pids, g_pids, q_cams, g_cams)
    reranked_dist = re_ranking(cosine_distance(query, gallery), cosine_distance(query, query), cosine_distance(gallery, gallery))
    reranked = evaluate_market1501(reranked_dist, q_pids, g_pids, q_cams, g_cams)
    assert reranked_dist.shape == (40, 320) and reranked_dist.dtype == np.float32
    assert reranked.mAP > plain.mAP + 0.03
    assert reranked.rank(1) >= plain.rank(1)


def test_shape_errors():
    with pytest.raises(ValueError, match="need"):
        re_ranking(np.zeros((2, 3)), np.zeros((2, 2)), np.zeros((2, 2)))


@pytest.mark.parametrize("k1, k2, message", [
    (20, 0, r"k2 must be an integer in \[1, k1 \+ 1\] = \[1, 21\], got 0"),  # was a ZeroDivisionError
    (4, 6, r"k2 must be an integer in \[1, k1 \+ 1\] = \[1, 5\], got 6"),  # silently unlike the reference
    (0, 1, r"k1 must be an integer >= 1, got 0"),
    (2.5, 1, r"k1 must be an integer >= 1, got 2.5"),
])
def test_k1_and_k2_out_of_range_are_value_errors_naming_them(k1, k2, message):
    query, gallery, *_ = _clustered_set(seed=1, persons=3, per_person=2)
    qg, qq, gg = cosine_distance(query, gallery), cosine_distance(query, query), cosine_distance(gallery, gallery)
    with pytest.raises(ValueError, match=message):
        re_ranking(qg, qq, gg, k1=k1, k2=k2)


class _PixelEmbedder:
    """Stand-in for an Embedder: a crop's embedding is its pixels, centred and L2-normalised (an image fixes its vector)."""

    dim = 24

    def embed_crops(self, crops):
        vectors = np.stack([crop.reshape(-1).astype(np.float32) - 127.5 for crop in crops])
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def _write_market(root, files):
    """A Market-1501 folder from {split: [(name, (24,) uint8 vector), ...]}; each image is 1 x 8 pixels."""
    import cv2

    for split, entries in files.items():
        (root / split).mkdir(parents=True)
        for name, vector in entries:
            cv2.imwrite(str(root / split / name), vector.reshape(1, 8, 3))
    return root


def test_junk_gallery_images_take_no_part_in_re_ranking(tmp_path):
    """Defect: with --rerank, junk (-1) gallery crops stayed in the k-reciprocal graph (removed only when
    scoring), so the numbers differed from torchreid/fast-reid, which drop junk when loading. Junk must change
    nothing: the scores equal those of the same folder without its junk files."""
    from edge_reid.data.market1501 import load_market1501
    from edge_reid.evaluation.market_eval import evaluate_market

    rng = np.random.default_rng(0)
    centres = rng.integers(40, 216, size=(8, 24))
    vector = lambda person: np.clip(centres[person] + rng.normal(0, 70, 24), 0, 255).astype(np.uint8)
    query = [(f"{p + 1:04d}_c1s1_{p:06d}_00.png", vector(p)) for p in range(8)]
    gallery = [(f"{p + 1:04d}_c{c}s1_{c:06d}_00.png", vector(p)) for p in range(8) for c in range(2, 6)]
    junk = [(f"-1_c2s1_{i:06d}_00.png", vector(i % 8)) for i in range(24)]
    with_junk = _write_market(tmp_path / "a", {"query": query, "bounding_box_test": gallery + junk})
    without_junk = _write_market(tmp_path / "b", {"query": query, "bounding_box_test": gallery})
    for rerank in (False, True):
        scored = [evaluate_market(_PixelEmbedder(), load_market1501(root), rerank=rerank).scores for root in (with_junk, without_junk)]
        assert scored[0].to_dict() == scored[1].to_dict(), f"rerank={rerank}"
        np.testing.assert_allclose(scored[0].cmc, scored[1].cmc)
        assert scored[0].mAP == pytest.approx(scored[1].mAP, abs=1e-12)


def test_memory_is_the_distance_matrix_and_the_result():
    """Defect: the docstring stated one dense (Q+G, Q+G) float32 matrix, but the Jaccard distance was computed for
    all Q+G columns and the final mix made two more Q x (Q+G) temporaries (2.7x the statement). Now the peak is
    that matrix, the (Q, G) result and the sparse encodings (under 2 KiB per image at k1=6, k2=3)."""
    import tracemalloc

    rng = np.random.default_rng(3)
    x = rng.normal(size=(360, 32))
    x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    query, gallery = x[:300], x[300:]  # many queries: where the old Q x (Q+G) arrays weighed most
    qg, qq, gg = cosine_distance(query, gallery), cosine_distance(query, query), cosine_distance(gallery, gallery)
    n = 360
    tracemalloc.start()
    try:
        re_ranking(qg, qq, gg, k1=6, k2=3)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak <= 4 * n * n + 4 * 300 * 60 + 2048 * n


def test_random_case_matches_the_reference_to_1e6():
    """The memory rework (gallery-only Jaccard, mixing in place) keeps the numbers: unclustered random
    embeddings, more queries than gallery images, several k1/k2/lambda."""
    rng = np.random.default_rng(7)
    x = rng.normal(size=(70, 16))
    x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    query, gallery = x[:40], x[40:]
    qg, qq, gg = cosine_distance(query, gallery), cosine_distance(query, query), cosine_distance(gallery, gallery)
    for k1, k2, lambda_value in ((20, 6, 0.3), (6, 3, 0.1), (4, 1, 0.7)):
        ours = re_ranking(qg, qq, gg, k1=k1, k2=k2, lambda_value=lambda_value)
        assert ours.shape == (40, 30) and ours.dtype == np.float32
        reference = _reference_re_ranking(qg, qq, gg, k1=k1, k2=k2, lambda_value=lambda_value)
        np.testing.assert_allclose(ours, reference, rtol=0, atol=1e-6)
