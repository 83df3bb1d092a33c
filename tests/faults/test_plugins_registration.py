"""A broken or clashing plugin never breaks the CLI or the other plugins (issue 13, items 4-6).

Every case installs real fake distributions (dist-info with a ``price_bench``
entry point) and drives the real ``price-bench`` console entry point in a
subprocess, next to a healthy plugin whose predictor must keep working.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import price_bench_faults_plugin_kit as kit  # loaded by tests/faults/conftest.py


HEALTHY = '''
import click
from price_bench import Predictor, Prediction, hookimpl

class Healthy(Predictor):
    id = "healthy"
    description = "a plugin that works"
    def predict(self, items):
        return [Prediction(raw="$42") for _ in items]

@hookimpl
def register_predictors(register):
    register(Healthy)

@hookimpl
def register_commands(cli):
    @cli.command("healthy-hello")
    def hello():
        """Say hello from the healthy plugin."""
        click.echo("hello from the healthy plugin")
'''

COMMANDS_RAISE = '''
from price_bench import Predictor, Prediction, hookimpl

class Orphan(Predictor):
    id = "orphan"
    def predict(self, items):
        return [Prediction(raw=1.0) for _ in items]

@hookimpl
def register_predictors(register):
    register(Orphan)

@hookimpl
def register_commands(cli):
    @cli.command("half-added")
    def half_added():
        """Added just before the hook raises."""
    raise RuntimeError("no [bold]commands[/] today")
'''

PREDICTORS_RAISE = '''
from price_bench import Predictor, Prediction, hookimpl

class Early(Predictor):
    id = "registered-before-the-error"
    def predict(self, items):
        return [Prediction(raw=1.0) for _ in items]

@hookimpl
def register_predictors(register):
    register(Early)
    raise LookupError("model table missing")
'''

DUPLICATE = '''
from price_bench import Predictor, Prediction, hookimpl

class Clash(Predictor):
    id = "clash"
    description = "{label}"
    def predict(self, items):
        return [Prediction(raw={price}) for _ in items]

@hookimpl
def register_predictors(register):
    register(Clash)
'''


@pytest.fixture
def site(tmp_path):
    """A folder of fake installed distributions, with the healthy plugin and the ``tiny`` dataset in place."""
    root = tmp_path / "site"
    kit.install(root, "fake-healthy", HEALTHY)
    kit.tiny_dataset()
    return root


def _healthy_run_is_complete(env, results: Path) -> None:
    """The healthy predictor still runs to a complete record: nothing of its work is lost."""
    run = kit.price_bench(env, "run", "healthy", "random", "--dataset", "tiny", "--results", str(results), "--json")
    assert run.returncode == 0, run.stderr[-2000:]
    outcomes = {row["predictor"]: row for row in json.loads(run.stdout)}
    assert outcomes["healthy"]["status"] == outcomes["random"]["status"] == "complete"
    assert Path(outcomes["healthy"]["record"]).is_file() and outcomes["healthy"]["new_items"] == 30
    kit.assert_no_traceback(run)


def test_register_commands_raising_is_reported_like_an_import_failure(site, tmp_path):
    """Case: register_commands raises. Outcome: that plugin is listed as failed with the error (its commands and predictors removed); --help, list, plugins, run and the other plugins' commands work."""
    kit.install(site, "fake-commands-raise", COMMANDS_RAISE)
    env = kit.cli_env(site, "fake-healthy", "fake-commands-raise")
    expected = ("warning: plugin fake_commands_raise (fake-commands-raise 1.0.0) not loaded: register_commands failed: "
                "RuntimeError: no [bold]commands[/] today (see `price-bench plugins`)")

    helped = kit.price_bench(env, "--help")
    assert helped.returncode == 0 and "healthy-hello" in helped.stdout and "half-added" not in helped.stdout
    kit.assert_no_traceback(helped)

    listed = kit.price_bench(env, "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert kit.lines(listed.stderr, "warning:") == [expected]
    ids = {row["id"] for row in json.loads(listed.stdout)}
    assert {"healthy", "random"} <= ids and "orphan" not in ids

    table = kit.price_bench(env, "plugins")
    assert table.returncode == 0
    assert "FAILED: register_commands failed: RuntimeError: no [bold]commands[/] today" in table.stdout
    assert table.stdout.count("FAILED") == 1 and "fake_healthy" in table.stdout
    kit.assert_no_traceback(table)

    hello = kit.price_bench(env, "healthy-hello")
    assert (hello.returncode, hello.stdout) == (0, "hello from the healthy plugin\n")
    _healthy_run_is_complete(env, tmp_path / "results")


def test_register_predictors_raising_shows_the_plugin_as_failed(site, tmp_path):
    """Case: register_predictors raises. Outcome: `plugins` shows it FAILED with the error, none of its half-made registrations are kept, every other predictor runs."""
    kit.install(site, "fake-predictors-raise", PREDICTORS_RAISE)
    env = kit.cli_env(site, "fake-healthy", "fake-predictors-raise")

    plugins = kit.price_bench(env, "plugins", "--json")
    assert plugins.returncode == 0, plugins.stderr
    infos = {info["name"]: info for info in json.loads(plugins.stdout)}
    assert infos["fake_predictors_raise"]["error"] == "register_predictors failed: LookupError: model table missing"
    assert infos["fake_healthy"]["error"] is None
    table = kit.price_bench(env, "plugins")
    assert "FAILED: register_predictors failed: LookupError: model table missing" in table.stdout

    listed = kit.price_bench(env, "list", "--json")
    assert listed.returncode == 0
    assert kit.lines(listed.stderr, "warning:") == [
        "warning: plugin fake_predictors_raise (fake-predictors-raise 1.0.0) not loaded: register_predictors failed: "
        "LookupError: model table missing (see `price-bench plugins`)"
    ]
    ids = {row["id"] for row in json.loads(listed.stdout)}
    assert "healthy" in ids and "registered-before-the-error" not in ids
    _healthy_run_is_complete(env, tmp_path / "results")


def test_duplicate_predictor_id_keeps_the_first_and_fails_only_that_id(site, tmp_path):
    """Case: two distributions register one predictor id. Outcome: a warning naming both; list and other predictors work; only running that id fails (exit 1, a failed record saying why)."""
    kit.install(site, "fake-clash-a", DUPLICATE.format(label="from a", price=1.0))
    kit.install(site, "fake-clash-b", DUPLICATE.format(label="from b", price=2.0))
    env = kit.cli_env(site, "fake-healthy", "fake-clash-a", "fake-clash-b")

    listed = kit.price_bench(env, "list", "--json")
    assert listed.returncode == 0, listed.stderr
    [warning] = kit.lines(listed.stderr, "warning:")
    assert warning.startswith("warning: predictor id 'clash' is registered twice: by fake-clash-")
    assert "fake-clash-a" in warning and "fake-clash-b" in warning and "kept the first, refused the second" in warning
    rows = {row["id"]: row for row in json.loads(listed.stdout)}
    assert rows["clash"]["status"] == "error" and "registered twice" in rows["clash"]["reason"]
    assert rows["healthy"]["status"] == "ready"

    _healthy_run_is_complete(env, tmp_path / "results")

    clash = kit.price_bench(env, "run", "clash", "--dataset", "tiny", "--results", str(tmp_path / "results"))
    assert clash.returncode == 1
    assert kit.lines(clash.stderr, "Error:") == ["Error: 1 predictor(s) failed: clash"]
    [record] = (tmp_path / "results" / "tiny" / "clash").glob("*[0-9a-f].json")
    data = json.loads(record.read_text())
    assert data["status"] == "failed" and "registered twice" in data["reason"]
    kit.assert_no_traceback(clash)


def test_duplicate_predictor_id_under_the_strict_switch_fails_every_command(site):
    """Case: duplicate predictor id with PRICE_BENCH_STRICT_PLUGINS=1. Outcome: every registry command fails with one line naming both distributions (exit 1)."""
    kit.install(site, "fake-clash-a", DUPLICATE.format(label="from a", price=1.0))
    kit.install(site, "fake-clash-b", DUPLICATE.format(label="from b", price=2.0))
    env = kit.cli_env(site, "fake-healthy", "fake-clash-a", "fake-clash-b", PRICE_BENCH_STRICT_PLUGINS="1")
    listed = kit.price_bench(env, "list")
    assert listed.returncode == 1
    [line] = listed.stderr.strip().splitlines()
    assert line.startswith("Error: predictor id 'clash' is registered twice: by fake-clash-")
    assert "fake-clash-a" in line and "fake-clash-b" in line
    kit.assert_no_traceback(listed)
