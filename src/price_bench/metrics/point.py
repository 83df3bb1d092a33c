"""Point metrics: one number for a whole run.

Every function takes ``truth`` and ``guess`` as 1-D float arrays of equal
length (USD) and returns a Python float (``None`` where the metric is
undefined, e.g. on zero items). None of them look at anything else, so they
are trivially testable against hand-computed examples.

Directions (also in :data:`METRICS`):

============== ======================================================= =========
name           definition                                              better
============== ======================================================= =========
error          mean absolute error, ``mean(|guess - truth|)``          lower
rmsle          ``sqrt(mean((log1p(g) - log1p(t))**2))``, negatives     lower
               clipped to 0 before the log
hits           % of items with ``|err| < $40`` or ``|err| < 20%``      higher
               of the truth (the "green" band)
orange         % of items in the orange band: ``|err| < $80`` or       neither
               ``< 40%`` of the truth, but not a hit (so hits +
               orange + red = 100)
median_error   median absolute error                                   lower
mean_pct_error mean of ``|err| / truth`` in %, over items whose truth  lower
               is > 0
mse            mean squared error                                      lower
r2             coefficient of determination ``1 - SS_res / SS_tot``    higher
               (None when every truth is equal)
coverage       % of items whose answer parsed to a price (the others   higher
               are scored with the fallback price)
============== ======================================================= =========

Extreme inputs never raise or warn: a metric whose value is not a finite
number (an infinite guess, or squares beyond float64) is None, "undefined",
like a metric of zero items. The harness itself never feeds them such values:
absurd guesses are parse failures (see :mod:`price_bench.parsing`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

#: The "hit" (green) band: absolute error under this many dollars ...
HIT_ABS = 40.0
#: ... or under this fraction of the true price.
HIT_REL = 0.20
#: The orange band: absolute error under this many dollars ...
ORANGE_ABS = 80.0
#: ... or under this fraction of the true price (and not a hit).
ORANGE_REL = 0.40


@dataclass(frozen=True)
class MetricSpec:
    """How to read a metric: its label, unit and direction."""

    name: str
    label: str
    higher_is_better: bool | None  # None: neither (a descriptive share)
    unit: str = ""


METRICS: dict[str, MetricSpec] = {
    spec.name: spec
    for spec in (
        MetricSpec("error", "Error (MAE)", False, "$"),
        MetricSpec("rmsle", "RMSLE", False),
        MetricSpec("hits", "Hits", True, "%"),
        MetricSpec("orange", "Orange band", None, "%"),
        MetricSpec("median_error", "Median abs error", False, "$"),
        MetricSpec("mean_pct_error", "Mean % error", False, "%"),
        MetricSpec("mse", "MSE", False, "$²"),
        MetricSpec("r2", "R²", True),
        MetricSpec("coverage", "Coverage", True, "%"),
    )
}


def finite_or_none(value: float | None) -> float | None:
    """``value`` as a float when it is a finite number, else None."""
    return float(value) if value is not None and np.isfinite(value) else None


def _defined(metric: Callable[..., float | None]) -> Callable[..., float | None]:
    """Compute ``metric`` with numpy's overflow warnings off; a non-finite result is None."""

    @functools.wraps(metric)
    def wrapper(*args, **kwargs):
        with np.errstate(over="ignore", invalid="ignore"):
            return finite_or_none(metric(*args, **kwargs))

    return wrapper


def _arrays(truth, guess) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(truth, dtype=np.float64)
    g = np.asarray(guess, dtype=np.float64)
    if t.shape != g.shape or t.ndim != 1:
        raise ValueError(f"truth and guess must be 1-D arrays of one length, got {t.shape} and {g.shape}")
    return t, g


def abs_errors(truth, guess) -> np.ndarray:
    """``|guess - truth|`` per item."""
    t, g = _arrays(truth, guess)
    with np.errstate(over="ignore", invalid="ignore"):
        return np.abs(g - t)


def log_errors(truth, guess) -> np.ndarray:
    """``log1p(guess) - log1p(truth)`` per item, negatives clipped to 0 first."""
    t, g = _arrays(truth, guess)
    with np.errstate(over="ignore", invalid="ignore"):
        return np.log1p(np.clip(g, 0.0, None)) - np.log1p(np.clip(t, 0.0, None))


def _relative(err: np.ndarray, t: np.ndarray) -> np.ndarray:
    """``err / truth``; +inf where the truth is not positive."""
    out = np.full_like(err, np.inf)
    with np.errstate(over="ignore", invalid="ignore"):
        np.divide(err, t, out=out, where=t > 0)
    return out


def hit_mask(truth, guess) -> np.ndarray:
    """True where the guess is a hit: ``|err| < $40`` or ``|err| < 20%`` of the truth."""
    t, g = _arrays(truth, guess)
    err = np.abs(g - t)
    return (err < HIT_ABS) | (_relative(err, t) < HIT_REL)


def orange_mask(truth, guess) -> np.ndarray:
    """True in the orange band: within $80 or 40% of the truth, but not a hit."""
    t, g = _arrays(truth, guess)
    err = np.abs(g - t)
    near = (err < ORANGE_ABS) | (_relative(err, t) < ORANGE_REL)
    return near & ~hit_mask(t, g)


@_defined
def error(truth, guess) -> float | None:
    """Mean absolute error in USD (lower is better)."""
    err = abs_errors(truth, guess)
    return float(err.mean()) if err.size else None


@_defined
def rmsle(truth, guess) -> float | None:
    """Root mean squared log error, ``log1p`` with negatives clipped to 0 (lower is better)."""
    le = log_errors(truth, guess)
    return float(np.sqrt(np.mean(le * le))) if le.size else None


@_defined
def hits(truth, guess) -> float | None:
    """Percentage of hits, see :func:`hit_mask` (higher is better)."""
    mask = hit_mask(truth, guess)
    return float(mask.mean() * 100.0) if mask.size else None


@_defined
def orange(truth, guess) -> float | None:
    """Percentage of items in the orange band, see :func:`orange_mask` (descriptive)."""
    mask = orange_mask(truth, guess)
    return float(mask.mean() * 100.0) if mask.size else None


@_defined
def median_error(truth, guess) -> float | None:
    """Median absolute error in USD (lower is better)."""
    err = abs_errors(truth, guess)
    return float(np.median(err)) if err.size else None


@_defined
def mean_pct_error(truth, guess) -> float | None:
    """Mean of ``|err| / truth`` in percent over items with a positive truth (lower is better)."""
    t, g = _arrays(truth, guess)
    positive = t > 0
    if not positive.any():
        return None
    return float(np.mean(np.abs(g[positive] - t[positive]) / t[positive]) * 100.0)


@_defined
def mse(truth, guess) -> float | None:
    """Mean squared error in USD² (lower is better)."""
    t, g = _arrays(truth, guess)
    return float(np.mean((g - t) ** 2)) if t.size else None


@_defined
def r2(truth, guess) -> float | None:
    """Coefficient of determination (higher is better; 1 is perfect, 0 is the mean guess).

    None when there are no items or every truth is equal (the ratio is undefined).
    """
    t, g = _arrays(truth, guess)
    if not t.size:
        return None
    ss_tot = float(np.sum((t - t.mean()) ** 2))
    if ss_tot == 0.0:
        return None
    return 1.0 - float(np.sum((g - t) ** 2)) / ss_tot


@_defined
def coverage(parsed_mask) -> float | None:
    """Percentage of items whose answer parsed to a price (higher is better)."""
    mask = np.asarray(parsed_mask, dtype=bool)
    return float(mask.mean() * 100.0) if mask.size else None
