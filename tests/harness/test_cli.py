"""The harness commands end to end, plus the import-weight guarantee of --help and list."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
from click.testing import CliRunner

from price_bench import Prediction, Predictor, Requirement, hookimpl
from price_bench.cli.main import get_cli
from price_bench.predictors.contract import PredictorConfig

HEAVY = ("torch", "transformers", "openai", "gensim", "sklearn")


class EchoConfig(PredictorConfig):
    bias: float = 0.0


class Echo(Predictor):
    """Guesses from the text length (never looks at the price)."""

    id = "echo"
    description = "text length plus a bias"
    Config = EchoConfig

    def predict(self, items):
        return [Prediction(raw=f"${len(item.text) * 3 + self.config.bias:.2f}") for item in items]


class Broken(Predictor):
    id = "broken"

    def predict(self, items):
        raise RuntimeError("kaput")


class Locked(Predictor):
    id = "locked"
    requires = (Requirement.env("PB_CLI_TEST_UNSET_KEY"),)

    def predict(self, items):
        raise AssertionError("never")


class Interrupted(Predictor):
    id = "interrupted"

    def predict(self, items):
        raise KeyboardInterrupt


class Unreachable(Predictor):
    """Every call errors, like a client whose server refuses connections."""

    id = "unreachable"

    def predict(self, items):
        return [Prediction(raw=None, error="APIConnectionError: Connection refused") for _ in items]


class Flaky(Predictor):
    """The first item of every batch errors; the rest answer."""

    id = "flaky"
    batch_size = 10

    def predict(self, items):
        return [Prediction(raw=None, error="timeout") if i == 0 else Prediction(raw="$20") for i, _ in enumerate(items)]


class Mumbles(Predictor):
    """Answers, but never with a price."""

    id = "mumbles"

    def predict(self, items):
        return [Prediction(raw="I cannot say") for _ in items]


class Plugin:
    @hookimpl
    def register_predictors(self, register):
        for cls in (Echo, Broken, Locked, Interrupted, Unreachable, Flaky, Mumbles):
            register(cls)


@pytest.fixture
def cli(register_plugin, tiny_dataset, tmp_path):
    register_plugin(Plugin(), name="cli-test-plugin")
    runner = CliRunner()
    results = str(tmp_path / "results")

    def invoke(*args: str):
        return runner.invoke(get_cli(), list(args) + (["--results", results] if args[0] in ("run", "results", "show", "compare") else []))

    return invoke


def test_run_results_show_compare_and_predict(cli):
    out = cli("run", "echo", "--dataset", "tiny", "--json")
    assert out.exit_code == 0, out.output
    [first] = json.loads(out.output)
    assert first["status"] == "complete" and first["new_items"] == 30
    second = json.loads(cli("run", "echo", "--dataset", "tiny", "-o", "echo.bias=50", "--json").output)[0]

    listing = json.loads(cli("results", "--json").output)
    assert {row["run_id"] for row in listing} == {first["run_id"], second["run_id"]}
    assert all(row["leaderboard_eligible"] for row in listing)

    shown = json.loads(cli("show", first["run_id"], "--json").output)
    assert shown["metrics"]["error"]["value"] == first["metrics"]["error"]["value"]
    assert "price_band" in shown["breakdowns"]
    human = cli("show", first["run_id"][:20])
    assert human.exit_code == 0 and "Error (MAE)" in human.output and "by price band" in human.output

    compared = json.loads(cli("compare", first["run_id"], second["run_id"], "--json").output)
    assert compared["n"] == 30 and compared["same_dataset"]
    assert compared["diff"] == pytest.approx(compared["error_a"] - compared["error_b"])
    assert "significant" in cli("compare", first["run_id"], second["run_id"]).output

    predicted = cli("predict", "echo", "twelve chars", "--dataset", "tiny", "--json")
    assert predicted.exit_code == 0, predicted.output
    assert json.loads(predicted.output)["price"] == 36.0


def test_failures_give_a_nonzero_exit_and_skips_do_not(cli):
    failed = cli("run", "echo", "broken", "locked", "--dataset", "tiny")
    assert failed.exit_code == 1
    assert "predict failed: RuntimeError: kaput" in failed.output
    assert "PB_CLI_TEST_UNSET_KEY" in failed.output
    assert "1 predictor(s) failed: broken" in failed.output
    # A predictor named on the command line that is skipped makes the exit status non-zero.
    named_skip = cli("run", "echo", "locked", "--dataset", "tiny")
    assert named_skip.exit_code == 1 and "requested predictor(s) skipped: locked" in named_skip.output


def test_skips_under_all_are_not_failures():
    from types import SimpleNamespace

    from price_bench.cli.harness import run_problems

    skipped = [SimpleNamespace(predictor_id="locked", status="skipped", reason="needs KEY", record=None)]
    assert run_problems(skipped, skipped_ok=True) == []
    assert run_problems(skipped) == ["requested predictor(s) skipped: locked (needs KEY)"]


def test_a_run_whose_every_item_errored_is_failed_not_complete(cli):
    out = cli("run", "unreachable", "--dataset", "tiny", "--json")
    assert out.exit_code == 1, out.output
    [outcome] = json.loads(out.output.split("\nError:")[0])
    assert outcome["status"] == "failed" and outcome["metrics"] == {}
    assert "no usable answer: all 30 items errored (first: " in outcome["reason"]
    assert "Connection refused" in outcome["reason"]
    listing = json.loads(cli("results", "--json").output)
    assert [row["status"] for row in listing] == ["failed"]


def test_a_run_with_no_parsable_answer_is_failed(cli):
    out = cli("run", "mumbles", "--dataset", "tiny", "--json")
    assert out.exit_code == 1
    [outcome] = json.loads(out.output.split("\nError:")[0])
    assert outcome["status"] == "failed"
    assert outcome["reason"] == "no usable answer: 0 of 30 items errored and 30 did not parse to a price"


def test_some_errored_items_complete_the_run_but_exit_non_zero_above_the_allowed_share(cli):
    out = cli("run", "flaky", "--dataset", "tiny")
    assert out.exit_code == 1, out.output
    assert "flaky: 3 of 30 items errored (10.0% > --max-error-share 0.0%; first: " in " ".join(out.output.split())
    assert "3 errored" in out.output  # the summary says so too
    tolerant = cli("run", "flaky", "--dataset", "tiny", "--max-error-share", "0.1", "--json")
    assert tolerant.exit_code == 0, tolerant.output
    assert json.loads(tolerant.output)[0]["status"] == "complete"


def test_ctrl_c_exits_130_with_a_resume_hint(cli):
    result = cli("run", "interrupted", "--dataset", "tiny")
    assert result.exit_code == 130
    assert "rerun the same command to resume" in result.output and "Traceback" not in result.output


def test_limit_runs_are_marked(cli):
    out = json.loads(cli("run", "echo", "--dataset", "tiny", "--limit", "5", "--json").output)[0]
    record = json.loads(cli("show", out["run_id"], "--json").output)
    assert record["limit"] == 5 and record["n_items"] == 5
    assert json.loads(cli("results", "--json").output)[0]["leaderboard_eligible"] is False


@pytest.mark.parametrize(
    "args, message",
    [
        (["run", "nope", "--dataset", "tiny"], "Error: unknown predictor 'nope'"),
        (["run", "echo", "--dataset", "tiny", "-o", "echo.bais=1"], "Error: echo: unknown config key 'bais' (known keys: batch_timeout_s, bias)"),
        (["run", "echo", "--dataset", "tiny", "-o", "echo.bias=lots"], "Error: echo: bad value for 'bias'"),
        (["run", "echo", "--dataset", "tiny", "-o", "bias=1"], "Error: bad override 'bias=1'"),
        (["run", "echo", "--dataset", "no-such-dataset"], "Error: no dataset named 'no-such-dataset'"),
        (["run", "--dataset", "tiny"], "Error: name at least one predictor id"),
        (["show", "nonexistent-run"], "Error: no run 'nonexistent-run'"),
        (["predict", "nope", "text"], "Error: unknown predictor 'nope'"),
    ],
)
def test_user_errors_are_one_line(cli, args, message):
    result = cli(*args)
    assert result.exit_code == 1
    assert result.output.startswith(message), result.output
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_list_and_plugins(cli):
    rows = {row["id"]: row for row in json.loads(cli("list", "--json").output)}
    assert rows["echo"]["status"] == "ready" and rows["echo"]["origin"] == "cli-test-plugin (in-process)"
    assert rows["locked"]["status"] == "skipped" and "PB_CLI_TEST_UNSET_KEY" in rows["locked"]["reason"]
    plugins = {row["name"]: row for row in json.loads(cli("plugins", "--json").output)}
    assert plugins["cli-test-plugin"]["hooks"] == ["register_predictors"]


def test_help_and_list_import_no_heavy_library(tmp_path):
    """Real entry points (every installed plugin) in a fresh interpreter."""
    script = textwrap.dedent(
        f"""
        import sys
        from price_bench.cli.main import main
        for argv in (["--help"], ["list"]):
            try:
                main(argv)
            except SystemExit as exc:
                assert exc.code in (0, None), (argv, exc.code)
        heavy = sorted(m for m in sys.modules if m.split(".")[0] in {HEAVY!r})
        print("HEAVY=" + ",".join(heavy))
        """
    )
    env = {k: v for k, v in os.environ.items() if k != "PRICE_BENCH_LOAD_PLUGINS"}
    env["PRICE_BENCH_HOME"] = str(tmp_path)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "HEAVY=\n" in out.stdout, out.stdout[-500:]
