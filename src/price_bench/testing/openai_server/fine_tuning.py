"""The stand-in's ``/v1/fine_tuning/jobs`` endpoints, and the models its jobs produce.

* ``POST /v1/fine_tuning/jobs`` -> a ``fine_tuning.job`` (its files must be
  uploads with purpose ``fine-tune``);
* ``GET /v1/fine_tuning/jobs`` (``limit``, ``after``, ``metadata[k]=v``) -> newest first;
* ``GET /v1/fine_tuning/jobs/{id}`` -> the job; **each retrieve advances the job
  one step** along ``job_script`` (by default validating_files, queued, running,
  running, succeeded), with the events a real job logs; ``fail_jobs``, when set,
  makes a job end ``failed`` with that message instead of succeeding;
* ``GET /v1/fine_tuning/jobs/{id}/events`` (``limit``, ``after``) -> newest first;
* ``GET /v1/fine_tuning/jobs/{id}/checkpoints`` -> one checkpoint per training step of a succeeded job;
* ``POST /v1/fine_tuning/jobs/{id}/cancel`` -> the cancelled job (a 400 once it has ended).

A succeeded job's ``fine_tuned_model`` answers chat completions with
``Price is $N.00``, N the rounded mean of the prices in the assistant
messages of its training file.
"""

from __future__ import annotations

import json
import re
import statistics
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from price_bench.testing.openai_server.files import FileEndpoints
from price_bench.testing.openai_server.wire import APIError, Reply, json_body, page

JOB_STATES = ("validating_files", "queued", "running", "succeeded", "failed", "cancelled")
JOB_TERMINAL = ("succeeded", "failed", "cancelled")
DEFAULT_JOB_SCRIPT = ("validating_files", "queued", "running", "running", "succeeded")
_PRICE = re.compile(r"\$\s*([0-9][0-9,]*(?:\.[0-9]+)?)")


@dataclass
class Job:
    """A fine-tuning job: its API object (``data``), the states still ahead, its events (oldest first)."""

    data: dict[str, Any]
    script: list[str]
    fail_message: str | None = None
    events: list[dict[str, Any]] = field(default_factory=list)
    checkpoints: list[dict[str, Any]] = field(default_factory=list)


class FineTuningEndpoints(FileEndpoints):
    """The fine-tuning jobs API over the uploaded files (:attr:`jobs`, by id, in creation order)."""

    def __init__(self, job_script: Iterable[str] = DEFAULT_JOB_SCRIPT, fail_jobs: str | None = None) -> None:
        super().__init__()
        self.job_script = list(job_script)
        for state in self.job_script:
            if state not in JOB_STATES:
                raise ValueError(f"unknown fine-tuning job state {state!r}; expected one of {JOB_STATES}")
        self.fail_jobs = fail_jobs
        self.jobs: dict[str, Job] = {}

    def add_event(self, job_id: str, message: str) -> None:
        """Append an info event to a job's log (as if the server had logged it)."""
        with self._lock:
            self._event(self._job(job_id), message)

    def fine_tuned_answer(self, model: str) -> str | None:
        """What ``model`` answers when a succeeded job of this server produced it (``Price is $N.00``), else None."""
        for job in list(self.jobs.values()):
            if job.data["fine_tuned_model"] == model and job.data["status"] == "succeeded":
                prices = _training_prices(self.file_contents.get(job.data["training_file"], b""))
                return f"Price is ${round(statistics.fmean(prices or [0.0])):.2f}"
        return None

    def _route_fine_tuning(self, method: str, path: str, query: dict[str, str], body: bytes) -> Reply | None:
        if (method, path) == ("POST", "/v1/fine_tuning/jobs"):
            return Reply(200, self._create_job(json_body(body)))
        if (method, path) == ("GET", "/v1/fine_tuning/jobs"):
            return Reply(200, self._list_jobs(query))
        match = re.fullmatch(r"/v1/fine_tuning/jobs/([^/]+)(/events|/checkpoints|/cancel)?", path)
        if not match:
            return None
        job, action = self._job(match.group(1)), match.group(2)
        if method == "GET" and action is None:
            return Reply(200, self._retrieve_job(job))
        if method == "GET" and action == "/events":
            return Reply(200, page(list(reversed(job.events)), query))
        if method == "GET" and action == "/checkpoints":
            return Reply(200, page(list(reversed(job.checkpoints)), query))
        if method == "POST" and action == "/cancel":
            return Reply(200, self._cancel_job(job))
        return None

    def _create_job(self, params: dict[str, Any]) -> dict[str, Any]:
        for name in ("model", "training_file"):
            if not params.get(name):
                raise APIError(400, f"Missing required parameter: '{name}'.", param=name)
        for name in ("training_file", "validation_file"):
            file_id = params.get(name)
            if file_id is None:
                continue
            if file_id not in self.files:
                raise APIError(400, f"invalid {name}: {file_id}", param=name, code="invalid_file")
            if self.files[file_id]["purpose"] != "fine-tune":
                raise APIError(400, f"File {file_id} does not have purpose 'fine-tune'.", param=name)
        job_id = self._new_id("ftjob-")
        method = params.get("method") or {}
        hyper = params.get("hyperparameters") or (method.get("supervised") or {}).get("hyperparameters") or {}
        hyperparameters = {name: hyper.get(name, "auto") for name in ("batch_size", "learning_rate_multiplier", "n_epochs")}
        data = {
            "object": "fine_tuning.job",
            "id": job_id,
            "model": params["model"],
            "created_at": int(time.time()),
            "finished_at": None,
            "fine_tuned_model": None,
            "organization_id": "org-stand-in",
            "result_files": [],
            "status": "validating_files",
            "validation_file": params.get("validation_file"),
            "training_file": params["training_file"],
            "hyperparameters": hyperparameters,
            "trained_tokens": None,
            "error": None,
            "integrations": [_integration(spec) for spec in params.get("integrations") or []],
            "seed": params.get("seed") if params.get("seed") is not None else 42,
            "estimated_finish": None,
            "metadata": params.get("metadata"),
            "method": {"type": "supervised", "supervised": {"hyperparameters": hyperparameters}},
            "user_provided_suffix": params.get("suffix"),
        }
        job = Job(data=data, script=list(self.job_script), fail_message=self.fail_jobs)
        self.jobs[job_id] = job
        self._event(job, f"Created fine-tuning job: {job_id}")
        self._event(job, f"Validating training file: {params['training_file']}")
        return data

    def _job(self, job_id: str) -> Job:
        if job_id not in self.jobs:
            raise APIError(404, f"Could not find fine tune: {job_id}", code="fine_tune_not_found")
        return self.jobs[job_id]

    def _list_jobs(self, query: dict[str, str]) -> dict[str, Any]:
        wanted = {k[len("metadata[") : -1]: v for k, v in query.items() if k.startswith("metadata[") and k.endswith("]")}
        jobs = [job.data for job in reversed(self.jobs.values())]
        return page([j for j in jobs if all((j.get("metadata") or {}).get(k) == v for k, v in wanted.items())], query)

    def _retrieve_job(self, job: Job) -> dict[str, Any]:
        if job.data["status"] not in JOB_TERMINAL and job.script:
            self._advance_job(job, job.script.pop(0))
        return job.data

    def _advance_job(self, job: Job, status: str) -> None:
        data = job.data
        if status == "succeeded" and job.fail_message:
            status = "failed"
        if status == data["status"] and status != "running":
            return
        data["status"] = status
        if status == "queued":
            self._event(job, "Files validated, moving job to queued state")
        elif status == "running":
            self._training_step(job)
        elif status == "succeeded":
            self._succeed(job)
        elif status in ("failed", "cancelled"):
            data["finished_at"] = int(time.time())
            if status == "failed":
                data["error"] = {"code": "invalid_training_file", "message": job.fail_message or "The job failed.", "param": "training_file"}
                self._event(job, f"Fine-tuning job failed: {data['error']['message']}", level="error")
            else:
                self._event(job, "Job cancelled")

    def _training_step(self, job: Job) -> None:
        step = sum(1 for event in job.events if event["type"] == "metrics") + 1
        total = step + job.script.count("running")
        if step == 1:
            self._event(job, "Fine-tuning job started")
        metrics = {"step": step, "total_steps": total, "train_loss": 1.0 / step}
        self._event(job, f"Step {step}/{total}: training loss={1.0 / step:.4f}", type_="metrics", data=metrics)

    def _succeed(self, job: Job) -> None:
        data = job.data
        suffix = data.get("user_provided_suffix") or ""
        data["fine_tuned_model"] = f"ft:{data['model']}:price-bench-stand-in:{suffix}:{data['id'][-8:]}"
        data["finished_at"] = int(time.time())
        data["trained_tokens"] = len(self.file_contents.get(data["training_file"], b"")) // 4
        for event in (e for e in job.events if e["type"] == "metrics"):
            step = event["data"]["step"]
            job.checkpoints.append(
                {
                    "object": "fine_tuning.job.checkpoint",
                    "id": self._new_id("ftckpt_"),
                    "created_at": int(time.time()),
                    "fine_tuned_model_checkpoint": f"{data['fine_tuned_model']}:ckpt-step-{step}",
                    "fine_tuning_job_id": data["id"],
                    "metrics": {"step": float(step), "train_loss": event["data"]["train_loss"]},
                    "step_number": step,
                }
            )
        self._event(job, f"New fine-tuned model created: {data['fine_tuned_model']}")
        self._event(job, "The job has successfully completed")

    def _cancel_job(self, job: Job) -> dict[str, Any]:
        status = job.data["status"]
        if status in JOB_TERMINAL:
            raise APIError(400, f"Job {job.data['id']} has already {status} and cannot be cancelled.", code="invalid_state")
        self._advance_job(job, "cancelled")
        return job.data

    def _event(self, job: Job, message: str, level: str = "info", type_: str = "message", data: dict[str, Any] | None = None) -> None:
        job.events.append(
            {
                "object": "fine_tuning.job.event",
                "id": self._new_id("ftevent-"),
                "created_at": int(time.time()),
                "level": level,
                "message": message,
                "data": data or {},
                "type": type_,
            }
        )


def _training_prices(content: bytes) -> list[float]:
    """The prices (``$N``) in the assistant messages of a chat-format training file."""
    prices = []
    for line in content.decode(errors="replace").splitlines():
        try:
            example = json.loads(line) if line.strip() else {}
        except json.JSONDecodeError:
            continue
        for message in example.get("messages", []) if isinstance(example, dict) else []:
            match = _PRICE.search(str(message.get("content", ""))) if isinstance(message, dict) and message.get("role") == "assistant" else None
            if match:
                prices.append(float(match.group(1).replace(",", "")))
    return prices


def _integration(spec: dict[str, Any]) -> dict[str, Any]:
    wandb = dict(spec.get("wandb") or {})
    wandb.setdefault("entity", None)
    wandb.setdefault("name", None)
    wandb.setdefault("tags", [])
    return {"type": spec.get("type"), "wandb": wandb}
