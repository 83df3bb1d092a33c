"""The one error hierarchy of price-bench, and the one way to show an error in a line.

Every error price-bench raises on purpose derives from :class:`PriceBenchError`;
its message's first line is a whole sentence for a user, naming the file, line,
field or predictor at fault. The command line prints that line (``Error: ...``)
and exits 1, never a traceback; a notebook or a plugin can catch them all with
one ``except PriceBenchError``.

The subclasses stay importable from the modules that raise them::

    PriceBenchError                       price_bench.errors
    ├── HarnessError                      price_bench.harness.errors (a bad run request)
    │   ├── RecordWriteError              price_bench.harness.runner
    │   └── ServeError                    price_bench.serve
    │       └── BundleError               price_bench.serve.bundle
    ├── DatasetError                      price_bench.data.dataset
    │   ├── SourceError                   price_bench.data.sources
    │   ├── CurationError                 price_bench.data.pipeline
    │   └── RayUnavailable                price_bench.engines.ray_session
    ├── ResultError                       price_bench.results.store
    ├── LeaderboardError                  price_bench.leaderboard
    ├── PluginError (also ValueError)     price_bench.plugins.manager
    ├── UnknownPredictorError (KeyError)  price_bench.predictors.registry
    ├── DuplicatePredictorError (ValueError)
    └── InvalidPredictorIdError (ValueError)

The ``KeyError`` and ``ValueError`` mixins stay for callers that catch those.
This module imports nothing, so any module may import it.
"""

from __future__ import annotations

__all__ = ["PriceBenchError", "first_line"]


class PriceBenchError(Exception):
    """Base of every error price-bench raises on purpose; the first line of its message is for a user."""


def first_line(exc: BaseException, *, typed: bool = False, limit: int | None = None) -> str:
    """The first non-blank line of ``exc``'s message (its type name when the message is empty).

    ``typed`` prefixes the type, ``"ValueError: bad value"``: the form for an
    exception from foreign code (a plugin, a library), whose message alone may
    not say what went wrong. ``limit`` cuts the line to that many characters,
    ending with "…".
    """
    lines = str(exc).strip().splitlines()
    name = type(exc).__name__
    if not lines:
        line = name
    else:
        line = f"{name}: {lines[0].strip()}" if typed else lines[0].strip()
    if limit is not None and len(line) > limit:
        line = line[: max(limit - 1, 0)] + "…"
    return line
