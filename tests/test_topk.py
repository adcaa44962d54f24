"""Property tests of the fused top-k matcher against the numpy reference (q @ g.T, stable sort)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_reid.matching.topk import TopK, default_block_rows, topk_cosine

# Multiples of 1/8 in [-1, 1]: every dot product of such vectors is exact in float32 (and the
# values are exact in float16), so any summation order gives the reference's scores bit for bit,
# and ties between different rows are common.
DYADIC = np.arange(-8, 9, dtype=np.float32) / 8


def topk_cosine_numpy(queries: np.ndarray, gallery: np.ndarray, k: int) -> TopK:
    """Reference: ``queries @ gallery.T`` in float32, stable descending sort, first ``min(k, N)``.

    Materialises the full (Q, N) score matrix: the oracle the fused matcher is checked against.
    """
    q = np.atleast_2d(np.asarray(queries, dtype=np.float32))
    g = np.asarray(gallery, dtype=np.float32)
    scores = q @ g.T
    k_eff = min(k, g.shape[0])
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k_eff]
    return TopK(np.take_along_axis(scores, order, axis=1).astype(np.float32), order.astype(np.int64))



@st.composite
def exact_cases(draw, max_rows: int = 300):
    dim = draw(st.integers(1, 24))
    n_rows = draw(st.integers(0, max_rows))
    n_queries = draw(st.integers(1, 5))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    if draw(st.booleans()) and n_rows:  # duplicate rows: draw gallery rows from a small pool
        pool = DYADIC[rng.integers(0, len(DYADIC), (draw(st.integers(1, 4)), dim))]
        gallery = pool[rng.integers(0, len(pool), n_rows)]
    else:
        gallery = DYADIC[rng.integers(0, len(DYADIC), (n_rows, dim))]
    queries = DYADIC[rng.integers(0, len(DYADIC), (n_queries, dim))]
    k = draw(st.integers(1, n_rows + 5))
    block_rows = draw(st.sampled_from([None, 1, 3, 16, 64]))
    return np.ascontiguousarray(queries), np.ascontiguousarray(gallery), k, block_rows


def assert_same(result: TopK, reference: TopK) -> None:
    assert result.scores.dtype == np.float32 and result.indices.dtype == np.int64
    assert result.scores.shape == reference.scores.shape
    np.testing.assert_array_equal(result.indices, reference.indices)
    np.testing.assert_array_equal(result.scores, reference.scores)


@settings(max_examples=150, deadline=None)
@given(case=exact_cases(), parallel=st.booleans())
def test_float32_identical_to_numpy_reference(case, parallel):
    queries, gallery, k, block_rows = case
    result = topk_cosine(queries, gallery, k, block_rows=block_rows, parallel=parallel)
    assert_same(result, topk_cosine_numpy(queries, gallery, k))
    assert result.scores.shape == (queries.shape[0], min(k, gallery.shape[0]))


@settings(max_examples=60, deadline=None)
@given(case=exact_cases(), parallel=st.booleans())
def test_float16_gallery_of_exact_values_identical(case, parallel):
    queries, gallery, k, block_rows = case
    result = topk_cosine(queries, gallery.astype(np.float16), k, block_rows=block_rows, parallel=parallel)
    assert_same(result, topk_cosine_numpy(queries, gallery, k))


def test_ties_broken_by_lower_index_across_blocks_and_threads():
    # 5000 identical rows: every score ties; the answer must be rows 0..k-1 whatever thread
    # saw which block first.
    gallery = np.tile(np.float32([0.6, 0.8]), (5000, 1))
    queries = np.float32([[1.0, 0.0], [0.0, 1.0]])
    for parallel in (False, True):
        result = topk_cosine(queries, gallery, 7, block_rows=64, parallel=parallel)
        np.testing.assert_array_equal(result.indices, np.tile(np.arange(7), (2, 1)))
        np.testing.assert_allclose(result.scores, [[0.6] * 7, [0.8] * 7])


def test_k_larger_than_gallery_returns_all_rows_unpadded():
    gallery = np.float32([[1, 0], [0, 1], [0.6, 0.8]])
    result = topk_cosine(np.float32([1, 0]), gallery, 10)
    assert result.indices.shape == (1, 3)
    np.testing.assert_array_equal(result.indices, [[0, 2, 1]])


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
@pytest.mark.parametrize("n_queries", [0, 3])
def test_empty_gallery(dtype, n_queries):
    result = topk_cosine(np.zeros((n_queries, 8), np.float32), np.zeros((0, 8), dtype), 5)
    assert result.scores.shape == (n_queries, 0) and result.indices.shape == (n_queries, 0)


def unit_rows(rng, rows, dim):
    x = rng.standard_normal((rows, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n_rows=st.integers(1, 20000), dim=st.sampled_from([8, 64, 256]),
       n_queries=st.integers(1, 8), k=st.integers(1, 12))
def test_random_unit_vectors_match_reference_within_rounding(seed, n_rows, dim, n_queries, k):
    rng = np.random.default_rng(seed)
    gallery, queries = unit_rows(rng, n_rows, dim), unit_rows(rng, n_queries, dim)
    result = topk_cosine(queries, gallery, k)
    reference = topk_cosine_numpy(queries, gallery, k)
    np.testing.assert_allclose(result.scores, reference.scores, atol=1e-5)
    # Each returned index really has the returned score.
    exact = np.einsum("qd,qkd->qk", queries, gallery[result.indices])
    np.testing.assert_allclose(result.scores, exact, atol=1e-5)
    assert (np.diff(result.scores, axis=1) <= 0).all()


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n_rows=st.integers(1, 20000), k=st.integers(1, 10))
def test_float16_close_to_float32(seed, n_rows, k):
    rng = np.random.default_rng(seed)
    gallery, queries = unit_rows(rng, n_rows, 128), unit_rows(rng, 4, 128)
    fp16 = topk_cosine(queries, gallery.astype(np.float16), k)
    fp32 = topk_cosine(queries, gallery, k)
    # float16 rounds each coordinate by <= 2^-11 relative; for unit vectors a score moves by < 1e-3.
    np.testing.assert_allclose(fp16.scores, fp32.scores, atol=1e-3)
    # and the rows it returns are truly within 1e-3 of the float32 k-th best.
    true_scores = np.einsum("qd,qkd->qk", queries, gallery[fp16.indices])
    assert (true_scores >= fp32.scores[:, -1:] - 2e-3).all()


def test_non_finite_scores_never_returned_for_zero_query():
    gallery = unit_rows(np.random.default_rng(0), 100, 16)
    result = topk_cosine(np.zeros(16, np.float32), gallery, 3)
    np.testing.assert_array_equal(result.indices, [[0, 1, 2]])  # all scores 0: ties by index
    np.testing.assert_array_equal(result.scores, [[0, 0, 0]])


@pytest.mark.parametrize(
    "queries, gallery, k, message",
    [
        (np.zeros((1, 4), np.float32), np.zeros((3, 4), np.float32), 0, "k must be"),
        (np.zeros((1, 5), np.float32), np.zeros((3, 4), np.float32), 1, "queries must have shape"),
        (np.zeros((1, 4), np.float32), np.zeros((3, 4), np.float64), 1, "float32 or float16"),
        (np.zeros((1, 4), np.float32), np.zeros(4, np.float32), 1, "gallery must have shape"),
        (np.zeros((1, 4), np.float32), np.zeros((4, 3), np.float32).T, 1, "C-contiguous"),
        (np.zeros((1, 4), np.int32), np.zeros((3, 4), np.float32), 1, "floating point"),
        (np.zeros((1, 4), np.float32), [[1.0, 0.0, 0.0, 0.0]], 1, "gallery must be a NumPy array .* got list"),  # was AttributeError
    ],
)
def test_bad_input_raises_value_error(queries, gallery, k, message):
    with pytest.raises(ValueError, match=message):
        topk_cosine(queries, gallery, k)


def test_default_block_rows_is_power_of_two_in_range():
    for dim in (1, 64, 128, 256, 512, 2048, 100000):
        rows = default_block_rows(dim)
        assert 64 <= rows <= 4096 and rows & (rows - 1) == 0
    assert default_block_rows(256) == 1024


def test_blas_thread_limit_is_restored_after_search():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    gallery = unit_rows(np.random.default_rng(0), 3000, 64)
    import scipy.linalg.cython_blas  # noqa: F401  (loads SciPy's BLAS without a search: no limit set yet)

    def blas_threads():
        return [lib["num_threads"] for lib in threadpoolctl.threadpool_info() if lib["user_api"] == "blas"]

    before = blas_threads()
    for parallel in (False, True):
        topk_cosine(gallery[:2], gallery, 3, parallel=parallel)
    assert blas_threads() == before


def test_many_queries_use_shorter_blocks_and_stay_exact():
    rng = np.random.default_rng(5)
    gallery = DYADIC[rng.integers(0, len(DYADIC), (3000, 8))]
    queries = DYADIC[rng.integers(0, len(DYADIC), (2500, 8))]  # 2**17 // 2500 -> 64-row blocks
    assert_same(topk_cosine(queries, gallery, 4), topk_cosine_numpy(queries, gallery, 4))
