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
others still run. ``KeyboardInterrupt`` stops the run after the finished
batches are committed: rerunning the same command resumes.
"""

from __future__ import annotations

import os
import secrets as _secrets
import subprocess
import time
from concurrent.futures import ALL_COMPLETED, FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator, Literal, Sequence

from price_bench import __version__
from price_bench.data.dataset import Dataset, DatasetError
from price_bench.harness.cache import CacheKey, PredictionCache
from price_bench.harness.errors import HarnessError
from price_bench.harness.overrides import Redactor, build_config, config_hash, is_secret_field, scrubbed_config, secret_values
from price_bench.harness.progress import RunProgress
from price_bench.harness.workdir import clear_marker, read_marker, workdir_for, write_marker
from price_bench.items import Item
from price_bench.parsing import parse_price
from price_bench.predictors.contract import Prediction, Predictor
from price_bench.predictors.registry import PredictorRegistry, PredictorSpec, UnknownPredictorError
from price_bench.results.schema import DatasetRef, PredictorInfo, RunRecord, Timing, Usage

Overwrite = Literal["never", "always", "missing"]
OVERWRITE_MODES: tuple[str, ...] = ("never", "always", "missing")


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


@dataclass
class _Target:
    spec: PredictorSpec
    cls: type[Predictor] | None
    config: Any
    error: str | None = None


# -- public entry points -------------------------------------------------------------------


def open_dataset_by_name(name: str) -> Dataset:
    """The dataset ``name`` (built on first use when the catalog knows how), or HarnessError."""
    try:
        try:
            from price_bench.data.catalog import get_dataset
        except ImportError:
            from price_bench.data.dataset import open_dataset as get_dataset
        return get_dataset(name)
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
    if options.overwrite not in OVERWRITE_MODES:
        raise HarnessError(f"--overwrite must be one of {', '.join(OVERWRITE_MODES)}, not {options.overwrite!r}")
    if options.limit is not None and options.limit < 1:
        raise HarnessError("--limit must be a positive number of items")
    if options.workers < 1:
        raise HarnessError("--workers must be at least 1")
    if registry is None:
        from price_bench.plugins.manager import get_registry

        registry = get_registry()
    ids = resolve_ids(registry, ids)
    stray = sorted(set(options.overrides) - set(ids))
    if stray:
        raise HarnessError(f"-o {stray[0]}.…: predictor {stray[0]!r} is not part of this run")
    targets = [_target(registry.get(pid), options.overrides.get(pid, {})) for pid in ids]
    dataset = dataset or open_dataset_by_name(options.dataset)
    context = _Context(dataset, options)
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


def fit_or_load(predictor: Predictor, dataset: Dataset, workdir: Path, *, refit: bool = False) -> tuple[float | None, bool]:
    """Restore the predictor from ``workdir`` or fit it on ``dataset``; returns (fit seconds, reused)."""
    workdir.mkdir(parents=True, exist_ok=True)
    marker = None if refit else read_marker(workdir)
    if marker is not None and predictor.load(workdir):
        return marker.fit_seconds, True
    clear_marker(workdir)
    started = time.perf_counter()
    predictor.fit(dataset.train, dataset.validation, workdir)
    seconds = time.perf_counter() - started
    write_marker(workdir, seconds)
    return seconds, False


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

    @property
    def cache(self) -> PredictionCache:
        if self._cache is None:
            self._cache = PredictionCache(self.options.cache_path or _default_cache(self.options.home))
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
    key = CacheKey(spec.id, base.predictor.config_hash, spec.plugin_version, cls.version, ctx.dataset.fingerprint, ctx.options.seed)
    fit_hash = config_hash(config, roles=("fit",))
    workdir = workdir_for(spec.id, fit_hash, key.plugin_version, key.predictor_version, key.fingerprint, key.seed, ctx.options.home)
    use_cache = not cls.nondeterministic
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
    except Exception as exc:  # e.g. a prediction of an unusable type: this predictor fails, the run goes on
        return _finish(ctx, base, "failed", redact(f"scoring failed: {one_line(exc)}"), wall)


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
        fit_seconds, reused = fit_or_load(predictor, ctx.dataset, workdir, refit=ctx.options.refit)
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
            if p.latency_s is None:
                p.latency_s = per_item
            if isinstance(p.raw, str):
                p.raw = redact(p.raw)
            if p.error is not None:
                p.error = redact(str(p.error).splitlines()[0] if str(p.error) else "error")
            rows.append((item.id, p))
            fresh[item.id] = p
        if key is not None:
            ctx.cache.put(key, rows)
        progress.advance(len(batch), running.update(batch, predictions))

    if ctx.options.engine == "ray":
        from price_bench.engines.ray_predict import predict_on_ray

        predict_on_ray(predictor, workdir, missing, accept, address=ctx.options.ray_address)
        return fresh
    batches = _batches(missing, getattr(predictor, "batch_size", 64) or 64)
    if ctx.options.workers == 1:
        for batch in batches:
            accept(batch, _call_predict(predictor, batch))
        return fresh
    _run_pool(predictor, batches, ctx.options.workers, accept)
    return fresh


def _run_pool(predictor: Predictor, batches: Iterator[list[Item]], workers: int, accept) -> None:
    """At most ``workers`` batches in flight; results accepted in the calling thread."""
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="predict")
    in_flight: dict[Future, list[Item]] = {}
    failure: BaseException | None = None
    try:
        for batch in batches:
            in_flight[pool.submit(_call_predict, predictor, batch)] = batch
            if len(in_flight) < workers:
                continue
            failure = _drain(in_flight, accept, FIRST_COMPLETED)
            if failure is not None:
                break
        if failure is None:
            failure = _drain(in_flight, accept, None)
        else:
            _drain(in_flight, accept, None, keep_going=True)  # save what the other workers finish
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    if failure is not None:
        raise failure


def _drain(in_flight: dict[Future, list[Item]], accept, return_when, keep_going: bool = False) -> BaseException | None:
    """Accept finished futures; return the first exception (KeyboardInterrupt is raised at once)."""
    if not in_flight:
        return None
    done, _ = wait(in_flight, return_when=return_when or ALL_COMPLETED)
    failure = None
    for future in done:
        batch = in_flight.pop(future)
        try:
            accept(batch, future.result())
        except KeyboardInterrupt:
            raise
        except Exception as exc:
            failure = failure or exc
    return None if keep_going else failure


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
    cost = latency_total = 0.0
    for i, item in enumerate(items):
        p = predictions[item.id]
        if p.error is not None:
            item_errors += 1
            value = None
        else:
            value = parse_price(p.price) if p.price is not None else parse_price(p.raw)
            if value is None:
                parse_failures += 1
        parsed_mask[i] = value is not None
        guess[i] = value if value is not None else fallback
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
                "cost_usd": p.cost_usd or 0.0,
                "latency_s": p.latency_s,
                "error": p.error,
            }
        )
    metrics, breakdowns = score(
        truth, guess, parsed_mask, [item.category for item in items], n_resamples=ctx.options.n_resamples, seed=ctx.options.seed
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
    return RunOutcome(base.predictor.id, "complete", record, path, None, new_items, n - new_items)


def _finish(ctx: _Context, base: RunRecord, status: str, reason: str | None, wall: float) -> RunOutcome:
    record = base.model_copy(
        update={"status": status, "reason": reason, "finished_at": _now(), "timing": Timing(wall_seconds=time.perf_counter() - wall)}
    )
    path = _write(ctx, record, [])
    return RunOutcome(base.predictor.id, status, record, path, reason)


def _write(ctx: _Context, record: RunRecord, rows: list[dict[str, Any]]) -> Path:
    from price_bench.results.store import write_record

    return write_record(ctx.results_dir, record, rows)


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
    """``"ValueError: first line of the message"``, at most ``limit`` characters."""
    text = str(exc).strip().splitlines()
    message = f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
    return message if len(message) <= limit else message[: limit - 1] + "…"


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
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{config_hash_[:6]}-{_secrets.token_hex(2)}"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")

