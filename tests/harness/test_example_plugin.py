"""The example plugin installed with pip and run through the CLI, the way a third party would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "plugins" / "price-bench-example"


@pytest.mark.slow
def test_pip_installed_example_plugin_runs_through_the_cli(tiny_dataset, tmp_path):
    target = tmp_path / "site"
    pip = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--target", str(target), str(EXAMPLE)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert pip.returncode == 0, pip.stderr[-2000:]
    assert list(target.glob("price_bench_example-*.dist-info"))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(target), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["PRICE_BENCH_LOAD_PLUGINS"] = "price-bench,price-bench-example"

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "price_bench", *args], capture_output=True, text=True, env=env, timeout=300)

    where = subprocess.run([sys.executable, "-c", "import price_bench_example as m; print(m.__file__)"], capture_output=True, text=True, env=env)
    assert where.stdout.strip().startswith(str(target)), "the pip-installed copy is the one that runs"

    plugins = {row["name"]: row for row in json.loads(cli("plugins", "--json").stdout)}
    assert plugins["example"]["distribution"] == "price-bench-example" and plugins["example"]["error"] is None
    listed = {row["id"]: row for row in json.loads(cli("list", "--json").stdout)}
    assert listed["keyword-heuristic"]["status"] == "ready"
    assert listed["keyword-heuristic"]["origin"] == "price-bench-example"

    results = tmp_path / "results"
    run = cli("run", "keyword-heuristic", "constant-median", "--dataset", "tiny", "--results", str(results),
              "-o", "keyword-heuristic.min_count=2", "--json")
    assert run.returncode == 0, run.stderr[-2000:]
    outcomes = {row["predictor"]: row for row in json.loads(run.stdout)}
    assert outcomes["keyword-heuristic"]["status"] == "complete"
    record = json.loads(Path(outcomes["keyword-heuristic"]["record"]).read_text())
    assert record["predictor"]["plugin_distribution"] == "price-bench-example"
    assert record["predictor"]["plugin_version"] == "0.1.0"
    assert record["predictor"]["config"] == {"batch_timeout_s": None, "min_count": 2, "max_words": 40}
    assert record["n_items"] == 30
