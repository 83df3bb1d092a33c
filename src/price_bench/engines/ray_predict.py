"""``price-bench run --engine ray``: the test split predicted by a pool of Ray actors.

The predictor is fitted (or loaded) on the driver exactly as for a local run;
each actor then builds its own instance from the same class, config and seed
and ``load``\\ s the fitted artefact from the work folder once (so the work
folder must be on a filesystem every node sees). The driver hands one batch
at a time to each ready actor and takes the answers back as they finish;
every finished batch is committed to the same SQLite cache and progress bar
as a local run (``accept``), so an interrupted Ray run resumes from the cache
and a Ray run gives the same record and metrics as a local one.

The local engine's rules hold here too:

* **batch timeout** (:func:`~price_bench.predictors.contract.batch_timeout`,
  ``-o ID.batch_timeout_s=S``): a batch still running ``S`` seconds after it
  was handed to its actor has its items marked as errored (never cached) and
  the run moves on; the actor is killed (a hung call cannot be interrupted
  any other way) and a fresh one takes its place. After
  :data:`MAX_CONSECUTIVE_TIMEOUTS` timeouts in a row the remaining batches are
  errored without calling the predictor.
* **a failing predictor**: the first exception ``predict`` raises stops new
  batches; the ones in flight are still accepted, then it is raised (the run
  is ``failed`` with one line, as locally).
* **a dead actor** (its process killed, out of memory, its node lost): the
  actors are never restarted and their calls never retried, so the run fails
  with one :class:`~price_bench.engines.ray_session.RayWorkerDied` line; the
  batches finished before it are cached.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from price_bench.engines.ray_session import RayWorkerDied, is_death, ray_session, task_cause
from price_bench.harness.pool import MAX_CONSECUTIVE_TIMEOUTS  # the local engine's rule, shared
from price_bench.items import Item
from price_bench.predictors.contract import Prediction, Predictor, batch_timeout

BatchResult = tuple[list[Prediction], float]
Accept = Callable[[list[Item], BatchResult], None]


class _PredictActor:
    """One fitted predictor per actor process, loaded once from the work folder."""

    def __init__(self) -> None:
        self.predictor: Predictor | None = None

    def setup(self, cls: type[Predictor], config: Any, seed: int, workdir: str) -> int:
        """Build and load the predictor; the actor's process id (for logs and tests)."""
        import os

        predictor = cls(config, seed=seed)
        if not predictor.load(Path(workdir)):
            raise RuntimeError(f"{cls.id}: load({workdir}) found no fitted artefact on this Ray node (is the data home shared?)")
        self.predictor = predictor
        return os.getpid()

    def predict(self, items: list[Item]) -> tuple[list[bytes], float]:
        """``predict(items)`` as JSON-encoded predictions (never pickles of plugin objects) and its seconds."""
        import orjson

        assert self.predictor is not None, "setup() was not called"
        started = time.perf_counter()
        predictions = list(self.predictor.predict(items))
        seconds = time.perf_counter() - started
        return [orjson.dumps(dataclasses.asdict(p), default=str) for p in predictions], seconds

    def close(self) -> None:
        """``predictor.close()``; a failure is logged (on the actor), never raised: the run's answers stand."""
        from price_bench.harness.fitting import close_predictor
        from price_bench.harness.overrides import Redactor, secret_values

        if self.predictor is not None:
            close_predictor(self.predictor, Redactor(secret_values(self.predictor.config)))


def _errored(batch: list[Item], reason: str, seconds: float = 0.0) -> BatchResult:
    return [Prediction(raw=None, error=reason) for _ in batch], seconds


def _decode(encoded: list[bytes], seconds: float) -> BatchResult:
    import orjson

    return [Prediction(**orjson.loads(b)) for b in encoded], seconds


class _Pool:
    """The prediction actors: started, handed batches one at a time, killed on a timeout and at the end."""

    def __init__(self, ray: Any, predictor: Predictor, workdir: Path) -> None:
        self.ray = ray
        self.remote = ray.remote(num_cpus=1, max_restarts=0, max_task_retries=0)(_PredictActor)
        self.setup_args = (type(predictor), predictor.config, predictor.seed, str(workdir))
        self.actors: list[Any] = []
        self.starting: dict[Any, Any] = {}  # setup ref -> actor
        self.idle: list[Any] = []

    def start(self) -> None:
        actor = self.remote.remote()
        self.actors.append(actor)
        self.starting[actor.setup.remote(*self.setup_args)] = actor

    def kill(self, actor: Any) -> None:
        self.ray.kill(actor, no_restart=True)
        if actor in self.actors:
            self.actors.remove(actor)

    def close_idle(self, timeout: float = 10.0) -> None:
        """Let every idle actor close its predictor (at most ``timeout`` seconds; a hung one is killed anyway)."""
        refs = [actor.close.remote() for actor in self.idle]
        if refs:
            self.ray.wait(refs, num_returns=len(refs), timeout=timeout)

    def kill_all(self) -> None:
        for actor in list(self.actors):
            try:
                self.kill(actor)
            except Exception:  # already gone
                pass
        self.starting.clear()
        self.idle.clear()


def predict_on_ray(
    predictor: Predictor,
    workdir: Path,
    missing: Sequence[Item],
    accept: Accept,
    *,
    address: str | None = None,
    actors: int | None = None,
) -> None:
    """Predict ``missing`` on Ray, calling ``accept(batch, (predictions, seconds))`` per finished batch.

    ``actors``: the pool size (default: one per CPU of the cluster, at most one per batch).
    """
    if not missing:
        return
    size = max(1, int(getattr(predictor, "batch_size", 64) or 64))
    batches = [list(missing[lo : lo + size]) for lo in range(0, len(missing), size)]
    with ray_session(address) as ray:
        cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
        pool = _Pool(ray, predictor, workdir)
        try:
            for _ in range(max(1, min(actors or cpus, len(batches)))):
                pool.start()
            _schedule(ray, pool, deque(batches), accept, batch_timeout(predictor))
            pool.close_idle()
        finally:
            pool.kill_all()  # also on interrupt: a rerun must get the CPUs at once


def _schedule(ray: Any, pool: _Pool, pending: deque[list[Item]], accept: Accept, timeout: float | None) -> None:
    """Hand batches to ready actors until every batch is accepted (the local pool's rules; see the module doc)."""
    running: dict[Any, tuple[Any, list[Item], float]] = {}  # predict ref -> (actor, batch, deadline)
    failure: BaseException | None = None
    timeouts = 0
    while True:
        while failure is None and pending and (pool.idle or timeouts >= MAX_CONSECUTIVE_TIMEOUTS):
            batch = pending.popleft()
            if timeouts >= MAX_CONSECUTIVE_TIMEOUTS:
                accept(batch, _errored(batch, f"not run: {timeouts} batches in a row timed out (batch_timeout_s)"))
                continue
            actor = pool.idle.pop()
            running[actor.predict.remote(batch)] = (actor, batch, time.monotonic() + timeout if timeout else math.inf)
        if not running and (failure is not None or not pending or not pool.starting):
            break
        deadline = min((d for _, _, d in running.values()), default=math.inf)
        wait_s = None if deadline == math.inf else max(0.0, deadline - time.monotonic())
        done, _ = ray.wait([*running, *pool.starting], num_returns=1, timeout=wait_s)
        for ref in done:
            if ref in pool.starting:
                actor = pool.starting.pop(ref)
                try:
                    ray.get(ref)
                    pool.idle.append(actor)
                except Exception as exc:
                    failure = failure or _failure(exc, "while loading the fitted predictor")
                continue
            actor, batch, _ = running.pop(ref)
            try:
                result = _decode(*ray.get(ref))
            except Exception as exc:
                failure = failure or _failure(exc, f"while predicting {len(batch)} items ({batch[0].id} …)")
                continue
            pool.idle.append(actor)
            try:
                accept(batch, result)
                timeouts = 0
            except Exception as exc:
                failure = failure or exc
        now = time.monotonic()
        for ref, (actor, batch, deadline) in list(running.items()):
            if now >= deadline:
                del running[ref]
                pool.kill(actor)  # the hung call cannot be interrupted otherwise; its late answer is never read
                timeouts += 1
                accept(batch, _errored(batch, f"batch timed out after {timeout:g} s (batch_timeout_s)", timeout or 0.0))
                if pending and timeouts < MAX_CONSECUTIVE_TIMEOUTS:
                    pool.start()
    if failure is not None:
        raise failure


def _failure(exc: BaseException, doing: str) -> BaseException:
    """What a failed actor call fails the run with: the predictor's own exception, or one RayWorkerDied line."""
    if is_death(exc):
        return RayWorkerDied(f"a Ray prediction actor died (killed, out of memory or its node lost) {doing}; "
                             "the batches finished before it are cached, rerun the same command to resume")
    return task_cause(exc)
