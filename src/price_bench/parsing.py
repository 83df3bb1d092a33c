"""Turning a predictor's raw text answer into a price.

:func:`parse_price` is what the harness applies to every raw answer a
predictor did not parse itself. It never returns 0 for "no number": an
unparseable answer is ``None`` and is counted as a failure.
"""

from __future__ import annotations

import math
import re

_NUMBER = r"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|\.\d+"
_RANGE = re.compile(
    rf"\$?\s*({_NUMBER})\s*(?:-|–|—|to)\s*\$?\s*({_NUMBER})", re.IGNORECASE
)
_CURRENCY = re.compile(rf"(?:\$|usd\s*|us\$)\s*({_NUMBER})|({_NUMBER})\s*(?:dollars?|usd|bucks)\b", re.IGNORECASE)
_ANY_NUMBER = re.compile(rf"(?<![\w.])-?(?:{_NUMBER})")
_REFUSAL = re.compile(
    r"\b(?:i\s+(?:can(?:no|')?t|am\s+unable|am\s+not\s+able|do\s+not\s+know|don'?t\s+know)|unable\s+to|cannot\s+determine|not\s+possible|n/?a)\b",
    re.IGNORECASE,
)


def _to_float(token: str) -> float:
    return float(token.replace(",", ""))


def parse_price(raw: str | float | int | None) -> float | None:
    """Extract a price in USD from a model answer, or None.

    Accepts numbers, ``"$1,299.99"``, ``"Price is $45"``, ``"about 45 dollars"``;
    a range (``"$40-50"``) gives its midpoint; a refusal or text with no number
    gives None. Negative, NaN and infinite values give None.
    """
    if raw is None or isinstance(raw, bool):
        return None
    if isinstance(raw, (int, float)):
        value = float(raw)
        return value if math.isfinite(value) and value >= 0 else None
    text = str(raw).strip()
    if not text:
        return None
    match = _RANGE.search(text)
    if match:
        low, high = _to_float(match.group(1)), _to_float(match.group(2))
        if low <= high:
            return round((low + high) / 2, 4)
    match = _CURRENCY.search(text)
    if match:
        return _to_float(match.group(1) or match.group(2))
    match = _ANY_NUMBER.search(text)
    if match is None:
        return None
    if _REFUSAL.search(text) and not text.lstrip("$ ").startswith(match.group(0)):
        return None
    value = _to_float(match.group(0))
    return value if math.isfinite(value) and value >= 0 else None
