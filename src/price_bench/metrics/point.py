"""Point metrics: one number for a whole run.

Every function takes ``truth`` and ``guess`` as 1-D float arrays of equal
length (USD) and returns a Python float (``None`` where the metric is
undefined, e.g. on zero items). None of them look at anything else, so they
are trivially testable against hand-computed examples.

Directions (from :data:`METRICS`, the one registry of metrics: its entries
drive scoring, the CLI's tables, the leaderboard's header and glossary):

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
from typing import Literal, ParamSpec

import numpy as np
import numpy.typing as npt

P = ParamSpec("P")
#: Anything numpy turns into a 1-D float array (a list, a tuple, an array).
Prices = npt.ArrayLike
Floats = npt.NDArray[np.float64]

#: The "hit" (green) band: absolute error under this many dollars ...
HIT_ABS = 40.0
#: ... or under this fraction of the true price.
HIT_REL = 0.20
#: The orange band: absolute error under this many dollars ...
ORANGE_ABS = 80.0
#: ... or under this fraction of the true price (and not a hit).
ORANGE_REL = 0.40


def finite_or_none(value: float | None) -> float | None:
    """``value`` as a float when it is a finite number, else None."""
    return float(value) if value is not None and np.isfinite(value) else None


def _defined(metric: Callable[P, float | None]) -> Callable[P, float | None]:
    """Compute ``metric`` with numpy's overflow warnings off; a non-finite result is None."""

    @functools.wraps(metric)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> float | None:
        with np.errstate(over="ignore", invalid="ignore"):
            return finite_or_none(metric(*args, **kwargs))

    return wrapper


def _arrays(truth: Prices, guess: Prices) -> tuple[Floats, Floats]:
    t = np.asarray(truth, dtype=np.float64)
    g = np.asarray(guess, dtype=np.float64)
    if t.shape != g.shape or t.ndim != 1:
        raise ValueError(f"truth and guess must be 1-D arrays of one length, got {t.shape} and {g.shape}")
    return t, g


def abs_errors(truth: Prices, guess: Prices) -> Floats:
    """``|guess - truth|`` per item."""
    t, g = _arrays(truth, guess)
    with np.errstate(over="ignore", invalid="ignore"):
        return np.abs(g - t)


def log_errors(truth: Prices, guess: Prices) -> Floats:
    """``log1p(guess) - log1p(truth)`` per item, negatives clipped to 0 first."""
    t, g = _arrays(truth, guess)
    with np.errstate(over="ignore", invalid="ignore"):
        return np.log1p(np.clip(g, 0.0, None)) - np.log1p(np.clip(t, 0.0, None))


def _relative(err: Floats, t: Floats) -> Floats:
    """``err / truth``; +inf where the truth is not positive."""
    out = np.full_like(err, np.inf)
    with np.errstate(over="ignore", invalid="ignore"):
        np.divide(err, t, out=out, where=t > 0)
    return out


def hit_mask(truth: Prices, guess: Prices) -> npt.NDArray[np.bool_]:
    """True where the guess is a hit: ``|err| < $40`` or ``|err| < 20%`` of the truth."""
    t, g = _arrays(truth, guess)
    err = np.abs(g - t)
    return (err < HIT_ABS) | (_relative(err, t) < HIT_REL)


def orange_mask(truth: Prices, guess: Prices) -> npt.NDArray[np.bool_]:
    """True in the orange band: within $80 or 40% of the truth, but not a hit."""
    t, g = _arrays(truth, guess)
    err = np.abs(g - t)
    near = (err < ORANGE_ABS) | (_relative(err, t) < ORANGE_REL)
    return near & ~hit_mask(t, g)


@_defined
def error(truth: Prices, guess: Prices) -> float | None:
    """Mean absolute error in USD (lower is better)."""
    err = abs_errors(truth, guess)
    return float(err.mean()) if err.size else None


@_defined
def rmsle(truth: Prices, guess: Prices) -> float | None:
    """Root mean squared log error, ``log1p`` with negatives clipped to 0 (lower is better)."""
    le = log_errors(truth, guess)
    return float(np.sqrt(np.mean(le * le))) if le.size else None


@_defined
def hits(truth: Prices, guess: Prices) -> float | None:
    """Percentage of hits, see :func:`hit_mask` (higher is better)."""
    mask = hit_mask(truth, guess)
    return float(mask.mean() * 100.0) if mask.size else None


@_defined
def orange(truth: Prices, guess: Prices) -> float | None:
    """Percentage of items in the orange band, see :func:`orange_mask` (descriptive)."""
    mask = orange_mask(truth, guess)
    return float(mask.mean() * 100.0) if mask.size else None


@_defined
def median_error(truth: Prices, guess: Prices) -> float | None:
    """Median absolute error in USD (lower is better)."""
    err = abs_errors(truth, guess)
    return float(np.median(err)) if err.size else None


@_defined
def mean_pct_error(truth: Prices, guess: Prices) -> float | None:
    """Mean of ``|err| / truth`` in percent over items with a positive truth (lower is better)."""
    t, g = _arrays(truth, guess)
    positive = t > 0
    if not positive.any():
        return None
    return float(np.mean(np.abs(g[positive] - t[positive]) / t[positive]) * 100.0)


@_defined
def mse(truth: Prices, guess: Prices) -> float | None:
    """Mean squared error in USD² (lower is better)."""
    t, g = _arrays(truth, guess)
    return float(np.mean((g - t) ** 2)) if t.size else None


@_defined
def r2(truth: Prices, guess: Prices) -> float | None:
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
def coverage(parsed_mask: npt.ArrayLike) -> float | None:
    """Percentage of items whose answer parsed to a price (higher is better)."""
    mask = np.asarray(parsed_mask, dtype=bool)
    return float(mask.mean() * 100.0) if mask.size else None


Direction = Literal["higher", "lower", "neither"]

#: How prose says each direction ("Error (..., lower is better)").
DIRECTION_PHRASES: dict[str, str] = {
    "lower": "lower is better",
    "higher": "higher is better",
    "neither": "neither higher nor lower is better",
}


@dataclass(frozen=True)
class MetricSpec:
    """Everything price-bench knows about one metric: how to compute, read, show and explain it.

    ``direction`` is "higher", "lower" or "neither" (a descriptive share).
    ``unit`` ("$", "%", "$²" or "") and ``digits`` say how a value is shown;
    ``short`` is the name in prose and comparisons ("Error"), ``label`` the
    CLI's row label, ``column`` the leaderboard's column heading.
    ``description`` is one sentence (the column's tooltip), ``glossary`` how
    to read it, without the direction, which :meth:`explanation` adds.
    ``compute(truth, guess, parsed)`` is the value a result record holds.
    """

    name: str
    short: str
    label: str
    direction: Direction
    compute: Callable[[Floats, Floats, npt.NDArray[np.bool_]], float | None]
    unit: str = ""
    digits: int = 2
    description: str = ""
    glossary: str = ""
    column: str = ""

    @property
    def higher_is_better(self) -> bool | None:
        """True, False, or None when the metric has no direction."""
        return None if self.direction == "neither" else self.direction == "higher"

    @property
    def lower_is_better(self) -> bool | None:
        """True, False, or None when the metric has no direction."""
        return None if self.direction == "neither" else self.direction == "lower"

    @property
    def heading(self) -> str:
        """The leaderboard's column heading (``column``, else ``short``)."""
        return self.column or self.short

    @property
    def arrow(self) -> str:
        """"↓" (lower is better), "↑" (higher is better) or "" (neither)."""
        return {"lower": "↓", "higher": "↑", "neither": ""}[self.direction]

    @property
    def better(self) -> str:
        """The direction in prose: "lower is better", "higher is better" or "neither higher nor lower is better"."""
        return DIRECTION_PHRASES[self.direction]

    def explanation(self) -> str:
        """The glossary entry: how to read the metric, then its direction ("... Lower is better.")."""
        return f"{self.glossary or self.description} {self.better.capitalize()}."

    def format(self, value: float | None, missing: str = "-") -> str:
        """``value`` in the metric's unit and digits (``$12.34``, ``41.2%``, ``0.512``); ``missing`` for None."""
        if value is None or not np.isfinite(value):
            return missing
        if self.unit == "$":
            return f"-${-value:,.{self.digits}f}" if value < 0 else f"${value:,.{self.digits}f}"
        if self.unit == "%":
            return f"{value:.{self.digits}f}%"
        return f"{value:,.{self.digits}f}" if abs(value) < 1e6 else f"{value:,.3g}"


METRICS: dict[str, MetricSpec] = {
    spec.name: spec
    for spec in (
        MetricSpec("error", "Error", "Error (MAE)", "lower", lambda t, g, p: error(t, g), "$", 2,
                   "Mean absolute error in dollars, with its bootstrap 95% confidence interval.",
                   "mean absolute error in dollars, |guess − truth| averaged over the items; 95% CI from a bootstrap.",
                   column="Error $"),
        MetricSpec("rmsle", "RMSLE", "RMSLE", "lower", lambda t, g, p: rmsle(t, g), "", 3,
                   "Root mean squared log error (log1p, negatives clipped).",
                   "root mean squared error of log(1 + price); punishes being off by a factor, not by dollars."),
        MetricSpec("hits", "Hits", "Hits", "higher", lambda t, g, p: hits(t, g), "%", 1,
                   "Share of items guessed within $40 or within 20% of the true price.",
                   "share of items guessed within $40 or within 20% of the true price (green in the scatter plots; "
                   "orange: within $80 or 40%).", column="Hits %"),
        MetricSpec("orange", "Orange", "Orange band", "neither", lambda t, g, p: orange(t, g), "%", 1,
                   "Share of items guessed within $80 or 40% of the true price but not a hit (Hits + orange + red = 100).",
                   "share of near misses: within $80 or 40% of the true price but not a hit; more orange can mean "
                   "fewer hits or fewer far misses."),
        MetricSpec("median_error", "Median error", "Median abs error", "lower", lambda t, g, p: median_error(t, g), "$", 2,
                   "Median absolute error in dollars."),
        MetricSpec("mean_pct_error", "Mean % error", "Mean % error", "lower", lambda t, g, p: mean_pct_error(t, g), "%", 1,
                   "Mean of |guess − truth| / truth in percent, over the items with a positive true price."),
        MetricSpec("mse", "MSE", "MSE", "lower", lambda t, g, p: mse(t, g), "$²", 2, "Mean squared error in dollars squared."),
        MetricSpec("r2", "R²", "R²", "higher", lambda t, g, p: r2(t, g), "", 3,
                   "Coefficient of determination of guess against truth.",
                   "share of the price variance the guesses explain; 0 is no better than the mean, 1 is perfect."),
        MetricSpec("coverage", "Coverage", "Coverage", "higher", lambda t, g, p: coverage(p), "%", 1,
                   "Share of answers with a usable price; the rest are scored with the train median.",
                   "share of answers that contained a usable price; the others are scored with the train median, never as $0."),
    )
}
