"""LLMClient against a local misbehaving OpenAI-compatible server (price_bench.testing.FakeOpenAIServer)."""

from __future__ import annotations

import random
import time

import pytest

from price_bench.testing import default_answer
from price_bench_frontier.client import (
    BUDGET_EXHAUSTED,
    Backoff,
    Budget,
    LLMClient,
    is_local_url,
    parse_retry_after,
    resolve_api_key,
)
from price_bench_frontier.prompts import build_messages

FAST = Backoff(base=0.01, cap=0.05)


def conv(text: str = "A ceramic mug") -> list[dict]:
    return build_messages(text)


def _arrivals(server) -> list[float]:
    """When each chat request reached the server (``time.monotonic``)."""
    return [r.received_at for r in server.requests_to("POST", "/v1/chat/completions")]


def make_client(base_url: str, **kwargs) -> LLMClient:
    kwargs.setdefault("backoff", FAST)
    kwargs.setdefault("timeout", 5.0)
    return LLMClient(kwargs.pop("model", "gpt-4o-mini"), base_url=base_url, **kwargs)


def test_success_records_text_tokens_and_cost(stub):
    server, url = stub()
    with make_client(url) as client:
        result = client.chat(conv(), temperature=0, seed=3, max_tokens=8)
    assert result.ok and result.text == default_answer(server.bodies[0])
    assert result.tokens_in > 0 and result.tokens_out > 0
    assert result.price_known
    assert result.cost_usd == pytest.approx((result.tokens_in * 0.15 + result.tokens_out * 0.60) / 1e6)
    assert result.spent_usd == result.cost_usd and result.attempts == 1 and not result.cached
    body = server.bodies[0]
    assert body["model"] == "gpt-4o-mini" and body["seed"] == 3 and body["max_tokens"] == 8
    assert body["messages"][-1] == {"role": "assistant", "content": "Price is $"}


def test_unknown_model_costs_nothing_and_is_flagged(stub):
    _, url = stub()
    with make_client(url, model="smollm2") as client:
        result = client.chat(conv())
    assert result.ok and result.cost_usd == 0.0 and not result.price_known


def test_second_call_is_served_from_cache_without_a_request(stub):
    server, url = stub()
    with make_client(url) as client:
        first = client.chat(conv(), temperature=0)
    with make_client(url) as client:  # a new client: the cache is on disk
        second = client.chat(conv(), temperature=0)
        assert server.chat_requests == 1
        assert second.cached and second.text == first.text
        assert second.cost_usd == first.cost_usd and second.spent_usd == 0.0
        assert client.stats.requests == 0 and client.stats.cache_hits == 1
        client.chat(conv(), temperature=0.5)  # other parameters: a new request
        assert server.chat_requests == 2


def test_cache_can_be_disabled(stub):
    server, url = stub()
    with make_client(url, cache=False) as client:
        client.chat(conv())
        client.chat(conv())
    assert server.chat_requests == 2


@pytest.mark.parametrize("fault", ["429", "500", "503", "malformed", "html", "empty"])
def test_transient_fault_is_retried(stub, fault):
    server, url = stub(fault)
    with make_client(url) as client:
        result = client.chat(conv())
    assert result.ok, result.error
    assert result.attempts == 2 and server.chat_requests == 2
    assert client.stats.retries == 1


def test_timeout_is_retried(stub):
    server, url = stub("hang", hang_s=2.0)
    with make_client(url, timeout=0.5) as client:
        result = client.chat(conv())
    assert result.ok and result.attempts == 2


def test_retry_after_is_honoured(stub):
    server, url = stub("429", retry_after="0.4")
    with make_client(url) as client:
        assert client.chat(conv()).ok
    assert _arrivals(server)[1] - _arrivals(server)[0] >= 0.4


def test_backoff_delays_grow_with_jitter(stub):
    _, url = stub(default="500")
    waits: list[float] = []
    with make_client(url, max_retries=4, backoff=Backoff(base=1.0, cap=4.0), sleep=waits.append) as client:
        result = client.chat(conv())
    assert not result.ok and "HTTP 500" in result.error and "gave up after 5 attempts" in result.error
    assert len(waits) == 4
    for wait, ceiling in zip(waits, [1.0, 2.0, 4.0, 4.0]):
        assert ceiling / 2 <= wait <= ceiling


def test_persistent_faults_become_errors(stub):
    for fault in ("429", "500", "malformed", "empty"):
        server, url = stub(default=fault)
        with make_client(url, max_retries=2) as client:
            result = client.chat(conv())
        assert not result.ok and result.text is None
        assert server.chat_requests == 3, fault
    assert "empty content" in result.error


def test_persistent_timeout_becomes_an_error(stub):
    server, url = stub(default="hang", hang_s=1.5)
    with make_client(url, timeout=0.3, max_retries=1) as client:
        result = client.chat(conv())
    assert not result.ok and "timed out" in result.error and server.chat_requests == 2


def test_connection_refused_becomes_an_error():
    with make_client("http://127.0.0.1:9/v1", max_retries=1) as client:
        result = client.chat(conv())
    assert not result.ok and "connection error" in result.error and client.stats.requests == 2


def test_bad_request_is_not_retried(stub):
    server, url = stub("400")
    with make_client(url) as client:
        result = client.chat(conv())
    assert result.error.startswith("HTTP 400") and server.chat_requests == 1


def test_auth_failure_stops_later_requests(stub):
    server, url = stub("401")
    with make_client(url) as client:
        first = client.chat(conv("a"))
        second = client.chat(conv("b"))
    assert "HTTP 401" in first.error and second.error == first.error
    assert server.chat_requests == 1


def test_budget_stops_cleanly_but_cache_still_answers(stub):
    server, url = stub()
    with make_client(url, model="pricey", prices={"pricey": (1_000_000.0, 0.0)}, budget_usd=1.0) as client:
        first = client.chat(conv("a"))
        assert first.ok and first.spent_usd >= 1.0
        later = client.chat_many([conv("b"), conv("c")])
        assert [r.error for r in later] == [BUDGET_EXHAUSTED, BUDGET_EXHAUSTED]
        assert client.chat(conv("a")).cached  # free answers still come back
    assert server.chat_requests == 1


def test_shared_budget_object(stub):
    _, url = stub()
    budget = Budget(0.0)
    with make_client(url, budget=budget) as client:
        assert client.chat(conv()).error == BUDGET_EXHAUSTED


def test_chat_many_keeps_order_and_runs_concurrently(stub):
    server, url = stub(delay_s=0.3)
    texts = [f"item number {'x' * i}" for i in range(8)]
    with make_client(url, concurrency=8) as client:
        started = time.perf_counter()
        results = client.chat_many([conv(t) for t in texts])
        elapsed = time.perf_counter() - started
    assert [r.text for r in results] == [default_answer({"messages": conv(t)}) for t in texts]
    assert elapsed < 8 * 0.3 / 2  # sequential would take 2.4 s


def test_mixed_faults_in_a_batch_are_per_item(stub):
    server, url = stub("429", "500", "malformed", "empty", "400", retry_after="0")
    with make_client(url, max_retries=0, concurrency=1) as client:
        results = client.chat_many([conv(f"item {i}") for i in range(7)])
    assert [r.ok for r in results] == [False, False, False, False, False, True, True]
    assert all(r.error for r in results[:5])


def test_api_key_from_env_is_sent_but_never_stored(stub, monkeypatch, price_bench_home):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-SECRET-123")
    server, url = stub()
    with make_client(url) as client:
        result = client.chat(conv())
    assert server.requests[0].headers["authorization"] == "Bearer sk-test-SECRET-123"
    assert "SECRET" not in repr(result)
    for path in (price_bench_home / "cache").iterdir():
        assert b"SECRET" not in path.read_bytes()


def test_local_base_url_gets_a_dummy_key(stub):
    server, url = stub()
    with make_client(url) as client:
        client.chat(conv())
    assert server.requests[0].headers["authorization"] == "Bearer sk-local"


def test_no_key_and_no_base_url_is_a_clear_error():
    with pytest.raises(ValueError, match="OPENAI_API_KEY"):
        LLMClient("gpt-4o-mini")


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Retry-After": "3"}, 3.0),
        ({"retry-after": "0.5"}, 0.5),
        ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),
        ({"Retry-After": "soon"}, None),
        ({}, None),
        (None, None),
    ],
)
def test_parse_retry_after(headers, expected):
    assert parse_retry_after(headers) == expected


def test_parse_retry_after_http_date():
    from email.utils import formatdate

    seconds = parse_retry_after({"Retry-After": formatdate(time.time() + 30, usegmt=True)})
    assert 25 <= seconds <= 31


def test_backoff_honours_retry_after_and_caps_it():
    rng = random.Random(0)
    backoff = Backoff(base=0.5, cap=8, max_retry_after=10)
    assert backoff.delay(0, 3.0, rng) == 3.0
    assert backoff.delay(0, 100.0, rng) == 10.0
    assert 0.25 <= backoff.delay(0, None, rng) <= 0.5
    assert 4.0 <= backoff.delay(10, None, rng) <= 8.0


def test_key_resolution(monkeypatch):
    assert resolve_api_key(None) is None
    assert resolve_api_key("http://127.0.0.1:8000/v1") == "sk-local"
    assert resolve_api_key(None, "sk-explicit") == "sk-explicit"
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env")
    assert resolve_api_key("http://127.0.0.1:8000/v1") == "sk-env"
    assert is_local_url("http://localhost:11434/v1") and not is_local_url("https://api.openai.com/v1")
