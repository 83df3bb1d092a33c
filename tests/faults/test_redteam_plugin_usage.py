"""Red team: a plugin's cost, token and latency figures are checked where its predictions enter the harness."""

from __future__ import annotations


import pytest

from price_bench import Prediction, Predictor

import price_bench_faults_data_kit as kit  # loaded by tests/faults/conftest.py


def _predictor(pid: str, **fields):
    class Bad(Predictor):
        id = pid
        description = "returns unusable usage figures"

        def fit(self, train, validation, workdir):
            pass

        def load(self, workdir):
            return False

        def predict(self, items):
            return [Prediction(raw="12", **fields) for _ in items]

    return Bad


@pytest.mark.parametrize(
    "fields",
    [{"cost_usd": float("nan")}, {"cost_usd": "lots"}, {"cost_usd": -1.0}, {"tokens_in": 10**30}, {"tokens_out": 2.5}],
    ids=["cost-nan", "cost-text", "cost-negative", "tokens-64bit-overflow", "tokens-fraction"],
)
def test_unusable_usage_figures_error_the_items(price_bench_home, register_predictor, fields):
    """Case: plugin returns NaN, text or negative cost_usd, or token counts beyond 64 bits. Outcome: those items are errored with one line naming the field (never cached), the predictor fails as having no usable answer, others run (was: OverflowError at the cache write, or 'scoring failed' after the answers were cached)."""
    register_predictor(_predictor("redteam-usage", **fields))
    kit.write_tiny("tiny", home=price_bench_home)
    name = next(iter(fields))

    result = kit.invoke("run", "redteam-usage", "--dataset", "tiny", "--bootstrap", "0")

    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert f"predictor returned {name}=" in result.stderr, result.stderr
    assert "no usable answer" in result.stderr
    again = kit.invoke("cache", "info", "--predictor", "redteam-usage")
    assert "nothing cached" in again.output, again.output


def test_infinite_latency_is_replaced_by_the_measured_one(price_bench_home, register_predictor):
    """Case: plugin returns latency_s=inf. Outcome: the harness's own measured latency is recorded instead; the run is complete (was: 'scoring failed: Out of range float values' after the answers were cached)."""
    register_predictor(_predictor("redteam-latency", latency_s=float("inf")))
    kit.write_tiny("tiny", home=price_bench_home)

    result = kit.invoke("run", "redteam-latency", "--dataset", "tiny", "--bootstrap", "0")

    assert result.exit_code == 0, result.output
    assert "redteam-latency: complete" in result.stderr
