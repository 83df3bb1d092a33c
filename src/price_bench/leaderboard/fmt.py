"""Number formatting for leaderboards: short, aligned, never misleading.

Every function takes None (a figure the record does not have) and returns
an em dash for it.
"""

from __future__ import annotations

import math
from datetime import UTC
from typing import TypeVar

from price_bench.leaderboard.select import parse_time

MISSING = "—"
COST_UNKNOWN = "unknown"  # a model missing from every price list: never shown as $0


_Figure = TypeVar("_Figure", int, float)


def _shown(value: _Figure | None) -> _Figure | None:
    """The value when a record can honestly show it; None for None, NaN and infinities."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return None
    return value


def dollars(value: float | None, decimals: int = 2) -> str:
    """``$1,234.57``; negative as ``-$3.00``."""
    value = _shown(value)
    if value is None:
        return MISSING
    sign = "-" if value < 0 else ""
    return f"{sign}${abs(value):,.{decimals}f}"


def cost(value: float | None) -> str:
    """Money spent: ``$0`` for free, four significant digits below a cent, else cents."""
    value = _shown(value)
    if value is None:
        return MISSING
    if value == 0:
        return "$0"
    if abs(value) < 0.01:
        return f"${value:.2g}" if abs(value) >= 0.0001 else "<$0.0001"
    return dollars(value)


def number(value: float | None, decimals: int = 3) -> str:
    """A plain decimal, e.g. RMSLE or R²."""
    value = _shown(value)
    if value is None:
        return MISSING
    text = f"{value:,.{decimals}f}"
    if text.startswith("-") and not text.strip("-0.,"):
        text = text[1:]  # no "-0.000"
    return text.replace("-", "−")


def percent(value: float | None, decimals: int = 1) -> str:
    """A percentage (0-100, as the metrics store Hits and Coverage) as ``41.2%``."""
    value = _shown(value)
    if value is None:
        return MISSING
    return f"{value:.{decimals}f}%"


def count(value: int | None) -> str:
    """``12,345``."""
    value = _shown(value)
    if value is None:
        return MISSING
    return f"{value:,}"


def duration(seconds: float | None) -> str:
    """A wall time: ``0.41 s``, ``12 s``, ``3 min 05 s``, ``2 h 07 min``."""
    seconds = _shown(seconds)
    if seconds is None:
        return MISSING
    if 0 < seconds < 0.01:
        return "<0.01 s"
    if seconds < 10:
        return f"{seconds:.2f} s"
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def per_item(seconds: float | None) -> str:
    """A time per item: ``3.2 µs``, ``0.84 ms``, ``120 ms``, ``1.4 s``."""
    seconds = _shown(seconds)
    if seconds is None:
        return MISSING
    if seconds == 0:
        return "0 s"
    if seconds < 1e-3:
        return f"{_three_digits(seconds * 1e6)} µs"
    if seconds < 1:
        return f"{_three_digits(seconds * 1e3)} ms"
    return f"{_three_digits(seconds)} s"


def _three_digits(value: float) -> str:
    """About three significant digits, trailing zeros kept: 2.30, 25.2, 840."""
    if value < 10:
        return f"{value:.2f}"
    if value < 100:
        return f"{value:.1f}"
    return f"{value:.0f}"


def date(stamp: str | None) -> str:
    """An ISO-8601 time as ``2026-11-28 13:02 UTC`` (the text itself when unparseable)."""
    if not stamp:
        return MISSING
    when = parse_time(stamp)
    if when.year == 1:
        return stamp
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def short_hash(digest: str, length: int = 12) -> str:
    """The first ``length`` hex digits of a hash, without an ``algo:`` prefix (``sha256:ab12`` -> ``ab12``)."""
    return digest.split(":", 1)[-1][:length]


def p_value(p: float | None) -> str:
    """A p-value: ``0.031``, ``<0.001``, ``1``."""
    p = _shown(p)
    if p is None:
        return MISSING
    if p < 0.001:
        return "<0.001"
    if p >= 0.9995:
        return "1"
    return f"{p:.3f}"
