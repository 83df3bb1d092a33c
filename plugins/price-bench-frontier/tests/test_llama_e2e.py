"""End to end against a real OpenAI-compatible server: llama.cpp serving SmolLM2-135M-Instruct.

The model is tiny and its prices are poor; these tests check the plumbing:
every predictor runs through the harness on demo items, tokens and cost are
recorded, a rerun sends no request (counted by a proxy in front of the
server), and concurrent requests come back in order.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from urllib.parse import urlparse

import pytest

from price_bench import PredictorSpec
from price_bench.testing import CountingProxy, PredictorRegistry, RunOptions, run_predictors
from price_bench_frontier.client import LLMClient
from price_bench_frontier.predictors import FrontierFewShot, FrontierRag, FrontierZeroShot
from price_bench_frontier.prompts import build_messages

pytestmark = pytest.mark.slow

MODEL = "smollm2"
PRICES = json.dumps({MODEL: [0.5, 1.5]})  # pretend list prices, so that cost is non-zero and checkable
LIMIT = 12
# Long enough for SmolLM2 to reach a price in some answers: a run in which no answer parses is
# (rightly) failed, and llama.cpp's chat handler does not continue the "Price is $" prefill.
MAX_TOKENS = 16


@pytest.fixture(scope="session")
def demo(tmp_path_factory):
    """The demo dataset, built once for the session."""
    from price_bench.testing import get_dataset

    home = tmp_path_factory.mktemp("demo-home")
    return get_dataset("demo", home=home)


@pytest.fixture
def proxy(llama_server):
    parsed = urlparse(llama_server)
    counting = CountingProxy(f"{parsed.scheme}://{parsed.netloc}")
    url = counting.start()
    yield counting, url
    counting.stop()


def registry() -> PredictorRegistry:
    reg = PredictorRegistry()
    for cls in (FrontierZeroShot, FrontierFewShot, FrontierRag):
        reg.add(PredictorSpec(cls.id, cls, cls.description, origin="price-bench-frontier", plugin_version="0.1.0"))
    return reg


EXTRA = {
    "frontier": {},
    "frontier-fewshot": {"k": "2", "max_item_chars": "400"},
    "frontier-rag": {"k": "2", "max_item_chars": "300", "embedder": "minilm", "index_size": "120"},
}


@pytest.mark.parametrize("predictor_id", list(EXTRA))
def test_runs_through_the_harness_and_reruns_for_free(predictor_id, demo, proxy, price_bench_home):
    if predictor_id == "frontier-rag":
        from price_bench_frontier.retrieval import minilm_available

        if not minilm_available():
            EXTRA[predictor_id]["embedder"] = "tfidf"
    counting, url = proxy
    # One request per item (the counts below assume it): llama-cpp-python takes `json_object` with a schema
    # directly (structured="auto" would first try json_schema, which it rejects; see test_llama_pool.py).
    overrides = {"base_url": url, "model": MODEL, "prices": PRICES, "concurrency": "4", "max_tokens": str(MAX_TOKENS),
                 "structured": "json_object", **EXTRA[predictor_id]}
    options = RunOptions(dataset="demo", limit=LIMIT, home=price_bench_home, progress=False, n_resamples=50, overrides={predictor_id: overrides})

    [first] = run_predictors([predictor_id], options, registry=registry(), dataset=demo)
    record = first.record
    assert first.status == "complete", first.reason
    assert record.n_items == LIMIT and record.item_errors == 0
    assert counting.chat_requests == LIMIT
    assert record.usage.tokens_in > LIMIT * 50 and 0 < record.usage.tokens_out <= LIMIT * MAX_TOKENS
    expected_cost = (record.usage.tokens_in * 0.5 + record.usage.tokens_out * 1.5) / 1e6
    assert record.usage.cost_usd == pytest.approx(expected_cost)
    assert record.parse_failures < LIMIT  # counted by the harness, never a crash; some answers parse

    # Ignoring the harness's prediction cache: every answer comes from the response cache.
    options.overwrite = "always"
    [second] = run_predictors([predictor_id], options, registry=registry(), dataset=demo)
    assert second.status == "complete" and counting.chat_requests == LIMIT
    assert second.record.usage.cost_usd == pytest.approx(expected_cost)  # the original spend, reported again
    assert second.record.metrics.keys() == record.metrics.keys()


def test_concurrent_requests_match_sequential_ones(llama_server, demo):
    conversations = [build_messages(item.text, max_chars=300) for item in demo.test[:6]]
    params = {"temperature": 0, "seed": 1, "max_tokens": 8}
    with LLMClient(MODEL, base_url=llama_server, cache=False, concurrency=1) as sequential:
        one_by_one = [r.text for r in sequential.chat_many(conversations, **params)]
    with LLMClient(MODEL, base_url=llama_server, cache=False, concurrency=4) as parallel:
        together = parallel.chat_many(conversations, **params)
    assert all(r.ok for r in together)
    assert [r.text for r in together] == one_by_one


def test_cli_run_with_the_installed_entry_point(llama_server, demo, tmp_path):
    env = {
        **os.environ,
        "PRICE_BENCH_HOME": str(demo.path.parent.parent),
        "PRICE_BENCH_LOAD_PLUGINS": "price-bench-frontier",
        "PRICE_BENCH_STRICT_PLUGINS": "1",
    }
    env.pop("OPENAI_API_KEY", None)
    command = [
        sys.executable, "-m", "price_bench", "run", "frontier", "--dataset", "demo", "--limit", "3", "--no-progress",
        "--results", str(tmp_path / "results"), "--bootstrap", "20", "--json",
        "-o", f"frontier.base_url={llama_server}", "-o", f"frontier.model={MODEL}", "-o", f"frontier.max_tokens={MAX_TOKENS}",
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert '"complete"' in done.stdout
