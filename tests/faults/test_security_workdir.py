"""Pickled artefacts are loaded only from the harness's own work folder, only when they match the recorded digests."""

from __future__ import annotations

import json

import pytest

import price_bench_faults_data_kit as kit  # loaded by tests/faults/conftest.py


@pytest.fixture
def faults_data_fitted(register_plugin, price_bench_home, tmp_path):
    """faults-pickle fitted once on ``tiny``: (run args, its work folder)."""
    kit.reset_counters()
    register_plugin(kit.Plugin(), name="faults-data-plugin")
    kit.write_tiny("tiny", home=price_bench_home)
    args = ("run", "faults-pickle", "--dataset", "tiny", "--results", str(tmp_path / "results"), "--overwrite", "always")
    first = kit.invoke(*args)
    assert first.exit_code == 0, first.output
    [model] = list((price_bench_home / "work").rglob("model.pkl"))
    assert kit.Pickled.fits == [1]
    yield args, model.parent
    kit.reset_counters()


def test_fit_marker_records_a_digest_of_every_artefact(faults_data_fitted):
    """Case: a fit finishes. Outcome: fit.json records the sha256 of every file the fit wrote; the next run loads them (no refit)."""
    import hashlib

    args, workdir = faults_data_fitted
    marker = json.loads((workdir / "fit.json").read_text())
    assert marker["files"] == {"model.pkl": hashlib.sha256((workdir / "model.pkl").read_bytes()).hexdigest()}
    again = kit.invoke(*args)
    assert again.exit_code == 0, again.output
    assert kit.Pickled.fits == [1] and kit.Pickled.loads == [1]
    assert "refitting" not in again.stderr


def test_replaced_pickle_is_never_loaded(faults_data_fitted, tmp_path):
    """Case: model.pkl in the work folder replaced by a hostile pickle. Outcome: digest mismatch, one-line note, refit; the pickle is never loaded (marker file absent), run complete."""
    args, workdir = faults_data_fitted
    marker = tmp_path / "PWNED"
    (workdir / "model.pkl").write_bytes(kit.evil_pickle(marker))

    result = kit.invoke(*args)

    assert result.exit_code == 0, result.output
    assert not marker.exists()
    [note] = [line for line in kit.lines(result.stderr) if "refitting" in line]
    assert note.startswith("note: faults-pickle: work folder") and "model.pkl changed after the fit" in note
    assert kit.Pickled.fits == [1, 1] and kit.Pickled.loads == []


@pytest.mark.parametrize("change", ["garbage", "added", "link", "missing"])
def test_tampered_work_folder_is_refitted(faults_data_fitted, tmp_path, change):
    """Case: work folder has a garbage artefact, an added file, a link, or a missing file. Outcome: detected before load, one-line note naming the file, refit, exit 0."""
    args, workdir = faults_data_fitted
    if change == "garbage":
        (workdir / "model.pkl").write_bytes(b"\x00garbage" * 10)
    elif change == "added":
        (workdir / "extra.pkl").write_bytes(kit.evil_pickle(tmp_path / "PWNED"))
    elif change == "link":
        (tmp_path / "outside.pkl").write_bytes(kit.evil_pickle(tmp_path / "PWNED"))
        (workdir / "model.pkl").unlink()
        (workdir / "model.pkl").symlink_to(tmp_path / "outside.pkl")
    else:
        (workdir / "model.pkl").unlink()

    result = kit.invoke(*args)

    assert result.exit_code == 0, result.output
    assert not (tmp_path / "PWNED").exists()
    notes = [line for line in kit.lines(result.stderr) if "refitting" in line]
    assert len(notes) == 1, result.stderr
    assert kit.Pickled.loads == [] and kit.Pickled.fits == [1, 1]


def test_marker_without_digests_is_refitted(faults_data_fitted):
    """Case: fit.json from an older version (no digests) or unreadable. Outcome: one-line note, refit, never a load of unverified files."""
    args, workdir = faults_data_fitted
    (workdir / "fit.json").write_text(json.dumps({"fit_seconds": 1.0, "finished_at": "2026-01-01T00:00:00+00:00"}))

    result = kit.invoke(*args)

    assert result.exit_code == 0, result.output
    assert any("no file digests" in line for line in kit.lines(result.stderr))
    assert kit.Pickled.loads == [] and kit.Pickled.fits == [1, 1]


def test_load_that_raises_is_refitted(faults_data_fitted, monkeypatch):
    """Case: the artefacts verify but the predictor's load raises (e.g. KeyError from a bad model). Outcome: one-line note, refit instead of "fit failed", exit 0."""
    args, workdir = faults_data_fitted

    def broken_load(self, folder):
        raise KeyError("weights")

    monkeypatch.setattr(kit.Pickled, "load", broken_load)
    result = kit.invoke(*args)

    assert result.exit_code == 0, result.output
    [note] = [line for line in kit.lines(result.stderr) if "refitting" in line]
    assert "load raised KeyError" in note
    assert kit.Pickled.fits == [1, 1]


def test_garbage_model_joblib_of_classic_is_refitted(tmp_path, price_bench_home, register_plugin):
    """Case: price-bench-classic's model.joblib overwritten with garbage. Outcome: detected by the digest check, one-line note, refit (no "fit failed: KeyError", no --refit needed)."""
    pytest.importorskip("sklearn")
    classic = pytest.importorskip("price_bench_classic")
    register_plugin(classic, name="faults-data-classic")
    kit.write_tiny("tiny", home=price_bench_home)
    args = ("run", "tfidf-ridge", "--dataset", "tiny", "--results", str(tmp_path / "results"), "--overwrite", "always")
    assert kit.invoke(*args).exit_code == 0
    [model] = list((price_bench_home / "work").rglob("model.joblib"))
    model.write_bytes(b"not a joblib file at all")

    result = kit.invoke(*args)

    assert result.exit_code == 0, result.output
    assert "fit failed" not in result.output
    [note] = [line for line in kit.lines(result.stderr) if "refitting" in line]
    assert "model.joblib changed after the fit" in note
    assert model.read_bytes() != b"not a joblib file at all"
