"""Red team: a hand-edited per-item predictions file cannot make `compare` print a misleading verdict."""

from __future__ import annotations

import json

import pytest

import price_bench_faults_data_kit as kit  # loaded by tests/faults/conftest.py


@pytest.mark.parametrize("field,value", [("guess", "Infinity"), ("truth", "NaN"), ("guess", "1e308"), ("truth", "-5")])
def test_sidecar_with_non_price_values(tmp_path, price_bench_home, register_plugin, field, value):
    """Case: shared results folder whose predictions.jsonl holds an infinite, NaN, 1e308 or negative guess/truth. Outcome: compare refuses it in one line naming the file and item (leaderboard, results and show still render it, see test_plugins_absurd_guesses) (was: 'Error $inf ... p = 0.0000 ... not significant' with NaN intervals)."""
    kit.reset_counters()
    register_plugin(kit.Plugin(), name="redteam-sidecar-plugin")
    kit.write_tiny("tiny", home=price_bench_home)
    results = tmp_path / "results"
    for pid in ("faults-count", "faults-pickle"):
        ran = kit.invoke("run", pid, "--dataset", "tiny", "--results", str(results), "--bootstrap", "0")
        assert ran.exit_code == 0, ran.output
    [a, b] = sorted(results.rglob("*.json"))
    sidecar = next(a.parent.glob("*.predictions.jsonl"))
    rows = sidecar.read_text().splitlines()
    row = json.loads(rows[1])
    row[field] = "PLACEHOLDER"
    rows[1] = json.dumps(row).replace('"PLACEHOLDER"', value)
    sidecar.write_text("\n".join(rows) + "\n")

    result = kit.invoke("compare", a.stem, b.stem, "--results", str(results), "--bootstrap", "100")

    kit.assert_one_line_error(result, sidecar.name, "test-00001", f"{field} is", "not a price")
