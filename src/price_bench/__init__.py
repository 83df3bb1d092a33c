"""price-bench: a benchmark harness for product price predictors.

Public API for plugin authors lives here::

    from price_bench import Item, Prediction, Predictor, Requirement, hookimpl
"""

from price_bench.items import Item
from price_bench.predictors.contract import Prediction, Predictor, Requirement
from price_bench.plugins.hookspecs import hookimpl

__version__ = "0.1.0"

__all__ = ["Item", "Prediction", "Predictor", "Requirement", "hookimpl", "__version__"]
