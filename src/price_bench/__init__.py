"""price-bench: a benchmark harness for product price predictors.

Everything a plugin author or a notebook user needs is importable from here;
deeper module paths are internal and may change::

    # writing a predictor plugin
    from price_bench import (Item, Prediction, Predictor, PredictorConfig, PredictorSpec,
                             Requirement, hookimpl, predict_field, runtime_field)

    # comparing predictors in a notebook
    import price_bench
    results = price_bench.evaluate(["tfidf-ridge", MyPredictor], dataset="demo", limit=500)
    results.metrics_df()

Tests of a plugin use the pytest plugin :mod:`price_bench.testing`.

Names are imported on first use (module ``__getattr__``), so ``import
price_bench`` and ``price-bench --help`` stay fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: public name -> module that defines it (imported on first access).
_EXPORTS: dict[str, str] = {
    # the predictor contract
    "Item": "price_bench.items",
    "Predictor": "price_bench.predictors.contract",
    "PredictorConfig": "price_bench.predictors.contract",
    "Prediction": "price_bench.predictors.contract",
    "Requirement": "price_bench.predictors.contract",
    "predict_field": "price_bench.predictors.contract",
    "runtime_field": "price_bench.predictors.contract",
    "field_role": "price_bench.predictors.contract",
    "cuda_available": "price_bench.predictors.contract",
    "PredictorSpec": "price_bench.predictors.registry",
    "hookimpl": "price_bench.plugins.hookspecs",
    # helpers predictors use
    "parse_price": "price_bench.parsing",
    "data_home": "price_bench.data.dataset",
    # notebooks and scripts
    "evaluate": "price_bench.evaluation",
    "Results": "price_bench.results.collection",
    "load_dataset": "price_bench.data.catalog",
    "Dataset": "price_bench.data.dataset",
    # errors users may catch (every one is a PriceBenchError), and how to show one in a line
    "PriceBenchError": "price_bench.errors",
    "first_line": "price_bench.errors",
    "DatasetError": "price_bench.data.dataset",
    "HarnessError": "price_bench.harness.errors",
}

__all__ = [
    "Dataset",
    "DatasetError",
    "HarnessError",
    "Item",
    "Prediction",
    "Predictor",
    "PredictorConfig",
    "PredictorSpec",
    "PriceBenchError",
    "Requirement",
    "Results",
    "__version__",
    "cuda_available",
    "data_home",
    "evaluate",
    "field_role",
    "first_line",
    "hookimpl",
    "load_dataset",
    "parse_price",
    "predict_field",
    "runtime_field",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'price_bench' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


if TYPE_CHECKING:  # for type checkers and IDEs; at run time the names load lazily
    from price_bench.data.catalog import load_dataset
    from price_bench.data.dataset import Dataset, DatasetError, data_home
    from price_bench.errors import PriceBenchError, first_line
    from price_bench.evaluation import evaluate
    from price_bench.harness.errors import HarnessError
    from price_bench.items import Item
    from price_bench.parsing import parse_price
    from price_bench.plugins.hookspecs import hookimpl
    from price_bench.predictors.contract import (
        Prediction,
        Predictor,
        PredictorConfig,
        Requirement,
        cuda_available,
        field_role,
        predict_field,
        runtime_field,
    )
    from price_bench.predictors.registry import PredictorSpec
    from price_bench.results.collection import Results
