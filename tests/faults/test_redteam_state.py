"""Red team: a foreign SQLite cache and malformed manifests give one line, never a traceback."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from price_bench.harness.cache import aside_files, default_cache_path

import price_bench_faults_data_kit as kit  # loaded by tests/faults/conftest.py


@pytest.fixture
def counting(register_plugin):
    kit.reset_counters()
    register_plugin(kit.Plugin(), name="redteam-state-plugin")
    yield kit
    kit.reset_counters()


def _foreign_sqlite(path: Path) -> bytes:
    """A valid SQLite file whose ``keys`` / ``predictions`` tables belong to another tool."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE keys (x)")
    conn.execute("CREATE TABLE predictions (y)")
    conn.execute("INSERT INTO predictions VALUES ('theirs')")
    conn.commit()
    conn.close()
    return path.read_bytes()


@pytest.mark.parametrize("command", [("cache", "info"), ("cache", "clear", "--predictor", "faults-count"), ("run",)])
def test_foreign_sqlite_cache(price_bench_home, counting, command):
    """Case: prediction cache that is a valid SQLite file with another schema (a foreign or older file). Outcome: moved aside with its bytes kept and one warning line, and the command goes on with an empty cache (was: sqlite3.OperationalError traceback)."""
    kit.write_tiny("tiny", home=price_bench_home)
    cache = default_cache_path()
    original = _foreign_sqlite(cache)
    args = ("run", "faults-count", "--dataset", "tiny", "--bootstrap", "0") if command == ("run",) else command

    result = kit.invoke(*args)

    assert result.exit_code == 0, (result.output, result.exception)
    assert "Traceback" not in result.output
    warnings = [line for line in result.stderr.splitlines() if "prediction cache" in line and "moved it aside" in line]
    assert len(warnings) == 1 and "not a price-bench prediction cache" in warnings[0], result.stderr
    [aside] = aside_files(cache)
    assert aside.read_bytes() == original


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("counts", {"rejections": [1, 2]}),
        ("counts", {"warnings": "x"}),
        ("counts", {"categories": {"test": [1]}}),
        ("counts", {"price_bands": {"test": {"$0-10": "x"}}}),
        ("recipe", {"id": "x", "price_bands": ["a", "b"]}),
        ("sources", [1, 2]),
        ("sources", [{"format": "csv"}]),
    ],
)
def test_manifest_with_wrong_nested_types(price_bench_home, field, value):
    """Case: manifest whose nested fields (counts, recipe.price_bands, sources) have the wrong JSON types. Outcome: data info, data list and run give one line naming manifest.json and the field (was: AttributeError/TypeError/KeyError traceback from data info)."""
    ds = kit.write_tiny("tiny", home=price_bench_home)
    manifest = json.loads((ds.path / "manifest.json").read_text())
    manifest[field] = value
    (ds.path / "manifest.json").write_text(json.dumps(manifest))

    info = kit.invoke("data", "info", "tiny")
    listed = kit.invoke("data", "list")

    kit.assert_one_line_error(info, "manifest.json", f"field '{field}")
    assert listed.exit_code == 1 and "Traceback" not in listed.output
    assert f"field '{field}" in listed.stderr


@pytest.mark.parametrize("extra", ['"x": 1' + "0" * 5000, '"x": ' + "[" * 100000 + "]" * 100000])
def test_manifest_with_huge_number_or_deep_nesting(price_bench_home, counting, extra):
    """Case: manifest with a 5,000-digit number or 100,000 nested arrays. Outcome: one line 'unreadable manifest' naming the file from data info, data show and run (was: ValueError/RecursionError traceback)."""
    ds = kit.write_tiny("tiny", home=price_bench_home)
    path = ds.path / "manifest.json"
    path.write_text(path.read_text().rstrip().rstrip("}") + ", " + extra + "}")

    for args in (("data", "info", "tiny"), ("data", "show", "tiny"), ("run", "faults-count", "--dataset", "tiny")):
        result = kit.invoke(*args)
        kit.assert_one_line_error(result, "manifest.json", "unreadable manifest")


@pytest.mark.parametrize("price", [float("inf"), float("nan"), -5.0, 1e308])
def test_split_with_absurd_true_prices(tmp_path, price_bench_home, counting, price):
    """Case: shared dataset folder whose split holds an infinite, NaN, negative or 1e308 price (with a matching fingerprint). Outcome: run and data show refuse it in one line naming the split file, row and price; nothing is predicted (was: 'scoring failed: Out of range float values' after predicting, or a complete run with a meaningless Error)."""
    import dataclasses

    from price_bench.data.dataset import write_dataset

    test = kit.make_items("test", 30)
    test[3] = dataclasses.replace(test[3], price=price)
    ds = write_dataset("poisoned", {"train": kit.make_items("train", 40), "validation": kit.make_items("validation", 5),
                                    "test": test}, {"recipe": {"name": "t", "version": 1}}, home=tmp_path / "author")

    for args in (("run", "faults-count", "--dataset", str(ds.path), "--bootstrap", "0"), ("data", "show", str(ds.path))):
        result = kit.invoke(*args)
        kit.assert_one_line_error(result, "test.parquet", "row 3", "is not a price")
    assert counting.Counting.predicted == []
