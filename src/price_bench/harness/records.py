"""The result record of one predictor's run: its skeleton, its completion from a score, and its writing.

:func:`base_record` says what runs (predictor, config, versions, dataset,
seed, provenance) before anything is fitted; :func:`completed` fills in a
:class:`~price_bench.harness.scoring.Scored`; :func:`finished` closes a run
that did not complete (failed, skipped). :func:`write` stores a record and
its per-item rows, raising :class:`RecordWriteError` with one line when it
cannot (the run stops there: the answers are cached).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from price_bench import __version__
from price_bench.data.dataset import Dataset
from price_bench.harness.errors import HarnessError
from price_bench.harness.options import CI_METHOD_NAMES, RunOptions
from price_bench.harness.runkey import RunKey
from price_bench.harness.scoring import Scored
from price_bench.results import store
from price_bench.results.schema import DatasetRef, PredictorInfo, Provenance, RunRecord, Timing, Usage
from price_bench.results.store import PREDICTIONS_SUFFIX, ResultError, new_run_id


class RecordWriteError(HarnessError):
    """A result record could not be written (one line naming it); the run stops, the cache keeps the answers."""


def now() -> str:
    """The current UTC time as records store it (ISO 8601, seconds)."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def predictor_info(spec: Any, cls: type | None, config: Any, key: RunKey | None) -> PredictorInfo:
    """What a record says about the predictor (``cls`` None: it could not be loaded)."""
    from price_bench.harness.overrides import scrubbed_config
    from price_bench.predictors.contract import field_role

    if cls is None or key is None:
        return PredictorInfo(
            id=spec.id, description=spec.description, config_hash="-", plugin_distribution=spec.origin, plugin_version=spec.plugin_version
        )
    return PredictorInfo(
        id=spec.id,
        description=getattr(cls, "description", "") or spec.description,
        config=scrubbed_config(config),
        config_hash=key.config_hash,
        predictor_version=key.predictor_version,
        plugin_distribution=spec.origin,
        plugin_version=spec.plugin_version,
        label_fields=list(getattr(cls, "label_fields", ()) or ()) or None,
        runtime_fields=[name for name in type(config).model_fields if field_role(type(config), name) == "runtime"],
        code_digest=key.code_digest or None,
    )


def base_record(
    info: PredictorInfo, dataset: Dataset, options: RunOptions, *, n_total: int, started_at: str, git_commit: str | None,
    provenance: Provenance | None,
) -> RunRecord:
    """A ``failed`` record of the run about to start: every field known before the predictor runs."""
    recipe = dataset.manifest.get("recipe")
    if isinstance(recipe, dict):
        recipe = f"{recipe.get('name', '?')}@{recipe.get('version', '?')}"
    return RunRecord(
        run_id=new_run_id(info.config_hash),
        status="failed",
        price_bench_version=__version__,
        predictor=info,
        dataset=DatasetRef(
            name=dataset.name,
            fingerprint=dataset.fingerprint,
            split="test",
            synthetic=dataset.synthetic,
            recipe=recipe if isinstance(recipe, str) else None,
        ),
        n_items=0,
        n_total=n_total,
        limit=options.limit,
        seed=options.seed,
        git_commit=git_commit,
        started_at=started_at,
        finished_at=started_at,
        n_resamples=options.n_resamples,
        ci_method=CI_METHOD_NAMES.get(options.ci_method, options.ci_method),
        provenance=provenance,
    )


def completed(
    base: RunRecord, scored: Scored, fallback: float, *, fit_seconds: float | None, fit_reused: bool, new_items: int, wall: float
) -> RunRecord:
    """``base`` as a ``complete`` record of ``scored`` (``wall``: the run's ``time.perf_counter()`` start)."""
    n = scored.n_items
    return base.model_copy(
        update={
            "status": "complete",
            "n_items": n,
            "timing": Timing(
                fit_seconds=fit_seconds,
                fit_reused=fit_reused,
                predict_seconds_total=scored.latency_total,
                predict_seconds_per_item=scored.latency_total / n if n else None,
                wall_seconds=time.perf_counter() - wall,
            ),
            "usage": Usage(cost_usd=scored.cost_usd, tokens_in=scored.tokens_in, tokens_out=scored.tokens_out,
                           cached_items=n - new_items, new_items=new_items),
            "parse_failures": scored.parse_failures,
            "item_errors": scored.item_errors,
            "fallback_price": fallback,
            "metrics": scored.metrics,
            "breakdowns": scored.breakdowns,
            "finished_at": now(),
            "predictions_file": base.run_id + PREDICTIONS_SUFFIX,
        }
    )


def finished(base: RunRecord, status: str, reason: str | None, wall: float) -> RunRecord:
    """``base`` closed with ``status`` (failed, skipped) and ``reason``."""
    return base.model_copy(
        update={"status": status, "reason": reason, "finished_at": now(), "timing": Timing(wall_seconds=time.perf_counter() - wall)}
    )


def write(results_dir: Path, record: RunRecord, rows: list[dict[str, Any]]) -> Path:
    """Write ``record`` and its per-item ``rows`` under ``results_dir``; RecordWriteError (one line) when it cannot."""
    try:
        return store.write_record(results_dir, record, rows)
    except ResultError as exc:
        raise RecordWriteError(str(exc)) from None
    except OSError as exc:
        where = exc.filename or store.record_path(results_dir, record)
        raise RecordWriteError(
            f"cannot write the result record {where}: {exc.strerror or exc}; the predictions are cached, "
            "so rerunning the same command after fixing the folder costs nothing"
        ) from None
