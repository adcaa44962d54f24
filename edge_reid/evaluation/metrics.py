"""The Market-1501 retrieval protocol: CMC rank-k and mAP from a query-gallery distance matrix.

Same rules and numbers as torchreid's ``eval_market1501`` (K. Zhou,
``torchreid/metrics/rank.py``), which follows the benchmark's own evaluation
(L. Zheng et al., ICCV 2015):

- For each query, gallery images of the same person seen by the same camera are
  removed (they are near-duplicates, not re-identification).
- Junk gallery images (person id -1) are removed (torchreid drops them when
  loading the data set; the benchmark's code marks them junk).
- Distractors (person id 0) stay in the gallery as negatives.
- A query with no correct match left in the gallery is skipped (not counted).
- AP is the mean of precision at the rank of each correct match
  (non-interpolated, as torchreid; the benchmark's MATLAB code interpolates
  between recall points, which gives slightly different mAP on the full set).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

JUNK_PID = -1
DISTRACTOR_PID = 0
#: Entries of the (queries, G) int64 ranking that :func:`evaluate_market1501` sorts at once (32 MB).
_ORDER_BLOCK_ELEMENTS = 4 * 1024 * 1024


@dataclass(frozen=True)
class RetrievalScores:
    """Protocol results.

    Attributes:
        cmc: (max_rank,) float64, cmc[k-1] = fraction of valid queries whose first
            correct match is within the top k, in [0, 1].
        mAP: mean average precision over valid queries, in [0, 1].
        num_valid_queries: queries that had at least one correct match.
        num_queries: all queries given.
    """

    cmc: np.ndarray
    mAP: float
    num_valid_queries: int
    num_queries: int

    def rank(self, k: int) -> float:
        """CMC at rank k (1-based), in [0, 1].

        Raises:
            ValueError: k is not within 1..``len(cmc)`` (the ``max_rank`` it was computed with).
        """
        if not 1 <= k <= len(self.cmc):
            raise ValueError(f"rank {k} is outside this CMC curve's ranks 1..{len(self.cmc)}; evaluate with max_rank >= {k}")
        return float(self.cmc[k - 1])

    def to_dict(self, ranks: tuple[int, ...] | None = None) -> dict[str, float | int]:
        """Percentages rounded to 2 decimals: ``{"rank1": .., "rank5": .., "rank10": .., "mAP": .., ...}``.

        Args:
            ranks: the CMC ranks to give (None: those of 1, 5, 10 within the curve's length).

        Raises:
            ValueError: a rank asked for is beyond the curve (see :meth:`rank`).
        """
        if ranks is None:
            ranks = tuple(k for k in (1, 5, 10) if k <= len(self.cmc))
        data: dict[str, float | int] = {f"rank{k}": round(100.0 * self.rank(k), 2) for k in ranks}
        data["mAP"] = round(100.0 * self.mAP, 2)
        data["valid_queries"] = self.num_valid_queries
        data["queries"] = self.num_queries
        return data


def evaluate_market1501(
    distmat: np.ndarray,
    q_pids: np.ndarray,
    g_pids: np.ndarray,
    q_camids: np.ndarray,
    g_camids: np.ndarray,
    max_rank: int = 10,
    on_progress: Callable[[int], None] | None = None,
) -> RetrievalScores:
    """CMC and mAP of a ranking under the Market-1501 protocol (see the module docstring).

    Args:
        distmat: (Q, G) float distances, smaller = more similar (e.g. 1 - cosine).
        q_pids: (Q,) int query person ids.
        g_pids: (G,) int gallery person ids (-1 junk, 0 distractor).
        q_camids: (Q,) int query camera ids.
        g_camids: (G,) int gallery camera ids.
        max_rank: length of the CMC curve; shorter galleries pad with their last value.
        on_progress: called with the queries scored after each block of them (Q in all).

    Returns:
        :class:`RetrievalScores`. Ties in distance keep gallery order (stable sort).

    Memory: besides ``distmat``, the int64 order of a block of queries (about 4 M entries, 32 MB), not
    the (Q, G) order of all at once (7.7 GB for MSMT17's 11659 x 82161).

    Raises:
        ValueError: shapes disagree, ``max_rank`` < 1, or no query has a correct match in the gallery.
    """
    distmat = np.asarray(distmat)
    q_pids, g_pids = np.asarray(q_pids), np.asarray(g_pids)
    q_camids, g_camids = np.asarray(q_camids), np.asarray(g_camids)
    num_q, num_g = distmat.shape
    if q_pids.shape != (num_q,) or q_camids.shape != (num_q,) or g_pids.shape != (num_g,) or g_camids.shape != (num_g,):
        raise ValueError(f"distmat {distmat.shape} does not match ids: query {q_pids.shape}/{q_camids.shape}, gallery {g_pids.shape}/{g_camids.shape}")
    if max_rank < 1:
        raise ValueError(f"max_rank must be >= 1, got {max_rank}")

    all_cmc, all_ap = [], []
    block = max(1, _ORDER_BLOCK_ELEMENTS // max(num_g, 1))
    for start in range(0, num_q, block):
        order = np.argsort(distmat[start : start + block], axis=1, kind="stable")
        for q, ranked in enumerate(order, start):
            ranked_pids = g_pids[ranked]
            ranked_cams = g_camids[ranked]
            same_view = (ranked_pids == q_pids[q]) & (ranked_cams == q_camids[q])
            keep = ~same_view & (ranked_pids != JUNK_PID)
            matches = (ranked_pids[keep] == q_pids[q]) & (q_pids[q] not in (JUNK_PID, DISTRACTOR_PID))
            if not matches.any():
                continue  # no correct match for this query: not counted
            hits = np.cumsum(matches)
            cmc = (hits >= 1).astype(np.float64)
            if len(cmc) < max_rank:
                cmc = np.concatenate([cmc, np.full(max_rank - len(cmc), cmc[-1])])
            all_cmc.append(cmc[:max_rank].copy())  # a copy: a view would keep the whole (G,) curve of every query
            precision_at_hits = hits[matches] / (np.flatnonzero(matches) + 1.0)
            all_ap.append(float(precision_at_hits.mean()))
        if on_progress is not None:
            on_progress(len(order))
    if not all_cmc:
        raise ValueError("no query has a correct match in the gallery (different camera); check the data set's ids and cameras")
    return RetrievalScores(
        cmc=np.mean(all_cmc, axis=0), mAP=float(np.mean(all_ap)), num_valid_queries=len(all_cmc), num_queries=num_q
    )


def cosine_distance(query: np.ndarray, gallery: np.ndarray) -> np.ndarray:
    """(Q, G) float32 ``1 - cosine`` between L2-normalised rows of (Q, D) and (G, D), in [0, 2].

    Memory: the (Q, G) result only (computed in place: no temporaries of its size)."""
    dist = np.asarray(query, np.float32) @ np.asarray(gallery, np.float32).T
    np.subtract(np.float32(1.0), dist, out=dist)
    return dist
