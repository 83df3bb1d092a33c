"""The Ray engines on a real local Ray cluster (head + one more node): same dataset, same metrics."""

from __future__ import annotations

import json

import pytest

from price_bench.data.catalog import build_dataset
from price_bench.data.dataset import SPLITS

pytestmark = [pytest.mark.slow, pytest.mark.shared_data]

HPC = "Health_and_Personal_Care.jsonl"
BAD_LINE = 200


@pytest.fixture
def raw_folder(shared_data, tmp_path):
    """The real 2023 records, with a malformed record in the middle of the Health file (line 200)."""
    folder = tmp_path / "raw"
    folder.mkdir()
    source = shared_data / "amazon-2023-raw"
    for path in sorted(source.iterdir()):
        lines = path.read_bytes().splitlines(keepends=True)
        if path.name == HPC:
            lines.insert(BAD_LINE - 1, b'{"title": "cut off mid-record", "price": 12.5, "features": [\n')
        (folder / path.name).write_bytes(b"".join(lines))
    return folder


def _manifest(ds) -> dict:
    return {k: v for k, v in json.loads((ds.path / "manifest.json").read_text()).items() if k != "name"}


def test_ray_build_gives_the_same_split_files_and_fingerprint(ray_cluster, raw_folder, tmp_path):
    local_problems: list[str] = []
    ray_problems: list[str] = []
    local = build_dataset("local", str(raw_folder), home=tmp_path / "a", workers=2, on_problem=local_problems.append)
    on_ray = build_dataset("ray", str(raw_folder), home=tmp_path / "b", engine="ray", on_problem=ray_problems.append)
    assert on_ray.fingerprint == local.fingerprint
    for split in SPLITS:
        assert (on_ray.path / f"{split}.parquet").read_bytes() == (local.path / f"{split}.parquet").read_bytes()
    assert _manifest(on_ray) == _manifest(local)
    expected = f"{raw_folder / HPC}:{BAD_LINE}: malformed JSON"
    assert local_problems and local_problems[0].startswith(expected)
    assert ray_problems == local_problems
    assert local.manifest["counts"]["rejections"]["duplicate text"] == 2


def test_ray_build_strict_stops_at_the_first_bad_record(ray_cluster, raw_folder, tmp_path):
    from price_bench.data.pipeline import CurationError

    with pytest.raises(CurationError, match=rf"{HPC}:{BAD_LINE}: malformed JSON"):
        build_dataset("strict", str(raw_folder), home=tmp_path, engine="ray", strict=True)
    assert not (tmp_path / "datasets" / "strict").exists()


def test_ray_run_matches_local_and_an_interrupted_run_resumes(ray_cluster, raw_folder, tmp_path, register_plugin, monkeypatch):
    from price_bench.harness import progress as progress_module
    from price_bench.harness.runner import RunOptions, run_predictors
    from price_bench.predictors import baselines

    register_plugin(baselines, name="baselines-for-ray")
    dataset = build_dataset("real", str(raw_folder), workers=1)

    def options(name: str, **extra) -> RunOptions:
        return RunOptions(dataset="real", results_dir=tmp_path / name / "results", cache_path=tmp_path / name / "cache.sqlite",
                          progress=False, n_resamples=50, **extra)

    [local] = run_predictors(["random"], options("local"), dataset=dataset)
    assert local.status == "complete"

    calls = {"n": 0}
    advance = progress_module.RunProgress.advance

    def interrupt_after_first_batch(self, *args, **kwargs):
        advance(self, *args, **kwargs)
        calls["n"] += 1
        if calls["n"] == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(progress_module.RunProgress, "advance", interrupt_after_first_batch)
    with pytest.raises(KeyboardInterrupt):
        run_predictors(["random"], options("ray", engine="ray"), dataset=dataset)
    monkeypatch.setattr(progress_module.RunProgress, "advance", advance)

    [resumed] = run_predictors(["random"], options("ray", engine="ray"), dataset=dataset)
    assert resumed.status == "complete"
    assert 0 < resumed.cached_items < len(dataset.test)
    assert resumed.new_items == len(dataset.test) - resumed.cached_items
    assert resumed.record.metrics == local.record.metrics
    assert resumed.record.n_items == local.record.n_items
