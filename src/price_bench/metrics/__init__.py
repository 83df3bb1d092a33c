"""Pure, vectorised metrics for price predictions.

* :mod:`price_bench.metrics.point` -- one number per run (Error, RMSLE, Hits ...),
  each documented with its direction in :data:`METRICS`.
* :mod:`price_bench.metrics.bootstrap` -- bootstrap confidence intervals and
  the paired bootstrap comparison of two runs on the same items.
* :mod:`price_bench.metrics.breakdown` -- the same metrics per category and
  per price band.
* :func:`score` -- everything the harness writes into a result record.

numpy is imported by these modules; the CLI imports them lazily.
"""

from price_bench.metrics.point import METRICS, MetricSpec
from price_bench.metrics.summary import score

__all__ = ["METRICS", "MetricSpec", "score"]
