"""Unit vectors: the one check that embeddings are unit vectors, for every stage that compares them by inner
product, and the direction of their mean."""

from __future__ import annotations

import numpy as np

#: Largest deviation of an embedding's length from 1 that is accepted (float32 rounding of a
#: normalised 512-d vector is ~1e-7; FP16 storage ~1e-3 at most).
UNIT_LENGTH_TOLERANCE = 1e-3
#: Rows checked at a time (their float64 copy and its squares: 16 MiB at 256-d).
_ROWS_AT_A_TIME = 4096


def first_non_unit_row(vectors: np.ndarray) -> tuple[int, float] | None:
    """(index, L2 norm) of the first row of (N, D) ``vectors`` whose length differs from 1 by more than
    :data:`UNIT_LENGTH_TOLERANCE` (a NaN or Inf row included: its norm is NaN or Inf), or None when every row is a unit vector."""
    vectors = np.asarray(vectors)
    for start in range(0, vectors.shape[0], _ROWS_AT_A_TIME):  # a float64 copy of a large gallery at once would double it
        norms = np.linalg.norm(np.asarray(vectors[start : start + _ROWS_AT_A_TIME], np.float64), axis=1)
        bad = np.flatnonzero(~(np.abs(norms - 1.0) <= UNIT_LENGTH_TOLERANCE))
        if bad.size:
            return start + int(bad[0]), float(norms[bad[0]])
    return None


def check_unit_rows(vectors: np.ndarray, what: str = "embedding") -> None:
    """Refuse rows that are not of unit length: their inner products are not cosine similarities.

    Args:
        vectors: (N, D) float array of embeddings.
        what: how a row is named in the message (``"embedding"``).

    Raises:
        ValueError: a row's L2 norm differs from 1 by more than :data:`UNIT_LENGTH_TOLERANCE`
            (NaN included); the message names the first such row and its length.
    """
    bad = first_non_unit_row(vectors)
    if bad is not None:
        raise ValueError(
            f"{what} {bad[0]} has length {bad[1]:.4g}, not 1: L2-normalise embeddings "
            "(vectors / np.linalg.norm(vectors, axis=1, keepdims=True); Embedder's outputs are)"
        )


def mean_direction(vectors: np.ndarray) -> np.ndarray | None:
    """(D,) float32 L2-normalised mean of (N, D) unit ``vectors`` (temporal average pooling of a person's
    views), or None when they cancel out (a zero mean has no direction)."""
    mean = np.asarray(vectors).mean(axis=0)
    norm = float(np.linalg.norm(mean))
    return (mean / norm).astype(np.float32) if norm > 0 else None
