"""Checking a plugin's answers before they are cached or scored.

A predictor is untrusted code: its cost and token counts may be NaN,
negative, text or beyond 64 bits, its raw text and errors may quote a
secret. :func:`clean_batch` makes one batch's answers safe to store: an
unusable amount turns the item into an errored one (never cached, so the
next run retries it), secrets are scrubbed, an error is cut to one line and
a missing latency gets the batch's per-item share.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from price_bench.harness.overrides import Redactor
from price_bench.items import Item
from price_bench.predictors.contract import Prediction


class BatchSizeError(Exception):
    """``predict`` returned another number of predictions than it was given items."""


def finite_amount(value: Any) -> bool:
    """True for a finite, non-negative int or float (not a bool)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value >= 0


def usage_problem(p: Prediction) -> str | None:
    """Why a plugin's cost or token counts cannot be stored (NaN, negative, text, beyond 64 bits); None when they can.

    ``cost_usd=None`` is allowed: it means "cost unknown" and is recorded as such.
    """
    if p.cost_usd is not None and not finite_amount(p.cost_usd):
        return f"predictor returned cost_usd={str(p.cost_usd)[:40]!r} (not a finite amount)"
    for name in ("tokens_in", "tokens_out"):
        value = getattr(p, name)
        if not (finite_amount(value) and float(value).is_integer() and value < 2**63):
            return f"predictor returned {name}={str(value)[:40]!r} (not a token count)"
    return None


def clean_batch(
    batch: Sequence[Item], predictions: Sequence[Prediction], seconds: float, redact: Redactor
) -> list[tuple[str, Prediction]]:
    """``(item id, prediction)`` for one batch, each prediction made safe to store (in place).

    Raises :class:`BatchSizeError` when the counts differ.
    """
    predictions = list(predictions)
    if len(predictions) != len(batch):
        raise BatchSizeError(f"returned {len(predictions)} predictions for {len(batch)} items")
    per_item = seconds / len(batch) if batch else 0.0
    rows = []
    for item, p in zip(batch, predictions, strict=True):
        if not finite_amount(p.latency_s):
            p.latency_s = per_item
        usage = usage_problem(p)
        if usage:  # the item errors (never cached); the unusable amounts are not summed
            p.error = p.error if p.error is not None else usage
            p.cost_usd, p.tokens_in, p.tokens_out = 0.0, 0, 0
        if isinstance(p.raw, str):
            p.raw = redact(p.raw)
        if p.error is not None:
            p.error = redact(str(p.error).splitlines()[0] if str(p.error) else "error")
        rows.append((item.id, p))
    return rows
