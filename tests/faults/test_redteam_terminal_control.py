"""Red team: control characters (ESC sequences) from records, datasets and plugins never reach the terminal raw.

Rich escapes markup but passes ESC, CR and BEL through, so a shared results
folder, a dataset or a plugin could recolour, retitle or clear the user's
terminal (OSC sequences can even set the clipboard on some terminals).
"""

from __future__ import annotations

import json


from price_bench import Prediction, Predictor
from price_bench.data.dataset import write_dataset
from price_bench.items import Item

import price_bench_faults_data_kit as kit  # loaded by tests/faults/conftest.py


ESC = "\x1b]0;PWNED\x07\x1b[2J\r"


def _no_raw_control(text: str) -> None:
    assert "\x1b" not in text and "\x07" not in text and "\r" not in text, repr(text[-400:])


def test_record_fields_with_escape_sequences(tmp_path, price_bench_home, register_plugin):
    """Case: result record whose finished_at and description hold ESC/BEL/CR sequences. Outcome: results and show print them as visible \\x1b text; no control character reaches the terminal."""
    register_plugin(kit.Plugin(), name="redteam-terminal-plugin")
    kit.write_tiny("tiny", home=price_bench_home)
    results = tmp_path / "results"
    ran = kit.invoke("run", "faults-count", "--dataset", "tiny", "--results", str(results), "--bootstrap", "0")
    assert ran.exit_code == 0, ran.output
    path = next(results.rglob("*.json"))
    record = json.loads(path.read_text())
    record["finished_at"] = ESC + "2026"
    record["predictor"]["description"] = ESC + "desc"
    path.write_text(json.dumps(record))

    listed = kit.invoke("results", "--results", str(results))
    shown = kit.invoke("show", record["run_id"], "--results", str(results))

    for result in (listed, shown):
        assert result.exit_code == 0, result.output
        _no_raw_control(result.output)
    assert "\\x1b" in listed.output


def test_product_text_with_escape_sequences(price_bench_home):
    """Case: dataset whose product text and category hold ESC sequences (data show). Outcome: shown as visible \\x1b text; no control character reaches the terminal."""
    items = [Item(id=f"t{i}", text=f"{ESC}text {i}", price=10.0 + i, category=f"{ESC}cat") for i in range(3)]
    write_dataset("esc", {"train": items, "validation": items, "test": items}, {"recipe": {"name": "t", "version": 1}})

    result = kit.invoke("data", "show", "esc")

    assert result.exit_code == 0, result.output
    _no_raw_control(result.output)
    assert "\\x1b" in result.output


class EscapingPredictor(Predictor):
    id = "redteam-esc"
    description = ESC + "describes itself"

    def fit(self, train, validation, workdir):
        pass

    def load(self, workdir):
        return False

    def predict(self, items):
        return [Prediction(raw=None, error=ESC + "boom") for _ in items]


def test_plugin_text_with_escape_sequences(price_bench_home, register_predictor):
    """Case: plugin whose description and per-item error hold ESC sequences (list, run summary, error lines). Outcome: shown as visible \\x1b text; no control character reaches the terminal."""
    register_predictor(EscapingPredictor)
    kit.write_tiny("tiny", home=price_bench_home)

    listed = kit.invoke("list")
    ran = kit.invoke("run", "redteam-esc", "--dataset", "tiny", "--bootstrap", "0")

    assert listed.exit_code == 0, listed.output
    assert ran.exit_code == 1, ran.output
    for result in (listed, ran):
        _no_raw_control(result.output)
        _no_raw_control(result.stderr)
    assert "\\x1b" in listed.output
