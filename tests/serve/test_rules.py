"""The served price follows the harness's parsing and fallback rules, item for item.

An in-process predictor that answers in words (some parseable, some refusals,
some item errors) is run by the real harness, bundled by the real bundler,
then served by a real uvicorn (in a thread of this process, since the
predictor is registered in-process) and asked over HTTP. Every served price
must equal the price the harness scored for the same item, ``fallback`` must
be set exactly where the harness fell back to the train median, tokens and
cost come back per item and move the ``/metrics`` counters, and the
predictor's secret (its API key, from the environment) never reaches an
answer, the log or the metrics.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import pytest
from pydantic import Field

from price_bench import Prediction, Predictor, PredictorConfig, hookimpl
from price_bench.data.dataset import write_dataset
from price_bench.harness.runner import RunOptions, run_predictors
from price_bench.items import Item
from price_bench.results.store import read_predictions

pytest.importorskip("fastapi")
pytest.importorskip("httpx")


KEY_ENV = "PRICE_BENCH_TEST_TALKER_KEY"
KEY = "sk-talker-secret-0123456789"


class TalkerConfig(PredictorConfig):
    api_key: str = Field(default_factory=lambda: os.environ.get(KEY_ENV, ""))


class Talker(Predictor):
    """Answers like an LLM: a price in words, a range, a refusal, or an item error (which quotes its key)."""

    id = "talker-test"
    description = "answers in words"
    Config = TalkerConfig

    def fit(self, train, validation, workdir: Path) -> None:
        (workdir / "talker.json").write_text(json.dumps({"ok": True}))

    def load(self, workdir: Path) -> bool:
        return (workdir / "talker.json").is_file()

    def predict(self, items):
        out = []
        for item in items:
            n = int(item.text.split()[1])
            kind = n % 4
            if kind == 0:
                out.append(Prediction(raw=f"Price is ${n}.99", tokens_in=12, tokens_out=4, cost_usd=0.001))
            elif kind == 1:
                out.append(Prediction(raw=f"between ${n} and ${n + 10}"))
            elif kind == 2:
                out.append(Prediction(raw="I cannot determine the price"))
            else:
                out.append(Prediction(raw=None, error=f"upstream timed out (key {self.config.api_key})"))
        return out


class Plugin:
    @hookimpl
    def register_predictors(self, register):
        register(Talker)


def _items(split: str, n: int) -> list[Item]:
    rng = random.Random(split)
    return [Item(id=f"{split}-{i}", text=f"product {i} of {split}", price=round(rng.uniform(5, 500), 2), category="Toys") for i in range(n)]


def test_served_prices_equal_the_harness_scored_prices(register_plugin, price_bench_home, tmp_path, monkeypatch, kit):
    import httpx

    from price_bench.serve.app import ServeSettings, create_app
    from price_bench.serve.bundle import build_bundle

    monkeypatch.setenv(KEY_ENV, KEY)
    register_plugin(Plugin(), name="talker-plugin")
    test_items = _items("test", 24)
    write_dataset("talk", {"train": _items("train", 30), "validation": _items("validation", 4), "test": test_items},
                  {"recipe": {"name": "reference-2023", "version": 1}})
    results = tmp_path / "results"
    (outcome,) = run_predictors(["talker-test"], RunOptions(dataset="talk", results_dir=results, n_resamples=50, progress=False))
    assert outcome.status == "complete", outcome.reason
    bundle = build_bundle(outcome.record.run_id, tmp_path / "bundle", results_dir=results)
    assert bundle.manifest.fallback_price == outcome.record.fallback_price
    scored = {row.id: row for row in read_predictions(outcome.path, outcome.record)}

    app = create_app(ServeSettings(bundle=str(bundle.path), log_dir=str(tmp_path / "log")))

    with kit.uvicorn_in_thread(app) as url, httpx.Client(base_url=url, timeout=60) as client:
        before = client.get("/metrics").text
        batch = client.post("/v1/predict", json={"items": [{"id": i.id, "text": i.text} for i in test_items]})
        single = client.post("/v1/predict", json={"id": "one", "text": test_items[0].text})
        after = client.get("/metrics").text
    assert batch.status_code == 200, batch.text
    rows = batch.json()["items"]
    for row in rows:
        harness = scored[row["id"]]
        assert row["price"] == pytest.approx(harness.guess), row
        assert row["fallback"] is (harness.parsed is None), row
    assert [row["fallback"] for row in rows][:4] == [False, False, True, True]
    assert rows[3]["error"] == "upstream timed out (key ***)"
    assert rows[0]["tokens_in"] == 12 and rows[0]["cost_usd"] == pytest.approx(0.001)
    assert batch.json()["cost_usd"] == pytest.approx(0.001 * 6)
    assert single.json()["price"] == pytest.approx(scored[test_items[0].id].guess)
    events = [json.loads(line) for line in (tmp_path / "log" / "events.jsonl").read_text().splitlines()]
    assert len(events) == 25 and sum(e["fallback"] for e in events) == 12

    def moved(name: str, **labels: str) -> float:
        return kit.metric(after, name, **labels) - kit.metric(before, name, **labels)

    assert moved("price_bench_items_total") == 25 and moved("price_bench_fallback_items_total") == 12
    assert moved("price_bench_cost_usd_total") == pytest.approx(0.001 * 7)  # 6 in the batch, 1 single
    assert moved("price_bench_tokens_total", direction="in") == 12 * 7 and moved("price_bench_tokens_total", direction="out") == 4 * 7
    assert KEY not in batch.text and KEY not in after
    assert all(KEY not in path.read_text() for path in (tmp_path / "log").iterdir() if path.is_file())
