"""``price-bench run``: fit, predict (cached, resumable), score and record.

For every requested predictor, :func:`run_predictors`:

1. resolves its spec and builds its config (defaults plus ``-o`` overrides;
   bad keys and values are :class:`HarnessError` before anything runs);
2. checks ``skip_reason`` -- unmet requirements give a ``skipped`` record;
3. looks up cached predictions under the run's :class:`RunKey` (predictor id,
   config hash, plugin version, predictor version, code, seed and dataset
   fingerprint); when every item is cached the predictor is not even
   instantiated;
4. otherwise instantiates it, ``load``s a previous fit from its work folder
   or ``fit``s (:func:`fit_or_load`), and predicts the missing items in
   batches of ``batch_size`` with ``workers`` batches in flight
   (:mod:`~price_bench.harness.pool`), committing every finished batch to
   the cache once its answers are checked (:mod:`~price_bench.harness.answers`);
5. scores the answers (:func:`~price_bench.harness.scoring.score_predictions`:
   unparseable ones get the train median, reported as ``parse_failures`` and
   ``coverage``) and writes the record plus its sidecar
   (:mod:`~price_bench.harness.records`).

This module only orchestrates those steps. A predictor that raises gets a
``failed`` record with a one-line error; the others still run. A batch that
runs past the predictor's batch timeout
(:func:`~price_bench.predictors.contract.batch_timeout`) has its items marked
as errored and the run moves on. ``KeyboardInterrupt`` stops the run at once
(batches run on daemon threads, so a batch in flight is never waited for),
keeping the finished batches committed: rerunning the same command resumes.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from price_bench.data.dataset import Dataset, DatasetError
from price_bench.harness import records
from price_bench.harness.answers import BatchSizeError, clean_batch
from price_bench.harness.cache import CacheKey, PredictionCache
from price_bench.harness.codedigest import keep_cache_on_code_change
from price_bench.harness.errors import HarnessError, one_line
from price_bench.harness.fitting import close_predictor, fit_or_load
from price_bench.harness.options import (
    MIN_RESAMPLES,
    Overwrite,
    RunOptions,
    check_options,
    check_writable,
    open_dataset_by_name,
    resolve_ids,
    verified,
)
from price_bench.harness.overrides import Redactor, build_config, is_secret_field, secret_values
from price_bench.harness.pool import BatchResult, predict_in_batches
from price_bench.harness.progress import RunProgress
from price_bench.harness.records import RecordWriteError
from price_bench.harness.runkey import RunKey
from price_bench.harness.scoring import RunningError, score_predictions
from price_bench.harness.workdir import fit_workdir, read_info, read_marker, save_info
from price_bench.items import Item
from price_bench.predictors.contract import Prediction, Predictor, batch_timeout
from price_bench.predictors.registry import PredictorRegistry, PredictorSpec
from price_bench.results.schema import Provenance, RunRecord
from price_bench.results.store import find_complete_record

__all__ = [
    "MIN_RESAMPLES",
    "Overwrite",
    "RecordWriteError",
    "RunOptions",
    "RunOutcome",
    "fit_or_load",
    "open_dataset_by_name",
    "resolve_ids",
    "run_predictors",
    "run_seeds",
]

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
    dataset = open_dataset_by_name(options.dataset) if dataset is None else verified(dataset)
    context = _Context(dataset, options)
    _check_folders(context)
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


def run_seeds(
    ids: Sequence[str],
    options: RunOptions,
    seeds: Sequence[int] | None = None,
    *,
    registry: PredictorRegistry | None = None,
    dataset: Dataset | None = None,
    on_outcome: Callable[[RunOutcome], None] | None = None,
) -> list[RunOutcome]:
    """:func:`run_predictors` once per seed in ``seeds`` (default: ``options.seed`` alone), outcomes in order."""
    outcomes: list[RunOutcome] = []
    for seed in seeds if seeds is not None else [options.seed]:
        outcomes += run_predictors(ids, replace(options, seed=seed), registry=registry, dataset=dataset, on_outcome=on_outcome)
    return outcomes


def _check_folders(ctx: _Context) -> None:
    """The results folder and the data home's work (and cache) folders must be writable before anything runs."""
    check_writable(ctx.results_dir, "results folder")
    check_writable(ctx.home / "work", "data home")
    if ctx.options.cache_path is None:
        check_writable(ctx.home / "cache", "data home")


class _Context:
    """State shared by the predictors of one run (dataset, cache, results folder, provenance)."""

    def __init__(self, dataset: Dataset, options: RunOptions) -> None:
        from price_bench.data.dataset import data_home
        from price_bench.harness.provenance import git_commit
        from price_bench.results.store import default_results_dir

        self.dataset = dataset
        self.options = options
        self.home = options.home or data_home()
        self.results_dir = Path(options.results_dir) if options.results_dir else default_results_dir()
        self.all_test = dataset.test
        self.items = self.all_test[: options.limit] if options.limit else self.all_test
        if len({item.id for item in self.all_test}) != len(self.all_test):
            raise HarnessError(f"dataset {dataset.name!r}: test item ids are not unique; rebuild the dataset")
        self._cache: PredictionCache | None = None
        self._fallback: float | None = None
        self.git_commit = git_commit()
        self._provenance: Provenance | None = None

    def provenance(self, plugin: str) -> Provenance:
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
        """The prediction cache (opened on first use; HarnessError, one line, when it cannot be)."""
        if self._cache is None:
            import sqlite3

            from price_bench.harness.cache import default_cache_path

            path = self.options.cache_path or default_cache_path(self.options.home)
            try:
                self._cache = PredictionCache(path)
            except (sqlite3.Error, OSError) as exc:
                raise HarnessError(f"cannot open the prediction cache {path}: {one_line(exc)}") from None
        return self._cache

    @property
    def fallback_price(self) -> float:
        """The train median: the documented score of an unparseable answer."""
        if self._fallback is None:
            try:
                self._fallback = self.dataset.train_median()
            except DatasetError as exc:
                raise HarnessError(str(exc)) from None
        return self._fallback

    def base_record(self, spec: PredictorSpec, cls: type[Predictor] | None, config: Any, key: RunKey | None) -> RunRecord:
        """The ``failed`` record of a run about to start (see :func:`records.base_record`)."""
        info = records.predictor_info(spec, cls, config, key)
        return records.base_record(info, self.dataset, self.options, n_total=len(self.all_test), started_at=records.now(),
                                   git_commit=self.git_commit, provenance=self.provenance(spec.origin))

    def close(self) -> None:
        """Close the prediction cache."""
        if self._cache is not None:
            self._cache.close()


def _target(spec: PredictorSpec, overrides: dict[str, str]) -> _Target:
    try:
        cls = spec.load()
    except Exception as exc:  # an unimportable predictor fails alone
        return _Target(spec, None, None, f"could not load {spec.id}: {one_line(exc)}")
    return _Target(spec, cls, build_config(cls, overrides))


class _PredictorFailed(Exception):
    """The predictor raised in __init__, load, fit or predict (message is one line)."""


def _run_one(target: _Target, ctx: _Context, progress: RunProgress) -> RunOutcome:
    wall = time.perf_counter()
    spec, cls, config = target.spec, target.cls, target.config
    if cls is None:
        return _finish(ctx, ctx.base_record(spec, None, None, None), "failed", target.error, wall)
    key = RunKey.for_predictor(spec, cls, config, ctx.dataset.fingerprint, ctx.options.seed)
    base = ctx.base_record(spec, cls, config, key)
    redact = Redactor(secret_values(config, _secret_env_names(cls)))
    not_run = _not_run(cls, config, ctx, base, redact, wall)
    if not_run is not None:
        return not_run
    return _predict_and_score(cls, config, key, base, ctx, redact, progress, wall)


def _not_run(cls: type[Predictor], config: Any, ctx: _Context, base: RunRecord, redact: Redactor, wall: float) -> RunOutcome | None:
    """The outcome of a predictor that does not run (skipped, ``skip_reason`` raised, up to date); None when it runs."""
    try:
        reason = cls.skip_reason(config)
    except Exception as exc:
        return _finish(ctx, base, "failed", redact(f"skip_reason raised {one_line(exc)}"), wall)
    if reason:
        return _finish(ctx, base, "skipped", redact(reason), wall)
    if ctx.options.overwrite == "never":
        existing = find_complete_record(ctx.results_dir, base)
        if existing is not None:
            return RunOutcome(base.predictor.id, "up-to-date", existing[1], existing[0], "a complete record exists (--overwrite never)")
    return None


def _predict_and_score(
    cls: type[Predictor], config: Any, key: RunKey, base: RunRecord, ctx: _Context, redact: Redactor, progress: RunProgress,
    wall: float,
) -> RunOutcome:
    """Reuse the cached answers, predict the missing ones (fitting or loading first), score and record."""
    spec_id = base.predictor.id
    keep_old = keep_cache_on_code_change(ctx.options.keep_cache_on_code_change)
    workdir = fit_workdir(key.workdir(ctx.options.home), keep_earlier_code=keep_old)
    cache_key = key.cache_key() if not cls.nondeterministic else None
    predictions = _cached(ctx, cache_key, keep_old)
    missing = [item for item in ctx.items if item.id not in predictions]
    marker = read_marker(workdir)
    fit_seconds, fit_reused = (marker.fit_seconds if marker else None), True
    progress.start(spec_id, len(ctx.items), len(ctx.items) - len(missing))
    try:
        if missing:
            fit_seconds, fit_reused, fresh = _predict_missing(cls, config, ctx, cache_key, workdir, missing, redact, progress)
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


def _cached(ctx: _Context, key: CacheKey | None, keep_old: bool) -> dict[str, Prediction]:
    """The cached answers under ``key`` (none for a nondeterministic predictor or ``--overwrite always``)."""
    if key is None or ctx.options.overwrite == "always":
        return {}
    if keep_old:
        ctx.cache.adopt_other_code(key)
    return ctx.cache.get(key)


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
    """Instantiate, fit or load, predict ``missing`` and save ``info()``; _PredictorFailed names the stage that raised."""
    stage = "init"
    predictor = None
    try:
        predictor = cls(config, seed=ctx.options.seed)
        stage = "fit"
        progress.phase("fitting")
        fit_seconds, reused = fit_or_load(predictor, ctx.dataset, workdir, refit=ctx.options.refit)
        progress.phase("predicting")
        stage = "predict"
        fresh = _predict_batches(predictor, missing, ctx, key, redact, progress, workdir)
        stage = "info"
        save_info(workdir, predictor.info(), redact)
        return fit_seconds, reused, fresh
    except (KeyboardInterrupt, _PredictorFailed):
        raise
    except Exception as exc:
        raise _PredictorFailed(f"{stage} failed: {one_line(exc)}") from exc
    finally:
        if predictor is not None:
            close_predictor(predictor, redact)


def _predict_batches(
    predictor: Predictor, missing: list[Item], ctx: _Context, key: CacheKey | None, redact: Redactor, progress: RunProgress,
    workdir: Path,
) -> dict[str, Prediction]:
    """Predict ``missing`` batch by batch, committing each finished batch to the cache."""
    fresh: dict[str, Prediction] = {}
    running = RunningError(progress.enabled)

    def accept(batch: list[Item], result: BatchResult) -> None:
        predictions, seconds = result
        try:
            rows = clean_batch(batch, predictions, seconds, redact)
        except BatchSizeError as exc:
            raise _PredictorFailed(f"predict failed: {exc}") from None
        fresh.update(rows)
        if key is not None:
            ctx.cache.put(key, rows)
        progress.advance(len(batch), running.update(batch, [p for _, p in rows]), note=_progress_note(predictor))

    if ctx.options.engine == "ray":
        from price_bench.engines.ray_predict import predict_on_ray

        predict_on_ray(predictor, workdir, missing, accept, address=ctx.options.ray_address)
    else:
        batch_size = getattr(predictor, "batch_size", 64) or 64
        predict_in_batches(predictor, missing, batch_size, ctx.options.workers, accept, batch_timeout(predictor))
    return fresh


def _progress_note(predictor: Predictor) -> str:
    """The predictor's live status for the progress bar (its ``progress_note()``; never raises)."""
    try:
        note = predictor.progress_note()
    except Exception:
        return ""
    return str(note)[:60] if note else ""


def _score_and_write(
    ctx: _Context,
    base: RunRecord,
    predictions: dict[str, Prediction],
    fit_seconds: float | None,
    fit_reused: bool,
    new_items: int,
    wall: float,
) -> RunOutcome:
    opts = ctx.options
    fallback = ctx.fallback_price
    scored = score_predictions(ctx.items, predictions, fallback, raw_output=opts.raw_output, n_resamples=opts.n_resamples,
                               seed=opts.seed, ci_method=opts.ci_method)
    n = scored.n_items
    if not scored.usable:  # a run in which no item got a usable price is failed, never complete
        base = base.model_copy(update={"n_items": n, "item_errors": scored.item_errors, "parse_failures": scored.parse_failures})
        outcome = _finish(ctx, base, "failed", scored.failure_reason(), wall)
        outcome.new_items, outcome.cached_items, outcome.first_error = new_items, n - new_items, scored.first_error
        return outcome
    record = records.completed(base, scored, fallback, fit_seconds=fit_seconds, fit_reused=fit_reused, new_items=new_items, wall=wall)
    path = records.write(ctx.results_dir, record, scored.rows)
    return RunOutcome(base.predictor.id, "complete", record, path, None, new_items, n - new_items, scored.first_error)


def _finish(ctx: _Context, base: RunRecord, status: str, reason: str | None, wall: float) -> RunOutcome:
    record = records.finished(base, status, reason, wall)
    path = records.write(ctx.results_dir, record, [])
    return RunOutcome(base.predictor.id, status, record, path, reason)


def _secret_env_names(cls: type[Predictor]) -> list[str]:
    names = [req.name for req in getattr(cls, "requires", ()) if req.kind == "env"]
    names += [name for name in os.environ if is_secret_field(name)]
    return names
