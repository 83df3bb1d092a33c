"""The core passes ``ruff check`` and ``mypy --strict`` (both configured in pyproject.toml).

They run as tests so that the README's test command (and CI, which runs it) checks them; the
tools come with the ``test`` extra. Outside CI a missing tool skips with the reason.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _tool(module: str) -> None:
    if importlib.util.find_spec(module) is None:
        if os.environ.get("CI"):
            pytest.fail(f"{module} is not installed: CI installs it with the test extra (scripts/setup.sh --dev)")
        pytest.skip(f"{module} is not installed (pip install -e '.[test]')")


def _run(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def test_ruff_finds_nothing_in_the_core():
    _tool("ruff")
    out = _run("ruff", "check", "--no-cache", "src/price_bench", timeout=300)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]


@pytest.mark.slow
def test_mypy_strict_passes_on_the_core(tmp_path):
    _tool("mypy")
    out = _run("mypy", "--cache-dir", str(tmp_path / "mypy-cache"), timeout=1200)
    assert out.returncode == 0, out.stdout[-6000:] + out.stderr[-2000:]
    assert "Success: no issues found" in out.stdout
