"""Serving a fitted predictor: bundles, the HTTP app, the prediction log and live monitoring.

* :mod:`price_bench.serve.bundle` -- ``price-bench bundle``: a self-describing,
  checksummed copy of a complete run's fitted predictor; verifying and loading it.
* :mod:`price_bench.serve.app` -- the FastAPI app (``price-bench serve``).
* :mod:`price_bench.serve.log` -- the rotated JSON-lines log of predictions and feedback.
* :mod:`price_bench.serve.monitor` -- joining that log, rolling business metrics and drift.
* :mod:`price_bench.serve.metrics` -- the Prometheus instruments of ``/metrics``.

Only :mod:`~price_bench.serve.app` and :mod:`~price_bench.serve.metrics` need the
``serve`` extra (FastAPI, uvicorn, prometheus-client); bundling and monitoring
need only the core.
"""

from __future__ import annotations

from price_bench.harness.errors import HarnessError

SERVE_EXTRA_HINT = "pip install 'price-bench[serve]'"


class ServeError(HarnessError):
    """A user error of bundling, serving or monitoring (one line, names the file or field)."""


def require_serve_extra() -> None:
    """Raise :class:`ServeError` (one line) when FastAPI, uvicorn or prometheus-client is missing."""
    import importlib

    missing = []
    for name in ("fastapi", "uvicorn", "prometheus_client"):
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    if missing:
        raise ServeError(f"the serve extra is not installed ({', '.join(missing)} missing): {SERVE_EXTRA_HINT}")
