"""Result records for leaderboard tests, built the way ``price-bench run`` writes them.

``results_dir`` holds, for the synthetic ``demo`` dataset: five ranked
predictors (random-forest with two configs), an older superseded run, a
skipped and a failed predictor, a ``--limit`` run, a run on an older dataset
fingerprint, and a frontier run whose raw output holds ``<script>``; plus a
second, real dataset ``amazon-course`` with two predictors.
"""

from __future__ import annotations

import hashlib
import json
import random
import statistics
import sys
from pathlib import Path

import pytest

from price_bench.results.schema import (
    BreakdownRow, DatasetRef, ItemPrediction, MetricValue, PredictorInfo, RunRecord, Timing, Usage,
)
from price_bench.results.store import write_record

FP_NEW = hashlib.sha256(b"demo v2").hexdigest()
FP_OLD = hashlib.sha256(b"demo v1").hexdigest()
FP_REAL = hashlib.sha256(b"amazon-course").hexdigest()
CATEGORIES = ["Electronics", "Appliances", "Toys_and_Games", "Office_Products", None]
INJECTION = "<script>alert(1)</script>"
N_ITEMS = 300


def items(n: int = N_ITEMS, seed: int = 7) -> list[tuple[str, float, str | None]]:
    """(id, true price, category) for a test split."""
    rng = random.Random(seed)
    return [(f"B0{i:07d}", round(min(max(rng.lognormvariate(4.0, 1.0), 1.0), 999.0), 2), CATEGORIES[i % len(CATEGORIES)])
            for i in range(n)]


def _scores(preds: list[ItemPrediction]) -> tuple[dict[str, MetricValue], dict[str, dict[str, BreakdownRow]]]:
    """Metrics and breakdowns exactly as the harness computes them."""
    from price_bench.metrics import score

    return score([p.truth for p in preds], [p.guess for p in preds], [p.parsed is not None for p in preds],
                 [p.category for p in preds], n_resamples=200, seed=0)


def predictions(kind: str, sigma: float = 0.5, seed: int = 1, n: int = N_ITEMS) -> list[ItemPrediction]:
    """Per-item predictions of a fake predictor: 'noisy' (lognormal around truth), 'constant' or 'llm'."""
    rng = random.Random(seed)
    split = items(n)
    mean = statistics.fmean(t for _, t, _ in split)
    rows = []
    for i, (item_id, truth, category) in enumerate(split):
        if kind == "constant":
            guess, raw = round(mean, 2), f"{mean:.2f}"
        else:
            guess = round(truth * rng.lognormvariate(0, sigma), 2)
            raw = f"Price is ${guess:.2f}" if kind == "llm" else f"{guess:.2f}"
        parsed: float | None = guess
        if kind == "llm" and i % 50 == 3:
            parsed, guess, raw = None, 40.0, "I cannot tell the price of this item."
        if kind == "llm" and i == 10:
            guess, parsed, raw = 5000.0, 5000.0, f"Price is $5000 {INJECTION} & <b>bold</b>"
        rows.append(ItemPrediction(id=item_id, truth=truth, guess=guess, parsed=parsed, raw=raw, category=category,
                                   cost_usd=0.0004 if kind == "llm" else 0.0, latency_s=0.8 if kind == "llm" else 1e-5))
    return rows


def record(pid: str, *, status: str = "complete", preds: list[ItemPrediction] | None = None, config: dict | None = None,
           finished: str = "2026-11-20T10:00:00+00:00", dataset: str = "demo", fingerprint: str = FP_NEW,
           limit: int | None = None, reason: str | None = None, fit: float | None = 1.5, cost: float = 0.0,
           distribution: str = "price-bench-classic") -> tuple[RunRecord, list[ItemPrediction]]:
    """A RunRecord as the harness writes it (metrics and breakdowns computed from ``preds``), with its sidecar rows."""
    config = config or {}
    chash = hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:12]
    metrics, breakdowns = _scores(preds) if preds else ({}, {})
    n = len(preds) if preds else (limit or N_ITEMS)
    rec = RunRecord(
        run_id=f"{finished[:10].replace('-', '')}-{pid}-{chash[:6]}", status=status, reason=reason,
        price_bench_version="0.1.0",
        predictor=PredictorInfo(id=pid, description=f"The {pid} predictor.", config=config, config_hash=chash,
                                plugin_distribution=distribution, plugin_version="0.1.0"),
        dataset=DatasetRef(name=dataset, fingerprint=fingerprint, synthetic=dataset == "demo",
                           recipe="demo-synthetic@1" if dataset == "demo" else "reference-2023@1"),
        n_items=n, n_total=N_ITEMS, limit=limit, started_at=finished.replace("10:00", "09:58"), finished_at=finished,
        timing=Timing(fit_seconds=fit, predict_seconds_total=0.3, predict_seconds_per_item=0.3 / n, wall_seconds=2.0),
        usage=Usage(cost_usd=cost, tokens_in=1000 if cost else 0, tokens_out=50 if cost else 0),
        parse_failures=sum(p.parsed is None for p in preds or []), fallback_price=40.0,
        metrics=metrics, breakdowns=breakdowns, git_commit="0123456789abcdef0123",
    )
    return rec, preds or []


def write_demo_results(root: Path) -> Path:
    """Write the whole demo result set under ``root`` and return it."""
    demo = [
        record("random-forest", preds=predictions("noisy", 0.35, 2), config={"n_estimators": 300}, fit=42.0,
               finished="2026-11-21T10:00:00+00:00"),
        record("random-forest", preds=predictions("noisy", 0.45, 3), config={"n_estimators": 100}, fit=15.0),
        record("linear-regression", preds=predictions("noisy", 0.6, 4), finished="2026-11-22T10:00:00+00:00"),
        record("linear-regression", preds=predictions("noisy", 0.9, 5), finished="2026-11-01T10:00:00+00:00"),
        record("constant-mean", preds=predictions("constant"), fit=0.001, distribution="price-bench"),
        record("frontier", preds=predictions("llm", 0.3, 6), config={"model": "gpt-4o-mini"}, fit=None, cost=0.12,
               distribution="price-bench-frontier", finished="2026-11-23T10:00:00+00:00"),
        record("openai-ft", status="skipped", reason="OPENAI_API_KEY is not set", distribution="price-bench-openai-ft"),
        record("qlora", status="failed", reason="RuntimeError: CUDA out of memory <while loading>",
               distribution="price-bench-qlora"),
        record("constant-median", preds=predictions("constant", n=50), limit=50, finished="2026-11-27T10:00:00+00:00",
               distribution="price-bench"),
        record("constant-median", preds=predictions("constant"), fingerprint=FP_OLD, finished="2026-10-01T10:00:00+00:00",
               distribution="price-bench"),
    ]
    real = [
        record("random-forest", preds=predictions("noisy", 0.5, 8), dataset="amazon-course", fingerprint=FP_REAL),
        record("frontier", preds=predictions("llm", 0.4, 9), dataset="amazon-course", fingerprint=FP_REAL,
               distribution="price-bench-frontier", cost=0.05),
    ]
    for rec, preds in demo + real:
        write_record(root, rec, preds)
    return root


@pytest.fixture
def results_dir(tmp_path) -> Path:
    """A results folder with the demo and amazon-course records described above."""
    return write_demo_results(tmp_path / "results")


@pytest.fixture
def kit():
    """This module: ``record``, ``predictions``, ``write_demo_results`` and the constants, for tests to build variants."""
    return sys.modules[__name__]


@pytest.fixture
def cli(tmp_path_factory, monkeypatch):
    """Invoke ``price-bench`` in-process from an empty folder (so no real README.md is touched); returns the Result."""
    from click.testing import CliRunner

    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))

    from price_bench.cli.main import get_cli

    def _run(*args: str):
        return CliRunner().invoke(get_cli(), [str(a) for a in args], catch_exceptions=False)

    return _run


@pytest.fixture(scope="session")
def shared_site(tmp_path_factory) -> Path:
    """Read-only: the demo records and the pages written from them once per session (``results/``, ``leaderboards/``)."""
    from price_bench import leaderboard as lb

    root = tmp_path_factory.mktemp("site")
    write_demo_results(root / "results")
    with pytest.MonkeyPatch.context() as mp:  # a session fixture runs before each test's own home is set: use an empty one
        mp.setenv("PRICE_BENCH_HOME", str(root / "home"))
        lb.write(root / "results", root / "leaderboards")
    return root
