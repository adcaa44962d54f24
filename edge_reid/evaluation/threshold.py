"""Choosing the match threshold from labelled crops: same-person vs different-person similarities.

Given L2-normalised embeddings of labelled person crops (person id and camera,
e.g. a Market-1501 folder), every pair of crops is either

- a *positive* pair: same person, different camera (the Market-1501 rule: a
  same-camera pair is too easy to say anything about re-identification), or
- a *negative* pair: different people (junk ``-1`` and distractor ``0`` crops are left out).

The threshold at a target false-match rate (FMR) is the lowest cosine
similarity ``t`` such that at most that fraction of negative pairs score
``>= t``; the true-match rate (TMR) is the fraction of positive pairs that
score ``>= t``. This is the usual verification operating point (FMR/TMR as in
ISO/IEC 19795-1 biometric performance testing).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge_reid.data.market1501 import DISTRACTOR_PID, GALLERY_DIR, QUERY_DIR, TRAIN_DIR, load_split

MARKET_SPLITS = (TRAIN_DIR, QUERY_DIR, GALLERY_DIR)


def labelled_images(folder: Path) -> tuple[list[Path], np.ndarray, np.ndarray, int]:
    """Person crops with real person ids under ``folder`` (a Market-1501 root or one of its splits).

    Returns:
        (paths, person ids (N,) int64, cameras (N,) int64, files skipped): junk
        (-1) and distractor (0) crops, names that do not parse and non-image
        files are skipped. Images are not read here. The training split's people
        are never the test split's (query and gallery): their ids are moved past
        the test ids, so a data set that numbers both from 1 (MSMT17 in
        Market-1501 layout) pairs no training crop with a test crop as one person.

    Raises:
        DataError: a split folder holds no image with a Market-1501 name.
    """
    folder = Path(folder)
    splits = [folder / s for s in MARKET_SPLITS if (folder / s).is_dir()] or [folder]
    paths: list[Path] = []
    pids, cams, skipped = [], [], 0
    for split in map(load_split, splits):
        keep = split.pids > DISTRACTOR_PID
        paths += [path for path, kept in zip(split.paths, keep) if kept]
        pids.append(split.pids[keep])
        cams.append(split.camids[keep])
        skipped += len(split.skipped) + int((~keep).sum())
    if len(splits) > 1 and splits[0].name == TRAIN_DIR:
        test_ids = np.concatenate(pids[1:])
        if test_ids.size:  # training people after every test id (both splits may number people from 1)
            pids[0] = pids[0] + int(test_ids.max())
    return paths, np.concatenate(pids).astype(np.int64), np.concatenate(cams).astype(np.int64), skipped


def pair_similarities(embeddings: np.ndarray, pids: np.ndarray, cams: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cosine similarities of all positive and all negative pairs (each unordered pair once).

    Args:
        embeddings: (N, D) float32 L2-normalised.
        pids: (N,) person ids; cams: (N,) camera ids.

    Returns:
        (positives (P,) float32, negatives (M,) float32).
    """
    sim = embeddings @ embeddings.T
    upper = np.triu(np.ones(sim.shape, bool), k=1)
    same_person = pids[:, None] == pids[None, :]
    other_camera = cams[:, None] != cams[None, :]
    return sim[upper & same_person & other_camera].astype(np.float32), sim[upper & ~same_person].astype(np.float32)


def threshold_at_false_match_rate(negatives: np.ndarray, rate: float) -> float:
    """Lowest threshold t with ``mean(negatives >= t) <= rate`` (t just above a negative score).

    Args:
        negatives: (M,) cosine similarities in [-1, 1] of different-person pairs.
        rate: the false-match rate allowed, a fraction in [0, 1].

    Returns:
        The threshold, a cosine similarity.

    Raises:
        ValueError: no negatives, or rate outside [0, 1].
    """
    if negatives.size == 0:
        raise ValueError("need at least one negative pair")
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"false-match rate must be in [0, 1], got {rate}")
    ordered = np.sort(negatives.astype(np.float64))[::-1]
    allowed = int(np.floor(rate * ordered.size + 1e-9))  # negatives that may score >= t
    if allowed >= ordered.size:
        return float(ordered[-1])
    return float(np.nextafter(np.float32(ordered[allowed]), np.float32(np.inf)))


def round_up(threshold: float, decimals: int = 4) -> float:
    """``threshold`` rounded up to ``decimals`` places, for printing.

    A threshold rounded to nearest can land below the exact one and let through negative pairs
    that it excludes (a false-match rate above the target); rounded up, it lets through at most
    the pairs the exact one does. Formatted with ``decimals`` places, it reads back the same.
    """
    scale = 10**decimals
    steps = math.ceil(threshold * scale)
    if steps / scale < threshold:  # threshold * scale rounded down onto a whole number
        steps += 1
    return steps / scale


#: False matches a threshold needs above it (expected from the negative pairs) to be placed by more than a
#: handful: with 10, the rate is known to within about a third (Poisson, 1 / sqrt(10)).
MIN_FALSE_MATCHES = 10
#: Same-person pairs below which the true-match rate is called a rough figure (one pair is 2% or more).
MIN_POSITIVE_PAIRS = 50


@dataclass(frozen=True)
class ThresholdReport:
    """The operating point and the histograms behind it.

    Attributes:
        threshold: cosine similarity in [-1, 1] at the target false-match rate.
        target_false_match_rate: the rate asked for, in [0, 1].
        false_match_rate: fraction of negative pairs at or above ``threshold``.
        true_match_rate: fraction of positive pairs at or above ``threshold``.
        positives, negatives: number of pairs of each kind.
        edges: (B+1,) histogram bin edges (cosine similarity).
        positive_hist, negative_hist: (B,) fraction of each kind of pair per bin.
    """

    threshold: float
    target_false_match_rate: float
    false_match_rate: float
    true_match_rate: float
    positives: int
    negatives: int
    edges: np.ndarray
    positive_hist: np.ndarray
    negative_hist: np.ndarray

    def sample_warnings(self) -> list[str]:
        """What the pairs are too few to support, one sentence each (empty when they suffice).

        A false-match rate ``f`` is placed by the negative pairs above the threshold: with fewer than
        :data:`MIN_FALSE_MATCHES` of them expected (``negatives * f``) the threshold is set by a
        handful of pairs, or by none. The true-match rate of fewer than :data:`MIN_POSITIVE_PAIRS`
        same-person pairs moves by whole percents with one pair."""
        warnings = []
        expected = self.negatives * self.target_false_match_rate
        if self.target_false_match_rate > 0 and expected < MIN_FALSE_MATCHES:
            needed = int(np.ceil(MIN_FALSE_MATCHES / self.target_false_match_rate))
            warnings.append(
                f"{self.negatives} different-person pairs hold {expected:.2g} false matches at a rate of "
                f"{self.target_false_match_rate:.4%}: too few to place the threshold (about {needed} pairs are needed: "
                "more images or people)"
            )
        if self.positives < MIN_POSITIVE_PAIRS:
            warnings.append(f"only {self.positives} same-person pairs: the true-match rate is a rough figure")
        return warnings

    def to_dict(self) -> dict:
        """JSON-able form."""
        return {
            "threshold": self.threshold,
            "target_false_match_rate": self.target_false_match_rate,
            "false_match_rate": self.false_match_rate,
            "true_match_rate": self.true_match_rate,
            "positive_pairs": self.positives,
            "negative_pairs": self.negatives,
            "histogram": {
                "edges": [round(float(e), 6) for e in self.edges],
                "positive": [round(float(v), 6) for v in self.positive_hist],
                "negative": [round(float(v), 6) for v in self.negative_hist],
            },
        }


def threshold_report(positives: np.ndarray, negatives: np.ndarray, rate: float, bins: int = 20) -> ThresholdReport:
    """Histograms of both pair kinds over [min score, 1] and the threshold at ``rate``.

    Every pair is counted: a similarity a rounding error above 1 (or below -1) is counted in the end bin.

    Args:
        positives: (P,) cosine similarities of same-person pairs (two cameras).
        negatives: (M,) cosine similarities of different-person pairs.
        rate: the false-match rate allowed, a fraction in [0, 1].
        bins: histogram bins.

    Raises:
        ValueError: no positive or no negative pairs, or a bad rate.
    """
    if positives.size == 0:
        raise ValueError("need at least one positive pair (same person seen by two cameras)")
    threshold = threshold_at_false_match_rate(negatives, rate)
    low = float(min(positives.min(), negatives.min()))
    edges = np.linspace(np.floor(low * 20) / 20, 1.0, bins + 1)
    # A similarity a rounding error above 1 (1.0000001 from float32) falls in the top bin, not outside the edges.
    pos_hist = np.histogram(np.clip(positives, -1.0, 1.0), edges)[0] / positives.size
    neg_hist = np.histogram(np.clip(negatives, -1.0, 1.0), edges)[0] / negatives.size
    return ThresholdReport(
        threshold=threshold,
        target_false_match_rate=float(rate),
        false_match_rate=float(np.mean(negatives >= threshold)),
        true_match_rate=float(np.mean(positives >= threshold)),
        positives=int(positives.size),
        negatives=int(negatives.size),
        edges=edges,
        positive_hist=pos_hist,
        negative_hist=neg_hist,
    )
