"""Run options are validated before any work: nothing is predicted (or paid for) with a bad --seed or --bootstrap."""

from __future__ import annotations

import json

import pytest

import price_bench_faults_data_kit as kit  # loaded by tests/faults/conftest.py


@pytest.fixture
def faults_data_plugin(register_plugin, price_bench_home):
    kit.reset_counters()
    register_plugin(kit.Plugin(), name="faults-data-plugin")
    kit.write_tiny("tiny", home=price_bench_home)
    yield kit
    kit.reset_counters()


@pytest.mark.parametrize(
    "option, value, needle",
    [
        ("--seed", "-1", "--seed must be an integer from 0 to 9223372036854775807"),
        ("--seed", "99999999999999999999", "--seed must be an integer from 0 to 9223372036854775807"),
        ("--bootstrap", "5", "--bootstrap must be 0 (no confidence intervals) or at least 10"),
        ("--bootstrap", "-3", "--bootstrap must be 0 (no confidence intervals) or at least 10"),
    ],
)
def test_bad_option_fails_before_any_prediction(tmp_path, price_bench_home, faults_data_plugin, option, value, needle):
    """Case: --seed -1, --seed 99999999999999999999 (overflows SQLite), --bootstrap 5 (below 10). Outcome: one line, exit 1, before any prediction: the cache and the results folder stay empty."""
    results = tmp_path / "results"

    result = kit.invoke("run", "faults-count", "--dataset", "tiny", option, value, "--results", str(results))

    kit.assert_one_line_error(result, needle)
    assert kit.Counting.predicted == [] and kit.Counting.fits == []
    assert not (price_bench_home / "cache" / "predictions.sqlite").exists()
    assert not results.exists()


def test_largest_seed_runs(tmp_path, faults_data_plugin):
    """Case: --seed 9223372036854775807 (the largest allowed). Outcome: the run completes and the cache write does not overflow."""
    result = kit.invoke("run", "faults-count", "--dataset", "tiny", "--seed", str(2**63 - 1), "--results", str(tmp_path / "r"))
    assert result.exit_code == 0, result.output


def test_bootstrap_zero_turns_intervals_off(tmp_path, faults_data_plugin):
    """Case: --bootstrap 0. Outcome: documented as "no confidence intervals": the run completes, metrics carry no CI (not empty or NaN bounds)."""
    result = kit.invoke("run", "faults-count", "--dataset", "tiny", "--bootstrap", "0", "--results", str(tmp_path / "r"), "--json")

    assert result.exit_code == 0, result.output
    [row] = json.loads(result.stdout)
    error = row["metrics"]["error"]
    assert error["value"] is not None and error["ci_low"] is None and error["ci_high"] is None


def test_compare_needs_real_resamples(tmp_path, faults_data_plugin):
    """Case: `compare --bootstrap 0`. Outcome: one line (a paired test needs at least 10 resamples), exit 1."""
    result = kit.invoke("compare", "a", "b", "--bootstrap", "0", "--results", str(tmp_path / "r"))
    kit.assert_one_line_error(result, "--bootstrap must be at least 10")


def test_predict_seed_is_checked(faults_data_plugin):
    """Case: `predict ID TEXT --seed -5`. Outcome: one line, exit 1, before any fit."""
    result = kit.invoke("predict", "faults-count", "some product", "--dataset", "tiny", "--seed", "-5")
    kit.assert_one_line_error(result, "--seed must be an integer")
    assert kit.Counting.fits == []
