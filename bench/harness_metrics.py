"""Metrics speed: every metric, breakdowns and 1,000 bootstrap resamples on 100,000 predictions.

Target: under 1 s for the bootstrap (and for the whole `score` call).

Run: .venv/bin/python bench/harness_metrics.py [--items 100000] [--resamples 1000]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from rich.console import Console
from rich.table import Table

from price_bench.metrics import score
from price_bench.metrics.bootstrap import mean_ci, paired_compare


def best_of(repeats: int, func) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        func()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    truth = rng.lognormal(3.5, 1.0, args.items)
    guess = truth * rng.lognormal(0.0, 0.4, args.items)
    other = truth * rng.lognormal(0.0, 0.45, args.items)
    parsed = rng.random(args.items) > 0.01
    categories = list(rng.choice(["Electronics", "Toys", "Home", "Tools", "Books"], args.items))
    n, b = args.items, args.resamples
    cases = [
        ("bootstrap CI of Error (1 column)", lambda: mean_ci(np.abs(guess - truth), n_resamples=b)),
        ("score(): 9 metrics, CIs for Error/RMSLE/Hits, 2 breakdowns", lambda: score(truth, guess, parsed, categories, n_resamples=b)),
        ("paired bootstrap compare of two runs", lambda: paired_compare(truth, guess, other, n_resamples=b)),
    ]
    table = Table(title=f"metrics benchmark: {n:,} predictions, {b:,} resamples (best of {args.repeats})")
    for col in ("case", "seconds", "target"):
        table.add_column(col)
    for label, func in cases:
        table.add_row(label, f"{best_of(args.repeats, func):.3f}", "< 1 s")
    Console().print(table)


if __name__ == "__main__":
    main()
