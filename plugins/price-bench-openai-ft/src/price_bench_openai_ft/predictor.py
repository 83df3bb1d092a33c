"""The ``openai-ft`` predictor: fine-tune an OpenAI chat model on train items, then ask it for prices.

``fit`` (each step saved in the work folder, see :mod:`price_bench_openai_ft.state`):

1. subsample train (``train_size``) and validation (``validation_size``), write
   both JSONL files and check them against OpenAI's rules;
2. estimate the cost and print it; without ``-o openai-ft.confirm=true`` stop
   there with :class:`~price_bench_openai_ft.cost.SpendNotConfirmedError`
   (nothing uploaded, no job); above ``max_training_usd`` stop too;
3. upload the files, create the job (once), poll it with its event log until
   it succeeds; a failed or cancelled job raises
   :class:`~price_bench_openai_ft.jobs.JobFailedError`.

A rerun resumes the recorded job (also after Ctrl-C) and never creates a
second one for the same training data. ``predict`` sends the same prompt to
the fine-tuned model through the frontier plugin's client (cache, retries,
cost, spending cap), or with ``-o openai-ft.batch=true`` as one OpenAI batch
(:mod:`price_bench_frontier.batch`: half the price, resumable from the work
folder).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from pydantic import Field

from price_bench import Item, Prediction, Predictor, PredictorConfig, predict_field, runtime_field
from price_bench_openai_ft.cost import CostEstimate, check_spend, estimate_cost, training_price
from price_bench_openai_ft.jobs import FineTuneJobs, JobFailedError, default_console, job_error, make_openai
from price_bench_openai_ft.state import STATE_FILE, JobState, UploadedFile, adoptable, training_key
from price_bench_openai_ft.training_data import prompt_messages, subsample, training_example, write_jsonl
from price_bench_openai_ft.validation import validate_file

DEFAULT_BASE_MODEL = "gpt-4o-mini-2024-07-18"
OPENAI_ENDPOINT = "https://api.openai.com/v1"


class OpenAIFineTuneConfig(PredictorConfig):
    """Options of ``openai-ft`` (``-o openai-ft.key=value``)."""

    base_model: str = Field(DEFAULT_BASE_MODEL, description="Model to fine-tune.")
    base_url: str | None = Field(None, description="OpenAI-compatible endpoint; None: api.openai.com.")
    confirm: bool = runtime_field(False, description="Allow spending money on a fine-tuning job.")
    train_size: int = Field(200, ge=1, description="Train items sampled (seeded) for the training file.")
    validation_size: int = Field(50, ge=0, description="Validation items for the validation file (0: none).")
    n_epochs: int = Field(1, ge=1, le=50)
    suffix: str = Field("pricer", max_length=64, description="Added to the fine-tuned model's name.")
    training_price_per_1m: float | None = runtime_field(None, ge=0, description="USD per 1M training tokens; None: the built-in table.")
    max_training_usd: float | None = runtime_field(None, ge=0, description="Refuse jobs estimated above this, even when confirmed.")
    poll_interval_s: float = runtime_field(30.0, ge=0)
    wandb_project: str | None = Field(None, description="Weights & Biases project for OpenAI's integration.")
    wandb_entity: str | None = None
    max_chars: int | None = Field(None, ge=1, description="Cut item texts to this many characters.")
    max_tokens: int = predict_field(8, ge=1)
    temperature: float = predict_field(0.0)
    concurrency: int = runtime_field(4, ge=1)
    max_retries: int = runtime_field(5, ge=0)
    timeout_s: float = runtime_field(60.0, gt=0)
    budget_usd: float | None = runtime_field(None, ge=0, description="Spending cap for predictions in one run.")
    cache: bool = runtime_field(True, description="Cache chat answers (a rerun costs nothing).")
    batch: bool = runtime_field(False, description="Predict through the OpenAI Batch API (half the price, answers within 24 h).")
    batch_poll_s: float = runtime_field(30.0, ge=0)
    batch_max_wait_s: float | None = runtime_field(None, ge=0, description="Stop waiting after this long (a rerun resumes the batch).")


@dataclass
class _Prepared:
    """Files written and checked, the cost estimate and the training key."""

    train: UploadedFile
    validation: UploadedFile | None
    estimate: CostEstimate
    key: str


class OpenAIFineTune(Predictor):
    """Fine-tuned OpenAI chat model (default gpt-4o-mini-2024-07-18), trained on a train subsample."""

    id = "openai-ft"
    description = "OpenAI fine-tuning of gpt-4o-mini on train items (asks before spending), then chat completions."
    version = "1"
    Config = OpenAIFineTuneConfig
    batch_size = 64
    default_batch_timeout_s = 1800.0  # 64 API calls with retries and backoff

    config: OpenAIFineTuneConfig

    def __init__(self, config: PredictorConfig | None = None, *, seed: int = 0) -> None:
        super().__init__(config, seed=seed)
        self.state: JobState | None = None
        self.console = default_console()
        self._client: Any = None
        self.workdir: Path | None = None
        if self.config.batch:
            self.batch_size = 50_000  # one predict call per run: one batch (OpenAI's limit per batch)

    @classmethod
    def skip_reason(cls, config: PredictorConfig) -> str | None:
        """Needs OPENAI_API_KEY, or a base_url of an OpenAI-compatible server."""
        if getattr(config, "base_url", None) or os.environ.get("OPENAI_API_KEY"):
            return None
        return "environment variable OPENAI_API_KEY is not set and no base_url is configured (-o openai-ft.base_url=URL)"

    # -- fit --------------------------------------------------------------------------------------

    def load(self, workdir: Path) -> bool:
        """True once the work folder records a succeeded job with its model's name."""
        self.workdir = Path(workdir)
        state = JobState.load(Path(workdir))
        if state is not None and state.succeeded:
            self.state = state
            return True
        return False

    def fit(self, train: Sequence[Item], validation: Sequence[Item], workdir: Path) -> None:
        """Prepare, confirm, launch (or resume) the fine-tuning job and wait for it."""
        workdir = self.workdir = Path(workdir)
        workdir.mkdir(parents=True, exist_ok=True)
        state = JobState.load(workdir)
        if state is None or state.job_id is None:
            prepared = self._prepare(train, validation, workdir)
            adopted = adoptable(prepared.key)
            if adopted is not None and adopted.job_id:
                self.console.print(f"openai-ft: reusing job {adopted.job_id} ({adopted.status}) trained on the same data; nothing new is spent")
                state = adopted
                state.save(workdir)
            else:
                state = self._merge(state, prepared)
                if adopted is not None and not state.create_token:
                    state.create_token = adopted.create_token  # a creation elsewhere whose answer was lost
                state.save(workdir)
                self._launch(state, prepared.estimate, workdir)
        self._wait(state, workdir)
        self.state = state

    def _prepare(self, train: Sequence[Item], validation: Sequence[Item], workdir: Path) -> _Prepared:
        cfg = self.config
        from price_bench_openai_ft.tokens import token_counter

        counter = token_counter(cfg.base_model)
        train_file, tokens = self._write(workdir / "train.jsonl", subsample(train, cfg.train_size, self.seed), counter, 10)
        validation_file = None
        validation_items = subsample(validation, cfg.validation_size, self.seed + 1) if cfg.validation_size else []
        if validation_items:
            validation_file, _ = self._write(workdir / "validation.jsonl", validation_items, counter, 1)
        price = training_price(cfg.base_model, cfg.training_price_per_1m)
        estimate = estimate_cost(cfg.base_model, tokens, cfg.n_epochs, price, counter.method)
        self.console.print(f"openai-ft: {estimate.summary()}")
        key = training_key(
            endpoint=(cfg.base_url or OPENAI_ENDPOINT).rstrip("/"),
            base_model=cfg.base_model,
            train=train_file.sha256,
            validation=validation_file.sha256 if validation_file else None,
            n_epochs=cfg.n_epochs,
            seed=self.seed,
            suffix=cfg.suffix,
            wandb=[cfg.wandb_project, cfg.wandb_entity],
        )
        return _Prepared(train_file, validation_file, estimate, key)

    def _write(self, path: Path, items: Sequence[Item], counter: Any, min_examples: int) -> tuple[UploadedFile, list[int]]:
        """Write and check one JSONL file; return it and its per-example token counts."""
        sha = write_jsonl(path, [training_example(item, self.config.max_chars) for item in items])
        report = validate_file(path, self.config.base_model, counter, min_examples=min_examples)
        report.raise_for_problems()
        return UploadedFile(path=str(path), sha256=sha, examples=len(items)), report.example_tokens

    def _merge(self, old: JobState | None, prepared: _Prepared) -> JobState:
        """A state for ``prepared``, keeping upload ids and a pending create token that still apply."""
        state = JobState(
            base_model=self.config.base_model,
            train=prepared.train,
            validation=prepared.validation,
            estimate=prepared.estimate.to_dict(),
            base_url=self.config.base_url,
            training_key=prepared.key,
        )
        if old is not None:
            for name in ("train", "validation"):
                new, previous = getattr(state, name), getattr(old, name)
                if new is not None and previous is not None and previous.id and previous.sha256 == new.sha256:
                    new.id = previous.id
            if old.training_key == prepared.key:
                state.create_token = old.create_token
        return state

    def _launch(self, state: JobState, estimate: CostEstimate, workdir: Path) -> None:
        """Check the spend, upload what is not uploaded yet, create the job once."""
        try:
            check_spend(estimate, self.config.confirm, self.config.max_training_usd)
        except Exception as exc:
            self.console.print(f"openai-ft: {exc}")
            raise
        jobs = self._jobs()
        job = jobs.find_by_token(state.create_token) if state.create_token else None  # sent before, answer lost
        if job is None:
            for upload in (state.train, state.validation):
                if upload is not None and upload.id is None:
                    upload.id = jobs.upload(Path(upload.path))
                    state.save(workdir)
            token = state.new_create_token()
            state.save(workdir)
            job = jobs.create(token, **self._job_params(state))
        state.job_id, state.status = job.id, job.status
        if state.train is not None and state.train.id is None:  # found by token: its files were uploaded elsewhere
            state.train.id = job.training_file
        if state.validation is not None and state.validation.id is None:
            state.validation.id = job.validation_file
        state.save(workdir)
        self.console.print(f"openai-ft: fine-tuning job {job.id} created ({job.status}); state in {workdir / STATE_FILE}")

    def _job_params(self, state: JobState) -> dict[str, Any]:
        cfg = self.config
        params: dict[str, Any] = {
            "model": cfg.base_model,
            "training_file": state.train.id,
            "seed": self.seed,
            "method": {"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": cfg.n_epochs}}},
        }
        if state.validation is not None:
            params["validation_file"] = state.validation.id
        if cfg.suffix:
            params["suffix"] = cfg.suffix
        if cfg.wandb_project:
            wandb: dict[str, Any] = {"project": cfg.wandb_project, "tags": ["price-bench"]}
            if cfg.wandb_entity:
                wandb["entity"] = cfg.wandb_entity
            params["integrations"] = [{"type": "wandb", "wandb": wandb}]
        return params

    def _wait(self, state: JobState, workdir: Path) -> None:
        """Poll a live job to its end; raise :class:`JobFailedError` unless it succeeded."""
        if state.status not in ("succeeded", "failed", "cancelled"):

            def record(job: Any) -> None:
                if (job.status, job.fine_tuned_model) != (state.status, state.fine_tuned_model):
                    state.status, state.fine_tuned_model = job.status, job.fine_tuned_model
                    state.error = job_error(job) if job.status in ("failed", "cancelled") else None
                    state.save(workdir)

            self._jobs().wait(state.job_id, on_status=record)
        if not state.succeeded:
            message = f"{state.error or f'fine-tuning job {state.job_id} ended {state.status}'}; delete {workdir / STATE_FILE} to start a new job"
            self.console.print(f"openai-ft: {message}")
            raise JobFailedError(message)
        self.console.print(f"openai-ft: fine-tuned model {state.fine_tuned_model} is ready")

    def _jobs(self) -> FineTuneJobs:
        client = make_openai(self.config.base_url, timeout=self.config.timeout_s)
        return FineTuneJobs(client, poll_interval_s=self.config.poll_interval_s, console=self.console)

    # -- predict ----------------------------------------------------------------------------------

    @property
    def fine_tuned_model(self) -> str:
        """The fine-tuned model's name (after ``fit`` or ``load``)."""
        if self.state is None or not self.state.fine_tuned_model:
            raise RuntimeError("openai-ft has no fine-tuned model yet: fit it first")
        return self.state.fine_tuned_model

    def predict(self, items: Sequence[Item]) -> list[Prediction]:
        """One chat completion per item with the fine-tuned model (cached, retried, costed)."""
        from price_bench import parse_price

        client = self._chat_client()
        conversations = [prompt_messages(item.text, self.config.max_chars) for item in items]
        params = {"temperature": self.config.temperature, "seed": self.seed, "max_tokens": self.config.max_tokens}
        if self.config.batch:
            from price_bench_frontier.batch import BatchRun
            from price_bench_frontier.cache import default_cache_path

            folder = self.workdir if self.workdir is not None else default_cache_path().parent / "batches"
            run = BatchRun(client, folder, poll_interval_s=self.config.batch_poll_s, max_wait_s=self.config.batch_max_wait_s, report=self.console.print)
            results = run.chat_many(conversations, **params)
        else:
            results = client.chat_many(conversations, **params)
        return [
            Prediction(
                raw=result.text,
                price=parse_price(result.text) if result.ok else None,
                cost_usd=result.cost_usd if result.price_known or not result.ok else None,  # unknown, never $0
                latency_s=None if self.config.batch and not result.cached else result.latency_s,
                tokens_in=result.tokens_in,
                tokens_out=result.tokens_out,
                error=result.error,
            )
            for result in results
        ]

    def _chat_client(self) -> Any:
        if self._client is None:
            from price_bench_frontier.client import LLMClient

            cfg = self.config
            self._client = LLMClient(
                self.fine_tuned_model,
                base_url=cfg.base_url,
                timeout=cfg.timeout_s,
                max_retries=cfg.max_retries,
                concurrency=cfg.concurrency,
                budget_usd=cfg.budget_usd,
                cache=cfg.cache,
                seed=self.seed,
            )
        return self._client

    def close(self) -> None:
        """Close the chat client (its HTTP pool and cache)."""
        if self._client is not None:
            self._client.close()
            self._client = None
