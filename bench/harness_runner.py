"""Harness overhead: a no-op predictor over 100,000 test items, end to end.

Measures (each in a fresh PRICE_BENCH_HOME):

* cold run: fit + predict + cache writes + parsing + metrics (1,000 bootstrap
  resamples) + record and sidecar written; target >= 50,000 items/s;
* cached rerun in-process: every item from the SQLite cache, no predictor call;
* cached rerun through the CLI (a fresh `price-bench run` process) of the
  baselines and the example plugin on the same 100,000 items.

CPU seconds are reported beside wall-clock seconds: on a shared machine the
wall clock mostly measures the other tenants.

Run: .venv/bin/python bench/harness_runner.py [--items 100000]
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table


def build_dataset(n_test: int):
    from price_bench.data.dataset import write_dataset
    from price_bench.items import Item

    rng = random.Random(0)
    words = ["cable", "laptop", "toy", "lamp", "chair", "phone", "case", "drill", "kettle", "watch"]

    def items(split: str, n: int) -> list[Item]:
        return [
            Item(f"{split}-{i}", f"{rng.choice(words)} {rng.choice(words)} model {i}", round(rng.lognormvariate(3.5, 1.0), 2), rng.choice(words))
            for i in range(n)
        ]

    return write_dataset("bench100k", {"train": items("train", 2000), "validation": items("validation", 100), "test": items("test", n_test)}, {})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=100_000)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="pb-bench-"))
    os.environ["PRICE_BENCH_HOME"] = str(home)
    sys._called_from_test = True  # no entry points in this process: the no-op registers in-process

    from price_bench import Prediction, Predictor, hookimpl
    from price_bench.data.dataset import open_dataset
    from price_bench.harness.runner import RunOptions, run_predictors
    from price_bench.plugins.manager import pm

    class NoOp(Predictor):
        id = "noop"
        description = "Answers $20 instantly."
        batch_size = 4096

        def predict(self, items):
            return [Prediction(raw=20.0, price=20.0) for _ in items]

    class Plugin:
        @hookimpl
        def register_predictors(self, register):
            register(NoOp)

    pm.register(Plugin(), name="bench")
    build_dataset(args.items)
    rows = []

    def timed(label: str, **options) -> None:
        dataset = open_dataset("bench100k")  # fresh: parquet read is part of the figure
        started, cpu = time.perf_counter(), time.process_time()
        [outcome] = run_predictors(["noop"], RunOptions(dataset="bench100k", results_dir=home / "results", progress=False, **options), dataset=dataset)
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        assert outcome.status == "complete", outcome.reason
        rows.append((label, f"{args.items:,}", f"{seconds:.2f}", f"{args.items / seconds:,.0f}", f"{cpu:.2f}",
                     f"{args.items / cpu:,.0f}", f"new {outcome.new_items:,} / cached {outcome.cached_items:,}"))

    timed("no-op, cold (fit, predict, cache, score, write)")
    timed("no-op, cached rerun (in-process)")
    timed("no-op, --overwrite always (cache ignored)", overwrite="always")

    env = dict(os.environ, PRICE_BENCH_LOAD_PLUGINS="price-bench,price-bench-example")
    env.pop("PYTHONPATH", None)
    cmd = [sys.executable, "-m", "price_bench", "run", "constant-mean", "constant-median", "random", "keyword-heuristic",
           "--dataset", "bench100k", "--results", str(home / "results"), "--json"]
    for label in ("CLI: 3 baselines + keyword-heuristic, cold", "CLI: 3 baselines + keyword-heuristic, cached rerun"):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        out = subprocess.run(cmd, capture_output=True, text=True, env=env)
        seconds = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
        if out.returncode != 0:
            raise SystemExit(out.stderr[-2000:])
        total = 4 * args.items
        rows.append((label, f"{total:,}", f"{seconds:.2f}", f"{total / seconds:,.0f}", f"{cpu:.2f}", f"{total / cpu:,.0f}",
                     "process start included"))

    table = Table(title=f"harness runner benchmark ({args.items:,} test items)")
    for col in ("case", "items", "wall s", "items/s (wall)", "CPU s", "items/CPU-s", "notes"):
        table.add_column(col)
    for row in rows:
        table.add_row(*row)
    Console().print(table)


if __name__ == "__main__":
    main()
