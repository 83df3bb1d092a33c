"""`price-bench data ...` through click's CliRunner."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from price_bench.cli.main import get_cli


@pytest.fixture
def run():
    runner = CliRunner()

    def _run(*args: str):
        return runner.invoke(get_cli(), list(args), env={"COLUMNS": "160"})

    return _run


@pytest.fixture
def raw_file(tmp_path, raw_records, write_jsonl):
    return write_jsonl(tmp_path / "meta_Electronics.jsonl", raw_records(80) + ["{oops"])


def test_build_list_info_show(run, raw_file):
    built = run("data", "build", "mine", "--source", str(raw_file))
    assert built.exit_code == 0, built.output
    assert "built mine: train" in built.output
    assert f"warning: {raw_file}:81: malformed JSON" in built.output

    listed = run("data", "list")
    assert listed.exit_code == 0 and "mine" in listed.output and "reference-2023@1" in listed.output

    info = run("data", "info", "mine")
    assert info.exit_code == 0, info.output
    for expected in ("Splits", "Price histogram", "Categories", "Electronics", "malformed JSON", "$25-50", "Sources"):
        assert expected in info.output

    shown = run("data", "show", "mine", "--split", "test", "-n", "3")
    assert shown.exit_code == 0, shown.output
    assert shown.output.count("$") >= 3 and "mine / test (first 3)" in shown.output


def test_build_with_train_and_test_sources_and_limit(run, tmp_path, raw_records, write_jsonl):
    records = raw_records(100)
    train = write_jsonl(tmp_path / "train.jsonl", records[:80])
    test = write_jsonl(tmp_path / "test.jsonl", records[80:])
    result = run("data", "build", "split", "--train-source", str(train), "--test-source", str(test), "--limit", "50")
    assert result.exit_code == 0, result.output
    assert "test 20" in result.output and "train 45, validation 5" in result.output


def test_errors_are_one_line_without_traceback(run, tmp_path, raw_file):
    cases = [
        ("data", "build", "x", "--source", str(tmp_path / "missing.jsonl")),
        ("data", "build", "x", "--source", str(raw_file), "--categories", "Nonsense"),
        ("data", "build", "x", "--source", str(raw_file), "--strict"),
        ("data", "build", "x"),
        ("data", "info", "nothing-here"),
        ("data", "show", "nothing-here"),
    ]
    for args in cases:
        result = run(*args)
        assert result.exit_code != 0, args
        assert "Traceback" not in result.output
        lines = [line for line in result.output.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("Error: "), (args, result.output)
    strict = run("data", "build", "x", "--source", str(raw_file), "--strict")
    assert f"{raw_file}:81: malformed JSON" in strict.output


def test_list_when_empty(run):
    result = run("data", "list")
    assert result.exit_code == 0 and "no datasets yet" in result.output


def test_info_and_show_work_on_a_minimal_manifest(run):
    from price_bench.data.dataset import write_dataset
    from price_bench.items import Item

    items = [Item(id=str(n), text=f"thing {n}", price=float(n + 1)) for n in range(5)]
    write_dataset("bare", {"train": items[:3], "test": items[3:]}, {})
    info = run("data", "info", "bare")
    assert info.exit_code == 0, info.output
    assert "bare" in info.output and "Splits" in info.output
    shown = run("data", "show", "bare", "-n", "1")
    assert shown.exit_code == 0 and "thing 3" in shown.output
