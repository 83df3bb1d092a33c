"""Connecting to a Ray cluster for the ``ray`` engine."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from price_bench.data.dataset import DatasetError


class RayUnavailable(DatasetError):
    """``--engine ray`` without Ray installed, or no cluster at the address (one line)."""


def import_ray():
    """``ray`` (with Ray Data), or RayUnavailable naming the extra to install."""
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise RayUnavailable("--engine ray needs Ray Data: pip install 'price-bench[ray]'") from None
    return ray


@contextmanager
def ray_session(address: str | None = None) -> Iterator[object]:
    """Ray connected to ``address`` (else ``RAY_ADDRESS``, else a Ray started for this process).

    A connection this function opened is closed again on exit; one that was
    already open (a driver inside ``ray job submit``, a test cluster) is left
    as it is.
    """
    ray = import_ray()
    if ray.is_initialized():
        yield ray
        return
    target = address or os.environ.get("RAY_ADDRESS") or "local"  # "local": a new Ray for this command
    try:
        ray.init(address=target, log_to_driver=False, include_dashboard=False, configure_logging=False)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise RayUnavailable(f"cannot connect to Ray at {target}: {' '.join(str(exc).split())[:200]}") from None
    try:
        ray.data.DataContext.get_current().enable_progress_bars = False
        yield ray
    finally:
        ray.shutdown()
