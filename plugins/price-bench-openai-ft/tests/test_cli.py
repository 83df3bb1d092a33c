"""``price-bench openai-ft status`` and ``cancel``, against the stand-in; plus plugin wiring."""

from __future__ import annotations

import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from price_bench_openai_ft import jobs as jobs_module
from price_bench_openai_ft.cli import openai_ft
from price_bench_openai_ft.jobs import JobFailedError
from price_bench_openai_ft.predictor import OpenAIFineTune
from price_bench_openai_ft.state import STATE_FILE, JobState


def _interrupted_fit(dataset, stand_in, workdir, monkeypatch):
    """A confirmed fit stopped by Ctrl-C at its first poll: a live job is left on the server."""

    def interrupt(seconds):
        raise KeyboardInterrupt

    monkeypatch.setattr(jobs_module, "_sleep", interrupt)
    config = OpenAIFineTune.make_config({"base_url": stand_in.url, "confirm": "true", "poll_interval_s": "0", "train_size": "12", "validation_size": "0"})
    with pytest.raises(KeyboardInterrupt):
        OpenAIFineTune(config).fit(dataset.train, dataset.validation, workdir)
    monkeypatch.setattr(jobs_module, "_sleep", lambda seconds: None)
    return config, JobState.load(workdir).job_id


def test_register_commands_adds_the_openai_ft_group(plugin):
    from price_bench.testing import pm

    group = click.Group("price-bench")
    pm.hook.register_commands(cli=group)
    assert "openai-ft" in group.commands
    assert set(group.commands["openai-ft"].commands) == {"status", "cancel"}


def test_status_cancel_and_a_cancelled_job_fails_the_fit(dataset, stand_in, tmp_path, monkeypatch):
    config, job_id = _interrupted_fit(dataset, stand_in, tmp_path, monkeypatch)
    runner = CliRunner()

    result = runner.invoke(openai_ft, ["status", "--job", job_id, "--base-url", stand_in.url])
    assert result.exit_code == 0, result.output
    assert f"job:              {job_id}" in result.output
    assert "base model:       gpt-4o-mini-2024-07-18" in result.output
    assert "status:           queued" in result.output  # this retrieve advanced it
    assert "recent events:" in result.output and "Validating training file" in result.output

    # --workdir finds the job and the endpoint it was created on.
    result = runner.invoke(openai_ft, ["status", "--workdir", str(tmp_path), "--events", "0"])
    assert result.exit_code == 0, result.output
    assert job_id in result.output and "recent events" not in result.output

    result = runner.invoke(openai_ft, ["cancel", job_id, "--base-url", stand_in.url])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"{job_id}: cancelled"
    assert stand_in.count("POST", rf"/v1/fine_tuning/jobs/{job_id}/cancel") == 1

    result = runner.invoke(openai_ft, ["cancel", job_id, "--base-url", stand_in.url])
    assert result.exit_code == 1
    assert "Error: HTTP 400: Job" in result.output and "Traceback" not in result.output

    with pytest.raises(JobFailedError, match=rf"fine-tuning job {job_id} was cancelled; delete .*{STATE_FILE} to start a new job"):
        OpenAIFineTune(config).fit(dataset.train, dataset.validation, tmp_path)
    assert JobState.load(tmp_path).status == "cancelled"
    assert stand_in.count("POST", r"/v1/fine_tuning/jobs") == 1


def test_status_without_options_lists_the_jobs_started_here(dataset, stand_in, tmp_path, monkeypatch):
    runner = CliRunner()
    result = runner.invoke(openai_ft, ["status"])
    assert result.exit_code == 0 and "no fine-tuning jobs recorded" in result.output
    _, job_id = _interrupted_fit(dataset, stand_in, tmp_path, monkeypatch)
    before = len(stand_in.requests)
    result = runner.invoke(openai_ft, ["status"])
    assert result.exit_code == 0, result.output
    assert job_id in result.output and "gpt-4o-mini-2024-07-18" in result.output
    assert len(stand_in.requests) == before  # the local record only


def test_status_of_a_workdir_without_a_job_and_unknown_job(stand_in, tmp_path):
    runner = CliRunner()
    result = runner.invoke(openai_ft, ["status", "--workdir", str(tmp_path)])
    assert result.exit_code == 0 and "no fine-tuning job started yet" in result.output
    result = runner.invoke(openai_ft, ["status", "--job", "ftjob-nope", "--base-url", stand_in.url])
    assert result.exit_code == 1 and "HTTP 404: Could not find fine tune: ftjob-nope" in result.output


def test_importing_the_plugin_does_not_import_openai():
    code = "import sys, price_bench_openai_ft; print('openai' in sys.modules, 'price_bench_openai_ft.predictor' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
