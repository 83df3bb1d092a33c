"""The harness commands end to end, plus the import-weight guarantee of --help and list."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

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
        return runner.invoke(get_cli(), list(args) + (["--results", results] if args[0] in ("run", "results", "show", "compare", "export") else []))

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

    from price_bench.harness.outcomes import run_problems

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


def test_vary_runs_one_row_per_value_and_compare_takes_labels(cli, tmp_path):
    out = cli("run", "echo", "--dataset", "tiny", "--vary", "echo.bias=0", "--vary", "echo.bias=50", "--json")
    assert out.exit_code == 0, out.output
    rows = json.loads(out.output)
    assert [r["status"] for r in rows] == ["complete", "complete"] and rows[0]["run_id"] != rows[1]["run_id"]
    compared = cli("compare", "echo · bias=0", "echo · bias=50", "--json")
    assert compared.exit_code == 0, compared.output
    result = json.loads(compared.output)
    assert [m["metric"] for m in result["metrics"]] == ["Error", "RMSLE", "Hits"]
    assert {result["a"]["run_id"], result["b"]["run_id"]} == {rows[0]["run_id"], rows[1]["run_id"]}
    assert result["leaderboard"]["n_pairs"] == 1 and result["provenance_differences"] == []
    text = cli("compare", "echo · bias=0", "echo · bias=50").output
    assert "RMSLE" in text and "Hits" in text and "leaderboard tiny" in text
    unknown = cli("compare", "nope", rows[0]["run_id"])
    assert unknown.exit_code == 1 and "no predictor or label of that name" in unknown.output


def test_records_carry_provenance_and_show_prints_it(cli):
    [row] = json.loads(cli("run", "echo", "--dataset", "tiny", "--json").output)
    shown = json.loads(cli("show", row["run_id"], "--json").output)
    prov = shown["provenance"]
    assert prov["python"] and prov["versions"]["numpy"] and prov["cpu_count"] >= 1
    assert shown["n_resamples"] == 1000 and shown["ci_method"] == "percentile bootstrap"
    assert len(shown["predictor"]["code_digest"]) == 16
    human = cli("show", row["run_id"]).output
    assert "versions price-bench" in human and "code digest" in human and "cpu " in human


def test_show_worst_and_export_csv_and_parquet(cli, tmp_path):
    [row] = json.loads(cli("run", "echo", "--dataset", "tiny", "--json").output)
    worst = json.loads(cli("show", row["run_id"], "--worst", "5", "--text", "--json").output)
    assert len(worst) == 5 and worst == sorted(worst, key=lambda r: -r["error"])
    assert all(r["title"].startswith("Product ") for r in worst)
    one = json.loads(cli("show", "echo", "--worst", "3", "--category", "Toys", "--json").output)
    assert one and all(r["category"] == "Toys" for r in one)
    human = cli("show", row["run_id"], "--worst", "3", "--text")
    assert human.exit_code == 0 and "worst misses" in human.output and "Product" in human.output

    csv_path, pq_path = tmp_path / "items.csv", tmp_path / "items.parquet"
    assert cli("export", row["run_id"], "--out", str(csv_path), "--text").exit_code == 0
    lines = csv_path.read_text().splitlines()
    assert lines[0] == "id,category,truth,guess,error,parsed,unparsed,title" and len(lines) == 31
    assert cli("export", "echo", "--format", "parquet", "--out", str(pq_path)).exit_code == 0
    import pyarrow.parquet as pq

    table = pq.read_table(pq_path)
    assert table.num_rows == 30 and "error" in table.column_names and "title" not in table.column_names
    assert oct(csv_path.stat().st_mode & 0o777) == oct(0o644 & ~_umask())


def _umask() -> int:
    import os

    current = os.umask(0o022)
    os.umask(current)
    return current


def test_record_files_are_readable_like_any_other_output(cli, tmp_path):
    [row] = json.loads(cli("run", "echo", "--dataset", "tiny", "--json").output)
    record = Path(row["record"])
    for path in (record, record.with_name(record.stem + ".predictions.jsonl")):
        assert path.stat().st_mode & 0o777 == 0o666 & ~_umask()


def test_seeds_run_each_predictor_once_per_seed(cli):
    rows = json.loads(cli("run", "echo", "--dataset", "tiny", "--seeds", "0,1,2", "--json").output)
    assert [r["status"] for r in rows] == ["complete"] * 3
    seeds = [json.loads(cli("show", r["run_id"], "--json").output)["seed"] for r in rows]
    assert seeds == [0, 1, 2]
    bad = cli("run", "echo", "--dataset", "tiny", "--seeds", "0,x")
    assert bad.exit_code == 1 and "'x' is not a non-negative integer" in bad.output


def test_results_prune_keeps_what_a_leaderboard_shows(cli):
    first = json.loads(cli("run", "echo", "--dataset", "tiny", "--json").output)[0]
    second = json.loads(cli("run", "echo", "--dataset", "tiny", "--json").output)[0]  # supersedes the first
    limited = json.loads(cli("run", "echo", "--dataset", "tiny", "--limit", "3", "--json").output)[0]
    dry = cli("results", "prune", "--dry-run")
    assert dry.exit_code == 0 and "would delete 2 record(s)" in dry.output
    assert {r["run_id"] for r in json.loads(cli("results", "--json").output)} == {first["run_id"], second["run_id"], limited["run_id"]}
    assert "deleted 2 record(s)" in cli("results", "prune").output
    [kept] = [r["run_id"] for r in json.loads(cli("results", "--json").output)]
    assert kept in (first["run_id"], second["run_id"])  # the later of two runs finished in the same second
    gone = first if kept == second["run_id"] else second
    assert not Path(gone["record"]).exists() and not Path(gone["record"]).with_name(gone["run_id"] + ".predictions.jsonl").exists()


def test_run_inside_a_git_repository_warns_where_records_go(register_plugin, tiny_dataset, tmp_path, monkeypatch):
    from price_bench.cli.main import get_cli

    register_plugin(Plugin(), name="cli-test-plugin")
    (tmp_path / "repo" / ".git").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "repo")
    monkeypatch.delenv("PRICE_BENCH_RESULTS", raising=False)
    out = CliRunner().invoke(get_cli(), ["run", "echo", "--dataset", "tiny"])
    assert out.exit_code == 0, out.output
    assert "inside the git repository" in out.output and f"written to {tmp_path / 'repo' / 'results'}" in out.output
    quiet = CliRunner().invoke(get_cli(), ["run", "echo", "--dataset", "tiny", "--results", str(tmp_path / "elsewhere")])
    assert "inside the git repository" not in quiet.output


def test_terminal_surfaces_exclude_stdin_and_summary(cli, tmp_path):
    out = cli("run", "--all", "--exclude", "broken", "--exclude", "locked", "--exclude", "interrupted", "--exclude", "unreachable",
              "--exclude", "flaky", "--exclude", "mumbles", "--dataset", "tiny",
              "--json")
    assert out.exit_code == 0, out.output
    assert "broken" not in {r["predictor"] for r in json.loads(out.output)}
    assert cli("run", "echo", "--exclude", "broken", "--dataset", "tiny").exit_code == 1
    summary = cli("run", "echo", "--dataset", "tiny")
    assert "run id" in summary.output and "tiny" in summary.output
    runner = CliRunner()
    from price_bench.cli.main import get_cli

    piped = runner.invoke(get_cli(), ["predict", "echo", "-", "--dataset", "tiny", "--json"], input="twelve chars")
    assert piped.exit_code == 0, piped.output
    assert json.loads(piped.output)["price"] == 36.0
    text_file = tmp_path / "item.txt"
    text_file.write_text("twelve chars")
    from_file = runner.invoke(get_cli(), ["predict", "echo", str(text_file), "--file", "--dataset", "tiny", "--json"])
    assert json.loads(from_file.output)["price"] == 36.0
    listed = runner.invoke(get_cli(), ["data", "list", "--json"])
    assert listed.exit_code == 0 and "tiny" in {d["name"] for d in json.loads(listed.output)}
    shown = runner.invoke(get_cli(), ["data", "show", "tiny", "-n", "2", "--json"])
    assert len(json.loads(shown.output)) == 2
