"""The frontier predictors, alone and through the harness runner, against a fake OpenAI server."""

from __future__ import annotations

import json

import pytest

from price_bench import PredictorSpec
from price_bench.testing import PredictorRegistry, RunOptions, default_answer, read_predictions, run_predictors, write_dataset
import price_bench_frontier
from price_bench_frontier.client import BUDGET_EXHAUSTED
from price_bench_frontier.predictors import FrontierFewShot, FrontierRag, FrontierZeroShot

ALL = (FrontierZeroShot, FrontierFewShot, FrontierRag)


def registry() -> PredictorRegistry:
    reg = PredictorRegistry()
    for cls in ALL:
        reg.add(PredictorSpec(cls.id, cls, cls.description, origin="price-bench-frontier", plugin_version="0.1.0"))
    return reg


@pytest.fixture
def dataset(price_bench_home, make_items):
    splits = {"train": make_items(40, "train"), "validation": make_items(4, "val"), "test": make_items(12, "test")}
    return write_dataset("tiny", splits, {"recipe": "test@1"}, home=price_bench_home)


def make(cls, url, seed=0, **overrides):
    # These tests cover the free-text path (structured outputs: test_scale.py).
    return cls(cls.make_config({"base_url": url, "backoff_s": "0.01", "structured": "text", **overrides}), seed=seed)


# -- registration and skipping ------------------------------------------------------------


def test_plugin_registers_three_lazy_predictors(register_plugin):
    from price_bench.testing import get_registry

    register_plugin(price_bench_frontier, name="frontier-under-test")
    reg = get_registry()
    for cls in ALL:
        spec = reg.get(cls.id)
        assert spec.load() is cls


def test_skipped_without_key_or_base_url(monkeypatch):
    config = FrontierZeroShot.make_config({})
    assert "OPENAI_API_KEY" in FrontierZeroShot.skip_reason(config)
    assert "-o frontier.base_url=" in FrontierZeroShot.skip_reason(config)
    hosted = FrontierZeroShot.make_config({"base_url": "https://api.openai.com/v1"})
    assert "OPENAI_API_KEY" in FrontierZeroShot.skip_reason(hosted)
    assert FrontierRag.skip_reason(FrontierRag.make_config({"base_url": "http://127.0.0.1:8080/v1"})) is None
    monkeypatch.setenv("OPENAI_API_KEY", "sk-x")
    assert FrontierZeroShot.skip_reason(config) is None


def test_harness_records_skip_with_reason(dataset, price_bench_home):
    [outcome] = run_predictors(["frontier"], RunOptions(dataset="tiny", home=price_bench_home, progress=False), registry=registry(), dataset=dataset)
    assert outcome.status == "skipped" and "OPENAI_API_KEY" in outcome.reason


def test_config_from_cli_strings():
    config = FrontierRag.make_config({"prices": '{"m": [1, 2]}', "k": "3", "concurrency": "8", "embedder": "tfidf"})
    assert config.prices == {"m": (1.0, 2.0)} and config.k == 3 and config.concurrency == 8
    with pytest.raises(ValueError, match="prices must be JSON"):
        FrontierRag.make_config({"prices": "{m: 1"})
    with pytest.raises(ValueError):
        FrontierRag.make_config({"concurrency": "0"})


def test_reasoning_models_get_max_completion_tokens():
    params = FrontierZeroShot(FrontierZeroShot.make_config({"model": "gpt-5-mini", "max_tokens": "9"}), seed=4).request_params()
    assert params == {"seed": 4, "max_completion_tokens": 9}
    params = FrontierZeroShot(FrontierZeroShot.make_config({"seed": "7"}), seed=4).request_params()
    assert params == {"seed": 7, "max_tokens": 16, "temperature": 0.0}


# -- predicting ------------------------------------------------------------------------------


def test_zero_shot_predictions_carry_raw_cost_tokens_latency(stub, items):
    server, url = stub()
    predictor = make(FrontierZeroShot, url, model="gpt-4o-mini")
    predictions = predictor.predict(items)
    assert len(predictions) == len(items) == server.chat_requests
    for p, item in zip(predictions, items):  # in item order, although requests ran concurrently
        expected = default_answer({"messages": predictor.messages_for(item, [])})
        assert p.raw == "Price is $" + expected
        assert p.price == float(expected)
        assert p.cost_usd > 0 and p.tokens_in > 0 and p.tokens_out > 0 and p.latency_s > 0
    assert server.bodies[0]["temperature"] == 0.0 and server.bodies[0]["max_tokens"] == 16
    predictor.close()


def test_parse_failure_gives_none_price(stub, items):
    _, url = stub(answer=lambda body: "I cannot know that")
    predictor = make(FrontierZeroShot, url)
    [p] = predictor.predict(items[:1])
    assert p.price is None and p.error is None and p.raw == "Price is $I cannot know that"


def test_no_prefill_mode(stub, items):
    server, url = stub(answer=lambda body: "Price is $12.34")
    [p] = make(FrontierZeroShot, url, prefill="false").predict(items[:1])
    assert p.price == 12.34 and p.raw == "Price is $12.34"
    assert server.bodies[0]["messages"][-1]["role"] == "user"


def test_faults_become_per_item_errors(stub, items):
    server, url = stub("429", "500", "hang", "malformed", "empty", retry_after="0", hang_s=1.5)
    predictor = make(FrontierZeroShot, url, max_retries="0", concurrency="1", timeout="0.5")
    predictions = predictor.predict(items[:8])
    errors = [p.error for p in predictions]
    assert all(errors[:5]) and not any(errors[5:])
    assert "HTTP 429" in errors[0] and "HTTP 500" in errors[1] and "timed out" in errors[2]
    assert "malformed JSON" in errors[3] and "empty content" in errors[4]
    assert all(p.price is None and p.raw is None for p in predictions[:5])


def test_budget_exhaustion_stops_cleanly(stub, items):
    server, url = stub()
    predictor = make(FrontierZeroShot, url, model="pricey", prices='{"pricey": [1000000, 0]}', budget_usd="0.5", concurrency="1")
    predictions = predictor.predict(items)
    # each request costs >= 10 USD here (>= 10 prompt tokens at $1 each), so the first one spends the budget
    assert predictions[0].error is None
    assert [p.error for p in predictions[1:]] == [BUDGET_EXHAUSTED] * (len(items) - 1)
    assert server.chat_requests == 1


def test_few_shot_is_seeded_and_restored(stub, tmp_path, make_items):
    train = make_items(30, "train")
    first = make(FrontierFewShot, "http://127.0.0.1:1/v1", seed=1, k="3")
    first.fit(train, [], tmp_path)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    again = make(FrontierFewShot, "http://127.0.0.1:1/v1", seed=1, k="3")
    again.fit(train, [], scratch)
    other = make(FrontierFewShot, "http://127.0.0.1:1/v1", seed=2, k="3")
    other.fit(train, [], scratch)
    assert first.shots == again.shots != other.shots
    restored = make(FrontierFewShot, "http://127.0.0.1:1/v1", seed=1, k="3")
    assert restored.load(tmp_path) and restored.shots == first.shots
    assert not make(FrontierFewShot, "http://127.0.0.1:1/v1", k="5").load(tmp_path)  # k changed: refit
    assert json.loads((tmp_path / "fewshot.json").read_text())["ids"]

    server, url = stub()
    predictor = make(FrontierFewShot, url, seed=1, k="3")
    assert predictor.load(tmp_path)
    predictor.predict(make_items(1, "test"))
    messages = server.bodies[0]["messages"]
    assert len(messages) == 1 + 2 * 3 + 2
    assert messages[2]["content"] == f"Price is ${first.shots[0].price:.2f}"


def test_rag_prompt_holds_the_most_similar_train_item(stub, tmp_path, make_items):
    train = make_items(12, "train")
    predictor = make(FrontierRag, "http://127.0.0.1:1/v1", k="2", embedder="tfidf")
    predictor.fit(train, [], tmp_path)
    server, url = stub()
    restored = make(FrontierRag, url, k="2", embedder="tfidf")
    assert restored.load(tmp_path)
    query = make_items(12, "test")[3]  # the wireless mouse
    restored.predict([query])
    user = server.bodies[0]["messages"][1]["content"]
    context = user.split("And now the question for you:")[0]
    assert "Wireless optical mouse" in context and "Price is $15.49" in context
    assert user.endswith("How much does this cost?\n\n" + query.text)


# -- through the harness ----------------------------------------------------------------------


def by_item(rules: dict[str, list[str]]):
    """A stub ``choose`` function: per item-text fragment, the behaviours of its successive requests."""
    seen: dict[str, int] = {}

    def choose(body):
        question = body["messages"][1]["content"]
        for fragment, behaviours in rules.items():
            if fragment in question:
                n = seen.get(fragment, 0)
                seen[fragment] = n + 1
                return behaviours[min(n, len(behaviours) - 1)]
        return None

    return choose


def test_harness_run_with_faults_never_crashes(stub, dataset, price_bench_home):
    rules = {
        "Garden hose": ["500"],  # always fails
        "Wireless optical": ["malformed", "empty"],  # fails twice: gives up with max_retries=1
        "Cordless drill": ["429", "ok"],  # recovers on retry
        "Ceramic coffee": ["503", "ok"],
    }
    server, url = stub(choose=by_item(rules), retry_after="0")
    options = RunOptions(
        dataset="tiny",
        home=price_bench_home,
        progress=False,
        n_resamples=10,
        overrides={"frontier": {"base_url": url, "max_retries": "1", "concurrency": "4", "backoff_s": "0.01"}},
    )
    [outcome] = run_predictors(["frontier"], options, registry=registry(), dataset=dataset)
    record = outcome.record
    assert outcome.status == "complete", outcome.reason
    assert record.item_errors == 2 and record.n_items == 12
    assert record.usage.tokens_in > 0 and record.usage.cost_usd > 0  # gpt-4o-mini list prices
    assert server.chat_requests == 12 + 4  # every item once, one retry each for four of them
    rows = read_predictions(outcome.path)
    errors = sorted(row.error for row in rows if row.error)
    assert len(errors) == 2 and "HTTP 500" in errors[0] and "empty content" in errors[1]
    # A rerun that ignores the harness's prediction cache is served by the response cache:
    # only the two failed items go back to the server.
    before = server.chat_requests
    options.overwrite = "always"
    [again] = run_predictors(["frontier"], options, registry=registry(), dataset=dataset)
    assert again.status == "complete"
    assert server.chat_requests - before == 2 * 2  # two failed items, still failing, one retry each
    # A plain rerun is answered by the harness cache for the successes and retries only the failures.
    before = server.chat_requests
    options.overwrite = "missing"
    [third] = run_predictors(["frontier"], options, registry=registry(), dataset=dataset)
    assert third.record.usage.cached_items == 10
    assert server.chat_requests - before == 2 * 2


def test_no_secret_in_records_or_caches(stub, dataset, price_bench_home, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-live-TOPSECRET-42")
    _, url = stub()
    options = RunOptions(dataset="tiny", home=price_bench_home, progress=False, n_resamples=10, overrides={"frontier": {"base_url": url}})
    [outcome] = run_predictors(["frontier"], options, registry=registry(), dataset=dataset)
    assert outcome.status == "complete"
    leaked = [p for p in price_bench_home.rglob("*") if p.is_file() and b"TOPSECRET" in p.read_bytes()]
    assert leaked == []
