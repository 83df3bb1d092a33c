"""``price-bench run``: fit, predict (cached, resumable), score and record.

For every requested predictor, :func:`run_predictors`:

1. resolves its spec and builds its config (defaults plus ``-o`` overrides;
   bad keys and values are :class:`HarnessError` before anything runs);
2. checks ``skip_reason`` -- unmet requirements give a ``skipped`` record;
3. looks up cached predictions (SQLite, keyed by predictor id, config hash,
   plugin version, predictor version, seed and dataset fingerprint); when
   every item is cached the predictor is not even instantiated;
4. otherwise instantiates it, ``load``s a previous fit from its work folder
   or ``fit``s (then writes the fit marker), and predicts the missing items
   in batches of ``batch_size`` with ``workers`` batches in flight,
   committing every finished batch to the cache;
5. parses raw answers, scores unparseable ones with the train median (the
   documented fallback, reported as ``parse_failures`` and ``coverage``),
   computes metrics and writes the record plus its sidecar.

A predictor that raises gets a ``failed`` record with a one-line error; the
others still run. A batch that runs past the predictor's batch timeout
(:func:`~price_bench.predictors.contract.batch_timeout`) has its items marked
as errored and the run moves on. ``KeyboardInterrupt`` stops the run at once
(batches run on daemon threads, so a batch in flight is never waited for),
keeping the finished batches committed: rerunning the same command resumes.
"""

from __future__ import annotations

import math
import os
import secrets as _secrets
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from price_bench import __version__
from price_bench.data.dataset import Dataset, DatasetError
from price_bench.harness.cache import CacheKey, PredictionCache
from price_bench.harness.codedigest import code_digest, keep_cache_on_code_change
from price_bench.harness.errors import HarnessError
from price_bench.harness.overrides import Redactor, build_config, config_hash, is_secret_field, scrubbed_config, secret_values
from price_bench.harness.progress import RunProgress
from price_bench.harness.workdir import MARKER, clear_marker, read_marker, verify_marker, workdir_for, write_marker
from price_bench.items import Item
from price_bench.parsing import parse_price
from price_bench.predictors.contract import Prediction, Predictor, batch_timeout, field_role
from price_bench.predictors.registry import PredictorRegistry, PredictorSpec, UnknownPredictorError
from price_bench.results.schema import DatasetRef, PredictorInfo, RunRecord, Timing, Usage

CI_METHOD_NAMES = {"percentile": "percentile bootstrap", "bca": "BCa bootstrap"}
Overwrite = Literal["never", "always", "missing"]
OVERWRITE_MODES: tuple[str, ...] = ("never", "always", "missing")
#: ``--seed`` is stored in SQLite and JSON as a signed 64-bit integer.
SEED_MAX = 2**63 - 1
#: ``--bootstrap``: 0 turns the confidence intervals off; otherwise at least this many
#: resamples (with fewer, the 2.5% and 97.5% percentiles are the extreme resamples
#: themselves). The default is 1000; 10-100 are for quick checks and tests only.
MIN_RESAMPLES = 10


@dataclass
class RunOptions:
    """Everything ``price-bench run`` takes besides the predictor ids.

    ``overwrite``: ``missing`` (default) reuses cached predictions and computes
    only the missing ones; ``always`` ignores the prediction cache (recomputes
    and overwrites it); ``never`` skips a predictor that already has a
    complete record for the same config, versions, seed, dataset and limit.
    ``refit`` ignores a previous fit in the work folder.
    """

    dataset: str = "demo"
    limit: int | None = None
    workers: int = 1
    overrides: dict[str, dict[str, str]] = field(default_factory=dict)
    overwrite: Overwrite = "missing"
    refit: bool = False
    results_dir: Path | None = None
    seed: int = 0
    n_resamples: int = 1000
    progress: bool | None = None
    home: Path | None = None
    cache_path: Path | None = None
    #: False: the sidecar keeps parsed prices but no raw model text, which can
    #: quote the product (for data that must not be redistributed).
    raw_output: bool = True
    #: Run matrix: per predictor id, the override sets to run it with (one row each),
    #: applied on top of ``overrides``; see :func:`price_bench.harness.overrides.parse_variants`.
    variants: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    #: Reuse answers and fits made by an earlier version of the predictor's code
    #: (see :mod:`price_bench.harness.codedigest`).
    keep_cache_on_code_change: bool = False
    #: "percentile" or "bca": how the bootstrap CIs are computed.
    ci_method: str = "percentile"
    #: ``local`` (threads here) or ``ray`` (Ray Data actors; see price_bench.engines.ray_predict).
    engine: str = "local"
    ray_address: str | None = None


@dataclass
class RunOutcome:
    """What happened to one predictor."""

    predictor_id: str
    status: str  # "complete" | "failed" | "skipped" | "up-to-date"
    record: RunRecord | None = None
    path: Path | None = None
    reason: str | None = None
    new_items: int = 0
    cached_items: int = 0
    #: The first per-item error of a run (one line), for the summary; None when no item errored.
    first_error: str | None = None


@dataclass
class _Target:
    spec: PredictorSpec
    cls: type[Predictor] | None
    config: Any
    error: str | None = None


# -- public entry points -------------------------------------------------------------------


def open_dataset_by_name(name: str) -> Dataset:
    """The dataset ``name`` (built on first use when the catalog knows how), or HarnessError.

    A bare name is looked up in the data home only; a folder is used only for
    an explicit path (``./x``, ``/data/x``). The fingerprint is recomputed
    from the splits (:meth:`Dataset.verify`) before anything is keyed on it.
    """
    try:
        from price_bench.data.catalog import get_dataset

        dataset = get_dataset(name)
        dataset.verify()
        if dataset.source == "path":
            _note(f"dataset {dataset.name} read from the folder {dataset.path} (an explicit path)")
        return dataset
    except DatasetError as exc:
        raise HarnessError(str(exc)) from None


def check_options(options: RunOptions) -> None:
    """Reject bad run options before any work (HarnessError, one line)."""
    if options.overwrite not in OVERWRITE_MODES:
        raise HarnessError(f"--overwrite must be one of {', '.join(OVERWRITE_MODES)}, not {options.overwrite!r}")
    if options.limit is not None and options.limit < 1:
        raise HarnessError("--limit must be a positive number of items")
    if options.workers < 1:
        raise HarnessError("--workers must be at least 1")
    check_seed(options.seed)
    check_resamples(options.n_resamples)


def check_seed(seed: int) -> int:
    """``seed`` when it is an integer in 0..2**63-1 (it is stored as a signed 64-bit integer)."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= SEED_MAX:
        raise HarnessError(f"--seed must be an integer from 0 to {SEED_MAX}, not {seed!r}")
    return seed


def check_resamples(n_resamples: int) -> int:
    """``n_resamples`` when it is 0 (no confidence intervals) or at least :data:`MIN_RESAMPLES`."""
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, int) or not (
        n_resamples == 0 or n_resamples >= MIN_RESAMPLES
    ):
        raise HarnessError(f"--bootstrap must be 0 (no confidence intervals) or at least {MIN_RESAMPLES}, not {n_resamples!r}")
    return n_resamples


def check_writable(folder: Path, what: str) -> None:
    """Create ``folder`` and prove a file can be written there (HarnessError, one line, otherwise)."""
    from price_bench.data.folders import ensure_writable

    try:
        ensure_writable(folder, what)
    except DatasetError as exc:
        raise HarnessError(str(exc)) from None


def resolve_ids(registry: PredictorRegistry, ids: Sequence[str], all_: bool = False) -> list[str]:
    """The predictor ids to run (``--all``: every registered one), unknown ids rejected."""
    if all_:
        return registry.ids()
    if not ids:
        raise HarnessError("name at least one predictor id, or pass --all (see `price-bench list`)")
    for pid in ids:
        try:
            registry.get(pid)
        except UnknownPredictorError as exc:
            raise HarnessError(str(exc)) from None
    return list(dict.fromkeys(ids))


def run_predictors(
    ids: Sequence[str],
    options: RunOptions,
    *,
    registry: PredictorRegistry | None = None,
    dataset: Dataset | None = None,
    on_outcome: Callable[[RunOutcome], None] | None = None,
) -> list[RunOutcome]:
    """Run each predictor in ``ids`` on ``options.dataset``; one outcome per predictor.

    Raises :class:`HarnessError` for user errors found before anything runs
    (unknown id, override for a predictor that is not run, bad config key or
    value, missing dataset). ``KeyboardInterrupt`` propagates after the
    finished batches are saved.
    """
    check_options(options)
    if registry is None:
        from price_bench.plugins.manager import get_registry

        registry = get_registry()
    ids = resolve_ids(registry, ids)
    stray = sorted((set(options.overrides) | set(options.variants)) - set(ids))
    if stray:
        raise HarnessError(f"-o/--vary {stray[0]}.…: predictor {stray[0]!r} is not part of this run")
    targets = [_target(registry.get(pid), {**options.overrides.get(pid, {}), **variant})
               for pid in ids for variant in (options.variants.get(pid) or [{}])]
    if dataset is None:
        dataset = open_dataset_by_name(options.dataset)
    else:
        try:
            dataset.verify()
        except DatasetError as exc:
            raise HarnessError(str(exc)) from None
    context = _Context(dataset, options)
    check_writable(context.results_dir, "results folder")
    home = options.home or _data_home()
    check_writable(home / "work", "data home")
    if options.cache_path is None:
        check_writable(home / "cache", "data home")
    outcomes = []
    try:
        with RunProgress(options.progress) as progress:
            for target in targets:
                outcome = _run_one(target, context, progress)
                outcomes.append(outcome)
                if on_outcome is not None:
                    on_outcome(outcome)
    finally:
        context.close()
    return outcomes


def fit_or_load(
    predictor: Predictor,
    dataset: Dataset,
    workdir: Path,
    *,
    refit: bool = False,
    note: Callable[[str], None] | None = None,
) -> tuple[float | None, bool]:
    """Restore the predictor from ``workdir`` or fit it on ``dataset``; returns (fit seconds, reused).

    ``load`` only ever sees a folder whose files still match the digests the
    fit marker recorded after the last fit (artefacts may be pickles). A
    folder that does not match, or a ``load`` that raises, is refitted with
    a one-line note (``note``, default stderr) instead of failing.
    """
    note = note or _note
    workdir.mkdir(parents=True, exist_ok=True)
    marker = None if refit else read_marker(workdir)
    if marker is not None:
        problem = verify_marker(workdir, marker)
        if problem is None:
            try:
                if predictor.load(workdir):
                    return marker.fit_seconds, True
            except Exception as exc:  # a corrupt artefact: refit rather than fail
                problem = f"load raised {one_line(exc, 120)}"
        if problem is not None:
            note(f"{predictor.id}: work folder {workdir} does not match its fit record ({problem}); refitting")
    elif not refit and (workdir / MARKER).exists():
        note(f"{predictor.id}: fit record {workdir / MARKER} is unreadable or has no file digests; refitting")
    clear_marker(workdir)
    started = time.perf_counter()
    predictor.fit(dataset.train, dataset.validation, workdir)
    seconds = time.perf_counter() - started
    write_marker(workdir, seconds)
    return seconds, False


def _note(message: str) -> None:
    from price_bench.names import printable

    print(f"note: {printable(message)}", file=sys.stderr, flush=True)


def _data_home() -> Path:
    from price_bench.data.dataset import data_home

    return data_home()


# -- one predictor --------------------------------------------------------------------------


class _Context:
    """State shared by the predictors of one run (dataset, cache, results folder)."""

    def __init__(self, dataset: Dataset, options: RunOptions) -> None:
        from price_bench.results.store import default_results_dir

        self.dataset = dataset
        self.options = options
        self.results_dir = Path(options.results_dir) if options.results_dir else default_results_dir()
        self.all_test = dataset.test
        self.items = self.all_test[: options.limit] if options.limit else self.all_test
        if len({item.id for item in self.all_test}) != len(self.all_test):
            raise HarnessError(f"dataset {dataset.name!r}: test item ids are not unique; rebuild the dataset")
        self._cache: PredictionCache | None = None
        self._fallback: float | None = None
        self.git_commit = git_commit()
        self._provenance = None

    def provenance(self, plugin: str):
        """This machine's :class:`Provenance` (collected once), with ``plugin``'s version."""
        from price_bench.harness.provenance import collect, package_version

        if self._provenance is None:
            self._provenance = collect()
        version = package_version(plugin)
        if version is None or plugin in self._provenance.versions:
            return self._provenance
        return self._provenance.model_copy(update={"versions": {**self._provenance.versions, plugin: version}})

    @property
    def cache(self) -> PredictionCache:
        if self._cache is None:
            import sqlite3

            path = self.options.cache_path or _default_cache(self.options.home)
            try:
                self._cache = PredictionCache(path)
            except (sqlite3.Error, OSError) as exc:
                raise HarnessError(f"cannot open the prediction cache {path}: {one_line(exc)}") from None
        return self._cache

    @property
    def fallback_price(self) -> float:
        """The train median: the documented score of an unparseable answer."""
        if self._fallback is None:
            self._fallback = train_median(self.dataset)
        return self._fallback

    def close(self) -> None:
        if self._cache is not None:
            self._cache.close()


def _default_cache(home: Path | None) -> Path:
    from price_bench.harness.cache import default_cache_path

    return default_cache_path(home)


def _target(spec: PredictorSpec, overrides: dict[str, str]) -> _Target:
    try:
        cls = spec.load()
    except Exception as exc:  # an unimportable predictor fails alone
        return _Target(spec, None, None, f"could not load {spec.id}: {one_line(exc)}")
    return _Target(spec, cls, build_config(cls, overrides))


def _run_one(target: _Target, ctx: _Context, progress: RunProgress) -> RunOutcome:
    started_at = _now()
    wall = time.perf_counter()
    spec, cls, config = target.spec, target.cls, target.config
    if cls is None:
        return _finish(ctx, _base_record(ctx, spec, None, None, started_at), "failed", target.error, wall)
    base = _base_record(ctx, spec, cls, config, started_at)
    redact = Redactor(secret_values(config, _secret_env_names(cls)))
    try:
        reason = cls.skip_reason(config)
    except Exception as exc:
        return _finish(ctx, base, "failed", redact(f"skip_reason raised {one_line(exc)}"), wall)
    if reason:
        return _finish(ctx, base, "skipped", redact(reason), wall)
    if ctx.options.overwrite == "never":
        existing = find_complete_record(ctx.results_dir, base)
        if existing is not None:
            path, record = existing
            return RunOutcome(spec.id, "up-to-date", record, path, "a complete record exists (--overwrite never)")
    code = base.predictor.code_digest or ""
    key = CacheKey(spec.id, base.predictor.config_hash, spec.plugin_version, cls.version, ctx.dataset.fingerprint, ctx.options.seed,
                   code)
    fit_hash = config_hash(config, roles=("fit",))
    workdir = workdir_for(spec.id, fit_hash, key.plugin_version, key.predictor_version, key.fingerprint, key.seed, ctx.options.home,
                          code_digest=code)
    use_cache = not cls.nondeterministic
    keep_old = keep_cache_on_code_change(ctx.options.keep_cache_on_code_change)
    if keep_old:
        workdir = _adopt_earlier_fit(workdir)
    if use_cache and keep_old and ctx.options.overwrite != "always":
        ctx.cache.adopt_other_code(key)
    predictions = ctx.cache.get(key) if use_cache and ctx.options.overwrite != "always" else {}
    missing = [item for item in ctx.items if item.id not in predictions]
    marker = read_marker(workdir)
    fit_seconds, fit_reused = (marker.fit_seconds if marker else None), True
    progress.start(spec.id, len(ctx.items), len(ctx.items) - len(missing))
    try:
        if missing:
            fit_seconds, fit_reused, fresh = _predict_missing(
                cls, config, ctx, key if use_cache else None, workdir, missing, redact, progress
            )
            predictions.update(fresh)
    except _PredictorFailed as exc:
        return _finish(ctx, base, "failed", redact(str(exc)), wall)
    finally:
        progress.finish()
    base = base.model_copy(update={"extra": read_info(workdir)})
    try:
        return _score_and_write(ctx, base, predictions, fit_seconds, fit_reused, len(missing), wall)
    except RecordWriteError:
        raise  # nothing can be written: stop the run (the predictions are cached)
    except Exception as exc:  # e.g. a prediction of an unusable type: this predictor fails, the run goes on
        return _finish(ctx, base, "failed", redact(f"scoring failed: {one_line(exc)}"), wall)


class RecordWriteError(HarnessError):
    """A result record could not be written (one line naming it); the run stops, the cache keeps the answers."""

def _adopt_earlier_fit(workdir: Path) -> Path:
    """The escape hatch for fits: with no fit under the current code, reuse the newest one made under other code."""
    from price_bench.harness.workdir import earlier_code_workdir

    if read_marker(workdir) is not None:
        return workdir
    earlier = earlier_code_workdir(workdir)
    return earlier if earlier is not None else workdir


class _PredictorFailed(Exception):
    """The predictor raised in __init__, load, fit or predict (message is one line)."""


def _predict_missing(
    cls: type[Predictor],
    config: Any,
    ctx: _Context,
    key: CacheKey | None,
    workdir: Path,
    missing: list[Item],
    redact: Redactor,
    progress: RunProgress,
) -> tuple[float | None, bool, dict[str, Prediction]]:
    stage = "init"
    predictor = None
    try:
        predictor = cls(config, seed=ctx.options.seed)
        stage = "fit"
        progress.phase("fitting")
        fit_seconds, reused = fit_or_load(predictor, ctx.dataset, workdir, refit=ctx.options.refit)
        progress.phase("predicting")
        stage = "predict"
        fresh = _predict_batches(predictor, missing, ctx, key, redact, progress, workdir=workdir)
        stage = "info"
        save_info(workdir, predictor.info(), redact)
        return fit_seconds, reused, fresh
    except (KeyboardInterrupt, _PredictorFailed):
        raise
    except Exception as exc:
        raise _PredictorFailed(f"{stage} failed: {one_line(exc)}") from exc
    finally:
        if predictor is not None:
            try:
                predictor.close()
            except Exception:
                pass


def _finite_amount(value: Any) -> bool:
    """True for a finite, non-negative int or float (not a bool)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value >= 0


def _usage_problem(p: Prediction) -> str | None:
    """Why a plugin's cost or token counts cannot be stored (NaN, negative, text, beyond 64 bits); None when they can.

    ``cost_usd=None`` is allowed: it means "cost unknown" and is recorded as such.
    """
    if p.cost_usd is not None and not _finite_amount(p.cost_usd):  # None: the cost is unknown (never $0)
        return f"predictor returned cost_usd={str(p.cost_usd)[:40]!r} (not a finite amount)"
    for name in ("tokens_in", "tokens_out"):
        value = getattr(p, name)
        if not (_finite_amount(value) and float(value).is_integer() and value < 2**63):
            return f"predictor returned {name}={str(value)[:40]!r} (not a token count)"
    return None


def _batches(items: list[Item], size: int) -> Iterator[list[Item]]:
    size = max(1, int(size))
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _call_predict(predictor: Predictor, batch: list[Item]) -> tuple[list[Prediction], float]:
    started = time.perf_counter()
    predictions = predictor.predict(batch)
    return predictions, time.perf_counter() - started


def _predict_batches(
    predictor: Predictor, missing: list[Item], ctx: _Context, key: CacheKey | None, redact: Redactor, progress: RunProgress,
    workdir: Path | None = None,
) -> dict[str, Prediction]:
    """Predict ``missing`` batch by batch, committing each finished batch to the cache."""
    fresh: dict[str, Prediction] = {}
    running = _RunningError(progress.enabled)

    def accept(batch: list[Item], result: tuple[list[Prediction], float]) -> None:
        predictions, seconds = result
        predictions = list(predictions)
        if len(predictions) != len(batch):
            raise _PredictorFailed(f"predict failed: returned {len(predictions)} predictions for {len(batch)} items")
        per_item = seconds / len(batch)
        rows = []
        for item, p in zip(batch, predictions):
            if not _finite_amount(p.latency_s):
                p.latency_s = per_item
            usage = _usage_problem(p)
            if usage:  # the item errors (never cached); the unusable amounts are not summed
                p.error = p.error if p.error is not None else usage
                p.cost_usd, p.tokens_in, p.tokens_out = 0.0, 0, 0
            if isinstance(p.raw, str):
                p.raw = redact(p.raw)
            if p.error is not None:
                p.error = redact(str(p.error).splitlines()[0] if str(p.error) else "error")
            rows.append((item.id, p))
            fresh[item.id] = p
        if key is not None:
            ctx.cache.put(key, rows)
        progress.advance(len(batch), running.update(batch, predictions), note=_progress_note(predictor))

    if ctx.options.engine == "ray":
        from price_bench.engines.ray_predict import predict_on_ray

        predict_on_ray(predictor, workdir, missing, accept, address=ctx.options.ray_address)
        return fresh
    batches = _batches(missing, getattr(predictor, "batch_size", 64) or 64)
    timeout = batch_timeout(predictor)
    if ctx.options.workers == 1 and timeout is None:
        for batch in batches:
            accept(batch, _call_predict(predictor, batch))
        return fresh
    _run_pool(predictor, batches, ctx.options.workers, accept, timeout)
    return fresh


def _progress_note(predictor: Predictor) -> str:
    """The predictor's live status for the progress bar (its ``progress_note()``; never raises)."""
    try:
        note = predictor.progress_note()
    except Exception:
        return ""
    return str(note)[:60] if note else ""


#: After this many batches in a row time out, the remaining items are marked as errored without calling the predictor.
MAX_CONSECUTIVE_TIMEOUTS = 3


def _run_pool(predictor: Predictor, batches: Iterator[list[Item]], workers: int, accept, timeout: float | None = None) -> None:
    """At most ``workers`` batches in flight, each on a daemon thread; results accepted in the calling thread.

    A batch still running ``timeout`` seconds after it started is abandoned:
    its items are accepted as errored predictions and its thread is left to
    finish alone (its late answer is discarded). After
    :data:`MAX_CONSECUTIVE_TIMEOUTS` timeouts in a row the remaining batches
    are errored without calling the predictor. The first exception stops new
    batches; the ones in flight are still accepted, then it is raised.
    ``KeyboardInterrupt`` propagates at once, never waiting for a batch.
    """
    in_flight: dict[Future, tuple[list[Item], float]] = {}
    failure: BaseException | None = None
    timeouts = 0
    pending = iter(batches)
    while True:
        while failure is None and len(in_flight) < workers:
            batch = next(pending, None)
            if batch is None:
                break
            if timeouts >= MAX_CONSECUTIVE_TIMEOUTS:
                accept(batch, _errored(batch, f"not run: {timeouts} batches in a row timed out (batch_timeout_s)"))
                continue
            in_flight[_start_batch(predictor, batch)] = (batch, time.monotonic() + timeout if timeout else math.inf)
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
                accept(batch, _errored(batch, f"batch timed out after {timeout:g} s (batch_timeout_s)", timeout))
    if failure is not None:
        raise failure


def _start_batch(predictor: Predictor, batch: list[Item]) -> Future:
    """Run ``predictor.predict(batch)`` on a new daemon thread; the future gets ``(predictions, seconds)``."""
    future: Future = Future()

    def work() -> None:
        if not future.set_running_or_notify_cancel():
            return
        try:
            future.set_result(_call_predict(predictor, batch))
        except (Exception, KeyboardInterrupt) as exc:  # re-raised in the calling thread
            future.set_exception(exc)
        except BaseException as exc:  # e.g. SystemExit from a plugin: it fails this predictor, never the process
            future.set_exception(RuntimeError(f"predict raised {one_line(exc)}"))

    threading.Thread(target=work, name=f"predict-{predictor.id or 'predictor'}", daemon=True).start()
    return future


def _errored(batch: list[Item], reason: str, seconds: float = 0.0) -> tuple[list[Prediction], float]:
    """Errored predictions for every item of ``batch`` (never cached: the next run retries them)."""
    return [Prediction(raw=None, error=reason) for _ in batch], seconds


class _RunningError:
    """Running mean absolute error of the items predicted so far (only computed for a live bar)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.total = 0.0
        self.n = 0

    def update(self, batch: list[Item], predictions: list[Prediction]) -> float | None:
        if not self.enabled:
            return None
        for item, p in zip(batch, predictions):
            value = None if p.error else (parse_price(p.price) if p.price is not None else parse_price(p.raw))
            if value is not None:
                self.total += abs(value - item.price)
                self.n += 1
        return self.total / self.n if self.n else None


# -- scoring and records -----------------------------------------------------------------------


def _score_and_write(
    ctx: _Context,
    base: RunRecord,
    predictions: dict[str, Prediction],
    fit_seconds: float | None,
    fit_reused: bool,
    new_items: int,
    wall: float,
) -> RunOutcome:
    import numpy as np

    from price_bench.metrics import score

    items = ctx.items
    n = len(items)
    fallback = ctx.fallback_price
    truth = np.fromiter((item.price for item in items), dtype=np.float64, count=n)
    guess = np.empty(n, dtype=np.float64)
    parsed_mask = np.zeros(n, dtype=bool)
    rows: list[dict[str, Any]] = []
    parse_failures = item_errors = tokens_in = tokens_out = 0
    cost: float | None = 0.0
    latency_total = 0.0
    first_error: str | None = None
    for i, item in enumerate(items):
        p = predictions[item.id]
        if p.error is not None:
            item_errors += 1
            first_error = first_error or f"{item.id}: {p.error}"
            value = None
        else:
            value = parse_price(p.price) if p.price is not None else parse_price(p.raw)
            if value is None:
                parse_failures += 1
        parsed_mask[i] = value is not None
        guess[i] = value if value is not None else fallback
        if p.cost_usd is None and p.error is None:
            cost = None  # one answer of unknown cost makes the run's cost unknown, never $0
        elif cost is not None:
            cost += p.cost_usd or 0.0
        latency_total += p.latency_s or 0.0
        tokens_in += p.tokens_in or 0
        tokens_out += p.tokens_out or 0
        # Plain dicts with exactly ItemPrediction's fields, id first (the store's fast path).
        rows.append(
            {
                "id": item.id,
                "truth": item.price,
                "guess": value if value is not None else fallback,
                "parsed": value,
                "raw": None if p.raw is None or not ctx.options.raw_output else str(p.raw),
                "category": item.category,
                "cost_usd": p.cost_usd,
                "latency_s": p.latency_s,
                "error": p.error,
            }
        )
    if not parsed_mask.any():
        return _no_usable_answer(ctx, base, n, item_errors, parse_failures, first_error, new_items, wall)
    metrics, breakdowns = score(
        truth, guess, parsed_mask, [item.category for item in items], n_resamples=ctx.options.n_resamples, seed=ctx.options.seed,
        ci_method=ctx.options.ci_method,
    )
    record = base.model_copy(
        update={
            "status": "complete",
            "n_items": n,
            "timing": Timing(
                fit_seconds=fit_seconds,
                fit_reused=fit_reused,
                predict_seconds_total=latency_total,
                predict_seconds_per_item=latency_total / n if n else None,
                wall_seconds=time.perf_counter() - wall,
            ),
            "usage": Usage(cost_usd=cost, tokens_in=tokens_in, tokens_out=tokens_out, cached_items=n - new_items, new_items=new_items),
            "parse_failures": parse_failures,
            "item_errors": item_errors,
            "fallback_price": fallback,
            "metrics": metrics,
            "breakdowns": breakdowns,
            "finished_at": _now(),
        }
    )
    from price_bench.results.store import PREDICTIONS_SUFFIX

    record = record.model_copy(update={"predictions_file": record.run_id + PREDICTIONS_SUFFIX})
    path = _write(ctx, record, rows)
    return RunOutcome(base.predictor.id, "complete", record, path, None, new_items, n - new_items, first_error)


def _no_usable_answer(
    ctx: _Context, base: RunRecord, n: int, item_errors: int, parse_failures: int, first_error: str | None, new_items: int, wall: float
) -> RunOutcome:
    """A run in which no item got a usable price is ``failed``, never ``complete`` (nothing to score)."""
    if item_errors == n:
        reason = f"no usable answer: all {n} items errored (first: {first_error})"
    else:
        reason = f"no usable answer: {item_errors} of {n} items errored and {parse_failures} did not parse to a price"
        reason += f" (first error: {first_error})" if first_error else ""
    base = base.model_copy(update={"n_items": n, "item_errors": item_errors, "parse_failures": parse_failures})
    outcome = _finish(ctx, base, "failed", reason, wall)
    outcome.new_items, outcome.cached_items, outcome.first_error = new_items, n - new_items, first_error
    return outcome


def _finish(ctx: _Context, base: RunRecord, status: str, reason: str | None, wall: float) -> RunOutcome:
    record = base.model_copy(
        update={"status": status, "reason": reason, "finished_at": _now(), "timing": Timing(wall_seconds=time.perf_counter() - wall)}
    )
    path = _write(ctx, record, [])
    return RunOutcome(base.predictor.id, status, record, path, reason)


def _write(ctx: _Context, record: RunRecord, rows: list[dict[str, Any]]) -> Path:
    from price_bench.results.store import ResultError, record_path, write_record

    try:
        return write_record(ctx.results_dir, record, rows)
    except ResultError as exc:
        raise RecordWriteError(str(exc)) from None
    except OSError as exc:
        where = exc.filename or record_path(ctx.results_dir, record)
        raise RecordWriteError(
            f"cannot write the result record {where}: {exc.strerror or exc}; the predictions are cached, "
            "so rerunning the same command after fixing the folder costs nothing"
        ) from None


def _base_record(ctx: _Context, spec: PredictorSpec, cls: type[Predictor] | None, config: Any, started_at: str) -> RunRecord:
    opts = ctx.options
    if cls is not None:
        info = PredictorInfo(
            id=spec.id,
            description=cls.description or spec.description,
            config=scrubbed_config(config),
            config_hash=config_hash(config),
            predictor_version=str(cls.version),
            plugin_distribution=spec.origin,
            plugin_version=spec.plugin_version,
            label_fields=list(getattr(cls, "label_fields", ()) or ()) or None,
            runtime_fields=[name for name in type(config).model_fields if field_role(type(config), name) == "runtime"],
            code_digest=code_digest(cls) or None,
        )
    else:
        info = PredictorInfo(
            id=spec.id, description=spec.description, config_hash="-", plugin_distribution=spec.origin, plugin_version=spec.plugin_version
        )
    manifest = ctx.dataset.manifest
    recipe = manifest.get("recipe")
    if isinstance(recipe, dict):
        recipe = f"{recipe.get('name', '?')}@{recipe.get('version', '?')}"
    return RunRecord(
        run_id=new_run_id(info.config_hash),
        status="failed",
        price_bench_version=__version__,
        predictor=info,
        dataset=DatasetRef(
            name=ctx.dataset.name,
            fingerprint=ctx.dataset.fingerprint,
            split="test",
            synthetic=ctx.dataset.synthetic,
            recipe=recipe if isinstance(recipe, str) else None,
        ),
        n_items=0,
        n_total=len(ctx.all_test),
        limit=opts.limit,
        seed=opts.seed,
        git_commit=ctx.git_commit,
        started_at=started_at,
        finished_at=started_at,
        n_resamples=opts.n_resamples,
        ci_method=CI_METHOD_NAMES.get(opts.ci_method, opts.ci_method),
        provenance=ctx.provenance(spec.origin),
    )


def find_complete_record(results_dir: Path, like: RunRecord) -> tuple[Path, RunRecord] | None:
    """The newest complete record matching ``like``'s predictor, config, versions, seed, dataset and limit."""
    from price_bench.results.store import ResultError, read_record

    folder = results_dir / like.dataset.name / like.predictor.id
    if not folder.is_dir():
        return None
    for path in sorted(folder.glob("*.json"), reverse=True):
        try:
            record = read_record(path)
        except ResultError:
            continue
        p, q = record.predictor, like.predictor
        if (
            record.status == "complete"
            and (p.config_hash, p.plugin_version, p.predictor_version) == (q.config_hash, q.plugin_version, q.predictor_version)
            and record.dataset.fingerprint == like.dataset.fingerprint
            and (p.code_digest is None or q.code_digest is None or p.code_digest == q.code_digest)
            and record.limit == like.limit
            and record.seed == like.seed
        ):
            return path, record
    return None


# -- small helpers ------------------------------------------------------------------------------


INFO_FILE = "info.json"


def save_info(workdir: Path, info: dict[str, Any], redact: Redactor) -> None:
    """Keep a predictor's ``info()`` beside its artefacts (secrets scrubbed)."""
    import json

    from price_bench.results.store import atomic_write_text

    if info:
        text = redact(json.dumps(info, sort_keys=True, default=str)) or "{}"
        atomic_write_text(workdir / INFO_FILE, text + "\n")


def read_info(workdir: Path) -> dict[str, Any]:
    """The saved ``info()`` of the predictor that owns ``workdir`` (empty when none)."""
    import json

    try:
        data = json.loads((workdir / INFO_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def train_median(dataset: Dataset) -> float:
    """Median train price (reads only the price column when the split is not loaded yet)."""
    import numpy as np

    if "train" in dataset._cache:
        prices = np.array([item.price for item in dataset.train], dtype=np.float64)
    else:
        path = dataset.path / "train.parquet"
        try:
            import pyarrow.parquet as pq

            prices = pq.read_table(path, columns=["price"]).column("price").to_numpy()
        except Exception:
            prices = np.array([item.price for item in dataset.train], dtype=np.float64)
    if prices.size == 0:
        raise HarnessError(f"dataset {dataset.name!r} has no train items: no fallback price for unparseable answers")
    return float(np.median(prices))


def one_line(exc: BaseException, limit: int = 300) -> str:
    """``"ValueError: first line of the message"``, at most ``limit`` characters (:func:`price_bench.errors.first_line`)."""
    from price_bench.errors import first_line

    return first_line(exc, typed=True, limit=limit)


def _secret_env_names(cls: type[Predictor]) -> list[str]:
    names = [req.name for req in getattr(cls, "requires", ()) if req.kind == "env"]
    names += [name for name in os.environ if is_secret_field(name)]
    return names


_GIT_COMMIT: list[str | None] = []


def git_commit() -> str | None:
    """HEAD of the git repository around the current directory, or None."""
    if not _GIT_COMMIT:
        try:
            out = subprocess.run(
                ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=False
            )
            _GIT_COMMIT.append(out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else None)
        except (OSError, subprocess.SubprocessError):
            _GIT_COMMIT.append(None)
    return _GIT_COMMIT[0]


def new_run_id(config_hash_: str) -> str:
    """``20261128T130212Z-<hash6>-<4 hex>``: sortable by time, unique."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{config_hash_[:6]}-{_secrets.token_hex(2)}"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")

