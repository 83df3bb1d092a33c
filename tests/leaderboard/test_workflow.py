"""The GitHub Actions workflow that regenerates the leaderboards (it cannot run here: check its shape)."""

from __future__ import annotations

from pathlib import Path

import yaml

WORKFLOW = Path(__file__).resolve().parents[2] / ".github" / "workflows" / "leaderboard.yml"


def _load() -> dict:
    data = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    data["on"] = data.pop(True, data.get("on"))  # YAML 1.1 reads the key `on` as True
    return data


def _commands(job: dict) -> list[str]:
    return [step.get("run", "") for step in job["steps"]]


def test_workflow_is_valid_yaml_with_triggers():
    data = _load()
    assert set(data["on"]) >= {"push", "pull_request", "schedule", "workflow_dispatch"}
    assert set(data["jobs"]) == {"check", "refresh"}


def test_every_job_sets_up_python_311_and_installs_torch_before_the_project():
    for name, job in _load()["jobs"].items():
        setup = [s for s in job["steps"] if str(s.get("uses", "")).startswith("actions/setup-python")]
        assert setup and str(setup[0]["with"]["python-version"]) == "3.11", name
        script = "\n".join(_commands(job))
        torch, project = script.find('pip install "torch==2.13.0"'), script.find("pip install -e . ")
        assert 0 <= torch < project, name
        assert "-e plugins/price-bench-classic" in script


def test_check_job_fails_on_a_difference():
    assert "price-bench leaderboard --check" in _commands(_load()["jobs"]["check"])


def test_refresh_job_runs_everything_then_regenerates_and_commits():
    job = _load()["jobs"]["refresh"]
    script = "\n".join(_commands(job))
    assert script.index("price-bench run --all") < script.index("price-bench leaderboard\n") < script.index("git commit")
    assert job["permissions"]["contents"] == "write"
    assert "exit 1" in script  # a failed predictor still fails the job, after the pages are published
