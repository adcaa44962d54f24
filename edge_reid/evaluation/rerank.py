"""k-reciprocal re-ranking (Z. Zhong, L. Zheng, D. Cao, S. Li, "Re-ranking Person
Re-identification with k-reciprocal Encoding", CVPR 2017).

A gallery image is a k-reciprocal neighbour of a probe when each is among the
other's k nearest neighbours. Each image is encoded as a weighted set of its
(expanded) k-reciprocal neighbours; the final distance mixes the Jaccard
distance between those sets with the original distance:
``d* = (1 - lambda) * d_Jaccard + lambda * d``.

Follows the authors' reference implementation (also in torchreid and
fast-reid): squared input distances normalised per row, k1 = 20, k2 = 6,
lambda = 0.3.

Memory, for Q queries and G gallery images (N = Q+G): one dense (N, N) float32
distance matrix (4 N^2 bytes) and the (Q, G) float32 result (4 QG bytes). Besides
them only the sparse neighbour encodings (about 2 KB per image at k1=20, k2=6;
less for smaller k1, k2) and temporaries of at most N/16 rows (N^2 / 2 bytes):
the Jaccard distance is computed for gallery columns only and mixed into the
result row by row. Market-1501 (Q=3368, G=15913): 1.4 GiB + 0.2 GiB.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse

from edge_reid.values import is_integer


def _top_k(dist: np.ndarray, k: int, chunk: int | None = None) -> np.ndarray:
    """(N, k) int64 indices of each row's k smallest entries, nearest first (ties: lower index first).

    ``chunk``: rows handled at once (default: N/16, at most 1024, so the int64 temporaries stay an
    eighth of a float32 (N, N) ``dist``)."""
    n = dist.shape[0]
    k = min(k, dist.shape[1])
    if chunk is None:
        chunk = max(1, min(1024, n // 16))
    out = np.empty((n, k), np.int64)
    for start in range(0, n, chunk):
        rows = dist[start : start + chunk]
        if k < rows.shape[1]:
            part = np.argpartition(rows, k - 1, axis=1)[:, :k]
        else:
            part = np.broadcast_to(np.arange(rows.shape[1]), rows.shape).copy()
        values = np.take_along_axis(rows, part, axis=1)
        order = np.lexsort((part, values), axis=1)
        out[start : start + chunk] = np.take_along_axis(part, order, axis=1)
    return out


def _k_reciprocal(rank: np.ndarray, i: int, k: int) -> np.ndarray:
    """Indices j among i's k+1 nearest whose own k+1 nearest contain i."""
    forward = rank[i, : k + 1]
    backward = rank[forward, : k + 1]
    return forward[np.any(backward == i, axis=1)]


def re_ranking(
    q_g_dist: np.ndarray,
    q_q_dist: np.ndarray,
    g_g_dist: np.ndarray,
    k1: int = 20,
    k2: int = 6,
    lambda_value: float = 0.3,
) -> np.ndarray:
    """Re-rank a query-gallery distance matrix with k-reciprocal encoding.

    Args:
        q_g_dist: (Q, G) query-gallery distances (e.g. 1 - cosine; smaller = closer).
        q_q_dist: (Q, Q) query-query distances.
        g_g_dist: (G, G) gallery-gallery distances.
        k1: neighbourhood size of the k-reciprocal sets, an integer >= 1 (paper: 20).
        k2: neighbours averaged for local query expansion, an integer in [1, k1 + 1] (paper: 6; 1 = none):
            only the k1 + 1 nearest are ranked, so a larger k2 could not average its k2.
        lambda_value: weight of the original distance (paper: 0.3).

    Returns:
        (Q, G) float32 re-ranked distances.

    Memory: about 4 (Q+G)^2 + 4 QG bytes (the module docstring says what else).

    Raises:
        ValueError: shapes disagree; ``k1`` or ``k2`` out of its range.
    """
    if not (is_integer(k1) and k1 >= 1):
        raise ValueError(f"k1 must be an integer >= 1, got {k1!r}")
    if not (is_integer(k2) and 1 <= k2 <= k1 + 1):
        raise ValueError(f"k2 must be an integer in [1, k1 + 1] = [1, {k1 + 1}], got {k2!r}")
    q_g_dist = np.asarray(q_g_dist, np.float32)
    num_q, num_g = q_g_dist.shape
    if np.shape(q_q_dist) != (num_q, num_q) or np.shape(g_g_dist) != (num_g, num_g):
        raise ValueError(f"need (Q,Q) and (G,G) matrices for q_g {q_g_dist.shape}, got {np.shape(q_q_dist)} and {np.shape(g_g_dist)}")
    n = num_q + num_g
    dist = np.empty((n, n), np.float32)
    dist[:num_q, :num_q] = q_q_dist
    dist[:num_q, num_q:] = q_g_dist
    dist[num_q:, :num_q] = q_g_dist.T
    dist[num_q:, num_q:] = g_g_dist
    np.square(dist, out=dist)
    row_max = dist.max(axis=1, keepdims=True)  # the reference divides column-wise then transposes: same for a symmetric matrix
    dist /= np.where(row_max > 0, row_max, 1.0)

    rank = _top_k(dist, k1 + 1)
    half = int(np.around(k1 / 2.0))
    rows, cols, vals = [], [], []
    for i in range(n):
        reciprocal = _k_reciprocal(rank, i, k1)
        expansion = [reciprocal]
        for candidate in reciprocal:
            candidate_set = _k_reciprocal(rank, int(candidate), half)
            if len(np.intersect1d(candidate_set, reciprocal)) > 2.0 / 3.0 * len(candidate_set):
                expansion.append(candidate_set)
        members = np.unique(np.concatenate(expansion))
        weight = np.exp(-dist[i, members])
        rows.append(np.full(len(members), i))
        cols.append(members)
        vals.append(weight / weight.sum())
    encoding = sparse.csr_matrix(
        (np.concatenate(vals).astype(np.float32), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n)
    )
    if k2 != 1:
        # Local query expansion: each row becomes the mean of its k2 nearest rows' encodings.
        near = rank[:, :k2]
        expand = sparse.csr_matrix(
            (np.full(near.size, 1.0 / near.shape[1], np.float32), (np.repeat(np.arange(n), near.shape[1]), near.ravel())),
            shape=(n, n),
        )
        encoding = (expand @ encoding).tocsr()

    by_column = encoding.tocsc()
    # Query-query columns are not returned: the Jaccard distance is computed for gallery columns only,
    # and mixed with the original distance row by row, into the result (no (Q, Q+G) temporaries).
    final = np.empty((num_q, num_g), np.float32)
    shared = np.empty(n, np.float32)
    for i in range(num_q):
        start, stop = encoding.indptr[i], encoding.indptr[i + 1]
        shared[:] = 0.0
        for col, value in zip(encoding.indices[start:stop], encoding.data[start:stop]):
            c0, c1 = by_column.indptr[col], by_column.indptr[col + 1]
            others = by_column.indices[c0:c1]
            shared[others] += np.minimum(value, by_column.data[c0:c1])
        gallery_shared = shared[num_q:]
        jaccard = 1.0 - gallery_shared / (2.0 - gallery_shared)
        final[i] = jaccard * np.float32(1.0 - lambda_value) + dist[i, num_q:] * np.float32(lambda_value)
    return final
