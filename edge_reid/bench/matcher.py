"""The loop benchmark's gallery of 10k realistic identities, and its one matcher call."""

from __future__ import annotations

from typing import Callable

import numpy as np

#: Identities in the loop benchmark's gallery: a large gallery, so that the benchmark does not understate matching.
DEFAULT_GALLERY_SIZE = 10_000


def synthetic_gallery(seed_embeddings: np.ndarray, size: int = DEFAULT_GALLERY_SIZE, threshold: float = 0.6, seed: int = 0):
    """A :class:`edge_reid.matching.Gallery` of ``size`` identities that look like real ones.

    Each template is a renormalised random blend ``w * e_a + (1 - w) * e_b`` of two
    real embeddings (w uniform in [0, 1]): it lies among real embeddings, so
    query-template similarities have the spread of real ones (for OSNet, whose
    features are non-negative, many are above the threshold) and the matcher does
    its real amount of work. Random unit vectors would not: their similarities are
    all near 0 and the assignment step would be skipped.

    Args:
        seed_embeddings: (K, D) float32 L2-normalised real embeddings, K >= 1.
        size: identities to create.
        threshold: the gallery's match threshold, cosine similarity in [-1, 1].
        seed: random seed (the gallery is reproducible).

    Returns:
        A Gallery with ``size`` identities.
    """
    from edge_reid.matching.gallery import Gallery

    seed_embeddings = np.asarray(seed_embeddings, np.float32)
    rng = np.random.default_rng(seed)
    first = seed_embeddings[rng.integers(0, len(seed_embeddings), size)]
    second = seed_embeddings[rng.integers(0, len(seed_embeddings), size)]
    weight = rng.uniform(0.0, 1.0, (size, 1)).astype(np.float32)
    templates = weight * first + (1.0 - weight) * second
    templates /= np.maximum(np.linalg.norm(templates, axis=1, keepdims=True), 1e-12)
    gallery = Gallery(seed_embeddings.shape[1], threshold=threshold)
    for template in templates:
        gallery.add(template)
    return gallery


#: A matcher: (gallery, (Q, D) float32 L2-normalised queries) -> (Q,) int64 identity ids (-1: none).
Matcher = Callable[[object, np.ndarray], np.ndarray]


# ---- THE matcher of the loop benchmark -----------------------------------------------------
# The one place the loop matches embeddings: the gallery's own read-only matching,
# i.e. the fused Numba top-k search (edge_reid/matching/topk.py) for each query's
# best identities, then the one-to-one assignment on those candidates.
def match_queries(gallery, queries: np.ndarray) -> np.ndarray:
    """Match (Q, D) float32 L2-normalised queries against ``gallery`` without changing it.

    Returns:
        (Q,) int64 identity ids, -1 where no identity reaches the gallery's threshold.
    """
    return gallery.match(queries, update=False, create=False).identity_ids
