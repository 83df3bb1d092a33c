"""Untrusted dataset folders: no code execution, no read or write outside, one rule for names.

Every test plants a marker (a pickle that writes a file when loaded, or a
secret file outside the folder) and proves it stayed untouched.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import price_bench_faults_data_kit as kit  # loaded by tests/faults/conftest.py


@pytest.fixture
def faults_data_plugin(register_plugin):
    """The kit's predictors (faults-count, faults-pickle) registered in-process."""
    kit.reset_counters()
    register_plugin(kit.Plugin(), name="faults-data-plugin")
    yield kit
    kit.reset_counters()


def _shared_copy(tmp_path: Path, home: Path, name: str = "shared") -> Path:
    """A copy of a real dataset folder outside the data home, as someone would share it."""
    source = kit.write_tiny("tiny", home=home)
    folder = tmp_path / name
    shutil.copytree(source.path, folder)
    return folder


def _edit_manifest(folder: Path, **changes) -> None:
    path = folder / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest.update(changes)
    path.write_text(json.dumps(manifest))


def test_fingerprint_with_a_path_is_refused(tmp_path, price_bench_home, faults_data_plugin):
    """Case: manifest fingerprint holds a path. Outcome: refused before use (one line naming manifest.json); the planted pickle is never loaded, nothing is written."""
    attacker = tmp_path / "attacker"
    folder = _shared_copy(tmp_path, price_bench_home)
    marker = tmp_path / "PWNED"
    # What the old code would have used as the work folder: <home>/work/<fingerprint[:12]>/...
    planted = attacker / "faults-pickle"
    planted.mkdir(parents=True)
    (planted / "model.pkl").write_bytes(kit.evil_pickle(marker))
    _edit_manifest(folder, fingerprint=f"sha256:{attacker}/")
    results = tmp_path / "results"
    before = kit.snapshot(tmp_path)

    result = kit.invoke("run", "faults-pickle", "--dataset", str(folder), "--results", str(results))

    kit.assert_one_line_error(result, "manifest.json", "fingerprint", "64 lower-case hex digits")
    assert not marker.exists()
    assert kit.Pickled.loads == [] and kit.Pickled.fits == []
    assert kit.new_files(before, tmp_path) == []
    assert not (price_bench_home / "work").exists() or not any((price_bench_home / "work").rglob("*.pkl"))


def test_forged_fingerprint_is_recomputed(tmp_path, price_bench_home, faults_data_plugin):
    """Case: manifest claims another dataset's fingerprint. Outcome: recomputed from the splits and refused, so no cache entry or work folder of the real dataset is reused."""
    real = kit.write_tiny("real", home=price_bench_home, seed=1)
    folder = _shared_copy(tmp_path, price_bench_home)
    _edit_manifest(folder, fingerprint=real.fingerprint, name="forged")
    results = tmp_path / "results"

    result = kit.invoke("run", "faults-count", "--dataset", str(folder), "--results", str(results))

    kit.assert_one_line_error(result, "does not match the items", "rebuild")
    assert kit.Counting.predicted == []
    assert not results.exists() or not any(results.rglob("*.json"))


def test_bare_name_never_reads_the_current_folder(tmp_path, price_bench_home, faults_data_plugin):
    """Case: ./tiny in the current folder shadows the data home's tiny. Outcome: a bare name reads the data home only; ./tiny is used only as an explicit path, and the run says so."""
    home_ds = kit.write_tiny("tiny", home=price_bench_home, seed=0)
    checkout = tmp_path / "untrusted-checkout"
    checkout.mkdir()
    other = kit.write_tiny("other", home=tmp_path / "elsewhere", seed=5)
    shutil.copytree(other.path, checkout / "tiny")
    results = tmp_path / "results"

    by_name = kit.invoke("run", "faults-count", "--dataset", "tiny", "--results", str(results), "--json", cwd=checkout)
    assert by_name.exit_code == 0, by_name.output
    [row] = json.loads(by_name.stdout)
    record = json.loads(Path(row["record"]).read_text())
    assert record["dataset"]["fingerprint"] == home_ds.fingerprint
    assert "explicit path" not in by_name.stderr

    by_path = kit.invoke("run", "faults-count", "--dataset", "./tiny", "--results", str(results), "--json", cwd=checkout)
    assert by_path.exit_code == 0, by_path.output
    [row] = json.loads(by_path.stdout)
    record = json.loads(Path(row["record"]).read_text())
    assert record["dataset"]["fingerprint"] == other.fingerprint
    [note] = [line for line in kit.lines(by_path.stderr) if "explicit path" in line]
    assert str(checkout / "tiny") in note


def test_manifest_name_with_dot_dot_is_refused(tmp_path, price_bench_home, faults_data_plugin):
    """Case: manifest name "../../../../x". Outcome: refused with one line naming the field; no record is written inside or outside the results folder."""
    folder = _shared_copy(tmp_path, price_bench_home)
    _edit_manifest(folder, name="../../../../x")
    results = tmp_path / "deep" / "er" / "results"
    before = kit.snapshot(tmp_path)

    result = kit.invoke("run", "faults-count", "--dataset", str(folder), "--results", str(results))

    kit.assert_one_line_error(result, "field 'name'", "invalid dataset name")
    assert kit.new_files(before, tmp_path) == []
    assert kit.Counting.predicted == []


@pytest.mark.parametrize("link", ["test.parquet", "manifest.json"])
def test_link_out_of_a_dataset_folder_is_not_followed(tmp_path, price_bench_home, faults_data_plugin, link):
    """Case: a dataset file is a link to a file outside the folder. Outcome: refused with one line (links are not followed); the outside file is never read or shown."""
    folder = _shared_copy(tmp_path, price_bench_home)
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-MARKER")
    (folder / link).unlink()
    (folder / link).symlink_to(secret)

    result = kit.invoke("run", "faults-count", "--dataset", str(folder), "--results", str(tmp_path / "results"))

    kit.assert_one_line_error(result, link, "not a regular file inside the dataset folder")
    assert "TOP-SECRET-MARKER" not in result.output
    assert kit.Counting.predicted == []


@pytest.mark.parametrize(
    "argv",
    [
        ("data", "build", "NAME", "--source", "x.jsonl"),
        ("run", "faults-count", "--dataset", "NAME"),
        ("leaderboard", "--dataset", "NAME", "--out", "OUT"),
    ],
    ids=["data-build", "run", "leaderboard"],
)
@pytest.mark.parametrize("name", ["a|b", "../x", "a" * 300], ids=["pipe", "dotdot", "300-chars"])
def test_one_name_rule_for_every_command(tmp_path, price_bench_home, faults_data_plugin, argv, name):
    """Case: dataset name 'a|b', '../x' or 300 characters in data build, run and leaderboard. Outcome: the same one-line "invalid dataset name" refusal (exit 1) everywhere, before any work; nothing is written."""
    out = tmp_path / "pages"
    args = [name if a == "NAME" else str(out) if a == "OUT" else a for a in argv]
    if args[0] == "run":
        args += ["--results", str(tmp_path / "results")]
    before = kit.snapshot(tmp_path, price_bench_home)

    result = kit.invoke(*args, cwd=tmp_path)

    line = kit.assert_one_line_error(result)
    assert "invalid dataset name" in line or "not a dataset folder" in line  # '../x' is an explicit path
    if "/" not in name:
        assert "invalid dataset name" in line
    assert kit.new_files(before, tmp_path, price_bench_home) == []
    assert kit.Counting.predicted == []


@pytest.fixture
def faults_data_restore_failures():
    """Forget the plugin failures a test provoked (the manager keeps them for the process)."""
    from price_bench.plugins import manager

    saved = list(manager._failures)
    yield
    manager._failures[:] = saved


def test_predictor_id_with_a_path_is_refused(tmp_path, price_bench_home, register_plugin, faults_data_plugin, faults_data_restore_failures):
    """Case: a plugin registers predictor id '../../x'. Outcome: the registration is refused (the plugin is reported, not a traceback); running it is an unknown predictor; nothing is written outside the results folder."""
    from price_bench import Prediction, Predictor, hookimpl

    class Escaper(Predictor):
        id = "../../escaped"

        def predict(self, items):
            return [Prediction(raw=1.0) for _ in items]

    class Hostile:
        @hookimpl
        def register_predictors(self, register):
            register(Escaper)

    register_plugin(Hostile(), name="faults-hostile-id")
    kit.write_tiny("tiny", home=price_bench_home)
    results = tmp_path / "a" / "results"
    before = kit.snapshot(tmp_path)

    result = kit.invoke("run", "../../escaped", "--dataset", "tiny", "--results", str(results))

    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert "unknown predictor" in result.stderr
    assert "invalid predictor id" in result.stderr  # the plugin's refusal is reported
    assert kit.new_files(before, tmp_path) == []
    from price_bench.predictors.registry import InvalidPredictorIdError, PredictorRegistry, PredictorSpec

    with pytest.raises(InvalidPredictorIdError):
        PredictorRegistry().add(PredictorSpec(id="a/b", factory=Escaper))


def test_verified_fingerprint_is_remembered_until_a_file_changes(tmp_path, price_bench_home, faults_data_plugin):
    """Case: a dataset verified once, then a split replaced by another valid split of the same size. Outcome: the remembered check is keyed on each file's inode/size/mtime/ctime, so the change is caught and refused (one line)."""
    import os

    from price_bench.data.dataset import open_dataset

    folder = _shared_copy(tmp_path, price_bench_home)
    open_dataset(str(folder)).verify()  # remembered
    ds = open_dataset(str(folder))
    ds.verify()
    assert "test" not in ds._cache  # a remembered check reads no split
    other = kit.write_tiny("other", home=tmp_path / "other-home", seed=9)
    stat = (folder / "test.parquet").stat()
    (folder / "test.parquet").write_bytes((other.path / "test.parquet").read_bytes())
    os.utime(folder / "test.parquet", ns=(stat.st_atime_ns, stat.st_mtime_ns))  # forge the mtime back

    result = kit.invoke("run", "faults-count", "--dataset", str(folder), "--results", str(tmp_path / "results"))

    kit.assert_one_line_error(result, "does not match the items")
    assert kit.Counting.predicted == []
