"""A predictor that hangs never hangs the run, and Ctrl-C always works (issue 13, item 7).

The predictors here are real installed plugins (fake distributions) run by
the real ``price-bench`` entry point in a subprocess, so timeouts, signals
and exit codes are the real ones. Each batch of 5 items in the ``tiny``
dataset (30 test items) is one ``predict`` call.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

import price_bench_faults_plugin_kit as kit  # loaded by tests/faults/conftest.py


#: HANG_FROM: batches from this index on hang (HANG_AFTER_FIRST: every batch but the first; ONE: only batch 1).
#: HANG_MARKER: a file touched when a hanging batch starts. SLOW_CLOSE: close() takes that many seconds.
HANGING = '''
import os, time
from pathlib import Path
from price_bench import Predictor, Prediction, hookimpl

class Hanging(Predictor):
    id = "hanging"
    batch_size = 5
    def predict(self, items):
        index = int(items[0].id.split("-")[1]) // 5
        mode = os.environ.get("HANG_MODE", "none")
        if (mode == "one" and index == 1) or (mode == "after-first" and index >= 1):
            marker = os.environ.get("HANG_MARKER")
            if marker:
                Path(marker).touch()
            time.sleep(60)
        return [Prediction(raw=f"${10 + index}") for _ in items]
    def close(self):
        time.sleep(float(os.environ.get("SLOW_CLOSE", "0")))

@hookimpl
def register_predictors(register):
    register(Hanging)
'''


@pytest.fixture
def env(tmp_path):
    site = tmp_path / "site"
    kit.install(site, "fake-hanging", HANGING)
    kit.tiny_dataset()
    return kit.cli_env(site, "fake-hanging")


def _run_json(env, results: Path, *args: str, **extra: str) -> tuple[subprocess.CompletedProcess, dict]:
    result = kit.price_bench({**env, **extra}, "run", "hanging", "--dataset", "tiny", "--results", str(results), "--json", *args)
    kit.assert_no_traceback(result)
    [outcome] = json.loads(result.stdout) if result.stdout.strip() else [{}]
    return result, outcome


def _errors(outcome: dict) -> list[str | None]:
    record = json.loads(Path(outcome["record"]).read_text())
    rows = [json.loads(line) for line in (Path(outcome["record"]).parent / record["predictions_file"]).read_text().splitlines()]
    return [row["error"] for row in rows]


def test_hung_batch_times_out_and_the_run_moves_on(env, tmp_path):
    """Case: one predict batch hangs. Outcome: after batch_timeout_s its 5 items are errored (not cached), the other 25 are scored, the run completes but exits 1 saying how many items errored (above --max-error-share), and a rerun retries only those 5."""
    started = time.monotonic()
    result, outcome = _run_json(env, tmp_path / "results", "-o", "hanging.batch_timeout_s=1", HANG_MODE="one")
    assert time.monotonic() - started < 30, "the hung batch was waited for"
    assert result.returncode == 1, result.stderr[-2000:]
    assert "hanging: 5 of 30 items errored" in result.stderr
    assert outcome["status"] == "complete" and outcome["metrics"]["coverage"]["value"] == pytest.approx(25 / 30 * 100)
    errors = _errors(outcome)
    assert errors[5:10] == ["batch timed out after 1 s (batch_timeout_s)"] * 5
    assert set(errors[:5] + errors[10:]) == {None}

    rerun, again = _run_json(env, tmp_path / "results", HANG_MODE="none")
    assert rerun.returncode == 0
    assert (again["cached_items"], again["new_items"]) == (25, 5), "the 25 answers were kept; only the timed-out 5 are redone"


def test_predictor_that_keeps_hanging_is_given_up_on(env, tmp_path):
    """Case: every batch after the first hangs. Outcome: after 3 timeouts in a row the rest are errored without calling it; the run ends in seconds with the first batch's answers kept."""
    started = time.monotonic()
    result, outcome = _run_json(env, tmp_path / "results", "-o", "hanging.batch_timeout_s=1", HANG_MODE="after-first")
    assert time.monotonic() - started < 30
    assert result.returncode == 1 and "hanging: 25 of 30 items errored" in result.stderr, result.stderr[-2000:]
    errors = _errors(outcome)
    assert errors[:5] == [None] * 5
    assert errors[5:20] == ["batch timed out after 1 s (batch_timeout_s)"] * 15
    assert errors[20:] == ["not run: 3 batches in a row timed out (batch_timeout_s)"] * 10


def _interrupted_run(env, tmp_path, signals: int, **extra: str):
    """Start a --workers 3 run whose later batches hang, Ctrl-C it ``signals`` times; returns (process, seconds from
    the last Ctrl-C to the exit, stderr)."""
    marker = tmp_path / "hanging-started"
    process = subprocess.Popen(
        kit.price_bench_cmd("run", "hanging", "--dataset", "tiny", "--results", str(tmp_path / "results"), "--workers", "3"),
        env={**env, "HANG_MODE": "after-first", "HANG_MARKER": str(marker), **extra},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert process.poll() is None and time.monotonic() < deadline, process.communicate()
            time.sleep(0.05)
        time.sleep(1.0)  # the first batch's answer reaches the cache
        for n in range(signals):
            if n:
                time.sleep(0.5)  # the first Ctrl-C's cleanup is under way
            process.send_signal(signal.SIGINT)
            sent = time.monotonic()
        _, stderr = process.communicate(timeout=60)
        return process, time.monotonic() - sent, stderr
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_ctrl_c_with_workers_stops_at_once_and_keeps_finished_batches(env, tmp_path):
    """Case: Ctrl-C during a --workers 3 run with batches hung in flight. Outcome: exits 130 within 2 s with one resume line, no traceback; the finished batch is cached and reused by the rerun."""
    process, seconds, stderr = _interrupted_run(env, tmp_path, signals=1)
    assert process.returncode == 130, stderr
    assert seconds < 2.0, f"took {seconds:.1f} s: the batch in flight was waited for"
    assert kit.lines(stderr, "Interrupted") == ["Interrupted: finished batches are saved; rerun the same command to resume."]
    kit.assert_no_traceback(stderr)

    rerun, outcome = _run_json(env, tmp_path / "results", HANG_MODE="none")
    assert rerun.returncode == 0 and outcome["status"] == "complete"
    assert outcome["cached_items"] >= 5, "the batch finished before Ctrl-C was lost"


def test_second_ctrl_c_during_a_slow_cleanup_exits_without_a_traceback(env, tmp_path):
    """Case: Ctrl-C twice while the predictor's close() is slow. Outcome: the second one exits 130 at once with one line, no traceback; committed batches are kept."""
    process, seconds, stderr = _interrupted_run(env, tmp_path, signals=2, SLOW_CLOSE="30")
    assert process.returncode == 130, stderr
    assert seconds < 2.0
    assert kit.lines(stderr, "Interrupted") == ["Interrupted again: exiting now."]
    kit.assert_no_traceback(stderr)

    rerun, outcome = _run_json(env, tmp_path / "results", HANG_MODE="none")
    assert rerun.returncode == 0 and outcome["cached_items"] >= 5


def _interrupt_build(args: list[str], tmp: Path, group: bool, settle: float = 0.5) -> tuple[int, str]:
    """Run ``price-bench data build ARGS`` and Ctrl-C it once the build is under way; returns (exit code, stderr).

    The first temporary folder of the build (the curation spill in the data home, or anything in the
    build's private ``TMPDIR``) tells when it has started; ``settle`` seconds later comes the signal;
    ``group`` sends it to the whole process group, as a terminal does.
    """
    private_tmp = tmp / "tmp"
    private_tmp.mkdir()
    home = Path(os.environ["PRICE_BENCH_HOME"])

    def started() -> bool:
        return any(private_tmp.iterdir()) or any(home.glob("**/.curate-*")) or any(home.glob("**/.*.tmp-*"))

    process = subprocess.Popen(kit.price_bench_cmd("data", "build", *args), env={**os.environ, "TMPDIR": str(private_tmp)},
                               start_new_session=group, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not started() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(settle)
        if process.poll() is None:
            if group:
                os.killpg(process.pid, signal.SIGINT)
            else:
                process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    if process.returncode == 0:
        pytest.skip("the build finished before Ctrl-C: nothing left to interrupt")
    return process.returncode, stderr


def test_data_build_interrupted_exits_130(price_bench_home, tmp_path):
    """Case: Ctrl-C during `data build`. Outcome: exit 130 (not 1) with one line, no traceback; no half-built dataset is left to be used."""
    code, stderr = _interrupt_build(["demo"], tmp_path, group=False)
    assert code == 130, stderr
    assert kit.lines(stderr, "Interrupted") == ["Interrupted."]
    kit.assert_no_traceback(stderr)
    assert not (price_bench_home / "datasets" / "demo" / "manifest.json").exists()


@pytest.mark.slow  # writes and curates 20,000 raw records
def test_data_build_with_workers_interrupted_from_a_terminal(price_bench_home, tmp_path):
    """Case: Ctrl-C (to the whole process group) during `data build --workers 2`. Outcome: exit 130 with one line; the worker processes print no traceback; no half-built dataset is left."""
    from price_bench.data.demo import write_raw

    source = write_raw(price_bench_home / "raw.jsonl", n=20_000)
    code, stderr = _interrupt_build(["pooled", "--source", str(source), "--workers", "2"], tmp_path, group=True, settle=1.5)
    assert code == 130, stderr
    assert kit.lines(stderr, "Interrupted") == ["Interrupted."]
    kit.assert_no_traceback(stderr)
    assert not (price_bench_home / "datasets" / "pooled" / "manifest.json").exists()
