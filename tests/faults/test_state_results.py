"""Broken or foreign files under a results folder: skipped with one line naming them, never a traceback.

Also the folders a run writes: a results folder or data home that cannot be
written gives one line before any work.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import price_bench_faults_data_kit as kit  # loaded by tests/faults/conftest.py


@pytest.fixture
def faults_data_results(register_plugin, price_bench_home, tmp_path):
    """A results folder with two complete runs of faults-count on ``tiny``: (folder, [record paths])."""
    kit.reset_counters()
    register_plugin(kit.Plugin(), name="faults-data-plugin")
    kit.write_tiny("tiny", home=price_bench_home)
    results = tmp_path / "results"
    paths = []
    for pid in ("faults-count", "faults-pickle"):
        out = kit.invoke("run", pid, "--dataset", "tiny", "--results", str(results), "--json")
        assert out.exit_code == 0, out.output
        paths.append(Path(json.loads(out.stdout)[0]["record"]))
    yield results, paths
    kit.reset_counters()


@pytest.mark.parametrize(
    "content",
    [b"{not json", b'{"hello": "a foreign tool\'s json"}', b"\xff\xfe\x00binary", b"[1, 2, 3]"],
    ids=["corrupt", "foreign", "binary", "array"],
)
def test_bad_json_is_skipped_by_results_and_leaderboard(faults_data_results, tmp_path, content):
    """Case: one corrupt or foreign *.json under the results folder. Outcome: `results` and `leaderboard` skip it with one warning naming the file and show every other record (exit 0)."""
    results, paths = faults_data_results
    bad = results / "tiny" / "faults-count" / "zz-notes.json"
    bad.write_bytes(content)

    listed = kit.invoke("results", "--results", str(results), "--json")
    assert listed.exit_code == 0, listed.output
    assert {Path(row["path"]) for row in json.loads(listed.stdout)} == set(paths)
    [warning] = [line for line in kit.lines(listed.stderr) if line.startswith("warning:")]
    assert str(bad) in warning and "not a valid result record" in warning

    pages = tmp_path / "pages"
    board = kit.invoke("leaderboard", "--results", str(results), "--out", str(pages), "--readme", str(tmp_path / "none.md"))
    assert board.exit_code == 0, board.output
    assert any(str(bad) in line for line in kit.lines(board.stderr) if line.startswith("warning:"))
    page = (pages / "tiny.md").read_text()
    assert "faults-count" in page and "faults-pickle" in page


def test_record_pointing_outside_is_refused(faults_data_results, tmp_path):
    """Case: a planted record whose predictions_file is '../../../secret.predictions.jsonl', and a record that is a link to a file outside. Outcome: both skipped with one warning each; the outside files are never read (their marker text appears nowhere) and nothing is written outside --out."""
    results, paths = faults_data_results
    secret = tmp_path / "secret.predictions.jsonl"
    secret.write_text('{"id": "x", "truth": 1, "guess": 1, "parsed": 1, "raw": "SECRET-MARKER"}\n')
    record = json.loads(paths[0].read_text())
    record["run_id"] = "20990101T000000Z-evil00-0000"
    record["predictions_file"] = "../../../secret.predictions.jsonl"
    planted = paths[0].with_name("20990101T000000Z-evil00-0000.json")
    planted.write_text(json.dumps(record))
    outside = tmp_path / "outside.json"
    outside.write_text(paths[1].read_text().replace("faults-pickle", "SECRET-MARKER-ID"))
    (results / "tiny" / "faults-pickle" / "20990101T000000Z-link00-0000.json").symlink_to(outside)
    pages = tmp_path / "pages"
    before = kit.snapshot(tmp_path)

    board = kit.invoke("leaderboard", "--results", str(results), "--out", str(pages), "--readme", str(tmp_path / "none.md"))

    assert board.exit_code == 0, board.output
    warnings = [line for line in kit.lines(board.stderr) if line.startswith("warning:")]
    assert any(str(planted) in line and "predictions_file" in line for line in warnings), warnings
    assert any("20990101T000000Z-link00-0000.json" in line and "links are not followed" in line for line in warnings), warnings
    assert "SECRET-MARKER" not in board.output
    page = (pages / "tiny.md").read_text() + (pages / "tiny.html").read_text()
    assert "SECRET-MARKER" not in page
    assert {p.parent for p in kit.new_files(before, tmp_path)} == {pages}


def test_compare_with_a_deleted_sidecar(faults_data_results):
    """Case: `compare A B` when A's per-item predictions file was deleted. Outcome: one line naming the missing file, exit 1, no traceback."""
    results, paths = faults_data_results
    sidecar = paths[0].with_name(paths[0].stem + ".predictions.jsonl")
    sidecar.unlink()

    result = kit.invoke("compare", paths[0].stem, paths[1].stem, "--results", str(results))

    kit.assert_one_line_error(result, str(sidecar), "missing")


def _unwritable(path: Path, how: str) -> None:
    """Make ``path`` a folder nobody can create files in: read-only (chmod) or a plain file."""
    if how == "read-only":
        if os.geteuid() == 0:
            pytest.skip("root ignores file modes; the 'file' variant covers this path")
        path.mkdir(parents=True, exist_ok=True)
        path.chmod(0o500)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("a file where a folder should be")


@pytest.mark.parametrize("how", ["read-only", "file"])
def test_unwritable_results_folder(register_plugin, price_bench_home, tmp_path, how):
    """Case: run into a results folder that cannot be written (read-only, or a file). Outcome: one line naming it, exit 1, before any prediction is made."""
    kit.reset_counters()
    register_plugin(kit.Plugin(), name="faults-data-plugin")
    kit.write_tiny("tiny", home=price_bench_home)
    results = tmp_path / "results"
    _unwritable(results, how)
    try:
        result = kit.invoke("run", "faults-count", "--dataset", "tiny", "--results", str(results))
        kit.assert_one_line_error(result, "cannot write to the results folder", str(results))
        assert kit.Counting.predicted == []
    finally:
        if results.is_dir():
            results.chmod(0o700)


@pytest.mark.parametrize("how", ["read-only", "file"])
def test_unwritable_data_home(register_plugin, price_bench_home, tmp_path, how):
    """Case: data build and run with a data home whose folders cannot be written. Outcome: one line naming the folder, exit 1, before curating or predicting."""
    kit.reset_counters()
    register_plugin(kit.Plugin(), name="faults-data-plugin")
    kit.write_tiny("tiny", home=price_bench_home)
    source = tmp_path / "items.csv"
    source.write_text("text,price\n" + "".join(f"product number {i} with a long enough description text for the recipe minimum length of characters,{i + 5}\n" for i in range(50)))
    blocked = [price_bench_home / "work", price_bench_home / "datasets"] if how == "file" else [price_bench_home]
    if how == "file":
        # datasets/ must stay readable for `run`: block work/ for run, then datasets/ for build
        _unwritable(blocked[0], how)
    else:
        _unwritable(price_bench_home, how)
    try:
        ran = kit.invoke("run", "faults-count", "--dataset", "tiny", "--results", str(tmp_path / "results"))
        kit.assert_one_line_error(ran, "cannot write to the data home")
        assert kit.Counting.predicted == []
        if how == "file":
            import shutil

            shutil.rmtree(price_bench_home / "datasets")
            _unwritable(blocked[1], how)
        built = kit.invoke("data", "build", "fresh", "--source", str(source))
        kit.assert_one_line_error(built, "cannot write to the data home")
    finally:
        price_bench_home.chmod(0o700)


def test_record_write_failure_after_predicting_loses_nothing(register_plugin, price_bench_home, tmp_path, monkeypatch):
    """Case: the results folder becomes unwritable after the predictions were made (PermissionError at the record write). Outcome: one line naming the record and saying the predictions are cached, exit 1; the rerun reuses every cached prediction (nothing predicted twice)."""
    from price_bench.results import store

    kit.reset_counters()
    register_plugin(kit.Plugin(), name="faults-data-plugin")
    kit.write_tiny("tiny", home=price_bench_home)
    results = tmp_path / "results"
    real_write = store.write_record

    def denied(results_dir, record, predictions=()):
        raise PermissionError(13, "Permission denied", str(store.record_path(results_dir, record)))

    monkeypatch.setattr(store, "write_record", denied)
    failed = kit.invoke("run", "faults-count", "--dataset", "tiny", "--results", str(results))
    kit.assert_one_line_error(failed, "cannot write the result record", "Permission denied", "predictions are cached")
    assert kit.Counting.predicted == [30]

    monkeypatch.setattr(store, "write_record", real_write)
    again = kit.invoke("run", "faults-count", "--dataset", "tiny", "--results", str(results), "--json")
    assert again.exit_code == 0, again.output
    [row] = json.loads(again.stdout)
    assert (row["new_items"], row["cached_items"]) == (0, 30)
    assert kit.Counting.predicted == [30]


@pytest.mark.parametrize("field", ["dataset", "predictor"])
def test_planted_record_with_a_path_name_writes_nothing_outside(faults_data_results, tmp_path, field):
    """Case: a planted record whose dataset name or predictor id is '../../escape'. Outcome: `leaderboard` and `results` skip it with one warning naming the file; no page is written outside --out."""
    results, paths = faults_data_results
    record = json.loads(paths[0].read_text())
    record["run_id"] = "20990101T000000Z-evil00-0001"
    record[field]["name" if field == "dataset" else "id"] = "../../escape"
    planted = paths[0].with_name("20990101T000000Z-evil00-0001.json")
    planted.write_text(json.dumps(record))
    pages = tmp_path / "pages"
    before = kit.snapshot(tmp_path)

    board = kit.invoke("leaderboard", "--results", str(results), "--out", str(pages), "--readme", str(tmp_path / "none.md"))
    listed = kit.invoke("results", "--results", str(results), "--json")

    assert board.exit_code == 0 and listed.exit_code == 0, board.output + listed.output
    for out in (board, listed):
        [warning] = [line for line in kit.lines(out.stderr) if line.startswith("warning:")]
        assert str(planted) in warning and "'../../escape'" in warning
    assert {p.parent for p in kit.new_files(before, tmp_path)} == {pages}
    assert not (tmp_path / "escape.md").exists() and not (results.parent / "escape.md").exists()


def test_leaderboard_into_an_unwritable_folder(faults_data_results, tmp_path):
    """Case: `leaderboard --out` where a page cannot be written (the .md path is a folder). Outcome: one line naming it, exit 1, no traceback."""
    results, _ = faults_data_results
    pages = tmp_path / "pages"
    (pages / "tiny.md").mkdir(parents=True)

    board = kit.invoke("leaderboard", "--results", str(results), "--out", str(pages), "--readme", str(tmp_path / "none.md"))

    kit.assert_one_line_error(board, "tiny.md")
