"""One-to-one assignment of detections to identities on a similarity matrix."""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

from edge_reid.thresholds import at_least

_FORBIDDEN = -1.0e3


def assign_unique(similarity: np.ndarray, threshold: float) -> np.ndarray:
    """Assign each detection at most one identity, and each identity at most one detection.

    Solves a linear assignment (Hungarian method, ``scipy.optimize.linear_sum_assignment``)
    that first maximises the number of detection-identity pairs whose similarity
    is at least ``threshold``, then their total similarity. Pairs below the
    threshold are never returned.

    Args:
        similarity: (N, M) cosine similarities in [-1, 1] of N detections to M identities.
        threshold: lowest cosine similarity that counts as the same person.

    Returns:
        (N,) int64: for each detection the column of its identity, or -1.
    """
    rows = similarity.shape[0]
    assigned = np.full(rows, -1, dtype=np.int64)
    if rows == 0 or similarity.shape[1] == 0:
        return assigned
    allowed = at_least(similarity, threshold)  # in float32: a similarity exactly at the threshold counts
    if not allowed.any():
        return assigned
    weights = np.where(allowed, similarity, _FORBIDDEN)
    row_index, col_index = linear_sum_assignment(weights, maximize=True)
    valid = allowed[row_index, col_index]
    assigned[row_index[valid]] = col_index[valid]
    return assigned
