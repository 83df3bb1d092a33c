"""The OpenAI Batch API mode, against the local fake OpenAI server's /v1/files and /v1/batches."""

from __future__ import annotations

import json

import pytest

from price_bench.testing import FakeOpenAIServer, default_answer
from price_bench_frontier.batch import BatchError, BatchRun, BatchState
from price_bench_frontier.client import LLMClient
from price_bench_frontier.prompts import build_messages

PARAMS = {"temperature": 0, "seed": 1, "max_tokens": 8}


def conversations(n: int, tag: str = "") -> list[list[dict]]:
    return [build_messages(f"product {tag}{i} " + "y" * i) for i in range(n)]


@pytest.fixture
def make_run(tmp_path):
    clients = []

    def _make(server: FakeOpenAIServer, folder=None, **kwargs) -> BatchRun:
        client = LLMClient("gpt-4o-mini", base_url=server.url, cache=tmp_path / "responses.sqlite")
        clients.append(client)
        lines: list[str] = []
        run = BatchRun(client, folder or tmp_path / "work", poll_interval_s=0, report=lines.append, **kwargs)
        run.lines = lines  # type: ignore[attr-defined]
        return run

    yield _make
    for client in clients:
        client.close()


def test_a_completed_batch_answers_every_request_at_the_batch_price(make_run):
    convs = conversations(6)
    with FakeOpenAIServer() as server:
        run = make_run(server)
        results = run.chat_many(convs, **PARAMS)
        assert server.chat_requests == 0  # nothing went through /chat/completions
        assert server.count("POST", "/v1/files") == 1 and server.count("POST", "/v1/batches") == 1
        again = make_run(server).chat_many(convs, **PARAMS)  # answered from the cache: no new batch
        assert server.count("POST", "/v1/batches") == 1
        [upload] = [f for f in server.files.values() if f["purpose"] == "batch"]
    assert all(r.ok for r in results) and all(r.cached for r in again)
    # The fake lists answers in reverse order: they are matched by custom_id.
    for messages, result in zip(convs, results):
        assert result.text == default_answer({"messages": messages})
    full = run.client.prices.cost("gpt-4o-mini", results[0].tokens_in, results[0].tokens_out)
    assert results[0].cost_usd == pytest.approx(full.usd / 2) and results[0].cost_usd > 0
    assert upload["bytes"] > 0 and run.last.status == "completed"
    assert any("completed 6/6 done" in line for line in run.lines)


def test_an_interrupted_wait_resumes_the_same_batch(make_run, tmp_path):
    convs = conversations(4)
    with FakeOpenAIServer(batch_script=("validating", "in_progress", "in_progress", "finalizing", "completed")) as server:
        with pytest.raises(BatchError, match="rerun to resume"):
            make_run(server, max_wait_s=0).chat_many(convs, **PARAMS)  # like Ctrl-C while polling
        [state_file] = (tmp_path / "work").glob("batch-*.json")
        state = BatchState.load(state_file)
        assert state.batch_id and state.status == "in_progress"
        results = make_run(server).chat_many(convs, **PARAMS)
        assert server.count("POST", "/v1/batches") == 1 and server.count("POST", "/v1/files") == 1
    assert all(r.ok for r in results)


def test_a_creation_whose_answer_was_lost_is_found_by_its_metadata(make_run, tmp_path):
    convs = conversations(3)
    with FakeOpenAIServer(batch_script=("validating", "in_progress", "completed")) as server:
        with pytest.raises(BatchError):
            make_run(server, max_wait_s=0).chat_many(convs, **PARAMS)
        [state_file] = (tmp_path / "work").glob("batch-*.json")
        data = json.loads(state_file.read_text())
        state_file.write_text(json.dumps({**data, "batch_id": None, "status": None}))  # the id never got saved
        results = make_run(server).chat_many(convs, **PARAMS)
        assert server.count("POST", "/v1/batches") == 1
    assert all(r.ok for r in results)


def test_partial_errors_come_back_per_request(make_run):
    convs = conversations(5)
    with FakeOpenAIServer() as server:
        run = make_run(server)
        failing = run.client.request_key(convs[1], PARAMS)
        server.fail_custom_ids = {failing}
        results = run.chat_many(convs, **PARAMS)
    assert [r.ok for r in results] == [True, False, True, True, True]
    assert "HTTP 400" in results[1].error and "fake per-request failure" in results[1].error


def test_an_expired_batch_keeps_its_answers_and_a_rerun_sends_only_the_rest(make_run):
    convs = conversations(6)
    with FakeOpenAIServer(batch_script=("validating", "in_progress", "expired")) as server:
        first = make_run(server).chat_many(convs, **PARAMS)
        assert sum(r.ok for r in first) == 3
        assert all("batch_expired" in r.error for r in first if not r.ok)
        server.batch_script = ["validating", "in_progress", "completed"]
        second = make_run(server).chat_many(convs, **PARAMS)
        assert server.count("POST", "/v1/batches") == 2
        [first_batch, second_batch] = server.batches.values()
    assert all(r.ok for r in second) and sum(r.cached for r in second) == 3
    assert second_batch.data["request_counts"]["total"] == 3  # only the unanswered ones


def test_a_failed_batch_reports_why_and_a_rerun_starts_a_new_one(make_run):
    convs = conversations(2)
    with FakeOpenAIServer(batch_script=("validating", "failed")) as server:
        run = make_run(server)
        first = run.chat_many(convs, **PARAMS)
        assert all(not r.ok and "failed" in r.error for r in first)
        server.batch_script = list(("validating", "completed"))
        second = make_run(server).chat_many(convs, **PARAMS)
        assert server.count("POST", "/v1/batches") == 2
    assert all(r.ok for r in second)


def test_the_fake_server_validates_batch_input_lines(make_run):
    import openai

    with FakeOpenAIServer() as server:
        sdk = openai.OpenAI(base_url=server.url, api_key="sk-test")
        lines = [
            {"custom_id": "a", "method": "POST", "url": "/v1/chat/completions", "body": {"model": "m", "messages": [{"role": "user", "content": "x"}]}},
            {"custom_id": "a", "method": "POST", "url": "/v1/chat/completions", "body": {}},
            {"custom_id": "b", "method": "GET", "url": "/v1/chat/completions", "body": {}},
        ]
        data = "\n".join(json.dumps(line) for line in lines).encode() + b"\nnot json\n"
        uploaded = sdk.files.create(file=("in.jsonl", data), purpose="batch")
        batch = sdk.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h")
        assert batch.status == "validating"
        batch = sdk.batches.retrieve(batch.id)
        sdk.close()
    assert batch.status == "failed"
    assert [(e.code, e.line) for e in batch.errors.data] == [("duplicate_custom_id", 2), ("invalid_method", 3), ("invalid_json_line", 4)]


def test_frontier_batch_mode_through_the_harness_resumes_after_an_interrupt(price_bench_home, make_items):
    from price_bench import PredictorSpec
    from price_bench.testing import PredictorRegistry, RunOptions, run_predictors, write_dataset
    from price_bench_frontier.predictors import FrontierZeroShot

    dataset = write_dataset("tiny", {"train": make_items(8, "tr"), "validation": make_items(2, "va"), "test": make_items(7, "te")}, {"recipe": "t@1"}, home=price_bench_home)
    reg = PredictorRegistry()
    reg.add(PredictorSpec("frontier", FrontierZeroShot, "", origin="price-bench-frontier", plugin_version="0.1.0"))
    with FakeOpenAIServer(batch_script=("validating", "in_progress", "in_progress", "completed")) as server:
        base = {"base_url": server.url, "model": "gpt-4o-mini", "batch": "true", "batch_poll_s": "0"}
        interrupted = RunOptions(dataset="tiny", home=price_bench_home, progress=False, n_resamples=20, overrides={"frontier": {**base, "batch_max_wait_s": "0"}})
        [first] = run_predictors(["frontier"], interrupted, registry=reg, dataset=dataset)
        assert first.status == "failed" and "rerun to resume" in first.reason
        options = RunOptions(dataset="tiny", home=price_bench_home, progress=False, n_resamples=20, overrides={"frontier": base})
        [second] = run_predictors(["frontier"], options, registry=reg, dataset=dataset)
        assert server.count("POST", "/v1/batches") == 1 and server.chat_requests == 0
    assert second.status == "complete", second.reason
    assert second.record.item_errors == 0 and second.record.usage.cost_usd > 0
    assert second.record.extra["batch"]["status"] == "completed"
    assert second.record.extra["answer_format"]["json_schema"] == 7
