"""The result record: one JSON file per run of one predictor on one dataset.

This is the written contract between ``price-bench run`` and everything
downstream (``results``, ``show``, ``compare``, ``leaderboard``). Fields are
only ever added; ``schema_version`` is bumped when a meaning changes.

Files (see :mod:`price_bench.results.store`)::

    <results>/<dataset>/<predictor_id>/<run_id>.json               this record
    <results>/<dataset>/<predictor_id>/<run_id>.predictions.jsonl   per-item sidecar

The sidecar holds one :class:`ItemPrediction` per line: ids, truth, guess and
raw output, never product text and never secrets.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

SCHEMA_VERSION = 1


class MetricValue(BaseModel):
    """A metric with its optional 95% bootstrap confidence interval."""

    value: float | None
    ci_low: float | None = None
    ci_high: float | None = None
    higher_is_better: bool | None = Field(default=False, description="None: neither direction is better (a descriptive share, e.g. orange).")


class PredictorInfo(BaseModel):
    """Which predictor ran, exactly."""

    id: str
    description: str = ""
    config: dict[str, Any] = Field(default_factory=dict, description="Effective config (defaults plus overrides); secrets never appear here.")
    config_hash: str = Field(description="sha256 of the canonical JSON config, first 12 hex digits.")
    predictor_version: str = "1"
    plugin_distribution: str
    plugin_version: str
    label_fields: list[str] | None = Field(default=None, description="Config fields that name this run on a leaderboard (declared by the predictor; None: the default choice).")
    runtime_fields: list[str] = Field(default_factory=list, description="Config fields that change neither fit nor answers (never shown as distinguishing).")
    code_digest: str | None = Field(default=None, description="sha256 of the predictor package's source files (part of the cache key).")


class DatasetRef(BaseModel):
    """Which items were scored."""

    name: str
    fingerprint: str
    split: str = "test"
    synthetic: bool = False
    recipe: str | None = Field(default=None, description="Curation recipe name and version, e.g. 'reference-2023@1'.")


class Timing(BaseModel):
    """Wall-clock figures for the run."""

    fit_seconds: float | None = Field(default=None, description="Time of the fit that produced the artefacts (also when reused).")
    fit_reused: bool = False
    predict_seconds_total: float = 0.0
    predict_seconds_per_item: float | None = Field(default=None, description="Predictor time per item, measured when the predictions were made (cached ones keep their original latency).")
    wall_seconds: float = 0.0


class Usage(BaseModel):
    """Money and tokens spent on the scored predictions (original spend, even when served from cache)."""

    cost_usd: float | None = Field(default=0.0, description="None: cost unknown (a model missing from every price list), never $0.")
    tokens_in: int = 0
    tokens_out: int = 0
    cached_items: int = 0
    new_items: int = 0


class BreakdownRow(BaseModel):
    """Metrics for one slice (a category or a price band)."""

    n: int
    error: float | None = None
    rmsle: float | None = None
    hits: float | None = None
    mean_truth: float | None = None


class Provenance(BaseModel):
    """Where and with what a run ran: enough to explain why two runs of one config differ."""

    python: str | None = None
    versions: dict[str, str] = Field(default_factory=dict, description="Installed versions of price-bench, the plugin and key libraries.")
    platform: str | None = None
    machine: str | None = None
    cpu: str | None = None
    cpu_count: int | None = None
    gpu: list[str] = Field(default_factory=list)
    threads: dict[str, str] = Field(default_factory=dict, description="Thread-count settings (OMP_NUM_THREADS ...) in force.")
    git_dirty: bool | None = Field(default=None, description="True when the working tree had uncommitted changes to tracked files.")


class RunRecord(BaseModel):
    """One run of one predictor on one dataset split."""

    schema_version: int = SCHEMA_VERSION
    run_id: str
    status: Literal["complete", "failed", "skipped"]
    reason: str | None = Field(default=None, description="Skip reason or failure message (one line).")
    price_bench_version: str
    predictor: PredictorInfo
    dataset: DatasetRef
    n_items: int = Field(description="Items scored (after --limit).")
    n_total: int = Field(description="Items in the split.")
    limit: int | None = Field(default=None, description="Set by --limit; such runs never reach a leaderboard.")
    seed: int = 0
    git_commit: str | None = None
    started_at: str = Field(description="UTC ISO-8601.")
    finished_at: str = Field(description="UTC ISO-8601.")
    timing: Timing = Field(default_factory=Timing)
    usage: Usage = Field(default_factory=Usage)
    parse_failures: int = Field(default=0, description="Answers with no usable price; scored with the fallback price.")
    item_errors: int = Field(default=0, description="Items whose prediction raised or errored; scored with the fallback price.")
    fallback_price: float | None = Field(default=None, description="Train median used for unparseable answers.")
    metrics: dict[str, MetricValue] = Field(default_factory=dict)
    breakdowns: dict[str, dict[str, BreakdownRow]] = Field(default_factory=dict, description="'category' and 'price_band' slices.")
    extra: dict[str, Any] = Field(default_factory=dict, description="Predictor-specific facts (e.g. training losses).")
    predictions_file: str | None = Field(default=None, description="Sidecar file name, relative to this record.")
    n_resamples: int | None = Field(default=None, description="Bootstrap resamples behind the CIs (None: records before this field).")
    ci_method: str | None = Field(default=None, description="How the CIs were computed: 'percentile bootstrap' or 'BCa bootstrap'.")
    provenance: Provenance | None = Field(default=None, description="Versions, hardware and threads (None: records before this field).")

    @property
    def is_leaderboard_eligible(self) -> bool:
        """Complete, full-split runs only (no --limit)."""
        return self.status == "complete" and self.limit is None


class ItemPrediction(BaseModel):
    """One line of the per-item sidecar."""

    id: str
    truth: float
    guess: float = Field(description="The price that was scored (the fallback when parsed is None).")
    parsed: float | None = Field(description="The parsed answer, None for a parse failure or error.")
    raw: str | None = None
    category: str | None = None
    cost_usd: float | None = Field(default=0.0, description="None: cost unknown.")
    latency_s: float | None = None
    error: str | None = None
