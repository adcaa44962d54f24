"""The one check that embeddings are unit vectors, for every stage that compares them by inner product."""

from __future__ import annotations

import numpy as np

#: Largest deviation of an embedding's length from 1 that is accepted (float32 rounding of a
#: normalised 512-d vector is ~1e-7; FP16 storage ~1e-3 at most).
UNIT_LENGTH_TOLERANCE = 1e-3


def check_unit_rows(vectors: np.ndarray, what: str = "embedding") -> None:
    """Refuse rows that are not of unit length: their inner products are not cosine similarities.

    Args:
        vectors: (N, D) float array of embeddings.
        what: how a row is named in the message (``"embedding"``).

    Raises:
        ValueError: a row's L2 norm differs from 1 by more than :data:`UNIT_LENGTH_TOLERANCE`
            (NaN included); the message names the first such row and its length.
    """
    norms = np.linalg.norm(np.asarray(vectors, np.float64), axis=1)
    bad = np.flatnonzero(~(np.abs(norms - 1.0) <= UNIT_LENGTH_TOLERANCE))
    if bad.size:
        raise ValueError(
            f"{what} {int(bad[0])} has length {float(norms[bad[0]]):.4g}, not 1: L2-normalise embeddings "
            "(vectors / np.linalg.norm(vectors, axis=1, keepdims=True); Embedder's outputs are)"
        )
