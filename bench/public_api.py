"""Import weight of the public API, and what ``price_bench.evaluate`` adds to the runner (issue 15).

Prints one table: the wall time of ``import price_bench`` (nothing heavy is
imported until a name is used), of the first use of the contract names, of
``price-bench --help`` and ``list`` (every installed plugin loaded), each the
median of fresh interpreter runs; then, in this process, a fully cached run
of a notebook-style class on a small curated dataset through
``price_bench.evaluate`` and through ``run_predictors`` directly, side by side.

Run: ``.venv/bin/python bench/public_api.py`` (uses a temporary PRICE_BENCH_HOME).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPEATS = 7


def _wall(args: list[str], env: dict[str, str]) -> float:
    times = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        subprocess.run(args, check=True, capture_output=True, env=env)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    home = Path(tempfile.mkdtemp(prefix="price-bench-bench-api-"))
    env = dict(os.environ, PRICE_BENCH_HOME=str(home), PRICE_BENCH_RESULTS=str(home / "results"))
    py = sys.executable
    rows = [
        ("python -c pass (interpreter start)", _wall([py, "-c", "pass"], env)),
        ("import price_bench", _wall([py, "-c", "import price_bench"], env)),
        ("import price_bench; price_bench.Predictor (contract loaded)", _wall([py, "-c", "import price_bench; price_bench.Predictor"], env)),
        ("price-bench --help (all plugins loaded)", _wall([py, "-m", "price_bench", "--help"], env)),
        ("price-bench list (all plugins loaded)", _wall([py, "-m", "price_bench", "list"], env)),
    ]
    os.environ.update(PRICE_BENCH_HOME=str(home), PRICE_BENCH_RESULTS=str(home / "results"), PRICE_BENCH_LOAD_PLUGINS="")
    rows += _evaluate_vs_runner(home)
    width = max(len(name) for name, _ in rows)
    print(f"| {'case':<{width}} | wall (median of {REPEATS}) |")
    print(f"|{'-' * (width + 2)}|---:|")
    for name, seconds in rows:
        print(f"| {name:<{width}} | {seconds * 1000:,.0f} ms |")


def _evaluate_vs_runner(home: Path) -> list[tuple[str, float]]:
    import price_bench
    from price_bench.evaluation import _call_registry
    from price_bench.harness.runner import RunOptions, run_predictors
    from price_bench.testing.fixtures import build_tiny_dataset

    class Mean(price_bench.Predictor):
        id = "bench-mean"

        def fit(self, train, validation, workdir):
            self.mean = sum(i.price for i in train) / len(train)

        def load(self, workdir):
            return False

        def predict(self, items):
            return [price_bench.Prediction(price=self.mean) for _ in items]

    dataset = build_tiny_dataset(home)
    price_bench.evaluate(Mean, dataset, n_resamples=200)  # fills the cache
    registry, _ = _call_registry([Mean], {})
    options = RunOptions(dataset=dataset.name, results_dir=home / "results", n_resamples=200)

    def timed(call) -> float:
        times = []
        for _ in range(REPEATS):
            started = time.perf_counter()
            call()
            times.append(time.perf_counter() - started)
        return statistics.median(times)

    n = len(dataset.test)
    return [
        (f"cached run, {n} items: run_predictors (the CLI's path)", timed(lambda: run_predictors(["bench-mean"], options, registry=registry, dataset=dataset))),
        (f"cached run, {n} items: price_bench.evaluate(class)", timed(lambda: price_bench.evaluate(Mean, dataset, n_resamples=200))),
    ]


if __name__ == "__main__":
    main()
