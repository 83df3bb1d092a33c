"""Broken dataset folders in the data home: one line naming the file, the others still usable."""

from __future__ import annotations

import json

import pytest

import price_bench_faults_data_kit as kit  # loaded by tests/faults/conftest.py


@pytest.fixture
def faults_data_plugin(register_plugin):
    kit.reset_counters()
    register_plugin(kit.Plugin(), name="faults-data-plugin")
    yield kit
    kit.reset_counters()


@pytest.mark.parametrize("damage", ["garbage", "truncated", "missing column"])
def test_corrupt_split_parquet(tmp_path, price_bench_home, faults_data_plugin, damage):
    """Case: a split parquet in the data home is garbage, truncated or lacks a column. Outcome: `run` and `data show` print one line naming the file (no ArrowInvalid traceback), exit 1, nothing predicted."""
    ds = kit.write_tiny("tiny", home=price_bench_home)
    split = ds.path / "test.parquet"
    if damage == "garbage":
        split.write_bytes(b"PAR1 this is not parquet at all")
    elif damage == "truncated":
        split.write_bytes(split.read_bytes()[:200])
    else:
        import pyarrow.parquet as pq

        pq.write_table(pq.read_table(split).drop(["price"]), split)

    ran = kit.invoke("run", "faults-count", "--dataset", "tiny", "--results", str(tmp_path / "results"))
    kit.assert_one_line_error(ran, str(split), "unreadable split file")
    assert kit.Counting.predicted == []

    shown = kit.invoke("data", "show", "tiny")
    kit.assert_one_line_error(shown, str(split), "unreadable split file")


@pytest.mark.parametrize(
    "damage", ["no fingerprint", "bad json", "not an object", "recipe not an object"],
)
def test_one_unreadable_manifest_does_not_hide_the_others(price_bench_home, damage):
    """Case: one manifest.json without a fingerprint / not JSON / not an object / a bad field. Outcome: `data list` shows every other dataset, one warning line names the bad manifest, exit 1; `data info` of it gives one line."""
    kit.write_tiny("alpha", home=price_bench_home)
    bad = kit.write_tiny("broken", home=price_bench_home, seed=2)
    kit.write_tiny("gamma", home=price_bench_home, seed=3)
    manifest = bad.path / "manifest.json"
    data = json.loads(manifest.read_text())
    if damage == "no fingerprint":
        del data["fingerprint"]
        manifest.write_text(json.dumps(data))
    elif damage == "bad json":
        manifest.write_text("{ half a manifest")
    elif damage == "not an object":
        manifest.write_text("[]")
    else:
        data["recipe"] = "reference-2023@1"
        manifest.write_text(json.dumps(data))

    listed = kit.invoke("data", "list")

    assert listed.exit_code == 1, listed.output
    assert "Traceback" not in listed.output
    assert "alpha" in listed.stdout and "gamma" in listed.stdout and "broken" not in listed.stdout
    [warning] = [line for line in kit.lines(listed.stderr) if line.startswith("warning:")]
    assert str(manifest) in warning

    info = kit.invoke("data", "info", "broken")
    kit.assert_one_line_error(info, str(manifest))


def test_existing_demo_that_is_broken_is_not_rebuilt_silently(price_bench_home):
    """Case: the data home's demo has a damaged manifest. Outcome: one line naming it (exit 1); it is not silently replaced."""
    demo = kit.write_tiny("demo", home=price_bench_home)
    (demo.path / "manifest.json").write_text("{}")

    shown = kit.invoke("data", "show", "demo")

    kit.assert_one_line_error(shown, "manifest.json", "fingerprint")
    assert (demo.path / "manifest.json").read_text() == "{}"


@pytest.mark.parametrize(
    "field, value",
    [("counts", {"rejections": ["not", "a", "dict"]}), ("recipe", {"price_bands": "cheap"}), ("sources", [{"no": "label"}]),
     ("counts", {"categories": {"test": 3}})],
    ids=["rejections-list", "bands-text", "source-without-label", "categories-flat"],
)
def test_manifest_with_wrong_nested_types_is_one_line(tmp_path, price_bench_home, field, value):
    """Case: a shared manifest.json whose nested fields have the wrong JSON types. Outcome: `data info` of the folder names the file and field in one line (exit 1), no AttributeError traceback."""
    import shutil

    ds = kit.write_tiny("tiny", home=price_bench_home)
    folder = tmp_path / "shared"
    shutil.copytree(ds.path, folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest[field] = value
    (folder / "manifest.json").write_text(json.dumps(manifest))

    info = kit.invoke("data", "info", str(folder))

    kit.assert_one_line_error(info, str(folder / "manifest.json"), "field")
