"""The core answer parser (price_bench.parsing.parse_price) on LLM-style answers."""

from __future__ import annotations

import math

import pytest

from price_bench import parse_price


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("$1,299.99", 1299.99),
        ("Price is $45", 45.0),
        ("Price is $45.99.", 45.99),
        ("about 45 dollars", 45.0),
        ("USD 45", 45.0),
        ("45", 45.0),
        ("1,000", 1000.0),
        (".5", 0.5),
        ("Price is $ 1299", 1299.0),
        ("Price is $Price is $19.99", 19.99),  # a model repeating the prefill
        ("Price is $The price is 120 USD", 120.0),
        ("It costs around $1.2k", 1200.0),
        ("Price is $12.50\n\nThis item is a 4-pack", 12.5),
        # ranges give their midpoint
        ("$40-50", 45.0),
        ("$40 - $50", 45.0),
        ("Price is $40 to $50", 45.0),
        ("Price is $19.99-$24.99", 22.49),
        ("between $40 and $60", 50.0),
        ("40-50", 45.0),
        ("I would say 40 to 50", 45.0),
        ("30-40 dollars", 35.0),
        # the first price wins: later numbers are not a range
        ("Price is $19.99 (2-3 day shipping)", 19.99),
        ("Model 3-4 costs $20", 20.0),
        # refusals and no number
        ("Price is $I cannot determine the price", None),
        ("I cannot estimate the price of this item.", None),
        ("Price is $N/A", None),
        ("n/a", None),
        ("Price is $. The price", None),
        ("", None),
        ("   ", None),
        (None, None),
        # invalid values
        ("Price is $-5", None),
        ("-5", None),
        (-3.0, None),
        (math.nan, None),
        (math.inf, None),
        (True, None),
        (12, 12.0),
        (9.5, 9.5),
    ],
)
def test_parse_price(raw, expected):
    assert parse_price(raw) == expected


def test_reversed_range_is_not_a_midpoint():
    # "50-40" is not a valid range: the first number is taken as the answer.
    assert parse_price("50-40") == 50.0
