"""Test kit for price-bench and its plugins.

``price_bench.testing`` is a pytest plugin (the ``pytest11`` entry point
``price_bench.testing.fixtures``; with an older install pass
``-p price_bench.testing.fixtures``). Once price-bench is installed, every
test in the environment gets an isolated ``PRICE_BENCH_HOME`` and results
folder, runs offline, and loads no entry-point plugin (register predictors
in-process instead). Fixtures (see :mod:`price_bench.testing.fixtures`):

``price_bench_home``
    this test's private data home (datasets, cache, work folders; results under ``results/``);
``tiny_dataset``
    a small deterministic dataset named ``tiny``, made by the real curation code from synthetic raw records;
``register_predictor``
    ``register_predictor(MyPredictor)`` registers classes in-process for one test;
``register_plugin``
    ``register_plugin(module_or_object)`` registers a whole plugin (its hooks) for one test;
``fake_openai_server``
    a local OpenAI-compatible HTTP stand-in (``.url`` ends in ``/v1``); options through
    ``@pytest.mark.fake_openai_server(...)``;
``shared_data``
    a folder of real data beside the checkout (ini ``price_bench_shared_data``), or a skip.

The harness entry points that tests drive are re-exported here, so a
plugin's tests import only ``price_bench`` and ``price_bench.testing``:
``run_predictors``, ``RunOptions``, ``get_registry``, ``PredictorRegistry``,
``build_config``, ``config_hash``, ``read_predictions``, ``write_dataset``, ``write_split``,
``get_dataset`` and ``pm`` (the plugin manager). Local servers:
``FakeOpenAIServer`` (the scripted OpenAI stand-in, :mod:`price_bench.testing.openai_server`),
``CountingProxy``, ``LlamaServer`` and its helpers (:mod:`price_bench.testing.local_servers`).

Isolation can be switched off for a project that only happens to share the
environment: ``price_bench_isolate = false`` in its pytest ini options, or
``-p no:price_bench.testing.fixtures``.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS: dict[str, str] = {
    "run_predictors": "price_bench.harness.runner",
    "RunOptions": "price_bench.harness.runner",
    "RunOutcome": "price_bench.harness.runner",
    "get_registry": "price_bench.plugins.manager",
    "pm": "price_bench.plugins.manager",
    "PredictorRegistry": "price_bench.predictors.registry",
    "build_config": "price_bench.harness.overrides",
    "config_hash": "price_bench.harness.overrides",
    "read_predictions": "price_bench.results.store",
    "write_dataset": "price_bench.data.dataset",
    "write_split": "price_bench.data.dataset",
    "get_dataset": "price_bench.data.catalog",
    "build_tiny_dataset": "price_bench.testing.fixtures",
    "FakeOpenAIServer": "price_bench.testing.openai_server",
    "default_answer": "price_bench.testing.openai_server",
    "CountingProxy": "price_bench.testing.local_servers",
    "LlamaServer": "price_bench.testing.local_servers",
    "free_port": "price_bench.testing.local_servers",
    "llama_server_unavailable": "price_bench.testing.local_servers",
    "smollm2_gguf": "price_bench.testing.local_servers",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'price_bench.testing' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
