"""A local stand-in for the parts of OpenAI's HTTP API that this plugin uses.

**This is not OpenAI.** It is a small ``http.server`` running in a thread on
127.0.0.1 (a free port), for tests and offline demos. It follows the official
request and response shapes of the endpoints it implements, and nothing else:

* ``POST /v1/files`` (multipart: ``purpose`` and ``file``) -> a ``file`` object
* ``POST /v1/fine_tuning/jobs`` -> a ``fine_tuning.job`` object
* ``GET  /v1/fine_tuning/jobs`` (``limit``, ``after``, ``metadata[k]=v``) -> a list
* ``GET  /v1/fine_tuning/jobs/{id}`` -> the job; **each retrieve advances the job
  one step** along its script (by default validating_files, queued, running,
  running, succeeded), so tests see the states a real job goes through
* ``GET  /v1/fine_tuning/jobs/{id}/events`` (``limit``, ``after``) -> events, newest first
* ``POST /v1/fine_tuning/jobs/{id}/cancel`` -> the cancelled job
* ``POST /v1/chat/completions`` -> a ``chat.completion``

Errors use OpenAI's envelope ``{"error": {"message", "type", "param", "code"}}``.
A "fine-tuned" model answers every prompt with ``Price is $N.00``, N being the
rounded mean of the prices in the assistant messages of its training file; an
unknown model gets a 404 ``model_not_found``, as from OpenAI. Every request is
recorded in :attr:`StandInOpenAI.requests`.
"""

from __future__ import annotations

import email.parser
import email.policy
import itertools
import json
import re
import statistics
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

TERMINAL = ("succeeded", "failed", "cancelled")
DEFAULT_SCRIPT = ("validating_files", "queued", "running", "running", "succeeded")
_PRICE = re.compile(r"\$\s*([0-9][0-9,]*(?:\.[0-9]+)?)")


@dataclass
class RecordedRequest:
    """One request as the stand-in received it."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    status: int = 0
    response: Any = None

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)


class APIError(Exception):
    """An error answered in OpenAI's error envelope."""

    def __init__(self, status: int, message: str, type_: str = "invalid_request_error", param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, message, type_, param, code

    def payload(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


@dataclass
class _Job:
    data: dict[str, Any]
    script: list[str]
    fail_message: str | None = None
    events: list[dict[str, Any]] = field(default_factory=list)  # oldest first


class StandInOpenAI:
    """The stand-in server. Use as a context manager, or call :meth:`start` / :meth:`stop`.

    ``api_key``: when set, requests must carry ``Authorization: Bearer <api_key>``.
    ``script``: the statuses a new job walks through, one per retrieve.
    ``fail_jobs``: new jobs end ``failed`` with this message instead of succeeding.
    ``drop_create_answers``: this many job creations succeed on the server but
    their answer is never sent (the connection is closed), like a lost response.
    """

    def __init__(self, api_key: str | None = None, script: tuple[str, ...] = DEFAULT_SCRIPT, fail_jobs: str | None = None):
        self.api_key = api_key
        self.script = list(script)
        self.fail_jobs = fail_jobs
        self.drop_create_answers = 0
        self.requests: list[RecordedRequest] = []
        self.files: dict[str, dict[str, Any]] = {}
        self.file_contents: dict[str, bytes] = {}
        self.jobs: dict[str, _Job] = {}
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> StandInOpenAI:
        """Bind 127.0.0.1 on a free port and serve in a daemon thread."""
        handler = type("Handler", (_Handler,), {"stand_in": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="openai-stand-in", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Shut the server down."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> StandInOpenAI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>/v1``, for ``OpenAI(base_url=...)``."""
        assert self._server is not None, "stand-in server is not started"
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    # -- inspection helpers for tests --------------------------------------------------

    def count(self, method: str, path_pattern: str) -> int:
        """How many recorded requests match ``method`` and the regex ``path_pattern`` (full match)."""
        return sum(1 for r in self.requests if r.method == method and re.fullmatch(path_pattern, r.path))

    def add_event(self, job_id: str, message: str) -> None:
        """Append an info event to a job's log (as if the server had logged it)."""
        with self._lock:
            self._event(self._job(job_id), message)

    # -- routing ---------------------------------------------------------------------------

    def handle(self, method: str, path: str, query: dict[str, str], headers: dict[str, str], body: bytes) -> tuple[int | None, Any]:
        """Answer one request (``(status, JSON payload)``, status None: no answer) and record both."""
        with self._lock:
            recorded = RecordedRequest(method, path, query, headers, body)
            self.requests.append(recorded)
            try:
                status, payload = self._route(method, path, query, headers, body)
            except APIError as exc:
                status, payload = exc.status, exc.payload()
            recorded.status, recorded.response = status, json.loads(json.dumps(payload))  # a snapshot
            if (method, path) == ("POST", "/v1/fine_tuning/jobs") and status == 200 and self.drop_create_answers > 0:
                self.drop_create_answers -= 1
                return None, None  # the handler closes the connection without answering
            return status, recorded.response

    def _route(self, method: str, path: str, query: dict[str, str], headers: dict[str, str], body: bytes) -> tuple[int, Any]:
        self._check_auth(headers)
        route = (method, path)
        if route == ("POST", "/v1/files"):
            return 200, self._create_file(headers, body)
        if route == ("POST", "/v1/fine_tuning/jobs"):
            return 200, self._create_job(_json_body(body))
        if route == ("GET", "/v1/fine_tuning/jobs"):
            return 200, self._list_jobs(query)
        if route == ("POST", "/v1/chat/completions"):
            return 200, self._chat(_json_body(body))
        match = re.fullmatch(r"/v1/fine_tuning/jobs/([^/]+)(/events|/cancel)?", path)
        if match:
            job = self._job(match.group(1))
            if method == "GET" and match.group(2) is None:
                return 200, self._retrieve(job)
            if method == "GET" and match.group(2) == "/events":
                return 200, self._events(job, query)
            if method == "POST" and match.group(2) == "/cancel":
                return 200, self._cancel(job)
        raise APIError(404, f"Invalid URL ({method} {path})", code="unknown_url")

    def _check_auth(self, headers: dict[str, str]) -> None:
        if self.api_key is None:
            return
        if headers.get("authorization") != f"Bearer {self.api_key}":
            raise APIError(401, "Incorrect API key provided.", code="invalid_api_key")

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}-{next(self._ids):04d}{uuid.uuid4().hex[:12]}"

    # -- files -------------------------------------------------------------------------------

    def _create_file(self, headers: dict[str, str], body: bytes) -> dict[str, Any]:
        fields = _parse_multipart(headers.get("content-type", ""), body)
        purpose = fields.get("purpose", (None, b""))[1].decode()
        if "file" not in fields:
            raise APIError(400, "Missing required parameter: 'file'.", param="file")
        if purpose not in ("fine-tune", "assistants", "batch", "vision", "user_data"):
            raise APIError(400, f"Invalid value for 'purpose': {purpose!r}.", param="purpose")
        filename, content = fields["file"]
        file_id = self._new_id("file")
        self.files[file_id] = {
            "id": file_id,
            "object": "file",
            "bytes": len(content),
            "created_at": int(time.time()),
            "filename": filename or "upload",
            "purpose": purpose,
            "status": "processed",
            "expires_at": None,
            "status_details": None,
        }
        self.file_contents[file_id] = content
        return self.files[file_id]

    # -- fine-tuning jobs ----------------------------------------------------------------------

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
        job_id = self._new_id("ftjob")
        hyper = params.get("hyperparameters") or ((params.get("method") or {}).get("supervised") or {}).get("hyperparameters") or {}
        hyperparameters = {"batch_size": hyper.get("batch_size", "auto"), "learning_rate_multiplier": hyper.get("learning_rate_multiplier", "auto"), "n_epochs": hyper.get("n_epochs", "auto")}
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
            "integrations": [_integration(i) for i in params.get("integrations") or []],
            "seed": params.get("seed") if params.get("seed") is not None else 42,
            "estimated_finish": None,
            "metadata": params.get("metadata"),
            "method": {"type": "supervised", "supervised": {"hyperparameters": hyperparameters}},
            "user_provided_suffix": params.get("suffix"),
        }
        job = _Job(data=data, script=list(self.script), fail_message=self.fail_jobs)
        self.jobs[job_id] = job
        self._event(job, f"Created fine-tuning job: {job_id}")
        self._event(job, f"Validating training file: {params['training_file']}")
        return data

    def _job(self, job_id: str) -> _Job:
        if job_id not in self.jobs:
            raise APIError(404, f"Could not find fine tune: {job_id}", code="fine_tune_not_found")
        return self.jobs[job_id]

    def _list_jobs(self, query: dict[str, str]) -> dict[str, Any]:
        wanted = {k[len("metadata["):-1]: v for k, v in query.items() if k.startswith("metadata[") and k.endswith("]")}
        jobs = [j.data for j in reversed(self.jobs.values())]
        jobs = [j for j in jobs if all((j.get("metadata") or {}).get(k) == v for k, v in wanted.items())]
        return _page(jobs, query, default_limit=20)

    def _retrieve(self, job: _Job) -> dict[str, Any]:
        if job.data["status"] not in TERMINAL and job.script:
            self._advance(job, job.script.pop(0))
        return job.data

    def _advance(self, job: _Job, status: str) -> None:
        data = job.data
        if status == "succeeded" and job.fail_message:
            status = "failed"
        if status == data["status"] and status != "running":
            return
        data["status"] = status
        if status == "queued":
            self._event(job, "Files validated, moving job to queued state")
        elif status == "running":
            step = sum(1 for e in job.events if e["type"] == "metrics") + 1
            total = step + job.script.count("running")
            if step == 1:
                self._event(job, "Fine-tuning job started")
            self._event(job, f"Step {step}/{total}: training loss={1.0 / step:.4f}", type_="metrics", data={"step": step, "total_steps": total, "train_loss": 1.0 / step})
        elif status == "succeeded":
            suffix = data.get("user_provided_suffix") or ""
            data["fine_tuned_model"] = f"ft:{data['model']}:price-bench-stand-in:{suffix}:{data['id'][-8:]}"
            data["finished_at"] = int(time.time())
            data["trained_tokens"] = len(self.file_contents.get(data["training_file"], b"")) // 4
            self._event(job, f"New fine-tuned model created: {data['fine_tuned_model']}")
            self._event(job, "The job has successfully completed")
        elif status == "failed":
            data["finished_at"] = int(time.time())
            data["error"] = {"code": "invalid_training_file", "message": job.fail_message or "The job failed.", "param": "training_file"}
            self._event(job, f"Fine-tuning job failed: {data['error']['message']}", level="error")

    def _events(self, job: _Job, query: dict[str, str]) -> dict[str, Any]:
        return _page(list(reversed(job.events)), query, default_limit=20)

    def _cancel(self, job: _Job) -> dict[str, Any]:
        if job.data["status"] in TERMINAL:
            raise APIError(400, f"Job {job.data['id']} has already {job.data['status']} and cannot be cancelled.", code="invalid_state")
        job.data["status"] = "cancelled"
        job.data["finished_at"] = int(time.time())
        self._event(job, "Job cancelled")
        return job.data

    def _event(self, job: _Job, message: str, level: str = "info", type_: str = "message", data: dict | None = None) -> None:
        job.events.append(
            {
                "object": "fine_tuning.job.event",
                "id": self._new_id("ftevent"),
                "created_at": int(time.time()),
                "level": level,
                "message": message,
                "data": data or {},
                "type": type_,
            }
        )

    # -- chat completions ---------------------------------------------------------------------

    def _chat(self, params: dict[str, Any]) -> dict[str, Any]:
        model, messages = params.get("model"), params.get("messages")
        if not model:
            raise APIError(400, "Missing required parameter: 'model'.", param="model")
        if not isinstance(messages, list) or not messages:
            raise APIError(400, "Missing required parameter: 'messages'.", param="messages")
        price = self._model_price(model)
        if price is None:
            raise APIError(404, f"The model `{model}` does not exist or you do not have access to it.", code="model_not_found")
        content = f"Price is ${price:.2f}"
        prompt_tokens = sum(len(str(m.get("content", ""))) for m in messages) // 4 + 3 * len(messages) + 3
        completion_tokens = len(content) // 4 + 1
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content, "refusal": None}, "logprobs": None, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens, "total_tokens": prompt_tokens + completion_tokens},
            "system_fingerprint": "fp_stand_in",
            "service_tier": "default",
        }

    def _model_price(self, model: str) -> float | None:
        """The mean training price (rounded) for a fine-tuned model, else None."""
        for job in self.jobs.values():
            if job.data["fine_tuned_model"] == model and job.data["status"] == "succeeded":
                return float(round(statistics.fmean(_training_prices(self.file_contents[job.data["training_file"]]) or [0.0])))
        return None


def _training_prices(content: bytes) -> list[float]:
    prices = []
    for line in content.decode().splitlines():
        if not line.strip():
            continue
        for message in json.loads(line).get("messages", []):
            match = _PRICE.search(str(message.get("content", ""))) if message.get("role") == "assistant" else None
            if match:
                prices.append(float(match.group(1).replace(",", "")))
    return prices


def _integration(spec: dict[str, Any]) -> dict[str, Any]:
    wandb = dict(spec.get("wandb") or {})
    wandb.setdefault("entity", None)
    wandb.setdefault("name", None)
    wandb.setdefault("tags", [])
    return {"type": spec.get("type"), "wandb": wandb}


def _page(rows: list[dict[str, Any]], query: dict[str, str], default_limit: int) -> dict[str, Any]:
    """OpenAI's cursor pagination: ``after`` is the id of the last row already seen."""
    if query.get("after"):
        ids = [row["id"] for row in rows]
        rows = rows[ids.index(query["after"]) + 1 :] if query["after"] in ids else []
    limit = int(query.get("limit", default_limit))
    return {"object": "list", "data": rows[:limit], "has_more": len(rows) > limit}


def _json_body(body: bytes) -> dict[str, Any]:
    try:
        value = json.loads(body or b"{}")
    except json.JSONDecodeError as exc:
        raise APIError(400, f"We could not parse the JSON body of your request: {exc}") from None
    if not isinstance(value, dict):
        raise APIError(400, "The request body must be a JSON object.")
    return value


def _parse_multipart(content_type: str, body: bytes) -> dict[str, tuple[str | None, bytes]]:
    """``{field name: (filename, bytes)}`` from a multipart/form-data body."""
    if not content_type.startswith("multipart/form-data"):
        raise APIError(400, "Expected a multipart/form-data body.")
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\nMIME-Version: 1.0\r\n\r\n" + body
    )
    fields = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if name:
            fields[name] = (part.get_filename(), part.get_payload(decode=True) or b"")
    return fields


class _Handler(BaseHTTPRequestHandler):
    stand_in: StandInOpenAI
    protocol_version = "HTTP/1.1"

    def _dispatch(self) -> None:
        url = urlsplit(self.path)
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        status, payload = self.stand_in.handle(self.command, url.path, dict(parse_qsl(url.query, keep_blank_values=True)), headers, body)
        if status is None:
            self.close_connection = True
            return
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = _dispatch

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass
