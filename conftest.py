"""Shared test kit.

* ``sys._called_from_test`` stops entry-point plugins from loading: tests
  register in-process plugins with the ``register_plugin`` fixture.
* Every test gets its own ``PRICE_BENCH_HOME`` and runs offline.
* ``shared_data`` skips (with the reason) when ``../shared/data`` is absent.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent
SHARED_DATA = REPO.parent / "shared" / "data"


def pytest_configure(config):
    sys._called_from_test = True
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory, monkeypatch):
    home = tmp_path_factory.mktemp("price-bench-home")
    monkeypatch.setenv("PRICE_BENCH_HOME", str(home))
    # Runs in tests must never write into the checkout's committed ./results.
    monkeypatch.setenv("PRICE_BENCH_RESULTS", str(home / "results"))
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    yield home


@pytest.fixture
def price_bench_home(_isolated_home) -> Path:
    """This test's private data home."""
    return _isolated_home


@pytest.fixture
def shared_data() -> Path:
    """``../shared/data``; skips when a clone has no shared folder beside it."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"../shared/data not found at {SHARED_DATA} (only present on the project's machines)")
    return SHARED_DATA


@pytest.fixture
def register_plugin():
    """Register in-process plugin objects for one test, then unregister them.

    Usage: ``register_plugin(obj, name="my-test-plugin")``.
    """
    from price_bench.plugins.manager import pm

    names = []

    def _register(plugin, name: str):
        pm.register(plugin, name=name)
        names.append(name)
        return plugin

    yield _register
    for name in names:
        pm.unregister(name=name)
