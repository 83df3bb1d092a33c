"""The job calls on their own: event paging, finding a job by its create token, bad training data."""

from __future__ import annotations

import pytest

from price_bench_openai_ft.jobs import FineTuneJobs, make_openai


class _Forgetful(dict):
    def __setitem__(self, key, value):
        pass


def _file(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text('{"messages": []}\n')
    return path


def _job(jobs, tmp_path):
    return jobs.create("tok-1", model="gpt-4o-mini-2024-07-18", training_file=jobs.upload(_file(tmp_path)))


def test_new_events_pages_back_to_the_last_seen_event(stand_in, tmp_path):
    jobs = FineTuneJobs(make_openai(stand_in.url, max_retries=0))
    job = _job(jobs, tmp_path)
    for i in range(250):
        stand_in.add_event(job.id, f"event {i}")
    seen: set[str] = set()
    first = jobs.new_events(job.id, seen)
    assert [e.message for e in first][:2] == [f"Created fine-tuning job: {job.id}", "Validating training file: " + job.training_file]
    assert [e.message for e in first][2:] == [f"event {i}" for i in range(250)]
    assert stand_in.count("GET", rf"/v1/fine_tuning/jobs/{job.id}/events") == 3  # 100 + 100 + 52
    assert jobs.new_events(job.id, seen) == []
    stand_in.add_event(job.id, "one more")
    assert [e.message for e in jobs.new_events(job.id, seen)] == ["one more"]


def test_find_by_token(stand_in, tmp_path):
    jobs = FineTuneJobs(make_openai(stand_in.url, max_retries=0))
    job = _job(jobs, tmp_path)
    assert jobs.find_by_token("tok-1").id == job.id
    assert jobs.find_by_token("tok-2") is None


def test_create_with_a_lost_answer_finds_the_job_instead_of_creating_another(stand_in, tmp_path):
    jobs = FineTuneJobs(make_openai(stand_in.url, max_retries=3))
    file_id = jobs.upload(_file(tmp_path))
    stand_in.drop_answers["POST /v1/fine_tuning/jobs"] = 1
    job = jobs.create("tok-lost", model="gpt-4o-mini-2024-07-18", training_file=file_id)
    assert stand_in.count("POST", r"/v1/fine_tuning/jobs") == 1  # not retried, although the client allows retries
    assert list(stand_in.jobs) == [job.id] and job.metadata["price_bench_create_token"] == "tok-lost"


def test_create_with_a_lost_answer_and_no_job_raises(stand_in, tmp_path, monkeypatch):
    import openai

    jobs = FineTuneJobs(make_openai(stand_in.url, max_retries=0))
    stand_in.drop_answers["POST /v1/fine_tuning/jobs"] = 1
    monkeypatch.setattr(stand_in, "jobs", _Forgetful())  # the server loses the job it created
    with pytest.raises(openai.APIConnectionError):
        jobs.create("tok-x", model="gpt-4o-mini-2024-07-18", training_file=jobs.upload(_file(tmp_path)))


def test_too_few_train_items_fail_before_any_request(plugin, dataset, stand_in, tmp_path, monkeypatch):
    from price_bench.testing import RunOptions, get_registry, run_predictors

    monkeypatch.setenv("PRICE_BENCH_RESULTS", str(tmp_path / "results"))
    overrides = {"openai-ft": {"base_url": stand_in.url, "confirm": "true", "train_size": "5"}}
    [outcome] = run_predictors(["openai-ft"], RunOptions(overrides=overrides, progress=False), registry=get_registry(), dataset=dataset)
    assert outcome.status == "failed"
    assert outcome.reason == "fit failed: TrainingDataError: train.jsonl: examples: 5 examples; OpenAI requires at least 10"
    assert stand_in.requests == []


def test_make_openai_needs_a_key_or_a_base_url():
    with pytest.raises(ValueError, match="OPENAI_API_KEY"):
        make_openai(None)
