"""Endpoint pools, adaptive concurrency and structured answers, against the local fake OpenAI server."""

from __future__ import annotations

import json
import threading
import time

import pytest

from price_bench.testing import FakeOpenAIServer
from price_bench_frontier.client import COMPATIBLE_ENDPOINT, OPENAI_ENDPOINT, Backoff, LLMClient, endpoint_identity
from price_bench_frontier.concurrency import AdaptiveLimit
from price_bench_frontier.pool import PoolFileError, ReplicaPool, read_pool_file
from price_bench_frontier.predictors import FrontierFewShot, FrontierZeroShot
from price_bench_frontier.prompts import build_messages, parse_json_price


def conversation(i: int) -> list[dict]:
    return build_messages(f"item number {i} " + "x" * i)


def client_for(urls, **kwargs) -> LLMClient:
    kwargs.setdefault("cache", False)
    kwargs.setdefault("backoff", Backoff(base=0.01, cap=0.05))
    return LLMClient("fake-model", base_url=urls, **kwargs)


# -- pools ----------------------------------------------------------------------------------


def test_requests_spread_over_replicas_by_least_in_flight():
    with FakeOpenAIServer(delay_s=0.05) as a, FakeOpenAIServer(delay_s=0.05) as b:
        with client_for([a.url, b.url], concurrency=4) as client:
            results = client.chat_many([conversation(i) for i in range(24)])
            summary = client.summary()
    assert all(r.ok for r in results)
    assert a.answered + b.answered == 24
    assert a.answered >= 8 and b.answered >= 8, (a.answered, b.answered)  # both kept busy
    by_url = {row["url"]: row for row in summary["replicas"]}
    assert by_url[a.url]["requests"] == a.chat_requests and by_url[b.url]["errors"] == 0
    assert by_url[a.url]["latency_mean_s"] >= 0.05


def test_a_dead_replica_is_cooled_down_and_nothing_is_asked_twice():
    with FakeOpenAIServer(delay_s=0.01) as alive:
        dead = FakeOpenAIServer().start()
        dead_url = dead.url
        dead.stop()  # connection refused from now on
        with client_for([dead_url, alive.url], concurrency=2, cooldown_s=60) as client:
            results = client.chat_many([conversation(i) for i in range(20)])
            summary = {row["url"]: row for row in client.summary()["replicas"]}
    assert all(r.ok for r in results), [r.error for r in results if not r.ok]
    assert alive.chat_requests == alive.answered == 20  # every item asked once, none twice
    contents = [json.dumps(body["messages"]) for body in alive.bodies]
    assert len(set(contents)) == 20
    assert summary[dead_url]["cooldowns"] == 1 and summary[dead_url]["requests"] <= 4
    assert summary[dead_url]["answers"] == 0


def test_a_cooled_replica_is_offered_again_after_the_cool_down():
    clock = [0.0]
    pool = ReplicaPool(["http://a", "http://b"], lambda url: None, failures_to_cool=2, cooldown_s=10, clock=lambda: clock[0])
    a, b = pool.replicas
    for _ in range(2):
        pool.release(_take(pool, a), ok=False, latency_s=0.1, replica_fault=True)
    assert pool.available() == 1 and pool.acquire() is b
    pool.release(b, ok=True, latency_s=0.1)
    clock[0] = 11.0
    assert pool.available() == 2
    pool.release(_take(pool, a), ok=True, latency_s=0.1)
    assert a.consecutive_failures == 0 and a.cooldowns == 1


def _take(pool: ReplicaPool, replica):
    """Mark ``replica`` as carrying one request (as acquire would)."""
    replica.in_flight += 1
    replica.requests += 1
    return replica


def test_rate_limits_do_not_cool_a_replica():
    pool = ReplicaPool(["http://a"], lambda url: None, failures_to_cool=1)
    [a] = pool.replicas
    pool.release(_take(pool, a), ok=False, latency_s=0.0, replica_fault=False)
    assert pool.available() == 1 and a.errors == 1


def test_pool_file_and_comma_list_from_the_cli(tmp_path):
    pool = tmp_path / "pool.txt"
    pool.write_text("# replicas\nhttp://127.0.0.1:8001/v1\n\nhttp://127.0.0.1:8002/v1/  # second\n")
    config = FrontierZeroShot.make_config({"base_url": "http://127.0.0.1:8000/v1,http://127.0.0.1:8001/v1", "pool_file": str(pool)})
    assert config.base_url == ["http://127.0.0.1:8000/v1", "http://127.0.0.1:8001/v1"]
    assert config.replica_urls() == ["http://127.0.0.1:8000/v1", "http://127.0.0.1:8001/v1", "http://127.0.0.1:8002/v1"]
    assert FrontierZeroShot.skip_reason(FrontierZeroShot.make_config({"pool_file": str(pool)})) is None
    bad = tmp_path / "bad.txt"
    bad.write_text("http://127.0.0.1:8001/v1\nftp://nowhere\n")
    with pytest.raises(PoolFileError, match=r"bad.txt:2"):
        read_pool_file(bad)
    with pytest.raises(ValueError, match="bad.txt:2"):
        FrontierZeroShot.make_config({"pool_file": str(bad)})
    with pytest.raises(ValueError, match="not an http"):
        FrontierZeroShot.make_config({"base_url": "127.0.0.1:8000"})


def test_cache_keys_and_config_hash_do_not_depend_on_the_replica():
    from price_bench.testing import config_hash

    assert endpoint_identity([]) == endpoint_identity(["https://api.openai.com/v1"]) == OPENAI_ENDPOINT
    assert endpoint_identity(["http://127.0.0.1:1/v1"]) == endpoint_identity(["http://10.0.0.2:9/v1", "http://x:2/v1"]) == COMPATIBLE_ENDPOINT
    one = FrontierZeroShot.make_config({"base_url": "http://127.0.0.1:8000/v1"})
    two = FrontierZeroShot.make_config({"base_url": "http://127.0.0.1:9000/v1,http://127.0.0.1:9001/v1", "concurrency": "9"})
    assert config_hash(one) == config_hash(two)


def test_an_answer_from_one_replica_is_a_cache_hit_on_another(tmp_path):
    cache = tmp_path / "responses.sqlite"
    with FakeOpenAIServer() as a, FakeOpenAIServer() as b:
        with client_for([a.url], cache=cache) as client:
            first = client.chat(conversation(1))
        with client_for([b.url, a.url], cache=cache) as client:
            again = client.chat(conversation(1))
    assert first.ok and again.cached and again.text == first.text
    assert a.chat_requests == 1 and b.chat_requests == 0


# -- adaptive concurrency ----------------------------------------------------------------


def test_aimd_halves_once_per_window_and_grows_back_to_the_bound():
    limit = AdaptiveLimit(8, 10)
    permits = [limit.acquire() for _ in range(8)]
    for permit in permits[:4]:  # a burst of 429s from one window: one cut
        limit.release(permit, "overload")
    assert limit.level == 4 and limit.decreases == 1
    for permit in permits[4:]:
        limit.release(permit, "ok")
    for _ in range(200):
        limit.release(limit.acquire(), "ok")
    assert limit.level == 10 and limit.summary()["lowest"] == 4
    with pytest.raises(ValueError):
        AdaptiveLimit(4, 2)


def test_aimd_never_lets_more_than_the_level_in_flight():
    limit = AdaptiveLimit(3)
    inside, peak, lock = [0], [0], threading.Lock()

    def work():
        permit = limit.acquire()
        with lock:
            inside[0] += 1
            peak[0] = max(peak[0], inside[0])
        time.sleep(0.01)
        with lock:
            inside[0] -= 1
        limit.release(permit, "ok")

    threads = [threading.Thread(target=work) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert peak[0] == 3


def test_backs_off_against_a_rate_limited_server_and_answers_everything():
    with FakeOpenAIServer(max_concurrent=3, delay_s=0.03, retry_after="0.02") as server:
        with client_for(server.url, concurrency=12, max_concurrency=16, max_retries=20) as client:
            results = client.chat_many([conversation(i) for i in range(60)])
            summary = client.summary()["concurrency"]
    assert all(r.ok for r in results), [r.error for r in results if not r.ok][:3]
    assert server.answered == 60 and server.max_in_flight <= 3
    assert server.rate_limited > 0 and summary["decreases"] >= 1
    assert summary["lowest"] <= 6 < 12  # backed off from 12
    # Far fewer 429s than a fixed concurrency of 12 would get (about 9 of every 12 requests).
    assert server.rate_limited < 60


def test_status_line_shows_the_level_and_the_replicas():
    with FakeOpenAIServer() as a, FakeOpenAIServer() as b:
        with client_for([a.url, b.url], concurrency=3, max_concurrency=5) as client:
            assert client.status_line() == "conc 3/5, replicas 2/2 up"


# -- structured answers -------------------------------------------------------------------


def structured_predictor(url, cls=FrontierZeroShot, **overrides):
    return cls(cls.make_config({"base_url": url, "model": "fake-model", "backoff_s": "0.01", **overrides}), seed=1)


def test_structured_answers_where_the_server_takes_a_json_schema(items):
    with FakeOpenAIServer() as server:
        predictor = structured_predictor(server.url)
        predictions = predictor.predict(items)
        info = predictor.info()
        predictor.close()
    assert all(p.price is not None and p.raw.startswith('{"price"') for p in predictions)
    body = server.bodies[0]
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["schema"]["required"] == ["price"]
    assert body["messages"][-1]["role"] == "user"  # no prefill with a JSON answer
    assert info["answer_format"] == {"json_schema": len(items), "json_object": 0, "text": 0}


def test_falls_back_to_text_where_the_server_rejects_both_formats(items):
    with FakeOpenAIServer(json_schema=False, json_object=False) as server:
        predictor = structured_predictor(server.url)
        first = predictor.predict(items[:4])
        second = predictor.predict(items[4:8])
        info = predictor.info()
        predictor.close()
    assert all(p.error is None and p.price is not None and p.raw.startswith("Price is $") for p in first + second)
    # Four requests rejected per format, then text only: the second batch never asks for a schema.
    formats = [body.get("response_format", {}).get("type") for body in server.bodies]
    assert formats.count("json_schema") == 4 and formats.count("json_object") == 4 and formats.count(None) == 8
    assert server.chat_requests == 16  # a rejected format is not retried
    assert info["answer_format"] == {"json_schema": 0, "json_object": 0, "text": 8}


def test_llama_cpp_python_style_json_object_with_a_schema(items):
    with FakeOpenAIServer(json_schema=False) as server:
        predictor = structured_predictor(server.url)
        predictions = predictor.predict(items[:5])
        info = predictor.info()
        predictor.close()
    assert all(p.price is not None and p.raw.startswith('{"price"') for p in predictions)
    assert server.bodies[-1]["response_format"] == {"type": "json_object", "schema": server.bodies[-1]["response_format"]["schema"]}
    assert info["answer_format"] == {"json_schema": 0, "json_object": 5, "text": 0}


def test_forced_json_schema_keeps_a_rejection_as_an_item_error(items):
    with FakeOpenAIServer(json_schema=False) as server:
        predictor = structured_predictor(server.url, structured="json_schema")
        predictions = predictor.predict(items[:2])
        predictor.close()
    assert all(p.error and "response_format" in p.error for p in predictions) and server.chat_requests == 2


def test_structured_text_mode_never_asks_for_a_schema(items):
    with FakeOpenAIServer() as server:
        predictor = structured_predictor(server.url, structured="text")
        predictor.predict(items[:3])
        predictor.close()
    assert not any("response_format" in body for body in server.bodies)


def test_few_shot_examples_are_shown_as_json_in_structured_mode(items, tmp_path):
    with FakeOpenAIServer() as server:
        predictor = structured_predictor(server.url, FrontierFewShot, k="2")
        predictor.fit(items, [], tmp_path)
        predictor.predict(items[:1])
        predictor.close()
    assistant = [m["content"] for m in server.bodies[0]["messages"] if m["role"] == "assistant"]
    assert len(assistant) == 2 and all(parse_json_price(text) is not None for text in assistant)


@pytest.mark.parametrize(
    ("answer", "price"),
    [('{"price": 12.5}', 12.5), ('{"price": "1,299.00"}', 1299.0), ('{"price": -3}', None), ('{"cost": 3}', None), ("Price is $4", None), ('{"price": true}', None), ("[1]", None)],
)
def test_parse_json_price(answer, price):
    assert parse_json_price(answer) == price


# -- unknown cost through the harness and the leaderboard ----------------------------------


def test_unknown_model_cost_is_unknown_in_the_record_and_the_leaderboard(price_bench_home, make_items, tmp_path):
    import subprocess
    import sys

    from price_bench import PredictorSpec
    from price_bench.testing import PredictorRegistry, RunOptions, read_predictions, run_predictors, write_dataset

    dataset = write_dataset("tiny", {"train": make_items(8, "tr"), "validation": make_items(2, "va"), "test": make_items(6, "te")}, {"recipe": "t@1"}, home=price_bench_home)
    reg = PredictorRegistry()
    reg.add(PredictorSpec("frontier", FrontierZeroShot, "", origin="price-bench-frontier", plugin_version="0.1.0"))
    with FakeOpenAIServer() as a, FakeOpenAIServer() as b:
        overrides = {"frontier": {"base_url": f"{a.url},{b.url}", "model": "my-local-model"}}
        options = RunOptions(dataset="tiny", home=price_bench_home, progress=False, n_resamples=20, overrides=overrides)
        [first] = run_predictors(["frontier"], options, registry=reg, dataset=dataset)
        [again] = run_predictors(["frontier"], options, registry=reg, dataset=dataset)  # from the harness cache
        assert a.chat_requests + b.chat_requests == 6
    assert first.status == "complete", first.reason
    assert first.record.usage.cost_usd is None and again.record.usage.cost_usd is None
    assert again.record.usage.cached_items == 6
    rows = read_predictions(first.path, first.record)
    assert all(row.cost_usd is None for row in rows)
    extra = first.record.extra
    assert extra["answer_format"] == {"json_schema": 6, "json_object": 0, "text": 0}
    assert sorted(r["url"] for r in extra["replicas"]) == sorted([a.url, b.url])
    assert sum(r["requests"] for r in extra["replicas"]) == 6 and extra["endpoint"] == COMPATIBLE_ENDPOINT
    results = first.path.parents[2]  # <results>/<dataset>/<predictor>/<run>.json
    out = tmp_path / "pages"
    done = subprocess.run([sys.executable, "-m", "price_bench", "leaderboard", "--results", str(results), "--out", str(out),
                           "--dataset", "tiny", "--readme", str(tmp_path / "no-readme.md")], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    [row] = [line for line in (out / "tiny.md").read_text().splitlines() if "frontier" in line and line.startswith("|")][:1]
    assert "unknown" in row
