"""The served price follows the harness's parsing and fallback rules, item for item.

An in-process predictor that answers in words (some parseable, some refusals,
some item errors) is run by the real harness, bundled by the real bundler,
then served by the app (through httpx's ASGI transport: this checks the rules,
the real-uvicorn path is in test_server.py). Every served price must equal the
price the harness scored for the same item, and ``fallback`` must be set
exactly where the harness fell back to the train median.
"""

from __future__ import annotations

import asyncio
import json
import random
from pathlib import Path

import pytest

from price_bench import Prediction, Predictor, hookimpl
from price_bench.data.dataset import write_dataset
from price_bench.harness.runner import RunOptions, run_predictors
from price_bench.items import Item
from price_bench.results.store import read_predictions

pytest.importorskip("fastapi")
pytest.importorskip("httpx")


class Talker(Predictor):
    """Answers like an LLM: a price in words, a range, a refusal, or an item error."""

    id = "talker-test"
    description = "answers in words"

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
                out.append(Prediction(raw=None, error="upstream timed out"))
        return out


class Plugin:
    @hookimpl
    def register_predictors(self, register):
        register(Talker)


def _items(split: str, n: int) -> list[Item]:
    rng = random.Random(split)
    return [Item(id=f"{split}-{i}", text=f"product {i} of {split}", price=round(rng.uniform(5, 500), 2), category="Toys") for i in range(n)]


def test_served_prices_equal_the_harness_scored_prices(register_plugin, price_bench_home, tmp_path):
    import httpx

    from price_bench.serve.app import ServeSettings, create_app
    from price_bench.serve.bundle import build_bundle

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

    async def drive():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
            batch = await client.post("/v1/predict", json={"items": [{"id": i.id, "text": i.text} for i in test_items]})
            single = await client.post("/v1/predict", json={"id": "one", "text": test_items[0].text})
            return batch, single

    batch, single = asyncio.run(drive())
    assert batch.status_code == 200, batch.text
    rows = batch.json()["items"]
    for row in rows:
        harness = scored[row["id"]]
        assert row["price"] == pytest.approx(harness.guess), row
        assert row["fallback"] is (harness.parsed is None), row
    assert [row["fallback"] for row in rows][:4] == [False, False, True, True]
    assert rows[3]["error"] == "upstream timed out"
    assert rows[0]["tokens_in"] == 12 and rows[0]["cost_usd"] == pytest.approx(0.001)
    assert batch.json()["cost_usd"] == pytest.approx(0.001 * 6)
    assert single.json()["price"] == pytest.approx(scored[test_items[0].id].guess)
    events = [json.loads(line) for line in (tmp_path / "log" / "events.jsonl").read_text().splitlines()]
    assert len(events) == 25 and sum(e["fallback"] for e in events) == 12
