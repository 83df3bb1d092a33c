"""Token counting (tiktoken or the labelled offline estimate) and the cost estimate."""

from __future__ import annotations

import math
import sys
import types

import pytest

from price_bench_openai_ft import tokens
from price_bench_openai_ft.cost import (
    SpendCapError,
    SpendNotConfirmedError,
    UnknownPriceError,
    check_spend,
    estimate_cost,
    training_price,
)

MODEL = "gpt-4o-mini-2024-07-18"


@pytest.fixture(autouse=True)
def _fresh_counters():
    tokens.reset_cache()
    yield
    tokens.reset_cache()


def test_falls_back_to_labelled_estimate_when_tiktoken_cannot_download(monkeypatch, tmp_path):
    tiktoken_load = pytest.importorskip("tiktoken.load")
    import requests

    calls = []

    def offline(url, *args, **kwargs):
        calls.append(url)
        raise requests.exceptions.ConnectionError(f"Failed to resolve host for {url}")

    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))  # no cached encoding files
    monkeypatch.setattr(tiktoken_load, "read_file", offline)
    counter = tokens.token_counter(MODEL)
    assert calls and calls[0].endswith("o200k_base.tiktoken")  # it did try the download
    assert counter.method == tokens.ESTIMATE_METHOD and not counter.exact
    assert counter.count_text("a" * 9) == 3  # ceil(9 / 4)
    tokens.token_counter(MODEL)
    assert len(calls) == 1  # the failure is remembered: no second attempt


def test_falls_back_when_tiktoken_is_not_installed(monkeypatch):
    monkeypatch.setitem(sys.modules, "tiktoken", None)
    counter = tokens.token_counter(MODEL)
    assert counter.method == tokens.ESTIMATE_METHOD


def test_uses_tiktoken_when_its_encoding_is_available(monkeypatch):
    requested = []

    class Encoding:
        def encode(self, text, disallowed_special=()):
            return text.split()

    def get_encoding(name):
        requested.append(name)
        return Encoding()

    monkeypatch.setitem(sys.modules, "tiktoken", types.SimpleNamespace(get_encoding=get_encoding))
    counter = tokens.token_counter("ft:gpt-4o-mini-2024-07-18:org::abc")
    assert counter.method == "tiktoken:o200k_base" and counter.exact
    assert requested == ["o200k_base"]
    assert counter.count_text("three word text") == 3


def test_counter_in_this_environment_never_raises_and_is_labelled():
    counter = tokens.token_counter(MODEL)
    assert counter.method == tokens.ESTIMATE_METHOD or counter.method.startswith("tiktoken:")
    assert counter.count_text("Price is $45.00") > 0


def test_message_overhead_follows_the_cookbook():
    counter = tokens.estimate_counter()
    messages = [{"role": "system", "content": "a" * 8}, {"role": "user", "content": "b" * 5, "name": "bob"}]
    # 3 (reply priming) + per message 3 + role + content (+ name + 1)
    expected = 3 + (3 + math.ceil(6 / 4) + 2) + (3 + 1 + 2 + 1 + 1)
    assert counter.count_messages(messages) == expected


@pytest.mark.parametrize(
    ("model", "encoding"),
    [("gpt-4o-mini-2024-07-18", "o200k_base"), ("gpt-4.1-mini", "o200k_base"), ("gpt-3.5-turbo-0125", "cl100k_base"), ("gpt-4-0613", "cl100k_base"), ("ft:gpt-3.5-turbo-0125:o::x", "cl100k_base")],
)
def test_encoding_names(model, encoding):
    assert tokens.encoding_name(model) == encoding


def test_estimate_is_tokens_times_epochs_times_price():
    estimate = estimate_cost(MODEL, [100, 200, 300], epochs=3, price_per_1m=3.0, token_method="tiktoken:o200k_base")
    assert (estimate.tokens_per_epoch, estimate.billed_tokens) == (600, 1800)
    assert estimate.usd == pytest.approx(1800 * 3.0 / 1e6)
    assert estimate.summary().startswith("about $0.01 to fine-tune gpt-4o-mini-2024-07-18: 3 examples, 600 tokens x 3 epochs at $3.00/1M")
    assert "counted with tiktoken:o200k_base" in estimate.summary()


def test_estimate_caps_each_example_at_the_models_limit_and_labels_estimates():
    estimate = estimate_cost(MODEL, [70_000, 10], epochs=1, price_per_1m=3.0, token_method=tokens.ESTIMATE_METHOD)
    assert estimate.tokens_per_epoch == 65_536 + 10
    assert "estimated at 4 chars each" in estimate.summary()


def test_training_price_table_and_override():
    assert training_price(MODEL) == 3.00
    assert training_price(MODEL, override=1.25) == 1.25
    assert training_price("my-org-model", override=2.0) == 2.0
    with pytest.raises(UnknownPriceError, match="training_price_per_1m"):
        training_price("my-org-model")


def test_spending_needs_confirmation_and_respects_the_cap():
    estimate = estimate_cost(MODEL, [1000] * 200, epochs=2, price_per_1m=3.0, token_method=tokens.ESTIMATE_METHOD)
    with pytest.raises(SpendNotConfirmedError, match=r"^about \$1\.20 to fine-tune .*nothing spent: rerun with -o openai-ft\.confirm=true$"):
        check_spend(estimate, confirmed=False, cap_usd=None)
    with pytest.raises(SpendCapError, match=r"above max_training_usd=\$1\.00"):
        check_spend(estimate, confirmed=True, cap_usd=1.0)
    check_spend(estimate, confirmed=True, cap_usd=5.0)
    check_spend(estimate, confirmed=True, cap_usd=None)
