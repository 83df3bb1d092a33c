"""Turning a predictor's raw text answer into a price.

:func:`parse_price` is what the harness applies to every answer (a number a
predictor returned, or its raw text). It never returns 0 for "no number": an
unparseable answer is ``None`` and is counted as a failure.

The rule for absurd guesses: a value that is negative, NaN, infinite or above
:data:`MAX_PRICE` ($1,000,000) is not a price. It is ``None`` like any other
unparseable answer: counted in ``parse_failures`` (and against coverage) and
scored with the train median, the documented fallback. So one runaway answer
(``1e308``) can neither overflow a metric nor dominate Error.
"""

from __future__ import annotations

import math
import re

#: The largest guess accepted as a price (USD). 1,000 times the reference recipe's
#: $999.49 ceiling, far above any product's price, and small enough that every
#: metric (squared errors included) stays finite in float64.
MAX_PRICE = 1_000_000.0

# A number with an optional exponent ("1e308" is read as 1e308, then refused as above MAX_PRICE, never as "1").
_NUMBER = r"(?:(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|\.\d+)(?:[eE][+-]?\d+(?![\w.]))?"
_SEP = r"\s*(?:-|–|—|to)\s*"
# Ranges that carry a currency marker: "$40-50", "$40 to $50", "40-50 dollars", "between $40 and $60".
_CURRENCY_RANGE = re.compile(
    rf"\$\s*({_NUMBER}){_SEP}\$?\s*({_NUMBER})"
    rf"|({_NUMBER}){_SEP}({_NUMBER})\s*(?:dollars?|usd|bucks)\b"
    rf"|between\s+\$?\s*({_NUMBER})\s+and\s+\$?\s*({_NUMBER})",
    re.IGNORECASE,
)
# A bare range only counts when it is the first number of the answer ("40-50", "I'd say 40 to 50").
_RANGE = re.compile(rf"(?<![\w.$])({_NUMBER}){_SEP}({_NUMBER})(?![\w.])", re.IGNORECASE)
_CURRENCY = re.compile(
    rf"(?:\$|usd\s*|us\$)\s*({_NUMBER})(?:\s?([kK])(?![\w-]))?|({_NUMBER})\s*(?:dollars?|usd|bucks)\b",
    re.IGNORECASE,
)
_ANY_NUMBER = re.compile(rf"(?<![\w.])-?(?:{_NUMBER})")
_REFUSAL = re.compile(
    r"\b(?:i\s+(?:can(?:no|')?t|am\s+unable|am\s+not\s+able|do\s+not\s+know|don'?t\s+know)|unable\s+to|cannot\s+determine|not\s+possible|n/?a)\b",
    re.IGNORECASE,
)


def _to_float(token: str) -> float:
    return float(token.replace(",", ""))


def _price(value: float) -> float | None:
    """``value`` when it is a plausible price (finite, 0 to :data:`MAX_PRICE`), else None."""
    return value if math.isfinite(value) and 0 <= value <= MAX_PRICE else None


def parse_price(raw: str | float | int | None) -> float | None:
    """Extract a price in USD from a model answer, or None.

    Accepts numbers, ``"$1,299.99"``, ``"Price is $45"``, ``"about 45 dollars"``,
    ``"$1.2k"``; a range (``"$40-50"``, ``"$40 to $50"``, ``"between $40 and
    $60"``) gives its midpoint. The first price mentioned wins, so numbers
    after it ("$19.99 (2-3 day shipping)") are ignored. A refusal or text with
    no number gives None. Negative, NaN, infinite and values above
    :data:`MAX_PRICE` give None (see the module docstring).
    """
    if raw is None or isinstance(raw, bool):
        return None
    if isinstance(raw, (int, float)):
        try:
            return _price(float(raw))
        except OverflowError:  # an int beyond float range
            return None
    text = str(raw).strip()
    if not text:
        return None
    value = _first_currency_price(text)
    if value is not None:
        return _price(value)
    match = _ANY_NUMBER.search(text)
    if match is None:
        return None
    if _REFUSAL.search(text) and not text.lstrip("$ ").startswith(match.group(0)):
        return None
    bare = _RANGE.match(text, match.start())
    if bare is not None and not match.group(0).startswith("-"):
        midpoint = _midpoint(bare.group(1), bare.group(2))
        if midpoint is not None:
            return _price(midpoint)
    return _price(_to_float(match.group(0)))


def _midpoint(low_token: str, high_token: str) -> float | None:
    low, high = _to_float(low_token), _to_float(high_token)
    return round((low + high) / 2, 4) if low <= high else None


def _first_currency_price(text: str) -> float | None:
    """The first amount with a currency marker (a range gives its midpoint), or None."""
    single = _CURRENCY.search(text)
    ranged = _CURRENCY_RANGE.search(text)
    if ranged is not None and (single is None or ranged.start() <= single.start()):
        low, high = [g for g in ranged.groups() if g is not None]
        midpoint = _midpoint(low, high)
        if midpoint is not None:
            return midpoint
    if single is None:
        return None
    if single.group(1) is not None:
        value = _to_float(single.group(1))
        return value * 1000 if single.group(2) else value
    return _to_float(single.group(3))
