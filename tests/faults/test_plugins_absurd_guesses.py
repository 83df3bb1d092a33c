"""Absurd guesses from a plugin (or in a shared results folder) never break a metric or a chart (issue 13, item 11).

The rule (``price_bench.parsing``): a guess that is negative, NaN, infinite or
above ``MAX_PRICE`` ($1,000,000) is not a price; it counts as a parse failure
and is scored with the train median. Metrics, bootstrap intervals, the
leaderboard tables and charts also hold up when such values reach them
directly (a results folder written by someone else).
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from price_bench import Prediction, Predictor, hookimpl
from price_bench.parsing import MAX_PRICE

import price_bench_faults_plugin_kit as kit  # loaded by tests/faults/conftest.py


#: What the absurd predictor answers for the first test items (the rest answer "$50").
ABSURD = [Prediction(raw=1e308), Prediction(raw="inf", price=math.inf), Prediction(raw="$1e308"), Prediction(raw=-40.0),
          Prediction(raw="2,000,000 dollars"), Prediction(raw=float("nan")), Prediction(raw=10**400)]


class Absurd(Predictor):
    id = "absurd"
    batch_size = 10

    def predict(self, items):
        return [ABSURD[int(item.id.split("-")[1])] if int(item.id.split("-")[1]) < len(ABSURD) else Prediction(raw="$50")
                for item in items]


class _Plugin:
    @hookimpl
    def register_predictors(self, register):
        register(Absurd)


def _all_finite_or_none(values) -> bool:
    return all(v is None or math.isfinite(v) for v in values)


def _cli(*args: str):
    from price_bench.cli.main import get_cli

    return CliRunner().invoke(get_cli(), list(args))


@pytest.fixture
def absurd_run(register_plugin, tmp_path):
    """A complete run of the absurd predictor on ``tiny``; returns (results folder, record path)."""
    register_plugin(_Plugin(), name="absurd-plugin")
    kit.tiny_dataset()
    results = tmp_path / "results"
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no overflow anywhere on the way
        result = _cli("run", "absurd", "--dataset", "tiny", "--results", str(results), "--json")
    assert result.exit_code == 0, result.output
    [outcome] = json.loads(result.output)
    return results, Path(outcome["record"])


def test_absurd_guesses_count_as_parse_failures(absurd_run):
    """Case: a plugin answers 1e308, inf, NaN, negative and $2,000,000. Outcome: each is a parse failure scored with the train median; the run completes with finite metrics; the raw answers are kept."""
    results, path = absurd_run
    record = json.loads(path.read_text())
    assert record["status"] == "complete" and record["parse_failures"] == len(ABSURD)
    assert _all_finite_or_none(m["value"] for m in record["metrics"].values())
    assert record["metrics"]["error"]["value"] is not None and record["metrics"]["error"]["ci_high"] is not None
    assert record["metrics"]["coverage"]["value"] == pytest.approx((30 - len(ABSURD)) / 30 * 100)
    rows = [json.loads(line) for line in path.with_name(record["predictions_file"]).read_text().splitlines()]
    assert [row["guess"] for row in rows[: len(ABSURD)]] == [record["fallback_price"]] * len(ABSURD)
    assert [row["parsed"] for row in rows[: len(ABSURD)]] == [None] * len(ABSURD)
    assert rows[0]["raw"] == "1e+308" and rows[2]["raw"] == "$1e308", "what the model said is kept"
    assert MAX_PRICE == 1_000_000


def test_extreme_values_in_a_shared_results_folder_render(absurd_run, tmp_path):
    """Case: a results folder whose record and sidecar hold 1e308 and infinite guesses and metrics. Outcome: `leaderboard`, `results` and `show` render them (exit 0, no traceback); nothing is dropped from the page."""
    results, path = absurd_run
    record = json.loads(path.read_text())
    record["metrics"]["error"] = {"value": 1e308, "ci_low": 0.0, "ci_high": 1e308, "higher_is_better": False}
    record["metrics"]["mse"]["value"] = 1e308
    path.write_text(json.dumps(record))
    sidecar = path.with_name(record["predictions_file"])
    rows = [json.loads(line) for line in sidecar.read_text().splitlines()]
    rows[0]["guess"] = rows[0]["parsed"] = 1e308
    rows[1]["guess"] = rows[1]["parsed"] = -1e308
    lines = [json.dumps(row) for row in rows]
    lines[2] = lines[2].replace(f'"guess": {json.dumps(rows[2]["guess"])}', '"guess": 1e999')  # parses as inf
    sidecar.write_text("\n".join(lines) + "\n")

    out = tmp_path / "pages"
    board = _cli("leaderboard", "--results", str(results), "--out", str(out), "--readme", str(tmp_path / "README.md"))
    assert board.exit_code == 0, board.output
    page = (out / "tiny.md").read_text()
    assert "absurd" in page
    html = (out / "tiny.html").read_text()
    assert html.count("<svg") >= 3, "the error bars, scatter and running-error charts are all drawn"
    for command in (["results", "--results", str(results)], ["show", record["run_id"], "--results", str(results)]):
        shown = _cli(*command)
        assert shown.exit_code == 0 and "Traceback" not in shown.output, shown.output


def test_extreme_values_straight_into_the_metrics():
    """Case: 1e308, -1e308 and inf handed to score() directly. Outcome: every metric, interval and breakdown is a finite number or None (undefined), with no overflow warning."""
    from price_bench.metrics import score

    truth = np.array([10.0, 20.0, 30.0, 40.0, 500.0])
    guess = np.array([1e308, -1e308, math.inf, 40.0, 1e300])
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        metrics, breakdowns = score(truth, guess, np.ones(5, dtype=bool), ["a", "b", "a", "b", "a"], n_resamples=200)
    assert _all_finite_or_none(v for m in metrics.values() for v in (m.value, m.ci_low, m.ci_high))
    assert _all_finite_or_none(getattr(row, f) for rows in breakdowns.values() for row in rows.values()
                               for f in ("error", "rmsle", "hits", "mean_truth"))
    assert metrics["hits"].value == pytest.approx(20.0) and metrics["coverage"].value == 100.0
