"""Calling a predictor batch by batch: in this thread, or with several batches in flight on daemon threads.

:func:`predict_in_batches` is what the runner calls. With one worker and no
batch timeout the batches run one after the other in the calling thread;
otherwise :func:`run_pool` keeps up to ``workers`` batches in flight, each
on its own daemon thread (a batch in flight is never waited for on
``KeyboardInterrupt``), and abandons a batch that runs past its timeout.
Every result is handed to ``accept`` in the calling thread, so the caller
needs no locks.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, wait

from price_bench.harness.errors import one_line
from price_bench.items import Item
from price_bench.predictors.contract import Prediction, Predictor

#: What one batch gives: its predictions and the seconds ``predict`` took.
BatchResult = tuple[list[Prediction], float]
#: Takes one finished batch and its result (called in the calling thread only).
Accept = Callable[[list[Item], BatchResult], None]

#: After this many batches in a row time out, the remaining items are marked as errored without calling the predictor.
MAX_CONSECUTIVE_TIMEOUTS = 3


def batches(items: list[Item], size: int) -> Iterator[list[Item]]:
    """``items`` in consecutive slices of ``size`` (at least 1)."""
    size = max(1, int(size))
    for start in range(0, len(items), size):
        yield items[start : start + size]


def call_predict(predictor: Predictor, batch: list[Item]) -> BatchResult:
    """``predictor.predict(batch)`` and the seconds it took."""
    started = time.perf_counter()
    predictions = predictor.predict(batch)
    return predictions, time.perf_counter() - started


def errored(batch: list[Item], reason: str, seconds: float = 0.0) -> BatchResult:
    """Errored predictions for every item of ``batch`` (never cached: the next run retries them)."""
    return [Prediction(raw=None, error=reason) for _ in batch], seconds


def predict_in_batches(predictor: Predictor, items: list[Item], batch_size: int, workers: int, accept: Accept,
                       timeout: float | None = None) -> None:
    """Predict ``items`` in batches of ``batch_size``, ``workers`` at a time, handing each result to ``accept``."""
    pending = batches(items, batch_size)
    if workers == 1 and timeout is None:
        for batch in pending:
            accept(batch, call_predict(predictor, batch))
        return
    run_pool(predictor, pending, workers, accept, timeout)


def run_pool(predictor: Predictor, pending: Iterable[list[Item]], workers: int, accept: Accept, timeout: float | None = None) -> None:
    """At most ``workers`` batches in flight, each on a daemon thread; results accepted in the calling thread.

    A batch still running ``timeout`` seconds after it started is abandoned:
    its items are accepted as errored predictions and its thread is left to
    finish alone (its late answer is discarded). After
    :data:`MAX_CONSECUTIVE_TIMEOUTS` timeouts in a row the remaining batches
    are errored without calling the predictor. The first exception stops new
    batches; the ones in flight are still accepted, then it is raised.
    ``KeyboardInterrupt`` propagates at once, never waiting for a batch.
    """
    in_flight: dict[Future[BatchResult], tuple[list[Item], float]] = {}
    failure: BaseException | None = None
    timeouts = 0
    queue = iter(pending)
    while True:
        while failure is None and len(in_flight) < workers:
            batch = next(queue, None)
            if batch is None:
                break
            if timeouts >= MAX_CONSECUTIVE_TIMEOUTS:
                accept(batch, errored(batch, f"not run: {timeouts} batches in a row timed out (batch_timeout_s)"))
                continue
            in_flight[start_batch(predictor, batch)] = (batch, time.monotonic() + timeout if timeout else math.inf)
        if not in_flight:
            break
        next_deadline = min(deadline for _, deadline in in_flight.values())
        done, _ = wait(in_flight, timeout=None if next_deadline == math.inf else max(0.0, next_deadline - time.monotonic()),
                       return_when=FIRST_COMPLETED)
        for future in done:
            batch, _ = in_flight.pop(future)
            try:
                accept(batch, future.result())
                timeouts = 0
            except Exception as exc:
                failure = failure or exc
        now = time.monotonic()
        for future, (batch, deadline) in list(in_flight.items()):
            if now >= deadline and not future.done():
                del in_flight[future]
                timeouts += 1
                accept(batch, errored(batch, f"batch timed out after {timeout:g} s (batch_timeout_s)", timeout or 0.0))
    if failure is not None:
        raise failure


def start_batch(predictor: Predictor, batch: list[Item]) -> Future[BatchResult]:
    """Run ``predictor.predict(batch)`` on a new daemon thread; the future gets ``(predictions, seconds)``."""
    future: Future[BatchResult] = Future()

    def work() -> None:
        if not future.set_running_or_notify_cancel():
            return
        try:
            future.set_result(call_predict(predictor, batch))
        except (Exception, KeyboardInterrupt) as exc:  # re-raised in the calling thread
            future.set_exception(exc)
        except BaseException as exc:  # e.g. SystemExit from a plugin: it fails this predictor, never the process
            future.set_exception(RuntimeError(f"predict raised {one_line(exc)}"))

    threading.Thread(target=work, name=f"predict-{predictor.id or 'predictor'}", daemon=True).start()
    return future
