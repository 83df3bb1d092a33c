"""Red team: a shared results folder with planted links cannot make `run` write outside it."""

from __future__ import annotations


import pytest

import price_bench_faults_data_kit as kit  # loaded by tests/faults/conftest.py


@pytest.fixture
def counting(register_plugin):
    kit.reset_counters()
    register_plugin(kit.Plugin(), name="redteam-links-plugin")
    yield kit
    kit.reset_counters()


@pytest.mark.parametrize("level", ["predictor", "dataset"])
def test_linked_record_folder_is_not_written_through(tmp_path, price_bench_home, counting, level):
    """Case: results folder whose <dataset>/ or <dataset>/<predictor>/ is a link to a folder elsewhere. Outcome: run refuses to write through the link in one line naming it (the predictions are cached, so a rerun into a clean folder costs nothing); nothing is written outside."""
    kit.write_tiny("tiny", home=price_bench_home)
    results = tmp_path / "shared-results"
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("mine")
    if level == "predictor":
        (results / "tiny").mkdir(parents=True)
        (results / "tiny" / "faults-count").symlink_to(outside, target_is_directory=True)
    else:
        results.mkdir()
        (results / "tiny").symlink_to(outside, target_is_directory=True)
    before = kit.snapshot(outside)

    result = kit.invoke("run", "faults-count", "--dataset", "tiny", "--results", str(results), "--bootstrap", "0")

    kit.assert_one_line_error(result, "is a link", "links are not followed")
    assert kit.new_files(before, outside) == []
    assert sorted(p.name for p in outside.rglob("*")) == ["keep.txt"]
    assert sum(counting.Counting.predicted) == 30  # predicted once ...
    clean = tmp_path / "clean-results"
    again = kit.invoke("run", "faults-count", "--dataset", "tiny", "--results", str(clean), "--bootstrap", "0")
    assert again.exit_code == 0, again.output
    assert sum(counting.Counting.predicted) == 30  # ... and the rerun came from the cache
    assert len(list(clean.rglob("*.json"))) == 1
