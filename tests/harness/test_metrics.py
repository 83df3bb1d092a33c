"""Metric values checked against hand-computed examples."""

from __future__ import annotations

import math

import numpy as np
import pytest

from price_bench.metrics import METRICS, point, score
from price_bench.metrics.bootstrap import bootstrap_means, mean_ci, paired_compare
from price_bench.metrics.breakdown import band_breakdown, band_labels, breakdown, price_bands

# Four items: errors 10, 30, 0 and 70 dollars.
TRUTH = [100.0, 50.0, 10.0, 200.0]
GUESS = [110.0, 20.0, 10.0, 270.0]


def test_point_metrics_by_hand():
    assert point.error(TRUTH, GUESS) == 27.5  # (10 + 30 + 0 + 70) / 4
    assert point.median_error(TRUTH, GUESS) == 20.0  # median of 0, 10, 30, 70
    assert point.mse(TRUTH, GUESS) == 1475.0  # (100 + 900 + 0 + 4900) / 4
    # 10, 30 and 0 are under $40; 70 is neither under $40 nor under 20% of 200.
    assert point.hits(TRUTH, GUESS) == 75.0
    # 70 is under $80: the orange band.
    assert point.orange(TRUTH, GUESS) == 25.0
    assert point.mean_pct_error(TRUTH, GUESS) == pytest.approx((10 + 60 + 0 + 35) / 4)
    # mean truth 90: SS_tot = 100 + 1600 + 6400 + 12100 = 20200, SS_res = 5900
    assert point.r2(TRUTH, GUESS) == pytest.approx(1 - 5900 / 20200)
    expected_rmsle = math.sqrt(
        ((math.log(111) - math.log(101)) ** 2 + (math.log(21) - math.log(51)) ** 2 + 0 + (math.log(271) - math.log(201)) ** 2) / 4
    )
    assert point.rmsle(TRUTH, GUESS) == pytest.approx(expected_rmsle)
    assert point.coverage([True, False, True, True]) == 75.0


def test_relative_bands_and_edge_cases():
    # $50 off a $300 item is 16.7%: a hit although over $40; $100 off $300 is 33%: orange.
    assert point.hits([300.0], [350.0]) == 100.0
    assert point.orange([300.0], [400.0]) == 100.0
    assert point.hits([300.0], [400.0]) == 0.0
    # Exactly $40 off is not a hit (strictly under), and $200 off $400 is red.
    assert point.hits([1000.0], [1040.0]) == 100.0  # 4% relative
    assert point.hits([100.0], [140.0]) == 0.0 and point.orange([100.0], [140.0]) == 100.0
    assert point.orange([400.0], [600.0]) == 0.0
    # Negative guesses are clipped to 0 before the log.
    assert point.rmsle([10.0], [-5.0]) == pytest.approx(math.log(11))
    # A zero truth: relative error undefined, so only the dollar band counts; mean % skips it.
    assert point.hits([0.0], [30.0]) == 100.0
    assert point.mean_pct_error([0.0, 10.0], [30.0, 15.0]) == 50.0
    assert point.mean_pct_error([0.0], [1.0]) is None
    assert point.r2([5.0, 5.0], [4.0, 6.0]) is None
    assert point.error([], []) is None
    with pytest.raises(ValueError):
        point.error([1.0, 2.0], [1.0])


def test_every_metric_documents_its_direction():
    assert METRICS["error"].higher_is_better is False
    assert METRICS["hits"].higher_is_better is True
    assert METRICS["r2"].higher_is_better is True
    assert METRICS["orange"].higher_is_better is None
    for name in METRICS:
        assert name in point.__doc__, f"{name} missing from the metrics table in metrics/point.py"


def test_price_bands():
    assert band_labels() == ["<$10", "$10-25", "$25-50", "$50-100", "$100-200", "$200-500", "$500+"]
    assert list(price_bands([9.99, 25.0, 99.99, 100.0, 500.0, 7000.0])) == ["<$10", "$25-50", "$50-100", "$100-200", "$500+", "$500+"]
    rows = band_breakdown([10.0, 20.0, 600.0], [20.0, 20.0, 300.0])
    assert list(rows) == ["$10-25", "$500+"]
    assert rows["$10-25"] == {"n": 2, "error": 5.0, "rmsle": pytest.approx(math.log(21 / 11) / math.sqrt(2)), "hits": 100.0, "mean_truth": 15.0}
    assert rows["$500+"]["error"] == 300.0 and rows["$500+"]["hits"] == 0.0


def test_category_breakdown_by_hand():
    rows = breakdown(TRUTH, GUESS, ["a", "b", "a", None])
    assert rows["a"]["n"] == 2 and rows["a"]["error"] == 5.0  # errors 10 and 0
    assert rows["b"]["error"] == 30.0 and rows["(none)"]["error"] == 70.0


def test_bootstrap_is_seeded_and_sane():
    rng = np.random.default_rng(0)
    values = rng.exponential(50.0, size=2000)
    low, high = mean_ci(values, n_resamples=500, seed=1)
    assert low < values.mean() < high
    # The textbook normal interval: mean +- 1.96 * sd / sqrt(n).
    half = 1.96 * values.std() / math.sqrt(values.size)
    assert high - low == pytest.approx(2 * half, rel=0.15)
    assert mean_ci(values, n_resamples=500, seed=1) == (low, high)
    assert mean_ci(np.full(100, 7.0), n_resamples=50) == (7.0, 7.0)
    means = bootstrap_means(np.column_stack([values, 2 * values]), n_resamples=20, seed=3)
    assert means.shape == (20, 2)
    np.testing.assert_allclose(means[:, 1], 2 * means[:, 0], rtol=1e-5)  # paired: same indices per column


def test_paired_compare():
    rng = np.random.default_rng(0)
    truth = rng.uniform(10, 500, size=1000)
    noise = rng.normal(0, 40, size=1000)
    a = truth + noise
    b = truth + noise * 1.2  # always a bit worse on the same items
    result = paired_compare(truth, a, b, n_resamples=500)
    assert result.significant and result.better == "A" and result.diff < 0
    assert result.ci_low < result.diff < result.ci_high < 0
    assert result.p_value < 0.01
    same = paired_compare(truth, a, a, n_resamples=200)
    assert not same.significant and same.better is None and same.p_value == 1.0
    # Two equally good but different runs: the difference is not significant.
    c = truth + rng.normal(0, 40, size=1000)
    assert not paired_compare(truth, a, c, n_resamples=500).significant


def test_score_builds_record_metrics():
    metrics, breakdowns = score(TRUTH, GUESS, [True, True, False, True], ["a", "b", "a", "b"], n_resamples=200)
    assert metrics["error"].value == 27.5 and metrics["coverage"].value == 75.0
    assert metrics["error"].ci_low <= 27.5 <= metrics["error"].ci_high
    assert metrics["hits"].higher_is_better and not metrics["error"].higher_is_better
    assert metrics["mse"].ci_low is None  # CIs only for Error, RMSLE and Hits
    assert set(breakdowns) == {"price_band", "category"}
    assert breakdowns["category"]["a"].error == 5.0


def test_bca_intervals_contain_the_estimate_and_lean_with_the_skew():
    import numpy as np

    from price_bench.metrics import score

    rng = np.random.default_rng(5)
    truth = rng.lognormal(4, 1, 800)
    guess = truth * rng.lognormal(0, 0.6, 800)
    pct, _ = score(truth, guess, np.ones(800, bool), n_resamples=800, seed=1)
    bca, _ = score(truth, guess, np.ones(800, bool), n_resamples=800, seed=1, ci_method="bca")
    for name in ("error", "rmsle", "hits"):
        assert bca[name].ci_low < bca[name].value < bca[name].ci_high
    # absolute errors are right-skewed: BCa moves the interval up relative to the percentile one
    assert bca["error"].ci_high >= pct["error"].ci_high
    with pytest.raises(ValueError, match="unknown CI method"):
        score(truth, guess, np.ones(800, bool), ci_method="normal")
