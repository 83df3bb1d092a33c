"""Token usage to USD: genai-prices (the maintained list), with the project's overrides first."""

from __future__ import annotations

import pytest

from price_bench_frontier.pricing import PriceTable, price_source


def test_known_model_cost_comes_from_the_maintained_list():
    pytest.importorskip("genai_prices")
    cost = PriceTable().cost("gpt-4o-mini", 1_000_000, 500_000)
    assert cost.known and cost.source == price_source() and cost.source.startswith("genai-prices ")
    assert cost.usd == pytest.approx(0.15 + 0.30)


def test_without_the_maintained_list_only_overrides_are_known():
    table = PriceTable({"gpt-4o-mini": (1, 1)}, maintained=False)
    assert table.cost("gpt-4o-mini", 1_000_000, 0).source == "override"
    assert not table.cost("gpt-4o", 10, 10).known


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("gpt-4o-mini-2024-07-18", (0.15, 0.60)),  # dated snapshot
        ("ft:gpt-4o-mini-2024-07-18:acme::abc123", (0.30, 1.20)),  # fine-tuned model
        ("openai/gpt-4o", (2.50, 10.00)),  # org/ prefix
    ],
)
def test_lookup_variants(model, expected):
    pytest.importorskip("genai_prices")
    assert PriceTable().lookup(model) == pytest.approx(expected)


def test_unknown_model_is_flagged():
    cost = PriceTable().cost("smollm2-135m", 1000, 1000)
    assert cost.usd == 0.0
    assert not cost.known


def test_overrides_replace_and_extend():
    table = PriceTable({"gpt-4o-mini": [1, 2], "my-local": (0.5, 0.5)})
    assert table.cost("gpt-4o-mini", 1_000_000, 1_000_000).usd == pytest.approx(3.0)
    assert table.cost("my-local", 2_000_000, 0).known


@pytest.mark.parametrize("bad", [[1], "cheap", [1, -2], None])
def test_bad_override_is_a_clear_error(bad):
    with pytest.raises(ValueError, match="price table entry for 'x'"):
        PriceTable({"x": bad})
