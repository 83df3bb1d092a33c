"""The pytest plugin of :mod:`price_bench.testing`: isolation and fixtures for price-bench tests.

Loaded through the ``pytest11`` entry point ``price_bench.testing.fixtures``
(or ``-p price_bench.testing.fixtures``). Unless the ini option
``price_bench_isolate`` is false, every test:

* gets its own ``PRICE_BENCH_HOME`` and ``PRICE_BENCH_RESULTS`` (under
  pytest's tmp folder), so no run writes into a checkout's ``results/`` or
  the user's cache;
* runs without ``OPENAI_API_KEY`` and with the Hugging Face libraries offline;
* loads no ``price_bench`` entry-point plugin (``sys._called_from_test``):
  tests register what they need with ``register_predictor`` or
  ``register_plugin``; set ``PRICE_BENCH_LOAD_PLUGINS`` to load entry points.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from price_bench.plugins.hookspecs import hookimpl

if TYPE_CHECKING:
    from price_bench.data.dataset import Dataset

#: Raw records generated for ``tiny_dataset``, and their seed (deterministic).
TINY_RAW_RECORDS = 600
TINY_SEED = 11
TINY_NAME = "tiny"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        "price_bench_isolate",
        type="bool",
        default=True,
        help="price-bench: give every test its own PRICE_BENCH_HOME, run offline and load no entry-point plugins (default true).",
    )
    parser.addini(
        "price_bench_shared_data",
        default="../shared/data",
        help="price-bench: folder of real data for the shared_data fixture, relative to the rootdir "
        "(PRICE_BENCH_SHARED_DATA overrides it).",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "fake_openai_server(**options): keyword arguments of the FakeOpenAIServer that fake_openai_server starts"
    )
    if not config.getini("price_bench_isolate"):
        return
    sys._called_from_test = True  # type: ignore[attr-defined]  # price-bench then loads no entry-point plugin
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def _isolate(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path_factory.mktemp("price-bench-home")
    monkeypatch.setenv("PRICE_BENCH_HOME", str(home))
    # Runs in tests must never write into a checkout's committed ./results.
    monkeypatch.setenv("PRICE_BENCH_RESULTS", str(home / "results"))
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    return home


@pytest.fixture(autouse=True)
def _isolated_home(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path | None:
    """Every test's private PRICE_BENCH_HOME (None when ``price_bench_isolate`` is false)."""
    if not request.config.getini("price_bench_isolate"):
        return None
    return _isolate(tmp_path_factory, monkeypatch)


@pytest.fixture
def price_bench_home(
    _isolated_home: Path | None, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """This test's private data home (``PRICE_BENCH_HOME``); result records go to its ``results/``."""
    return _isolated_home if _isolated_home is not None else _isolate(tmp_path_factory, monkeypatch)


# -- datasets -----------------------------------------------------------------------------------------


def build_tiny_dataset(
    home: Path | None = None, *, name: str = TINY_NAME, n_raw: int = TINY_RAW_RECORDS, seed: int = TINY_SEED
) -> Dataset:
    """Generate ``n_raw`` synthetic raw records and curate them (the real pipeline, recipe ``demo@1``) into ``name``.

    The same arguments always give the same items and fingerprint.
    """
    from price_bench.data import demo
    from price_bench.data.catalog import build_dataset

    with tempfile.TemporaryDirectory(prefix="price-bench-tiny-") as tmp:
        raw = demo.write_raw(Path(tmp) / "tiny.jsonl", n=n_raw, seed=seed)
        label = f"generated:{demo.GENERATOR_ID}(n={n_raw},seed={seed})"
        return build_dataset(name, str(raw), recipe="demo@1", home=home, synthetic=True, labels={str(raw): label})


@pytest.fixture(scope="session")
def _tiny_dataset_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``tiny`` curated once per session; tests get a copy."""
    home = tmp_path_factory.mktemp("price-bench-tiny-template")
    path: Path = build_tiny_dataset(home).path
    return path


@pytest.fixture
def tiny_dataset(price_bench_home: Path, _tiny_dataset_template: Path) -> Dataset:
    """A small deterministic dataset ``tiny`` (a few hundred items) in this test's home, curated by the real code.

    Returns the :class:`~price_bench.Dataset`; ``--dataset tiny`` and
    ``evaluate(..., dataset="tiny")`` find it too.
    """
    from price_bench.data.dataset import datasets_dir, open_dataset

    target = datasets_dir(price_bench_home) / TINY_NAME
    shutil.copytree(_tiny_dataset_template, target)
    return open_dataset(TINY_NAME, home=price_bench_home)


@pytest.fixture
def shared_data(request: pytest.FixtureRequest) -> Path:
    """The real-data folder beside the checkout (ini ``price_bench_shared_data``); skips when absent."""
    configured = os.environ.get("PRICE_BENCH_SHARED_DATA") or request.config.getini("price_bench_shared_data")
    path = Path(configured)
    if not path.is_absolute():
        path = (request.config.rootpath / path).resolve()
    if not path.is_dir():
        pytest.skip(f"shared data folder not found at {path} (only present on the project's machines)")
    return path


# -- plugins and predictors ----------------------------------------------------------------------------


@pytest.fixture
def register_plugin() -> Iterator[Callable[..., Any]]:
    """Register in-process plugin objects (modules or objects with hook implementations) for one test.

    ``register_plugin(price_bench_myplugin)`` or ``register_plugin(obj, name="my-test-plugin")``;
    every one is unregistered after the test.
    """
    from price_bench.plugins.manager import pm

    names: list[str] = []

    def _register(plugin: Any, name: str | None = None) -> Any:
        name = name or getattr(plugin, "__name__", None) or f"test-plugin-{len(names)}"
        pm.register(plugin, name=name)
        names.append(name)
        return plugin

    yield _register
    for name in names:
        pm.unregister(name=name)
    # A failure recorded for a test's plugin must not outlive it (later tests would see it).
    from price_bench.plugins import manager

    manager._failures[:] = [failure for failure in manager._failures if failure.name not in names]


class _PredictorsPlugin:
    """An in-process plugin whose only hook registers the given predictor classes or specs."""

    def __init__(self, predictors: tuple[Any, ...]) -> None:
        self.predictors = predictors

    @hookimpl
    def register_predictors(self, register: Callable[[Any], None]) -> None:
        for predictor in self.predictors:
            register(predictor)


@pytest.fixture
def register_predictor(register_plugin: Callable[..., Any]) -> Callable[..., Any]:
    """Register predictor classes (or ``PredictorSpec`` objects) in-process for one test.

    ``register_predictor(MyPredictor)`` returns the class, so it also works as
    a decorator; ``price-bench run``, ``list`` and ``evaluate("my-id")`` then
    see it. Unregistered after the test.
    """

    def _register(*predictors: Any) -> Any:
        if not predictors:
            raise TypeError("register_predictor needs at least one Predictor class or PredictorSpec")
        plugin = _PredictorsPlugin(predictors)
        ids = ",".join(getattr(p, "id", "?") for p in predictors)
        register_plugin(plugin, name=f"test-predictors[{ids}]")
        return predictors[0]

    return _register


# -- outside services ----------------------------------------------------------------------------------


@pytest.fixture
def fake_openai_server(request: pytest.FixtureRequest) -> Iterator[Any]:
    """A started :class:`~price_bench.testing.openai_server.FakeOpenAIServer` on 127.0.0.1 (``.url`` ends in ``/v1``).

    Options come from ``@pytest.mark.fake_openai_server(**kwargs)``; the
    server stops after the test.
    """
    try:
        from price_bench.testing.openai_server import FakeOpenAIServer
    except ImportError as exc:
        pytest.skip(f"price_bench.testing.openai_server is not available: {exc}")
    marker = request.node.get_closest_marker("fake_openai_server")
    options = dict(marker.kwargs) if marker is not None else {}
    with FakeOpenAIServer(**options) as server:
        yield server
