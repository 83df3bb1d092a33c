"""A dead local server is reported as such: by the test fixture, and by the harness as a failed run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from price_bench.testing import LlamaServer, free_port, llama_server_unavailable

pytestmark = pytest.mark.slow


def test_a_crashed_server_is_reported_with_its_signal_and_log_tail(tmp_path):
    reason = llama_server_unavailable()
    if reason:
        pytest.skip(reason)
    server = LlamaServer(n_ctx=512, log_path=tmp_path / "server.log")
    server.start()
    try:
        assert server.death_report("during this test") is None
        os.kill(server.pid, signal.SIGSEGV)  # what a native build did on its first completion
        deadline = time.monotonic() + 10
        while server.exit_description() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        report = server.death_report("during this test")
        assert report is not None and report.startswith("llama_cpp.server killed by SIGSEGV during this test")
        assert "the tail of its log" in report and len(report.splitlines()) > 1  # the log is quoted
    finally:
        server.stop()


def test_a_run_against_a_dead_endpoint_is_failed_with_the_first_error_and_exits_non_zero(tmp_path):
    dead = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there: every call is refused
    env = {**os.environ, "PRICE_BENCH_HOME": str(tmp_path / "home"), "PRICE_BENCH_LOAD_PLUGINS": "price-bench-frontier"}
    env.pop("OPENAI_API_KEY", None)
    command = [
        sys.executable, "-m", "price_bench", "run", "frontier", "--dataset", "demo", "--limit", "3", "--no-progress",
        "--results", str(tmp_path / "results"), "--bootstrap", "20", "--json",
        "-o", f"frontier.base_url={dead}", "-o", "frontier.model=smollm2", "-o", "frontier.max_retries=1",
        "-o", "frontier.backoff_s=0.01", "-o", "frontier.timeout=5",
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 1, done.stdout + done.stderr[-2000:]
    [outcome] = json.loads(done.stdout)
    assert outcome["status"] == "failed"
    assert outcome["reason"].startswith("no usable answer: all 3 items errored (first: ")
    assert "Error: 1 predictor(s) failed: frontier" in done.stderr
    assert "Traceback" not in done.stderr
