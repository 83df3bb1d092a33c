"""Which differences between predictors are real: paired bootstrap tests, Holm correction, rank ranges and tiers.

Every predictor is scored on the same items, so the items are resampled
*together* (one set of bootstrap indices for every predictor,
:func:`~price_bench.metrics.bootstrap.bootstrap_means`): an item's
difficulty cancels out of every difference.

For each pair (A, B) and metric, the test statistic is the observed
difference divided by the standard deviation of the bootstrapped
differences; the two-sided p-value comes from the normal distribution
("bootstrap-z" test: unlike counting resamples past 0 it is not limited to
multiples of 1/n_resamples, which a multiple-comparison correction needs).

On a leaderboard of m rows all m(m-1)/2 pairs are tested on Error and the
p-values are corrected with **Holm-Bonferroni** (family-wise error rate
``alpha`` = 0.05 over every pair). From the significant pairs:

* **rank range** (as arena-style leaderboards do): a row's best possible rank
  is 1 + the rows significantly better than it, its worst m − the rows
  significantly worse: ``2-6`` means "somewhere between 2nd and 6th";
* **tiers**: walking down the ranking, a row starts a new tier when it is
  significantly worse than the first row of the current tier.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TypedDict

import numpy as np
import numpy.typing as npt

from price_bench.metrics import point
from price_bench.metrics.bootstrap import DEFAULT_RESAMPLES, bootstrap_means

ALPHA = 0.05
CORRECTION = "Holm-Bonferroni"
TEST = "paired bootstrap (normal approximation of the bootstrapped difference)"
#: (key, label, higher is better) of the metrics compared.
HEADLINE = tuple((key, point.METRICS[key].short, point.METRICS[key].direction == "higher") for key in ("error", "rmsle", "hits"))


def two_sided_p(diff: float, se: float) -> float:
    """P-value of ``diff`` under a normal null with standard error ``se`` (1.0 when ``se`` is 0 and diff is 0)."""
    if not math.isfinite(diff) or not math.isfinite(se):
        return float("nan")
    if se <= 0:
        return 1.0 if diff == 0 else 0.0
    return math.erfc(abs(diff) / (se * math.sqrt(2.0)))


def holm(p_values: list[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (monotone, capped at 1), in the input order."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: (p_values[i] if math.isfinite(p_values[i]) else 2.0, i))
    adjusted = [1.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        p = p_values[i] if math.isfinite(p_values[i]) else 1.0
        running = max(running, min(1.0, (m - rank) * p))
        adjusted[i] = running
    return adjusted


def _columns(truth: np.ndarray, guesses: np.ndarray) -> dict[str, np.ndarray]:
    """Per-item values whose means give each headline metric (RMSLE: mean of squared log errors, rooted later)."""
    err = np.abs(guesses - truth[:, None])
    le = np.log1p(np.clip(guesses, 0, None)) - np.log1p(np.clip(truth, 0, None))[:, None]
    hits = np.stack([point.hit_mask(truth, guesses[:, j]) for j in range(guesses.shape[1])], axis=1).astype(np.float64) * 100
    return {"error": err, "rmsle": le * le, "hits": hits}


class PairTestDict(TypedDict):
    """:meth:`PairTest.to_dict`: one metric's test, JSON-ready."""

    metric: str
    a: float
    b: float
    diff: float
    ci_low: float
    ci_high: float
    p_value: float
    p_adjusted: float | None
    significant: bool
    better: str | None


@dataclass
class PairTest:
    """One metric's paired test of A against B (``diff`` = A − B)."""

    metric: str
    value_a: float
    value_b: float
    diff: float
    ci_low: float
    ci_high: float
    p_value: float
    p_adjusted: float | None = None
    higher_is_better: bool = False

    @property
    def significant(self) -> bool:
        """Significant at ALPHA (after correction when there was one)."""
        p = self.p_adjusted if self.p_adjusted is not None else self.p_value
        return bool(p < ALPHA)

    @property
    def better(self) -> str | None:
        """"A" or "B" when significant, else None."""
        if not self.significant or self.diff == 0:
            return None
        a_better = self.diff > 0 if self.higher_is_better else self.diff < 0
        return "A" if a_better else "B"

    def to_dict(self) -> PairTestDict:
        return {"metric": self.metric, "a": self.value_a, "b": self.value_b, "diff": self.diff, "ci_low": self.ci_low,
                "ci_high": self.ci_high, "p_value": self.p_value, "p_adjusted": self.p_adjusted,
                "significant": self.significant, "better": self.better}


def pair_tests(truth: npt.ArrayLike, guess_a: npt.ArrayLike, guess_b: npt.ArrayLike, n_resamples: int = DEFAULT_RESAMPLES, seed: int = 0) -> list[PairTest]:
    """Paired tests of two runs on the same items for every headline metric (no correction: one comparison each)."""
    t = np.asarray(truth, dtype=np.float64)
    g = np.column_stack([np.asarray(guess_a, dtype=np.float64), np.asarray(guess_b, dtype=np.float64)])
    if t.size == 0 or g.shape[0] != t.size:
        raise ValueError("pair_tests needs two non-empty guess arrays aligned with truth")
    cols = _columns(t, g)
    samples = bootstrap_means(np.column_stack([cols[k] for k, _, _ in HEADLINE]), n_resamples, seed)
    out = []
    for index, (key, label, higher) in enumerate(HEADLINE):
        s = samples[:, 2 * index: 2 * index + 2]
        full = cols[key].mean(axis=0)
        if key == "rmsle":
            s, full = np.sqrt(s), np.sqrt(full)
        d = s[:, 0] - s[:, 1]
        diff = float(full[0] - full[1])
        low, high = np.quantile(d, [0.025, 0.975])
        out.append(PairTest(label, float(full[0]), float(full[1]), diff, float(low), float(high),
                            two_sided_p(diff, float(np.std(d, ddof=1)) if d.size > 1 else 0.0), higher_is_better=higher))
    return out


@dataclass
class Ranking:
    """The verdicts of a leaderboard, rows in the order given (best Error first)."""

    errors: list[float]
    #: better[i][j]: row i is significantly better (lower Error) than row j after correction.
    better: list[list[bool]]
    p_adjusted: list[list[float]]
    n_items: int
    n_resamples: int
    rank_low: list[int] = field(default_factory=list)
    rank_high: list[int] = field(default_factory=list)
    tiers: list[int] = field(default_factory=list)

    @property
    def n_pairs(self) -> int:
        m = len(self.errors)
        return m * (m - 1) // 2

    def rank_range(self, i: int) -> str:
        """``"3"`` or ``"2-6"``."""
        low, high = self.rank_low[i], self.rank_high[i]
        return str(low) if low == high else f"{low}-{high}"

    def worse_than(self, i: int, j: int) -> bool:
        """Row i is significantly worse than row j."""
        return self.better[j][i]


def rank_with_ties(truth: npt.ArrayLike, guesses: Sequence[npt.ArrayLike], n_resamples: int = DEFAULT_RESAMPLES, seed: int = 0) -> Ranking:
    """Holm-corrected paired bootstrap tests of Error between every pair of runs, rank ranges and tiers.

    ``guesses`` holds one array per row, aligned with ``truth``; rows should be
    given best Error first (tiers follow that order).
    """
    t = np.asarray(truth, dtype=np.float64)
    g = np.column_stack([np.asarray(x, dtype=np.float64) for x in guesses]) if guesses else np.empty((t.size, 0))
    m = g.shape[1]
    err = np.abs(g - t[:, None])
    errors = [float(v) for v in err.mean(axis=0)] if t.size else [float("nan")] * m
    samples = bootstrap_means(err, n_resamples, seed) if m and t.size else np.empty((0, m))
    pairs, raw = [], []
    for i in range(m):
        for j in range(i + 1, m):
            d = samples[:, i] - samples[:, j]
            se = float(np.std(d, ddof=1)) if d.size > 1 else 0.0
            pairs.append((i, j))
            raw.append(two_sided_p(errors[i] - errors[j], se))
    adjusted = holm(raw)
    better = [[False] * m for _ in range(m)]
    p_adj = [[1.0] * m for _ in range(m)]
    for (i, j), p in zip(pairs, adjusted):
        p_adj[i][j] = p_adj[j][i] = p
        if p < ALPHA and errors[i] != errors[j]:
            if errors[i] < errors[j]:
                better[i][j] = True
            else:
                better[j][i] = True
    ranking = Ranking(errors, better, p_adj, int(t.size), n_resamples)
    for i in range(m):
        ranking.rank_low.append(1 + sum(better[j][i] for j in range(m)))
        ranking.rank_high.append(m - sum(better[i][j] for j in range(m)))
    tier, leader = 0, None
    for i in range(m):
        if leader is None or better[leader][i]:
            tier, leader = tier + 1, i
        ranking.tiers.append(tier)
    return ranking
