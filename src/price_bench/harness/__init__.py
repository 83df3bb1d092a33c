"""Running predictors on datasets: the runner and its parts.

* :mod:`~price_bench.harness.overrides` -- ``-o ID.key=value`` parsing, config
  building, config hashing and secret scrubbing.
* :mod:`~price_bench.harness.workdir` -- per predictor/config/version work
  folders and the fit marker.
* :mod:`~price_bench.harness.cache` -- the SQLite cache of per-item predictions.
* :mod:`~price_bench.harness.runner` -- ``price-bench run``.
"""

from price_bench.harness.errors import HarnessError

__all__ = ["HarnessError"]
