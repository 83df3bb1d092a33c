"""Number formatting on the pages."""

from __future__ import annotations

import pytest

from price_bench.leaderboard import fmt


@pytest.mark.parametrize("func, value, text", [
    (fmt.dollars, 1234.567, "$1,234.57"),
    (fmt.dollars, -3, "-$3.00"),
    (fmt.dollars, None, "—"),
    (fmt.cost, 0.0, "$0"),
    (fmt.cost, 0.0042, "$0.0042"),
    (fmt.cost, 0.00001, "<$0.0001"),
    (fmt.cost, 12.5, "$12.50"),
    (fmt.number, 0.71749, "0.717"),
    (fmt.number, -6.6619, "−6.662"),
    (fmt.number, -0.0001, "0.000"),
    (fmt.percent, 84.33, "84.3%"),
    (fmt.percent, float("nan"), "—"),
    (fmt.count, 12345, "12,345"),
    (fmt.duration, 0.412, "0.41 s"),
    (fmt.duration, 42.2, "42 s"),
    (fmt.duration, 185, "3 min 05 s"),
    (fmt.duration, 7620, "2 h 07 min"),
    (fmt.duration, 0.001, "<0.01 s"),
    (fmt.duration, 0.0, "0.00 s"),
    (fmt.per_item, 3.2e-6, "3.20 µs"),
    (fmt.per_item, 2.5164e-7, "0.25 µs"),
    (fmt.per_item, 0.00084, "840 µs"),
    (fmt.per_item, 0.0252, "25.2 ms"),
    (fmt.per_item, 0.12, "120 ms"),
    (fmt.per_item, 1.444, "1.44 s"),
    (fmt.short_hash, "sha256:6f786f24cbcdb195ea26", "6f786f24cbcd"),
    (fmt.short_hash, "6f786f24cbcdb195ea26", "6f786f24cbcd"),
    (fmt.date, "2026-11-23T10:00:00+00:00", "2026-11-23 10:00 UTC"),
    (fmt.date, "2026-11-23T12:00:00+02:00", "2026-11-23 10:00 UTC"),
    (fmt.date, "2026-11-23T10:00:00", "2026-11-23 10:00 UTC"),
    (fmt.date, "yesterday", "yesterday"),
])
def test_formats(func, value, text):
    assert func(value) == text
