"""A damaged prediction cache is moved aside (bytes kept), reported in one line, and the run goes on."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

import price_bench_faults_data_kit as kit  # loaded by tests/faults/conftest.py


@pytest.fixture
def faults_data_run(register_plugin, price_bench_home, tmp_path):
    """A function that runs faults-count on ``tiny`` (the cache is <home>/cache/predictions.sqlite)."""
    kit.reset_counters()
    register_plugin(kit.Plugin(), name="faults-data-plugin")
    kit.write_tiny("tiny", home=price_bench_home)

    def run(*ids: str):
        return kit.invoke("run", *(ids or ("faults-count",)), "--dataset", "tiny", "--results", str(tmp_path / "results"))

    yield run, price_bench_home / "cache" / "predictions.sqlite"
    kit.reset_counters()


def _big_cache(path: Path, rows: int = 20000) -> None:
    """A real, multi-page cache file (so that truncating it cuts through table pages)."""
    from price_bench.harness.cache import CacheKey, PredictionCache
    from price_bench.predictors.contract import Prediction

    with PredictionCache(path) as cache:
        key = CacheKey("filler", "h", "1", "1", "sha256:" + "0" * 64)
        cache.put(key, [(f"item-{i:06d}", Prediction(raw=f"answer number {i} " * 4, price=float(i))) for i in range(rows)])
    # leave no -wal behind: the main file holds everything
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.execute("PRAGMA journal_mode = DELETE")
    conn.close()


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_corrupt_cache_is_moved_aside_and_the_run_goes_on(faults_data_run, damage):
    """Case: prediction cache is garbage bytes or a half-truncated SQLite file. Outcome: one warning line, the file is moved aside with its bytes intact, the run completes (exit 0)."""
    run, cache = faults_data_run
    cache.parent.mkdir(parents=True, exist_ok=True)
    if damage == "garbage":
        cache.write_bytes(b"this is not sqlite " * 500)
    else:
        _big_cache(cache)
        data = cache.read_bytes()
        cache.write_bytes(data[: len(data) // 2])
    damaged = cache.read_bytes()

    result = run()

    assert result.exit_code == 0, result.output
    [warning] = [line for line in kit.lines(result.stderr) if line.startswith("warning: prediction cache")]
    assert warning.startswith("warning: prediction cache") and "moved it aside" in warning and "bytes kept" in warning
    [aside] = list(cache.parent.glob("predictions.sqlite.corrupt-*"))
    assert aside.read_bytes() == damaged  # nothing the user paid for is lost
    assert kit.Counting.predicted == [30]
    with sqlite3.connect(cache) as conn:  # the fresh cache holds this run's answers
        assert conn.execute("SELECT COUNT(*) FROM predictions").fetchone()[0] == 30


def test_cache_info_check_clear(faults_data_run, tmp_path):
    """Case: `price-bench cache info | check | clear [--predictor ID]`. Outcome: info counts per predictor, check says ok (exit 0) or damaged (one line, exit 1), clear removes only the named predictor's answers."""
    run, cache = faults_data_run
    assert run("faults-count", "faults-pickle").exit_code == 0

    info = kit.invoke("cache", "info", "--json")
    assert info.exit_code == 0, info.output
    counts = {row["predictor"]: row["predictions"] for row in json.loads(info.stdout)["predictors"]}
    assert counts == {"faults-count": 30, "faults-pickle": 30}

    ok = kit.invoke("cache", "check")
    assert ok.exit_code == 0 and ok.stdout.strip().endswith(": ok"), ok.output

    cleared = kit.invoke("cache", "clear", "--predictor", "faults-count")
    assert cleared.exit_code == 0 and "removed 30 cached predictions of faults-count" in cleared.stdout
    info = json.loads(kit.invoke("cache", "info", "--json").stdout)
    assert {row["predictor"]: row["predictions"] for row in info["predictors"]} == {"faults-pickle": 30}

    cache.write_bytes(b"garbage" * 100)
    for suffix in ("-wal", "-shm"):
        cache.with_name(cache.name + suffix).unlink(missing_ok=True)
    bad = kit.invoke("cache", "check")
    kit.assert_one_line_error(bad, "damaged", "moves it aside")
    assert cache.read_bytes() == b"garbage" * 100  # check never changes the file
