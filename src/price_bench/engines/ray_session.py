"""Connecting to a Ray cluster for the ``ray`` engine."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from price_bench.data.dataset import DatasetError


class RayUnavailable(DatasetError):
    """``--engine ray`` without Ray installed, or no cluster at the address (one line)."""


class RayWorkerDied(DatasetError):
    """A Ray worker or actor process died while it held work (killed, out of memory, its node lost); one line.

    The engines never let Ray retry a task or restart an actor silently: a
    process that dies fails the build or the run (nothing half-written).
    """


def is_death(exc: BaseException) -> bool:
    """True when ``exc`` (or what it wraps) says a Ray process, actor, node or object was lost."""
    import ray.exceptions as rex

    deaths = (rex.RayActorError, rex.WorkerCrashedError, rex.NodeDiedError, rex.ObjectLostError, rex.OwnerDiedError,
              rex.LocalRayletDiedError, rex.OutOfMemoryError)
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, deaths):
            return True
        cause = getattr(current, "cause", None)
        current = cause if isinstance(cause, BaseException) else (current.__cause__ or current.__context__)
    return False


def task_cause(exc: BaseException) -> BaseException:
    """The exception user code raised inside a Ray task (unwrapped from RayTaskError), else ``exc`` itself."""
    import ray.exceptions as rex

    current = exc
    for _ in range(8):
        cause = getattr(current, "cause", None)
        if not isinstance(current, rex.RayTaskError) or not isinstance(cause, BaseException):
            break
        current = cause
    if "UserCodeException" in type(current).__name__ and isinstance(current.__cause__, BaseException):
        return task_cause(current.__cause__)  # Ray Data wraps the UDF's exception once more
    return current


def import_ray() -> Any:
    """``ray`` (with Ray Data), or RayUnavailable naming the extra to install."""
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise RayUnavailable("--engine ray needs Ray Data: pip install 'price-bench[ray]'") from None
    return ray


@contextmanager
def ray_session(address: str | None = None) -> Iterator[Any]:
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
