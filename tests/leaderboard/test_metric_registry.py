"""The one metric registry (metrics/point.py METRICS) drives scoring, the CLI, the leaderboard; one band definition."""

from __future__ import annotations

import hashlib
import random
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from price_bench import bands
from price_bench import leaderboard as lb
from price_bench.metrics import breakdown, score
from price_bench.metrics.point import METRICS, MetricSpec
from price_bench.results.schema import DatasetRef, ItemPrediction, MetricValue, PredictorInfo, RunRecord
from price_bench.results.store import read_record, write_record


def _run(results: Path, pid: str, sigma: float, seed: int) -> Path:
    rng = random.Random(seed)
    preds = []
    for i in range(40):
        truth = round(rng.uniform(5, 900), 2)
        guess = round(truth * rng.lognormvariate(0, sigma), 2)
        preds.append(ItemPrediction(id=f"i{i:03d}", truth=truth, guess=guess, parsed=guess, category="Toys"))
    metrics, slices = score([p.truth for p in preds], [p.guess for p in preds], [True] * len(preds),
                            [p.category for p in preds], n_resamples=50)
    record = RunRecord(
        run_id=f"20261201-{pid}-000000", status="complete", price_bench_version="0.1.0",
        predictor=PredictorInfo(id=pid, config_hash="0" * 12, plugin_distribution="price-bench", plugin_version="0.1.0"),
        dataset=DatasetRef(name="reg", fingerprint=hashlib.sha256(b"reg").hexdigest(), synthetic=True),
        n_items=len(preds), n_total=len(preds), started_at="2026-12-01T10:00:00+00:00",
        finished_at="2026-12-01T10:01:00+00:00", metrics=metrics, breakdowns=slices,
    )
    return write_record(results, record, preds)


@pytest.fixture
def results(tmp_path: Path) -> Path:
    root = tmp_path / "results"
    _run(root, "good", 0.2, 1)
    _run(root, "bad", 0.8, 2)
    return root


def _pages(results: Path, out: Path) -> tuple[str, str]:
    files = lb.plan(results, out, "reg", True, None).files
    return files[out / "reg.md"], files[out / "reg.html"]


def _hits_glossary(html: str) -> str:
    found = re.search(r"<dt>Hits</dt><dd>(.*?)</dd>", html)
    assert found, "the glossary explains Hits"
    return found.group(1)


def test_the_registry_drives_the_leaderboard_header_and_glossary(results, tmp_path, monkeypatch):
    md, html = _pages(results, tmp_path / "boards")
    assert "| Hits % ↑ |" in md and "| Error \\$ ↓ |" in md
    assert _hits_glossary(html).endswith("Higher is better.")
    assert METRICS["hits"].description in html, "the column's tooltip is the registry's description"

    monkeypatch.setitem(METRICS, "hits", replace(METRICS["hits"], direction="lower", description="Hits, read the other way."))
    md, html = _pages(results, tmp_path / "boards")
    assert "| Hits % ↓ |" in md and "| Hits % ↑ |" not in md
    assert _hits_glossary(html).endswith("Lower is better.")
    assert "Hits, read the other way." in html


def _show_rows(results: Path, run_id: str) -> dict[str, str]:
    from price_bench.cli.main import get_cli

    out = CliRunner().invoke(get_cli(), ["show", run_id, "--results", str(results)])
    assert out.exit_code == 0, out.output
    rows = {}
    for line in out.output.splitlines():
        cells = [c.strip() for c in re.split(r"[│|┃]", line) if c.strip()]
        if len(cells) >= 3 and cells[-1] in ("higher", "lower", "neither"):
            rows[cells[0]] = cells[-1]
    return rows


def test_the_registry_drives_the_cli_directions(results, monkeypatch):
    rows = _show_rows(results, "20261201-good-000000")
    assert rows["Error (MAE)"] == "lower" and rows["Hits"] == "higher" and rows["Orange band"] == "neither"
    monkeypatch.setitem(METRICS, "hits", replace(METRICS["hits"], direction="lower"))
    assert _show_rows(results, "20261201-good-000000")["Hits"] == "lower"


def test_the_registry_drives_scoring(monkeypatch):
    worst = MetricSpec("max_error", "Max error", "Max abs error", "lower",
                       lambda t, g, p: float(np.max(np.abs(g - t))), "$", 2, "Largest absolute error in dollars.")
    monkeypatch.setitem(METRICS, "max_error", worst)
    metrics, _ = score([10.0, 20.0], [11.0, 30.0], [True, True], n_resamples=0)
    assert metrics["max_error"] == MetricValue(value=10.0, higher_is_better=False)
    assert list(metrics) == list(METRICS)


def test_orange_has_no_direction_and_is_recorded_so(results):
    spec = METRICS["orange"]
    assert (spec.direction, spec.higher_is_better, spec.lower_is_better, spec.arrow) == ("neither", None, None, "")
    assert spec.explanation().endswith("Neither higher nor lower is better.")
    record = read_record(results / "reg" / "good" / "20261201-good-000000.json")
    assert record.metrics["orange"].higher_is_better is None, "orange is neither better high nor low"
    assert record.metrics["hits"].higher_is_better is True and record.metrics["error"].higher_is_better is False
    assert all(record.metrics[name].higher_is_better == spec.higher_is_better for name, spec in METRICS.items())


def test_every_metric_is_documented_with_a_direction():
    for name, spec in METRICS.items():
        assert spec.name == name and spec.direction in ("higher", "lower", "neither")
        assert spec.description.endswith("."), f"{name} needs a one-sentence description"
        assert spec.format(None) == "-" and spec.format(float("inf")) == "-"
    assert (METRICS["error"].format(-3.5), METRICS["hits"].format(41.25), METRICS["rmsle"].format(0.51234)) == ("-$3.50", "41.2%", "0.512")


def test_breakdown_uses_the_one_band_definition():
    from price_bench.data.curation import Recipe

    recipe = Recipe()
    assert recipe.price_bands == bands.PRICE_BANDS, "curation's default bands are the one definition"
    assert breakdown.PRICE_BAND_EDGES == bands.inner_edges(bands.PRICE_BANDS)
    prices = [0.1, 0.5, 9.99, 10.0, 24.99, 25.0, 199.99, 200.0, 499.99, 500.0, 999.49, 1000.0, 5000.0]
    labels = breakdown.band_labels()
    assert len(labels) == len(bands.PRICE_BANDS) - 1
    by_breakdown = list(breakdown.price_bands(prices))
    for price, label in zip(prices, by_breakdown, strict=True):
        index = recipe.band_of(price)
        assert index == bands.band_index(price) and label == labels[index], price
        if 0 < index < len(labels) - 1:
            assert label == recipe.band_label(index), "inner bands carry the curation's labels"
    assert labels[0] == "<$10" and labels[-1] == "$500+"
    rows = breakdown.band_breakdown(prices, prices)
    assert sum(row["n"] for row in rows.values()) == len(prices) and set(rows) <= set(labels)
