"""Everything a result record holds about quality, computed in one call."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from price_bench.metrics import point
from price_bench.metrics.bootstrap import CI_METHODS, DEFAULT_RESAMPLES, bca_ci, bootstrap_means, jackknife_means, percentile_ci
from price_bench.metrics.breakdown import SliceRow, band_breakdown, breakdown
from price_bench.results.schema import BreakdownRow, MetricValue

#: Metrics that get a bootstrap 95% CI (they are means of per-item values, so
#: one shared set of resample indices serves all three).
CI_METRICS = ("error", "rmsle", "hits")


def score(
    truth: Sequence[float] | np.ndarray,
    guess: Sequence[float] | np.ndarray,
    parsed: Sequence[bool] | np.ndarray,
    categories: Sequence[str | None] | None = None,
    *,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    ci_method: str = "percentile",
) -> tuple[dict[str, MetricValue], dict[str, dict[str, BreakdownRow]]]:
    """Metrics (with CIs for Error, RMSLE and Hits) and breakdowns.

    ``guess`` is what was scored (the fallback price where the answer did not
    parse); ``parsed`` marks the items whose answer did parse (coverage).
    ``ci_method`` is "percentile" (the default) or "bca" (bias-corrected and accelerated).
    Returns ``(metrics, breakdowns)`` in the result-record types.
    """
    if ci_method not in CI_METHODS:
        raise ValueError(f"unknown CI method {ci_method!r} (known: {', '.join(CI_METHODS)})")
    t = np.asarray(truth, dtype=np.float64)
    g = np.asarray(guess, dtype=np.float64)
    parsed_mask = np.asarray(parsed, dtype=bool)
    values = {name: spec.compute(t, g, parsed_mask) for name, spec in point.METRICS.items()}
    cis = _cis(t, g, n_resamples, seed, ci_method) if t.size and n_resamples > 0 else {}
    metrics = {}
    for name, value in values.items():
        low, high = cis.get(name, (None, None))
        if point.finite_or_none(low) is None or point.finite_or_none(high) is None:
            low = high = None  # an interval with an infinite end says nothing
        metrics[name] = MetricValue(
            value=value, ci_low=low, ci_high=high, higher_is_better=point.METRICS[name].higher_is_better
        )
    breakdowns = {"price_band": _rows(band_breakdown(t, g))}
    if categories is not None:
        breakdowns["category"] = _rows(breakdown(t, g, categories))
    return metrics, breakdowns


def _cis(t: np.ndarray, g: np.ndarray, n_resamples: int, seed: int, ci_method: str = "percentile") -> dict[str, tuple[float, float]]:
    with np.errstate(over="ignore", invalid="ignore"):
        le = point.log_errors(t, g)
        columns = np.column_stack([point.abs_errors(t, g), le * le, point.hit_mask(t, g).astype(np.float64) * 100.0])
        samples = bootstrap_means(columns, n_resamples, seed)
        samples[:, 1] = np.sqrt(samples[:, 1])
        if ci_method == "percentile":
            return {name: percentile_ci(samples[:, i]) for i, name in enumerate(CI_METRICS)}
        jack = np.column_stack([jackknife_means(columns[:, j]) for j in range(columns.shape[1])])
        jack[:, 1] = np.sqrt(jack[:, 1])
        estimates = columns.mean(axis=0)
        estimates[1] = np.sqrt(estimates[1])
        return {name: bca_ci(samples[:, i], float(estimates[i]), jack[:, i]) for i, name in enumerate(CI_METRICS)}


def _rows(table: dict[str, SliceRow]) -> dict[str, BreakdownRow]:
    """Breakdown rows; a slice metric that is not a finite number is None (as in :mod:`point`)."""
    return {
        label: BreakdownRow.model_validate({k: v if k == "n" else point.finite_or_none(v) for k, v in row.items()})
        for label, row in table.items()
    }
