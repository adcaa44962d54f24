"""How closely a quantized model reproduces its FP32 original on an unlabelled pool of real crops.

No labels are needed: the FP32 embeddings are the reference. Two views:

- per crop, the cosine similarity between its FP32 and quantized embedding;
- per crop used as a query against the rest of the pool, whether the quantized
  model finds the same nearest neighbours as FP32 (what a gallery matcher sees).

Top-1 agreement counts every swap of two nearly tied neighbours, and in a pool cut
from a video the nearest neighbour of a crop is usually another view of the same
person, nearly tied with further views. Beside it, ``top1_same_person`` counts a swap
as agreement when FP32 itself matches the two neighbours to each other at the strict
re-identification threshold (they are one person to the gallery, so no identity
changes). It is reported next to top-1, not instead of it, as is ``top1_outside_ties``,
which counts a swap as agreement when FP32's own two nearest neighbours are within
:data:`NEAR_TIE_COSINE` of each other (FP32's choice between them is not meaningful at the
precision of reduced-precision arithmetic), and ``near_ties``, the share of such crops.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edge_reid.defaults import REID_THRESHOLD

#: FP32 cosine margin between a crop's nearest and second-nearest neighbour under which the two
#: count as a near tie: a tenth of a percent of cosine. On the bundled model the FP16 conversion
#: (mean cosine 0.99999 to FP32) already swaps such pairs (1 of 190 vtest crops).
NEAR_TIE_COSINE = 0.001


@dataclass(frozen=True)
class Agreement:
    """Quantized-vs-reference agreement on one pool.

    Attributes:
        crops: pool size N.
        mean_cosine: mean cosine similarity between paired embeddings, in [-1, 1].
        p1_cosine: 1st percentile of those cosines (the worst 1% of crops).
        top1: fraction of crops whose nearest neighbour (the pool minus itself) is
            the same crop under both models, in [0, 1].
        top5: mean overlap of the two top-5 neighbour sets, |A & B| / 5, in [0, 1].
        top1_same_person: fraction of crops whose quantized nearest neighbour is FP32's, or a
            crop FP32 matches to FP32's nearest neighbour at or above ``same_person_similarity``
            (see :func:`compare_embeddings`), in [0, 1].
        top1_outside_ties: fraction of crops whose quantized nearest neighbour is FP32's, or whose
            FP32 nearest and second-nearest neighbours are within :data:`NEAR_TIE_COSINE`, in [0, 1].
        near_ties: fraction of crops whose FP32 nearest two neighbours are within
            :data:`NEAR_TIE_COSINE` (a property of the pool and the FP32 model), in [0, 1].
    """

    crops: int
    mean_cosine: float
    p1_cosine: float
    top1: float
    top5: float
    top1_same_person: float = float("nan")
    top1_outside_ties: float = float("nan")
    near_ties: float = float("nan")

    def to_dict(self) -> dict[str, float | int]:
        """JSON-ready: cosines to 5 decimals, agreements in percent to 2 decimals."""
        return {
            "crops": self.crops,
            "mean_cosine": round(self.mean_cosine, 5),
            "p1_cosine": round(self.p1_cosine, 5),
            "top1_agreement": round(100.0 * self.top1, 2),
            "top5_agreement": round(100.0 * self.top5, 2),
            "top1_same_person_agreement": round(100.0 * self.top1_same_person, 2),
            "top1_outside_ties_agreement": round(100.0 * self.top1_outside_ties, 2),
            "fp32_near_ties_percent": round(100.0 * self.near_ties, 2),
        }


def nearest_neighbours(embeddings: np.ndarray, k: int) -> np.ndarray:
    """(N, k) int64 indices of each row's k most cosine-similar other rows, best first.

    Args:
        embeddings: (N, D) float32, L2-normalised rows; N > k.
        k: neighbours per row, 1 <= k < N (with k >= N the result has N - 1 real columns, then the row itself).

    Ties keep the lower index first (stable sort).
    """
    similarity = embeddings @ embeddings.T
    np.fill_diagonal(similarity, -np.inf)
    return np.argsort(-similarity, axis=1, kind="stable")[:, :k]


def compare_embeddings(reference: np.ndarray, candidate: np.ndarray, same_person_similarity: float = REID_THRESHOLD) -> Agreement:
    """Agreement of ``candidate`` embeddings with ``reference`` ones for the same crops.

    Args:
        reference: (N, D) float32 L2-normalised embeddings (FP32 model), N >= 7.
        candidate: (N, D) float32 L2-normalised embeddings of the same crops, same order.
        same_person_similarity: cosine similarity at or above which FP32 counts two crops as
            one person for ``top1_same_person`` (default: ``run``'s strict re-identification
            threshold, a 0.01% false-match rate for the bundled model).

    Raises:
        ValueError: shapes differ or fewer than 7 crops (top-5 needs 5 others and a spare).
    """
    reference = np.asarray(reference, np.float32)
    candidate = np.asarray(candidate, np.float32)
    if reference.shape != candidate.shape or reference.ndim != 2:
        raise ValueError(f"embeddings must be two (N, D) arrays of one shape, got {reference.shape} and {candidate.shape}")
    if len(reference) < 7:
        raise ValueError(f"need at least 7 crops to compare neighbours, got {len(reference)}")
    cosine = np.sum(reference * candidate, axis=1)
    ref_nn = nearest_neighbours(reference, 5)
    cand_nn = nearest_neighbours(candidate, 5)
    top1 = float(np.mean(ref_nn[:, 0] == cand_nn[:, 0]))
    between = np.sum(reference[ref_nn[:, 0]] * reference[cand_nn[:, 0]], axis=1)  # FP32 similarity of the two nearest
    same_person = float(np.mean((ref_nn[:, 0] == cand_nn[:, 0]) | (between >= same_person_similarity)))
    lead = np.sum(reference * reference[ref_nn[:, 0]], axis=1) - np.sum(reference * reference[ref_nn[:, 1]], axis=1)
    near_tie = lead < NEAR_TIE_COSINE
    overlap = (ref_nn[:, :, None] == cand_nn[:, None, :]).any(axis=2).sum(axis=1)
    return Agreement(
        crops=len(reference),
        mean_cosine=float(cosine.mean()),
        p1_cosine=float(np.percentile(cosine, 1)),
        top1=top1,
        top5=float(overlap.mean() / 5.0),
        top1_same_person=same_person,
        top1_outside_ties=float(np.mean((ref_nn[:, 0] == cand_nn[:, 0]) | near_tie)),
        near_ties=float(np.mean(near_tie)),
    )
