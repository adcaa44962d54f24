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

Two entry points, same method and numbers (to float32 rounding: within 1e-6):

- :func:`re_ranking_embeddings` (what ``edge-reid eval --rerank`` uses) takes the L2-normalised
  embeddings and computes the (Q+G, Q+G) cosine distances a block of rows at a time, twice (once
  for the nearest neighbours, once for the encodings): no (Q+G)^2 matrix is ever held. Memory, for
  Q queries and G gallery images (N = Q+G): the (Q, G) float32 result (4 QG bytes), the sparse
  neighbour encodings (about 2 KB per image at k1=20, k2=6) and blocks of about 32 M distances
  (about 0.4 GB with their index temporaries). The reference's dense matrix would be 4 N^2 bytes:
  35 GB for MSMT17 (Q=11659, G=82161), beyond a 24 GB machine.
- :func:`re_ranking` takes the three distance matrices, as the reference does, and holds one dense
  (N, N) float32 matrix (4 N^2 bytes) besides them and the result.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import sparse

from edge_reid.values import is_integer

#: Distances computed at once by :func:`re_ranking_embeddings` (a block of rows of the (N, N) matrix).
BLOCK_ELEMENTS = 32 * 1024 * 1024


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


def _k_reciprocal_mask(rank: np.ndarray, k: int, chunk: int = 4096) -> np.ndarray:
    """(N, min(k+1, width)) bool: entry (i, j) is True when ``rank[i, j]``, among i's k+1 nearest, has i among
    its own k+1 nearest (j is a k-reciprocal neighbour of i)."""
    forward_all = rank[:, : k + 1]
    mask = np.empty(forward_all.shape, bool)
    for start in range(0, len(rank), chunk):
        forward = forward_all[start : start + chunk]
        backward = forward_all[forward]  # (rows, k+1, k+1): each neighbour's own k+1 nearest
        mine = np.arange(start, start + len(forward))[:, None, None]
        mask[start : start + chunk] = np.any(backward == mine, axis=2)
    return mask


def _check_k(k1, k2) -> None:
    if not (is_integer(k1) and k1 >= 1):
        raise ValueError(f"k1 must be an integer >= 1, got {k1!r}")
    if not (is_integer(k2) and 1 <= k2 <= k1 + 1):
        raise ValueError(f"k2 must be an integer in [1, k1 + 1] = [1, {k1 + 1}], got {k2!r}")


def re_ranking_steps(num_query: int, num_gallery: int) -> int:
    """The steps ``on_progress`` of :func:`re_ranking` and :func:`re_ranking_embeddings` counts in all:
    2 (Q+G) + Q (each image's rows twice, then each query's Jaccard distances)."""
    return 2 * (num_query + num_gallery) + num_query


def _re_rank(
    rows_of: Callable[[int, int], np.ndarray],
    n: int,
    num_q: int,
    block: int,
    k1: int,
    k2: int,
    lambda_value: float,
    on_progress: Callable[[int], None] | None,
) -> np.ndarray:
    """The method on rows of the normalised squared distance matrix: ``rows_of(start, stop)`` gives its
    (stop - start, N) float32 rows, the same values each time it is asked; ``block`` rows are asked at once."""
    advance = on_progress or (lambda steps: None)
    rank = np.empty((n, min(k1 + 1, n)), np.int64)
    for start in range(0, n, block):
        stop = min(n, start + block)
        rank[start:stop] = _top_k(rows_of(start, stop), k1 + 1, chunk=max(1, min(1024, n // 16)))
        advance(stop - start)

    half = int(np.around(k1 / 2.0))
    reciprocal_mask = _k_reciprocal_mask(rank, k1, block)
    half_rank = rank[:, : half + 1]
    half_mask = _k_reciprocal_mask(rank, half, block)
    num_g = n - num_q
    final = np.empty((num_q, num_g), np.float32)
    rows, cols, vals = [], [], []
    for start in range(0, n, block):
        stop = min(n, start + block)
        dist = rows_of(start, stop)
        for i in range(start, stop):
            reciprocal = rank[i, : k1 + 1][reciprocal_mask[i]]
            # Expansion: a candidate's k1/2-reciprocal set joins when over 2/3 of it is in i's set (the sets
            # hold distinct indices, so counting members is the reference's len(intersect1d)).
            candidate_sets, candidate_masks = half_rank[reciprocal], half_mask[reciprocal]
            inside = np.isin(candidate_sets, reciprocal) & candidate_masks
            joins = inside.sum(axis=1) > 2.0 / 3.0 * candidate_masks.sum(axis=1)
            members = np.unique(np.concatenate([reciprocal, candidate_sets[joins][candidate_masks[joins]]]))
            weight = np.exp(-dist[i - start, members])
            rows.append(np.full(len(members), i))
            cols.append(members)
            vals.append(weight / weight.sum())
        if start < num_q:  # the original distance's share of the result, mixed in with the Jaccard distance below
            queries = min(stop, num_q)
            np.multiply(dist[: queries - start, num_q:], np.float32(lambda_value), out=final[start:queries])
        del dist
        advance(stop - start)
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
    # and added row by row to the original distance's share already in the result.
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
        final[i] += jaccard * np.float32(1.0 - lambda_value)
        if (i + 1) % 64 == 0 or i + 1 == num_q:
            advance(64 if (i + 1) % 64 == 0 else (i + 1) % 64)
    return final


def _normalise_rows(dist: np.ndarray) -> np.ndarray:
    """Square ``dist`` in place and divide each row by its largest value (rows of zeros stay zeros)."""
    np.square(dist, out=dist)
    row_max = dist.max(axis=1, keepdims=True)  # the reference divides column-wise then transposes: same for a symmetric matrix
    dist /= np.where(row_max > 0, row_max, 1.0)
    return dist


def re_ranking(
    q_g_dist: np.ndarray,
    q_q_dist: np.ndarray,
    g_g_dist: np.ndarray,
    k1: int = 20,
    k2: int = 6,
    lambda_value: float = 0.3,
    on_progress: Callable[[int], None] | None = None,
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
        on_progress: called with the steps done after each block (:func:`re_ranking_steps` in all).

    Returns:
        (Q, G) float32 re-ranked distances.

    Memory: about 4 (Q+G)^2 + 4 QG bytes besides the inputs (the module docstring says what else);
    :func:`re_ranking_embeddings` needs no (Q+G)^2 matrix.

    Raises:
        ValueError: shapes disagree; ``k1`` or ``k2`` out of its range.
    """
    _check_k(k1, k2)
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
    _normalise_rows(dist)
    return _re_rank(lambda start, stop: dist[start:stop], n, num_q, n, k1, k2, lambda_value, on_progress)


def re_ranking_embeddings(
    query: np.ndarray,
    gallery: np.ndarray,
    k1: int = 20,
    k2: int = 6,
    lambda_value: float = 0.3,
    on_progress: Callable[[int], None] | None = None,
    block_elements: int | None = None,
) -> np.ndarray:
    """Re-rank the cosine distances (``1 - q.g``) of L2-normalised embeddings with k-reciprocal encoding,
    without a (Q+G, Q+G) matrix: :func:`re_ranking` of the ``1 - cosine`` query-gallery, query-query and
    gallery-gallery matrices (:func:`~edge_reid.evaluation.metrics.cosine_distance`), each distance
    computed a block of rows at a time (the module docstring gives the memory).

    Args:
        query: (Q, D) float32 L2-normalised query embeddings.
        gallery: (G, D) float32 L2-normalised gallery embeddings.
        k1, k2, lambda_value: as :func:`re_ranking`.
        on_progress: called with the steps done after each block (:func:`re_ranking_steps` in all).
        block_elements: distances computed at once (whole rows, at least one; None: :data:`BLOCK_ELEMENTS`).

    Returns:
        (Q, G) float32 re-ranked distances.

    Raises:
        ValueError: ``query`` and ``gallery`` are not 2-D with the same width; ``k1`` or ``k2`` out of its range.
    """
    _check_k(k1, k2)
    query, gallery = np.asarray(query, np.float32), np.asarray(gallery, np.float32)
    if query.ndim != 2 or gallery.ndim != 2 or query.shape[1] != gallery.shape[1]:
        raise ValueError(f"need (Q, D) and (G, D) embeddings, got {query.shape} and {gallery.shape}")
    features = np.concatenate([query, gallery])
    n = len(features)

    def rows_of(start: int, stop: int) -> np.ndarray:
        dist = features[start:stop] @ features.T
        np.subtract(np.float32(1.0), dist, out=dist)
        return _normalise_rows(dist)

    block = max(1, min(n, (block_elements or BLOCK_ELEMENTS) // max(n, 1)))
    return _re_rank(rows_of, n, len(query), block, k1, k2, lambda_value, on_progress)
