"""fit-then-predict against the local OpenAI stand-in, through the harness runner.

Covers: the job going validating_files, queued, running, succeeded; what is
uploaded and sent; predictions from the fine-tuned model; a failed job; a
resume after Ctrl-C that creates no second job; nothing spent without
confirmation; skipped without a key.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest

from price_bench.testing import RunOptions, get_registry, run_predictors
from price_bench_openai_ft import jobs as jobs_module
from price_bench_openai_ft.state import STATE_FILE, JobState
from price_bench_openai_ft.training_data import answer_for, subsample

CREATE = r"/v1/fine_tuning/jobs"
JOB = r"/v1/fine_tuning/jobs/[^/]+"


@pytest.fixture(autouse=True)
def _results_in_tmp(tmp_path, monkeypatch):
    """Result records go to this test's folder, never to ./results."""
    monkeypatch.setenv("PRICE_BENCH_RESULTS", str(tmp_path / "results"))


def _run(dataset, stand_in=None, **overrides):
    opts = {"poll_interval_s": "0", "train_size": "20", "validation_size": "10"}
    if stand_in is not None:
        opts["base_url"] = stand_in.url
    opts.update({k: str(v) for k, v in overrides.items()})
    options = RunOptions(dataset=dataset.name, overrides={"openai-ft": opts}, progress=False)
    [outcome] = run_predictors(["openai-ft"], options, registry=get_registry(), dataset=dataset)
    return outcome


def _state_files(home: Path) -> list[Path]:
    return sorted((home / "work").rglob(STATE_FILE))


def test_fit_then_predict_full_flow(plugin, dataset, stand_in, price_bench_home, capsys):
    outcome = _run(dataset, stand_in, confirm="true")
    assert outcome.status == "complete", outcome.reason

    # Two uploads (train, validation) with purpose fine-tune, and exactly one job.
    uploads = [r for r in stand_in.requests if r.path == "/v1/files"]
    assert [r.status for r in uploads] == [200, 200]
    assert all(b'name="purpose"\r\n\r\nfine-tune' in r.body for r in uploads)
    assert stand_in.count("POST", CREATE) == 1
    [create] = [r for r in stand_in.requests if r.method == "POST" and r.path == "/v1/fine_tuning/jobs"]
    body = create.json()
    train_id, validation_id = (r.response["id"] for r in uploads)
    assert body["model"] == "gpt-4o-mini-2024-07-18"
    assert (body["training_file"], body["validation_file"]) == (train_id, validation_id)
    assert body["suffix"] == "pricer" and body["seed"] == 0
    assert body["method"] == {"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 1}}}
    assert "integrations" not in body
    assert set(body["metadata"]) == {"price_bench_create_token"}

    # The job went through its states, seen by our polling.
    statuses = [r.response["status"] for r in stand_in.requests if r.method == "GET" and r.path.startswith("/v1/fine_tuning/jobs/") and not r.path.endswith("/events")]
    assert statuses == ["validating_files", "queued", "running", "running", "succeeded"]
    assert stand_in.count("GET", JOB + "/events") == len(statuses)

    # The uploaded training file is the local one: 20 seeded train items, OpenAI chat format.
    [state_path] = _state_files(price_bench_home)
    state = JobState.from_file(state_path)
    assert state.succeeded and state.train.id == train_id and state.validation.id == validation_id
    local = Path(state.train.path).read_bytes()
    assert stand_in.file_contents[train_id] == local
    sampled = subsample(dataset.train, 20, seed=0)
    assert [json.loads(line)["messages"][2]["content"] for line in local.decode().splitlines()] == [answer_for(i.price) for i in sampled]

    # Predictions come from the fine-tuned model with the training prompt (system + user).
    chats = [r for r in stand_in.requests if r.path == "/v1/chat/completions"]
    assert len(chats) == len(dataset.test)
    assert {r.json()["model"] for r in chats} == {state.fine_tuned_model}
    assert [m["role"] for m in chats[0].json()["messages"]] == ["system", "user"]
    assert chats[0].json()["temperature"] == 0 and chats[0].json()["max_tokens"] == 8
    expected = float(round(statistics.fmean(math_floor_half(i.price) for i in sampled)))
    record = outcome.record
    assert record.usage.tokens_in > 0 and record.usage.cost_usd > 0  # ft:gpt-4o-mini prices from the frontier table
    assert record.n_items == len(dataset.test) and record.parse_failures == 0 and record.item_errors == 0
    sidecar = outcome.path.with_name(outcome.path.name.replace(".json", ".predictions.jsonl"))
    guesses = [json.loads(line)["guess"] for line in sidecar.read_text().splitlines()]
    assert guesses == [expected] * len(dataset.test)

    err = capsys.readouterr().err
    assert "about $0.00 to fine-tune gpt-4o-mini-2024-07-18: 20 examples" in err
    assert "Fine-tuning job started" in err and "New fine-tuned model created" in err
    assert "Step 1/2" not in err  # metrics events drive the progress bar, they are not logged line by line

    # A rerun sends nothing: predictions are cached, the job is not touched again.
    before = len(stand_in.requests)
    again = _run(dataset, stand_in, confirm="true")
    assert again.status == "complete" and len(stand_in.requests) == before


def math_floor_half(price: float) -> int:
    return int(answer_for(price)[len("Price is $") : -3])


def test_no_spending_without_confirmation(plugin, dataset, stand_in, price_bench_home, capsys):
    outcome = _run(dataset, stand_in)
    assert outcome.status == "failed"
    assert "fit failed: SpendNotConfirmedError: about $" in outcome.reason
    assert outcome.reason.endswith("nothing spent: rerun with -o openai-ft.confirm=true")
    assert "\n" not in outcome.reason
    assert stand_in.requests == []  # no upload, no job, not even a request
    assert "nothing spent" in capsys.readouterr().err
    [state_path] = _state_files(price_bench_home)
    state = JobState.from_file(state_path)
    assert state.job_id is None and state.train.id is None and state.estimate["usd"] > 0
    assert Path(state.train.path).exists()


def test_spending_cap_blocks_a_confirmed_job(plugin, dataset, stand_in):
    outcome = _run(dataset, stand_in, confirm="true", max_training_usd="0.000001")
    assert outcome.status == "failed" and "SpendCapError" in outcome.reason
    assert stand_in.requests == []


def test_failing_job_is_a_clear_failure_and_is_not_relaunched(plugin, dataset, stand_in, price_bench_home):
    stand_in.fail_jobs = "Training file has invalid examples"
    outcome = _run(dataset, stand_in, confirm="true")
    assert outcome.status == "failed"
    job_id = next(iter(stand_in.jobs))
    assert f"fit failed: JobFailedError: fine-tuning job {job_id} failed: invalid_training_file: Training file has invalid examples" in outcome.reason
    assert STATE_FILE in outcome.reason  # says how to start over
    [state_path] = _state_files(price_bench_home)
    assert JobState.from_file(state_path).status == "failed"

    again = _run(dataset, stand_in, confirm="true")
    assert again.status == "failed" and "JobFailedError" in again.reason
    assert stand_in.count("POST", CREATE) == 1


def test_resume_after_ctrl_c_during_polling_creates_no_second_job(plugin, dataset, stand_in, price_bench_home, monkeypatch, capsys):
    def interrupt(seconds):
        raise KeyboardInterrupt

    monkeypatch.setattr(jobs_module, "_sleep", interrupt)
    with pytest.raises(KeyboardInterrupt):
        _run(dataset, stand_in, confirm="true")
    [state_path] = _state_files(price_bench_home)
    state = JobState.from_file(state_path)
    assert state.job_id == next(iter(stand_in.jobs)) and state.status == "validating_files"
    assert f"price-bench openai-ft cancel {state.job_id}" in capsys.readouterr().err

    monkeypatch.setattr(jobs_module, "_sleep", lambda seconds: None)
    outcome = _run(dataset, stand_in, confirm="true")
    assert outcome.status == "complete", outcome.reason
    assert stand_in.count("POST", CREATE) == 1
    assert stand_in.count("POST", r"/v1/files") == 2  # nothing uploaded twice either
    assert JobState.from_file(state_path).fine_tuned_model == stand_in.jobs[state.job_id].data["fine_tuned_model"]


def _interrupt_right_after_the_create(dataset, stand_in, monkeypatch):
    """A run hit by Ctrl-C after its job was created but before the job's id was saved."""
    original = jobs_module.FineTuneJobs.create

    def create_then_interrupt(self, token, **params):
        original(self, token, **params)
        raise KeyboardInterrupt

    monkeypatch.setattr(jobs_module.FineTuneJobs, "create", create_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        _run(dataset, stand_in, confirm="true")
    monkeypatch.setattr(jobs_module.FineTuneJobs, "create", original)


def test_resume_when_the_create_answer_was_lost(plugin, dataset, stand_in, monkeypatch):
    """Ctrl-C after the job was created but before its id was saved: found again by its token."""
    _interrupt_right_after_the_create(dataset, stand_in, monkeypatch)
    outcome = _run(dataset, stand_in, confirm="true")
    assert outcome.status == "complete", outcome.reason
    assert stand_in.count("POST", CREATE) == 1
    assert stand_in.count("GET", CREATE) == 1  # the lookup by token


def test_a_lost_create_answer_is_found_from_another_work_folder(plugin, dataset, stand_in, monkeypatch):
    _interrupt_right_after_the_create(dataset, stand_in, monkeypatch)
    outcome = _run(dataset, stand_in, confirm="true", max_tokens="9")  # another work folder
    assert outcome.status == "complete", outcome.reason
    assert stand_in.count("POST", CREATE) == 1
    assert stand_in.count("POST", r"/v1/files") == 2  # the found job needs no new upload


def test_a_new_work_folder_reuses_the_job_trained_on_the_same_data(plugin, dataset, stand_in, price_bench_home, capsys):
    assert _run(dataset, stand_in, confirm="true").status == "complete"
    # A predict-time option (a "predict" field) keeps the work folder: no second job, no confirmation needed.
    outcome = _run(dataset, stand_in, max_tokens="9")
    assert outcome.status == "complete", outcome.reason
    assert stand_in.count("POST", CREATE) == 1 and stand_in.count("POST", r"/v1/files") == 2
    assert len(_state_files(price_bench_home)) == 1
    # Another plugin version means another work folder: the job ledger still finds the job.
    import price_bench_openai_ft.predictor as module

    module.OpenAIFineTune.version = "test-bump"
    try:
        outcome = _run(dataset, stand_in)
    finally:
        module.OpenAIFineTune.version = "1"
    assert outcome.status == "complete", outcome.reason
    assert stand_in.count("POST", CREATE) == 1
    assert len(_state_files(price_bench_home)) == 2
    assert "reusing job" in capsys.readouterr().err
    # Different training data (another train size) is another job, which needs confirmation again.
    refused = _run(dataset, stand_in, train_size="15")
    assert refused.status == "failed" and "SpendNotConfirmedError" in refused.reason
    assert stand_in.count("POST", CREATE) == 1


def test_no_key_and_no_base_url_is_skipped(plugin, dataset):
    outcome = _run(dataset)
    assert outcome.status == "skipped"
    assert "OPENAI_API_KEY" in outcome.reason and "base_url" in outcome.reason


def test_predictor_directly_with_wandb_integration_and_load(dataset, stand_in, tmp_path):
    from price_bench_openai_ft.predictor import OpenAIFineTune

    config = OpenAIFineTune.make_config(
        {"base_url": stand_in.url, "confirm": "true", "poll_interval_s": "0", "train_size": "12", "validation_size": "0", "n_epochs": "2", "suffix": "wb", "wandb_project": "gpt-pricer", "wandb_entity": "team"}
    )
    predictor = OpenAIFineTune(config, seed=7)
    assert predictor.load(tmp_path) is False
    predictor.fit(dataset.train, dataset.validation, tmp_path)
    [create] = [r.json() for r in stand_in.requests if r.method == "POST" and r.path == "/v1/fine_tuning/jobs"]
    assert create["integrations"] == [{"type": "wandb", "wandb": {"project": "gpt-pricer", "tags": ["price-bench"], "entity": "team"}}]
    assert "validation_file" not in create and create["seed"] == 7 and create["suffix"] == "wb"
    assert create["method"]["supervised"]["hyperparameters"]["n_epochs"] == 2
    assert stand_in.count("POST", r"/v1/files") == 1
    predictor.close()

    fresh = OpenAIFineTune(config, seed=7)
    assert fresh.load(tmp_path) is True
    assert fresh.fine_tuned_model.startswith("ft:gpt-4o-mini-2024-07-18:price-bench-stand-in:wb:")
    [prediction] = fresh.predict(dataset.test[:1])
    assert prediction.raw.startswith("Price is $") and prediction.price is not None and prediction.error is None
    fresh.close()


def test_predict_errors_are_per_item_not_crashes(dataset, stand_in, tmp_path):
    """A model the server does not know (deleted, say) gives per-item errors."""
    from price_bench_openai_ft.predictor import OpenAIFineTune

    config = OpenAIFineTune.make_config({"base_url": stand_in.url, "cache": "false"})
    JobState(base_model="gpt-4o-mini-2024-07-18", job_id="ftjob-gone", status="succeeded", fine_tuned_model="ft:gpt-4o-mini-2024-07-18:x::gone").save(tmp_path)
    predictor = OpenAIFineTune(config)
    assert predictor.load(tmp_path)
    predictions = predictor.predict(dataset.test[:2])
    assert [p.price for p in predictions] == [None, None]
    assert all("HTTP 404" in p.error and "does not exist" in p.error for p in predictions)
    predictor.close()


def test_batch_mode_predicts_through_the_batch_api_at_the_batch_price(tmp_path, item_factory):
    """Predictions of a fine-tuned model as one OpenAI batch, against the core fake server's /v1/batches."""
    from price_bench.testing import FakeOpenAIServer
    from price_bench_frontier.pricing import PriceTable
    from price_bench_openai_ft.predictor import OpenAIFineTune
    from price_bench_openai_ft.state import JobState

    model = "ft:gpt-4o-mini-2024-07-18:acme:pricer:abc123"
    items = item_factory(5, 7, "bt")
    with FakeOpenAIServer(models=[model]) as server:
        predictor = OpenAIFineTune(OpenAIFineTune.make_config({"base_url": server.url, "batch": "true", "batch_poll_s": "0"}))
        predictor.workdir = tmp_path
        predictor.state = JobState(base_model="gpt-4o-mini-2024-07-18", status="succeeded", fine_tuned_model=model)
        predictions = predictor.predict(items)
        predictor.close()
        assert server.chat_requests == 0 and server.count("POST", "/v1/batches") == 1
        [line] = [json.loads(raw) for raw in server.file_contents[next(iter(server.batches.values())).data["input_file_id"]].splitlines()][:1]
    assert line["body"]["model"] == model and line["url"] == "/v1/chat/completions"
    assert all(p.error is None and p.price is not None for p in predictions)
    p = predictions[0]
    full = PriceTable().cost(model, p.tokens_in, p.tokens_out)
    assert full.known and p.cost_usd == pytest.approx(full.usd / 2)
    assert list(tmp_path.glob("batch-*.json"))  # the batch id is kept in the work folder
