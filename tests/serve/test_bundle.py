"""Bundles: what the manifest holds, and every way verification refuses a bundle."""

from __future__ import annotations

import json
import re
import shutil

import pytest

from price_bench.serve.bundle import MANIFEST, BundleError, sha256_file, verify_bundle

pytestmark = pytest.mark.slow  # the session's tfidf-ridge run and bundle


@pytest.fixture
def copy(fitted, tmp_path):
    target = tmp_path / "bundle"
    shutil.copytree(fitted.bundle, target)
    return target


def test_manifest_describes_the_run(fitted):
    bundle = verify_bundle(fitted.bundle)
    m = bundle.manifest
    assert m.predictor.id == "tfidf-ridge" and m.predictor.plugin_distribution == "price-bench-classic"
    assert m.predictor.plugin_version and m.predictor.predictor_version and m.predictor.config_hash and m.predictor.config
    assert re.fullmatch(r"[0-9a-f]{16}", m.predictor.code_digest or "")  # what `serve` compares with the installed code
    assert m.run.run_id == fitted.run_id and m.dataset.name == "small" and m.dataset.fingerprint.startswith("sha256:")
    assert m.metrics["error"].ci_low <= m.metrics["error"].value <= m.metrics["error"].ci_high
    assert m.fallback_price > 0 and m.max_text_chars == 4000
    assert set(m.files) >= {"model.joblib", "model.json", "fit.json"}
    assert all(sha256_file(bundle.artefacts / rel) == entry.sha256 for rel, entry in m.files.items())
    assert sum(m.reference.category_counts.values()) == m.run.n_items
    assert m.reference.text_length is not None and m.reference.predicted_price is not None
    assert verify_bundle(fitted.bundle, expect_digest=bundle.digest).digest == bundle.digest


def test_a_changed_byte_is_refused(copy):
    model = copy / "artefacts" / "model.joblib"
    data = bytearray(model.read_bytes())
    data[10] ^= 1
    model.write_bytes(bytes(data))
    with pytest.raises(BundleError, match="model.joblib: sha256 does not match"):
        verify_bundle(copy)


def test_a_truncated_file_is_refused(copy):
    model = copy / "artefacts" / "model.joblib"
    model.write_bytes(model.read_bytes()[:-5])
    with pytest.raises(BundleError, match="size .* does not match"):
        verify_bundle(copy)


def test_an_unlisted_file_is_refused(copy):
    (copy / "artefacts" / "extra.pkl").write_bytes(b"not listed")
    with pytest.raises(BundleError, match="extra.pkl: file is not listed"):
        verify_bundle(copy)


def test_a_missing_file_is_refused(copy):
    (copy / "artefacts" / "model.json").unlink()
    with pytest.raises(BundleError, match="model.json: listed in bundle.json but missing"):
        verify_bundle(copy)


def test_a_symlink_is_refused(copy, tmp_path):
    model = copy / "artefacts" / "model.joblib"
    outside = tmp_path / "outside.joblib"
    shutil.move(model, outside)
    model.symlink_to(outside)
    with pytest.raises(BundleError, match="symlinks are not allowed"):
        verify_bundle(copy)


@pytest.mark.parametrize("name", ["../escape", "/etc/passwd", "a/../../b", ".hidden"])
def test_a_path_outside_the_bundle_is_refused(copy, name):
    data = json.loads((copy / MANIFEST).read_text())
    data["files"][name] = {"sha256": "0" * 64, "size": 1}
    (copy / MANIFEST).write_text(json.dumps(data))
    with pytest.raises(BundleError, match="is not a plain relative path"):
        verify_bundle(copy)


def test_a_bad_manifest_is_one_line(copy):
    (copy / MANIFEST).write_text("{not json")
    with pytest.raises(BundleError, match="not valid JSON"):
        verify_bundle(copy)
    (copy / MANIFEST).write_text(json.dumps({"format": 99}))
    with pytest.raises(BundleError, match="bundle format 99 is not supported"):
        verify_bundle(copy)
    (copy / MANIFEST).write_text(json.dumps({"format": 1, "files": {}}))
    with pytest.raises(BundleError, match="field 'created_at'"):
        verify_bundle(copy)


def test_a_wrong_digest_is_refused(fitted):
    with pytest.raises(BundleError, match="is not the expected"):
        verify_bundle(fitted.bundle, expect_digest="0" * 64)


def test_bundle_cli_refuses_a_non_empty_folder_and_an_unknown_run(kit, fitted, tmp_path):
    out = kit.run_cli("bundle", fitted.run_id, "--out", str(fitted.bundle), env=fitted.env, check=False)
    assert out.returncode == 1 and out.stderr.strip().splitlines() == [f"Error: {fitted.bundle} exists and is not empty (pass --force to replace it)"]
    out = kit.run_cli("bundle", "no-such-run", "--out", str(tmp_path / "b"), env=fitted.env, check=False)
    assert out.returncode == 1 and "no run 'no-such-run'" in out.stderr and "Traceback" not in out.stderr
    out = kit.run_cli("bundle", fitted.run_id, "--out", str(tmp_path / "b2"), "--json", env=fitted.env)
    assert json.loads(out.stdout)["run_id"] == fitted.run_id
