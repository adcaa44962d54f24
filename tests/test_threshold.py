"""Threshold at a false-match rate, pair construction, Market-1501 names."""

from __future__ import annotations

import numpy as np
import pytest

from edge_reid.evaluation.threshold import (
    pair_similarities,
    round_up,
    threshold_at_false_match_rate,
    threshold_report,
)


@pytest.mark.parametrize("rate", [0.0, 0.01, 0.1, 0.25, 0.5, 1.0])
def test_threshold_meets_the_rate_and_is_the_lowest_that_does(rate):
    negatives = np.random.default_rng(0).uniform(-0.2, 0.8, 1000).astype(np.float32)
    t = threshold_at_false_match_rate(negatives, rate)
    assert np.mean(negatives >= t) <= rate + 1e-12
    lower = np.nextafter(np.float32(t), np.float32(-np.inf))
    if rate < 1.0:  # one step lower lets one more negative through, past the rate
        assert np.mean(negatives >= lower) > rate


def test_pairs_follow_the_market_rule():
    e = np.float32([[1, 0], [1, 0], [0.6, 0.8], [0, 1]])
    pids = np.array([1, 1, 1, 2])
    cams = np.array([1, 1, 2, 1])
    positives, negatives = pair_similarities(e, pids, cams)
    # same person: (0,2) and (1,2) across cameras; (0,1) is same camera and left out
    np.testing.assert_allclose(sorted(positives), [0.6, 0.6])
    np.testing.assert_allclose(sorted(negatives), [0.0, 0.0, 0.8])


def test_report_histograms_and_rates():
    rng = np.random.default_rng(1)
    positives = rng.normal(0.8, 0.05, 500).astype(np.float32)
    negatives = rng.normal(0.3, 0.1, 5000).astype(np.float32)
    report = threshold_report(positives, negatives, 0.01, bins=10)
    assert report.positive_hist.sum() == pytest.approx(1) and report.negative_hist.sum() == pytest.approx(1)
    assert report.edges[-1] == 1.0 and len(report.edges) == 11
    assert report.false_match_rate <= 0.01 and report.true_match_rate > 0.95
    assert report.to_dict()["histogram"]["edges"][-1] == 1.0
    with pytest.raises(ValueError, match="positive"):
        threshold_report(positives[:0], negatives, 0.01)


def test_a_similarity_a_rounding_error_above_one_is_counted_in_the_top_bin():
    """float32 cosine similarities of near-identical crops come out as 1.0000001: they fell outside the last edge."""
    positives = np.array([1.0000001, 0.8], np.float32)
    negatives = np.array([0.9, 0.5, 0.5, 0.2, 1.0000001], np.float32)
    report = threshold_report(positives, negatives, 0.1)
    assert report.positive_hist.sum() == pytest.approx(1) and report.negative_hist.sum() == pytest.approx(1)
    assert report.positive_hist[-1] == pytest.approx(0.5) and report.edges[-1] == 1.0


def test_a_sample_too_small_for_the_rate_asked_is_said_so():
    """50 crops gave 1223 different-person pairs and 2 same-person ones, then a threshold 'at 0.01%'
    placed by no false match at all, without a word."""
    rng = np.random.default_rng(0)
    few = threshold_report(rng.uniform(0.6, 0.9, 2), rng.uniform(-0.2, 0.5, 1223), 0.0001)
    warnings = few.sample_warnings()
    assert len(warnings) == 2
    assert warnings[0].startswith("1223 different-person pairs hold 0.12 false matches at a rate of 0.0100%")
    assert "about 100000 pairs are needed" in warnings[0] and "only 2 same-person pairs" in warnings[1]
    enough = threshold_report(rng.uniform(0.6, 0.9, 500), rng.uniform(-0.2, 0.5, 20_000), 0.01)
    assert enough.sample_warnings() == []


def test_round_up_never_lands_below_the_threshold():
    """The printed threshold: rounded to nearest, 0.635806 read 0.6358 and passed negatives the exact one excludes."""
    assert round_up(0.635806) == 0.6359 and round_up(0.5) == 0.5 and round_up(-0.12345) == -0.1234
    for t in np.random.default_rng(0).uniform(-1, 1, 1000).astype(np.float32).tolist():
        shown = float(f"{round_up(t):.4f}")
        assert t <= shown < t + 1e-4
