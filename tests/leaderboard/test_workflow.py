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


README = Path(__file__).resolve().parents[2] / "README.md"
SETUP = Path(__file__).resolve().parents[2] / "scripts" / "setup.sh"


def test_workflow_is_valid_yaml_with_triggers():
    data = _load()
    assert set(data["on"]) >= {"push", "pull_request", "schedule", "workflow_dispatch"}
    assert set(data["jobs"]) == {"tests", "check", "refresh"}


def test_every_job_sets_up_python_311():
    for name, job in _load()["jobs"].items():
        setup = [s for s in job["steps"] if str(s.get("uses", "")).startswith("actions/setup-python")]
        assert setup and str(setup[0]["with"]["python-version"]) == "3.11", name


def test_tests_job_runs_the_readme_test_command_cold():
    job = _load()["jobs"]["tests"]
    command = "scripts/setup.sh --dev && .venv/bin/python -m pytest"
    assert command in README.read_text(encoding="utf-8")
    assert command in _commands(job)
    assert job["env"]["PIP_NO_CACHE_DIR"] == "1"
    assert any("chromium" in c for c in _commands(job))


def test_check_job_installs_only_the_core_and_fails_on_a_difference():
    commands = _commands(_load()["jobs"]["check"])
    assert "price-bench leaderboard --check" in commands
    installs = [c for c in commands if "pip install" in c]
    assert installs == ["python -m pip install -e ."]


def test_refresh_job_installs_what_setup_installs_then_runs_everything_and_commits():
    job = _load()["jobs"]["refresh"]
    script = "\n".join(_commands(job))
    assert "scripts/setup.sh --dev" in script and "pip install" not in script  # one install path, not a copy
    assert "--dev" in SETUP.read_text(encoding="utf-8")
    assert script.index("price-bench run --all") < script.index("price-bench leaderboard\n") < script.index("git commit")
    assert job["permissions"]["contents"] == "write"
    assert "exit 1" in script  # a failed predictor still fails the job, after the pages are published
