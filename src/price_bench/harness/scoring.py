"""Scoring a run: from the items and their predictions to metrics, counts and per-item rows.

:func:`score_predictions` is a pure function: it reads its arguments and
returns a :class:`Scored`, writing nothing. An answer that does not parse to
a price is scored with the train median (the documented fallback, counted
in ``parse_failures``); an errored item too (counted in ``item_errors``).
When no item got a usable price there is nothing to score:
:attr:`Scored.usable` is False and :meth:`Scored.failure_reason` says why.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from price_bench.items import Item
from price_bench.parsing import parse_price
from price_bench.predictors.contract import Prediction
from price_bench.results.schema import BreakdownRow, MetricValue


def answer_price(p: Prediction) -> float | None:
    """The price an answer gives: its ``price`` field when set, else what its raw text parses to (None: no price)."""
    return parse_price(p.price) if p.price is not None else parse_price(p.raw)


@dataclass
class Scored:
    """What scoring one run gives (see :func:`score_predictions`)."""

    n_items: int
    #: One plain dict per item, with exactly ItemPrediction's fields, ``id`` first (the store's fast path).
    rows: list[dict[str, Any]]
    parse_failures: int = 0
    item_errors: int = 0
    #: None when one answer's cost is unknown (a run's cost is never understated as $0).
    cost_usd: float | None = 0.0
    tokens_in: int = 0
    tokens_out: int = 0
    latency_total: float = 0.0
    #: The first per-item error (``"<item id>: <error>"``), None when no item errored.
    first_error: str | None = None
    #: Empty when the run has no usable answer.
    metrics: dict[str, MetricValue] = field(default_factory=dict)
    breakdowns: dict[str, dict[str, BreakdownRow]] = field(default_factory=dict)
    usable: bool = False

    def failure_reason(self) -> str:
        """Why a run with no usable answer failed (one line)."""
        n = self.n_items
        if self.item_errors == n:
            return f"no usable answer: all {n} items errored (first: {self.first_error})"
        reason = f"no usable answer: {self.item_errors} of {n} items errored and {self.parse_failures} did not parse to a price"
        return reason + (f" (first error: {self.first_error})" if self.first_error else "")


def score_predictions(
    items: Sequence[Item],
    predictions: Mapping[str, Prediction],
    fallback: float,
    *,
    raw_output: bool = True,
    n_resamples: int = 1000,
    seed: int = 0,
    ci_method: str = "percentile",
) -> Scored:
    """Score ``predictions`` (by item id; one for every item) against ``items``' true prices.

    ``fallback`` is the guess for an item without a usable answer;
    ``raw_output=False`` leaves the raw model text out of the rows. The
    metrics and their bootstrap CIs come from :func:`price_bench.metrics.score`
    with ``n_resamples``, ``seed`` and ``ci_method``.
    """
    import numpy as np

    from price_bench.metrics import score

    n = len(items)
    truth = np.fromiter((item.price for item in items), dtype=np.float64, count=n)
    guess = np.empty(n, dtype=np.float64)
    parsed_mask = np.zeros(n, dtype=bool)
    scored = Scored(n_items=n, rows=[])
    for i, item in enumerate(items):
        p = predictions[item.id]
        value = _tally(scored, item, p)
        parsed_mask[i] = value is not None
        guess[i] = value if value is not None else fallback
        scored.rows.append(_row(item, p, value, fallback, raw_output))
    if not parsed_mask.any():
        return scored
    scored.metrics, scored.breakdowns = score(
        truth, guess, parsed_mask, [item.category for item in items], n_resamples=n_resamples, seed=seed, ci_method=ci_method
    )
    scored.usable = True
    return scored


def _tally(scored: Scored, item: Item, p: Prediction) -> float | None:
    """Add one answer's errors, cost, latency and tokens to ``scored``; return its price (None: unusable)."""
    if p.error is not None:
        scored.item_errors += 1
        scored.first_error = scored.first_error or f"{item.id}: {p.error}"
        value = None
    else:
        value = answer_price(p)
        if value is None:
            scored.parse_failures += 1
    if p.cost_usd is None and p.error is None:
        scored.cost_usd = None  # one answer of unknown cost makes the run's cost unknown, never $0
    elif scored.cost_usd is not None:
        scored.cost_usd += p.cost_usd or 0.0
    scored.latency_total += p.latency_s or 0.0
    scored.tokens_in += p.tokens_in or 0
    scored.tokens_out += p.tokens_out or 0
    return value


def _row(item: Item, p: Prediction, value: float | None, fallback: float, raw_output: bool) -> dict[str, Any]:
    """One sidecar row: a plain dict with exactly ItemPrediction's fields, ``id`` first."""
    return {
        "id": item.id,
        "truth": item.price,
        "guess": value if value is not None else fallback,
        "parsed": value,
        "raw": None if p.raw is None or not raw_output else str(p.raw),
        "category": item.category,
        "cost_usd": p.cost_usd,
        "latency_s": p.latency_s,
        "error": p.error,
    }


class RunningError:
    """Running mean absolute error of the items predicted so far (computed only when ``enabled``: a live bar)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.total = 0.0
        self.n = 0

    def update(self, batch: Sequence[Item], predictions: Sequence[Prediction]) -> float | None:
        """Add one batch; the mean absolute error so far (None when disabled or nothing parsed yet)."""
        if not self.enabled:
            return None
        for item, p in zip(batch, predictions, strict=False):
            value = None if p.error else answer_price(p)
            if value is not None:
                self.total += abs(value - item.price)
                self.n += 1
        return self.total / self.n if self.n else None
