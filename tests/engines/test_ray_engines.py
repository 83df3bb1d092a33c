"""The Ray engines on a real local Ray cluster (head + one more node): same dataset, same metrics, same failure rules.

Every test here runs real Ray processes on two nodes; the failures are real
too (a predictor that hangs, a ``SIGKILL`` of a Ray worker process).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from price_bench.data.catalog import build_dataset
from price_bench.data.dataset import SPLITS

pytestmark = [pytest.mark.slow, pytest.mark.shared_data]

HPC = "Health_and_Personal_Care.jsonl"
BAD_LINE = 200
BAD_RECORD = b'{"title": "cut off mid-record", "price": 12.5, "features": [\n'


@pytest.fixture(scope="module")
def raw_folder(request, tmp_path_factory):
    """The real 2023 records, with a malformed record in the middle of the Health file (line 200)."""
    shared = _shared_data(request)
    folder = tmp_path_factory.mktemp("raw")
    for path in sorted((shared / "amazon-2023-raw").iterdir()):
        lines = path.read_bytes().splitlines(keepends=True)
        if path.name == HPC:
            lines.insert(BAD_LINE - 1, BAD_RECORD)
        (folder / path.name).write_bytes(b"".join(lines))
    return folder


@pytest.fixture(scope="module")
def local_build(raw_folder, tmp_path_factory):
    """The local engine's dataset of ``raw_folder`` and the problems it reported (built once per module)."""
    problems: list[str] = []
    dataset = build_dataset("local", str(raw_folder), home=tmp_path_factory.mktemp("home"), workers=1, on_problem=problems.append)
    return dataset, problems


@pytest.fixture(scope="module")
def big_file(raw_folder, tmp_path_factory):
    """~48 MiB of real records (12 byte ranges of 4 MiB), ``parent_asin`` varied per copy; line 5 is malformed."""
    import orjson

    records = [orjson.loads(line) for line in (raw_folder / "Musical_Instruments.jsonl").read_bytes().splitlines() if line.strip()]
    records += [orjson.loads(line) for line in (raw_folder / HPC).read_bytes().splitlines() if line.strip() and line != BAD_RECORD.strip()]
    path = tmp_path_factory.mktemp("big") / "big.jsonl"
    lines = 0
    with path.open("wb") as out:
        copy = 0
        while out.tell() < 48 * 1024 * 1024:
            for record in records:
                out.write(orjson.dumps({**record, "parent_asin": f"{record.get('parent_asin')}-{copy}"}) + b"\n")
                lines += 1
                if lines == 4:
                    out.write(BAD_RECORD)
                    lines += 1
            copy += 1
    return path, lines


def _shared_data(request) -> Path:
    """The ``shared_data`` fixture's folder, for module-scoped fixtures (skips when absent)."""
    path = Path(os.environ.get("PRICE_BENCH_SHARED_DATA") or request.config.getini("price_bench_shared_data"))
    path = path if path.is_absolute() else (request.config.rootpath / path).resolve()
    if not path.is_dir():
        pytest.skip(f"shared data folder not found at {path} (only present on the project's machines)")
    return path


def _manifest(ds) -> dict:
    return {k: v for k, v in json.loads((ds.path / "manifest.json").read_text()).items() if k != "name"}


# -- data build --engine ray ---------------------------------------------------------------------------


def test_ray_build_gives_the_same_split_files_and_fingerprint(ray_cluster, raw_folder, local_build, tmp_path):
    local, local_problems = local_build
    ray_problems: list[str] = []
    on_ray = build_dataset("local", str(raw_folder), home=tmp_path, engine="ray", on_problem=ray_problems.append)
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


def test_ray_build_strict_stops_every_worker_early_in_a_large_file(ray_cluster, big_file, tmp_path, caplog):
    """A bad record at line 5 of a 12-range file: the other ranges are skipped or stopped, not read to the end."""
    from price_bench.data.pipeline import CurationError

    path, lines = big_file
    caplog.set_level(logging.INFO, logger="price_bench.engines.ray_data")
    with pytest.raises(CurationError, match=rf"{path.name}:5: malformed JSON"):
        build_dataset("strict", str(path), home=tmp_path, engine="ray", strict=True)
    [message] = [r.getMessage() for r in caplog.records if "--strict: stopped" in r.getMessage()]
    records, curated = _counts(message)
    assert records < lines // 4, message  # the whole file is ~{lines} records; the workers stopped long before
    assert curated <= 2, message  # the bad range itself, at most one more that was already running (none started later)
    assert not (tmp_path / "datasets" / "strict").exists()


def _counts(message: str) -> tuple[int, int]:
    """(records, units curated to the end) from the engine's ``--strict`` log line."""
    numbers = [int(w) for w in message.replace("(", " ").split() if w.isdigit()]
    return numbers[0], numbers[1]


def test_ray_build_with_a_killed_worker_fails_in_one_line_and_writes_nothing(ray_cluster, big_file, tmp_path):
    """SIGKILL of the Ray worker process running the curation task: one CurationError line, no retry, no dataset."""
    from price_bench.data.pipeline import CurationError

    path, _ = big_file
    killed = _kill_when_running("ray::MapBatches(_curate_units)")
    with pytest.raises(CurationError) as info:
        build_dataset("killed", str(path), home=tmp_path, engine="ray")
    assert killed.pid, "no Ray worker running _curate_units was found to kill"
    message = str(info.value)
    assert message.startswith("a Ray worker process died") and "nothing was written" in message and "\n" not in message
    assert not (tmp_path / "datasets" / "killed").exists()
    assert not any(p.name.startswith(".") for p in (tmp_path / "datasets").iterdir())


class _Killer(threading.Event):
    pid: int | None = None


def _kill_when_running(task: str, timeout: float = 120.0) -> _Killer:
    """A thread that SIGKILLs the first Ray worker process (of this test's cluster) whose title shows it running ``task``."""
    import psutil

    done = _Killer()
    me = psutil.Process(os.getpid())

    def title(proc: psutil.Process) -> str:
        try:
            return " ".join(proc.cmdline())
        except psutil.Error:
            return ""

    def watch() -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and done.pid is None:
            for proc in me.children(recursive=True):  # the cluster's raylets and their workers descend from this process
                if title(proc).startswith(task):
                    os.kill(proc.pid, signal.SIGKILL)
                    done.pid = proc.pid
                    break
            time.sleep(0.02)
        done.set()

    threading.Thread(target=watch, daemon=True).start()
    return done


# -- run --engine ray -----------------------------------------------------------------------------------


@pytest.fixture
def sleepy(register_predictor):
    """A predictor whose ``predict`` hangs (sleeps 600 s) on the batches holding one of ``hang_ids``.

    Defined inside the fixture so that Ray pickles the class by value (the
    actors need no importable test module); the class attributes travel with it.
    """
    from price_bench.predictors.contract import Prediction, Predictor

    class Sleepy(Predictor):
        id = "sleepy-for-ray"
        description = "Guesses $20; hangs on the batches holding one of hang_ids."
        batch_size = 8
        hang_ids: frozenset[str] = frozenset()
        pid_file: str | None = None

        def fit(self, train, validation, workdir: Path) -> None:
            (workdir / "fitted").write_text("1")

        def load(self, workdir: Path) -> bool:
            return (workdir / "fitted").exists()

        def predict(self, items):
            if any(item.id in self.hang_ids for item in items):
                if self.pid_file:
                    Path(self.pid_file).write_text(str(os.getpid()))
                time.sleep(600)
            return [Prediction(price=20.0) for _ in items]

    return register_predictor(Sleepy)


def _options(tmp_path: Path, name: str, **extra):
    from price_bench.harness.runner import RunOptions

    return RunOptions(dataset="real", results_dir=tmp_path / name / "results", cache_path=tmp_path / name / "cache.sqlite",
                      progress=False, n_resamples=50, **extra)


def test_ray_run_matches_local_and_an_interrupted_run_resumes(ray_cluster, local_build, tmp_path, register_plugin, monkeypatch):
    from price_bench.harness import progress as progress_module
    from price_bench.harness.runner import run_predictors
    from price_bench.predictors import baselines

    register_plugin(baselines, name="baselines-for-ray")
    dataset, _ = local_build
    [local] = run_predictors(["random"], _options(tmp_path, "local"), dataset=dataset)
    assert local.status == "complete"

    calls = {"n": 0}
    advance = progress_module.RunProgress.advance

    def interrupt_after_first_batch(self, *args, **kwargs):
        advance(self, *args, **kwargs)
        calls["n"] += 1
        if calls["n"] == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(progress_module.RunProgress, "advance", interrupt_after_first_batch)
    monkeypatch.setattr(baselines.RandomUniform, "batch_size", 16)  # several batches, so that one is cached before the interrupt
    with pytest.raises(KeyboardInterrupt):
        run_predictors(["random"], _options(tmp_path, "ray", engine="ray"), dataset=dataset)
    monkeypatch.setattr(progress_module.RunProgress, "advance", advance)

    [resumed] = run_predictors(["random"], _options(tmp_path, "ray", engine="ray"), dataset=dataset)
    assert resumed.status == "complete"
    assert 0 < resumed.cached_items < len(dataset.test)
    assert resumed.new_items == len(dataset.test) - resumed.cached_items
    assert resumed.record.metrics == local.record.metrics
    assert resumed.record.n_items == local.record.n_items


def test_ray_run_enforces_the_batch_timeout_like_the_local_engine(ray_cluster, local_build, tmp_path, sleepy):
    """A hung batch errors its items after batch_timeout_s on both engines (same record); the hung actor is killed."""
    from price_bench.harness.runner import run_predictors

    dataset, _ = local_build
    test_ids = [item.id for item in dataset.test]
    assert len(test_ids) > 3 * sleepy.batch_size
    sleepy.hang_ids = frozenset({test_ids[sleepy.batch_size + 1]})  # the second batch hangs
    overrides = {sleepy.id: {"batch_timeout_s": "5"}}
    [local] = run_predictors([sleepy.id], _options(tmp_path, "local", overrides=overrides, workers=2), dataset=dataset)
    started = time.monotonic()
    [on_ray] = run_predictors([sleepy.id], _options(tmp_path, "ray", overrides=overrides, engine="ray"), dataset=dataset)
    seconds = time.monotonic() - started
    assert seconds < 120, f"the Ray run waited for the hung batch ({seconds:.0f} s)"
    for outcome in (local, on_ray):
        assert outcome.status == "complete", outcome.reason
        assert outcome.record.item_errors == sleepy.batch_size
        assert outcome.first_error == f"{test_ids[sleepy.batch_size]}: batch timed out after 5 s (batch_timeout_s)"
    assert on_ray.record.metrics == local.record.metrics


def test_ray_run_with_a_killed_actor_fails_in_one_line(ray_cluster, local_build, tmp_path, sleepy):
    """SIGKILL of the actor process mid-batch: the run is failed with one RayWorkerDied line (no silent restart)."""
    from price_bench.harness.runner import run_predictors

    dataset, _ = local_build
    pid_file = tmp_path / "hung.pid"
    sleepy.hang_ids, sleepy.pid_file = frozenset({dataset.test[0].id}), str(pid_file)

    def kill_when_hung() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not (pid_file.exists() and pid_file.read_text()):
            time.sleep(0.05)
        if pid_file.exists():
            os.kill(int(pid_file.read_text()), signal.SIGKILL)

    killer = threading.Thread(target=kill_when_hung, daemon=True)
    killer.start()
    overrides = {sleepy.id: {"batch_timeout_s": "0"}}  # no limit: the death, not the timeout, ends the batch
    [outcome] = run_predictors([sleepy.id], _options(tmp_path, "ray", overrides=overrides, engine="ray"), dataset=dataset)
    killer.join(5)
    assert pid_file.exists(), "the hung batch never started"
    assert outcome.status == "failed"
    assert outcome.reason.startswith("predict failed: RayWorkerDied: a Ray prediction actor died"), outcome.reason
    assert "\n" not in outcome.reason
