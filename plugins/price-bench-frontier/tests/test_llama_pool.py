"""A pool of two real llama.cpp servers (SmolLM2-135M-Instruct), one killed mid-run; structured answers through llama.cpp.

Each server sits behind a :class:`CountingProxy` that keeps the body of
every request it saw answered, so "nothing asked twice" is checked on what
the servers actually answered, not on the client's own counters.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from urllib.parse import urlparse

import pytest

from price_bench import PredictorSpec
from price_bench.testing import CountingProxy, LlamaServer, PredictorRegistry, RunOptions, llama_server_unavailable, run_predictors
from price_bench_frontier.predictors import FrontierZeroShot

pytestmark = pytest.mark.slow

MODEL = "smollm2"
ITEMS = 14


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    from price_bench.testing import get_dataset

    return get_dataset("demo", home=tmp_path_factory.mktemp("demo-home"))


@pytest.fixture
def two_replicas(tmp_path):
    """Two llama.cpp servers, each behind a counting proxy: ``[(server, proxy, url), ...]``."""
    reason = llama_server_unavailable()
    if reason:
        pytest.skip(reason)
    replicas = []
    try:
        for name in ("a", "b"):
            server = LlamaServer(n_ctx=1024, log_path=tmp_path / f"{name}.log", extra_args=["--n_threads", "1", "--n_threads_batch", "1"])
            server.start()
            parsed = urlparse(server.base_url)
            proxy = CountingProxy(f"{parsed.scheme}://{parsed.netloc}")
            replicas.append((server, proxy, proxy.start()))
        yield replicas
    finally:
        for server, proxy, _ in replicas:
            proxy.stop()
            server.stop()


def registry() -> PredictorRegistry:
    reg = PredictorRegistry()
    reg.add(PredictorSpec("frontier", FrontierZeroShot, "", origin="price-bench-frontier", plugin_version="0.1.0"))
    return reg


def test_run_completes_on_the_survivor_and_nothing_is_asked_twice(two_replicas, demo, price_bench_home):
    (victim, victim_proxy, url_a), (_, survivor_proxy, url_b) = two_replicas

    def kill_after_two_answers():
        deadline = time.monotonic() + 300
        while len(victim_proxy.answered) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        victim.kill()

    killer = threading.Thread(target=kill_after_two_answers, daemon=True)
    killer.start()
    overrides = {"base_url": f"{url_a},{url_b}", "model": MODEL, "concurrency": "2", "max_tokens": "16",
                 "structured": "json_object", "backoff_s": "0.1"}
    # json_object: one request per item (nothing rejected first) and answers that parse, since a run in
    # which no answer parses is rightly failed (SmolLM2's free text rarely reaches a price in 8 tokens).
    options = RunOptions(dataset="demo", limit=ITEMS, home=price_bench_home, progress=False, n_resamples=20, overrides={"frontier": overrides})
    [outcome] = run_predictors(["frontier"], options, registry=registry(), dataset=demo)
    killer.join(timeout=5)

    assert outcome.status == "complete", outcome.reason
    assert outcome.record.item_errors == 0 and outcome.record.n_items == ITEMS
    answered = victim_proxy.answered + survivor_proxy.answered
    asked = Counter(json.dumps(json.loads(body)["messages"]) for body in answered)
    assert len(asked) == ITEMS and max(asked.values()) == 1  # every item answered exactly once
    assert len(victim_proxy.answered) >= 2 and len(survivor_proxy.answered) == ITEMS - len(victim_proxy.answered)
    replicas = {row["url"]: row for row in outcome.record.extra["replicas"]}
    assert replicas[url_a]["answers"] == len(victim_proxy.answered) and replicas[url_a]["cooldowns"] >= 1
    assert replicas[url_b]["errors"] == 0

    before = survivor_proxy.counts["/v1/chat/completions"]
    [rerun] = run_predictors(["frontier"], options, registry=registry(), dataset=demo)
    assert rerun.status == "complete" and rerun.record.usage.new_items == 0
    assert survivor_proxy.counts["/v1/chat/completions"] == before  # the rerun asks nothing


def test_structured_answers_through_llama_cpp_grammar(llama_server, demo, price_bench_home):
    parsed = urlparse(llama_server)
    proxy = CountingProxy(f"{parsed.scheme}://{parsed.netloc}")
    url = proxy.start()
    overrides = {"base_url": url, "model": MODEL, "concurrency": "1", "max_tokens": "16", "structured": "auto"}
    options = RunOptions(dataset="demo", limit=4, home=price_bench_home, progress=False, n_resamples=20, overrides={"frontier": overrides})
    [outcome] = run_predictors(["frontier"], options, registry=registry(), dataset=demo)
    assert outcome.status == "complete", outcome.reason
    assert outcome.record.item_errors == 0, outcome.record
    # llama-cpp-python's server rejects OpenAI's json_schema format (with a 500) and takes json_object with a schema.
    assert outcome.record.extra["answer_format"] == {"json_schema": 0, "json_object": 4, "text": 0}
    assert proxy.counts["/v1/chat/completions"] == 4 + 4  # each rejected request sent once, never retried
    bodies = [json.loads(body) for body in proxy.answered]
    assert len(bodies) == 4 and all(body["response_format"]["type"] == "json_object" for body in bodies)
    assert outcome.record.parse_failures <= 1  # the grammar makes the answer a {"price": number} object
    proxy.stop()
