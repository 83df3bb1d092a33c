"""Running predictors on datasets: the runner and its parts, one concern a module.

* :mod:`~price_bench.harness.runner` -- ``price-bench run``: orchestration only
  (what runs in which order; each step is one of the modules below).
* :mod:`~price_bench.harness.options` -- :class:`RunOptions` and the checks made
  before anything runs (ids, seed, resamples, folders, the dataset).
* :mod:`~price_bench.harness.runkey` -- :class:`RunKey`: the one key of a fit and
  its answers, building both the cache key and the work folder (``run``,
  ``predict`` and ``serve bundle`` all use it).
* :mod:`~price_bench.harness.overrides` -- ``-o ID.key=value`` parsing, config
  building, config hashing and secret scrubbing.
* :mod:`~price_bench.harness.fitting` -- fit a predictor or restore its fit.
* :mod:`~price_bench.harness.workdir` -- work folders, the fit marker and the
  saved ``info()``.
* :mod:`~price_bench.harness.pool` -- calling ``predict`` batch by batch, on daemon
  threads with timeouts.
* :mod:`~price_bench.harness.answers` -- checking a plugin's answers before they are
  cached.
* :mod:`~price_bench.harness.cache` -- the SQLite cache of per-item predictions.
* :mod:`~price_bench.harness.scoring` -- answers to metrics and per-item rows (a pure
  function).
* :mod:`~price_bench.harness.records` -- the run's result record: built, completed,
  written.
* :mod:`~price_bench.harness.outcomes` -- whether a run's outcomes make a clean run.
* :mod:`~price_bench.harness.predict_text` -- ``price-bench predict``: one product text.
* :mod:`~price_bench.harness.provenance`, :mod:`~price_bench.harness.codedigest`,
  :mod:`~price_bench.harness.progress` -- where and with what code a run ran; the
  live progress bar.
"""

from price_bench.harness.errors import HarnessError

__all__ = ["HarnessError"]
