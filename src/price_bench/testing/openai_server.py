"""A local, misbehaving-on-request stand-in for OpenAI's HTTP API (tests and benchmarks).

**This is not OpenAI.** It is a ``http.server`` in a daemon thread on
127.0.0.1 (a free port), following the official request and response shapes
of the endpoints it implements, and nothing else:

* ``POST /v1/chat/completions`` -> a ``chat.completion``; with
  ``response_format={"type": "json_schema", ...}`` (OpenAI, vLLM, llama.cpp's
  own server) or ``{"type": "json_object", "schema": ...}`` (llama-cpp-python's
  server) the content is the JSON object ``{"price": N}``; built with
  ``json_schema=False`` / ``json_object=False`` it answers those with a 400,
  like a server without structured outputs;
* ``POST /v1/files`` (multipart ``purpose`` + ``file``), ``GET /v1/files/{id}``,
  ``GET /v1/files/{id}/content``;
* ``POST /v1/batches``, ``GET /v1/batches``, ``GET /v1/batches/{id}``,
  ``POST /v1/batches/{id}/cancel``. **Each retrieve advances a batch one
  step** along ``batch_script`` (by default validating, in_progress,
  finalizing, completed); a script may end ``failed`` (the input file's
  problems listed in ``errors``), ``expired`` (only the first half of the
  requests answered, the rest ``batch_expired``) or ``cancelled``. Input lines
  are validated as OpenAI does (JSON, unique ``custom_id``, ``method`` POST,
  ``url`` equal to the batch's endpoint); requests whose ``custom_id`` is in
  ``fail_custom_ids`` end in the error file with a 400 (partial errors). The
  output file lists answers in reverse order: clients must match ``custom_id``.
* ``GET /v1/models``.

Misbehaviour, for clients' retry and back-off logic:

* ``script``: one behaviour per chat request in arrival order (see
  :data:`BEHAVIOURS`), then ``default``; ``choose(body)`` may pick one from
  the request itself (None: the script);
* ``max_concurrent``: chat requests beyond this many in flight get a 429 with
  ``Retry-After`` (a rate limit on concurrency); ``delay_s`` makes every
  answer take that long, so that concurrency matters.

Errors use OpenAI's envelope ``{"error": {"message", "type", "param", "code"}}``.
Counters for tests: :attr:`chat_requests`, :attr:`answered`,
:attr:`rate_limited`, :attr:`max_in_flight`, :attr:`counts` (per
``"METHOD /path"``) and :attr:`bodies` (chat request bodies).

Usage::

    with FakeOpenAIServer(max_concurrent=4, delay_s=0.05) as server:
        client = openai.OpenAI(base_url=server.url, api_key="sk-test")
"""

from __future__ import annotations

import email.parser
import email.policy
import itertools
import json
import re
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

BEHAVIOURS = ("ok", "429", "500", "503", "hang", "malformed", "html", "empty", "400", "401")
BATCH_STATES = ("validating", "in_progress", "finalizing", "completed", "failed", "expired", "cancelling", "cancelled")
BATCH_TERMINAL = ("completed", "failed", "expired", "cancelled")
DEFAULT_BATCH_SCRIPT = ("validating", "in_progress", "finalizing", "completed")
BATCH_ENDPOINTS = ("/v1/chat/completions",)
FILE_PURPOSES = ("fine-tune", "assistants", "batch", "vision", "user_data", "evals")


def default_answer(request: dict[str, Any]) -> str:
    """A deterministic price for a request: the last user message's length, in dollars."""
    user = next((m.get("content") for m in reversed(request.get("messages") or []) if isinstance(m, dict) and m.get("role") == "user"), "")
    return f"{len(str(user)) % 500 + 1}.00"


class APIError(Exception):
    """An error answered in OpenAI's envelope."""

    def __init__(self, status: int, message: str, type_: str = "invalid_request_error", param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, message, type_, param, code

    def payload(self) -> dict[str, Any]:
        """``{"error": {...}}``."""
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


@dataclass
class _Reply:
    status: int
    payload: Any = None
    raw: bytes | None = None
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class _Batch:
    data: dict[str, Any]
    script: list[str]


class FakeOpenAIServer:
    """The stand-in server; a context manager (``with FakeOpenAIServer() as server: server.url``)."""

    def __init__(
        self,
        script: Iterable[str] = (),
        *,
        default: str = "ok",
        answer: Callable[[dict[str, Any]], str] = default_answer,
        choose: Callable[[dict[str, Any]], str | None] | None = None,
        api_key: str | None = None,
        json_schema: bool = True,
        json_object: bool = True,
        max_concurrent: int | None = None,
        retry_after: str = "0.05",
        delay_s: float = 0.0,
        hang_s: float = 3.0,
        batch_script: Iterable[str] = DEFAULT_BATCH_SCRIPT,
        fail_custom_ids: Iterable[str] = (),
    ) -> None:
        self.script = list(script)
        for behaviour in [*self.script, default]:
            if behaviour not in BEHAVIOURS:
                raise ValueError(f"unknown behaviour {behaviour!r}; expected one of {BEHAVIOURS}")
        self.batch_script = list(batch_script)
        for state in self.batch_script:
            if state not in BATCH_STATES:
                raise ValueError(f"unknown batch state {state!r}; expected one of {BATCH_STATES}")
        self.default = default
        self.answer = answer
        self.choose = choose
        self.api_key = api_key
        self.json_schema = json_schema
        self.json_object = json_object
        self.max_concurrent = max_concurrent
        self.retry_after = retry_after
        self.delay_s = delay_s
        self.hang_s = hang_s
        self.fail_custom_ids = set(fail_custom_ids)
        self.counts: Counter[str] = Counter()
        self.bodies: list[dict[str, Any]] = []
        self.chat_requests = 0
        self.answered = 0
        self.rate_limited = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.files: dict[str, dict[str, Any]] = {}
        self.file_contents: dict[str, bytes] = {}
        self.batches: dict[str, _Batch] = {}
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._server: ThreadingHTTPServer | None = None
        self._port: int | None = None

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> FakeOpenAIServer:
        """Bind 127.0.0.1 on a free port and serve in a daemon thread (idempotent)."""
        if self._server is None:
            handler = type("Handler", (_Handler,), {"fake": self})
            self._server = _Server(("127.0.0.1", 0), handler)
            self._port = int(self._server.server_address[1])
            threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-openai", daemon=True).start()
        return self

    def stop(self) -> None:
        """Stop serving (idempotent)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """The base URL, ``http://127.0.0.1:PORT/v1`` (kept after :meth:`stop`: a dead replica's address)."""
        if self._port is None:
            raise RuntimeError("FakeOpenAIServer was never started")
        return f"http://127.0.0.1:{self._port}/v1"

    def count(self, method: str, path_pattern: str) -> int:
        """Requests whose method is ``method`` and path fully matches the regex ``path_pattern``."""
        with self._lock:
            return sum(n for key, n in self.counts.items() if key.split(" ", 1)[0] == method and re.fullmatch(path_pattern, key.split(" ", 1)[1]))

    # -- routing -------------------------------------------------------------------------

    def handle(self, method: str, path: str, query: dict[str, str], headers: dict[str, str], body: bytes) -> _Reply:
        """Answer one request."""
        with self._lock:
            self.counts[f"{method} {path}"] += 1
        try:
            self._check_auth(headers)
            if (method, path) == ("POST", "/v1/chat/completions"):
                return self._chat_request(body)
            with self._lock:
                return self._route(method, path, query, headers, body)
        except APIError as exc:
            return _Reply(exc.status, exc.payload())

    def _route(self, method: str, path: str, query: dict[str, str], headers: dict[str, str], body: bytes) -> _Reply:
        if (method, path) == ("GET", "/v1/models"):
            return _Reply(200, {"object": "list", "data": [{"id": "fake-model", "object": "model", "created": 0, "owned_by": "price-bench"}]})
        if (method, path) == ("POST", "/v1/files"):
            return _Reply(200, self._create_file(headers, body))
        if (method, path) == ("POST", "/v1/batches"):
            return _Reply(200, self._create_batch(_json_body(body)))
        if (method, path) == ("GET", "/v1/batches"):
            return _Reply(200, _page([b.data for b in reversed(self.batches.values())], query))
        match = re.fullmatch(r"/v1/files/([^/]+)(/content)?", path)
        if match and method == "GET":
            file = self._file(match.group(1))
            if match.group(2):
                return _Reply(200, raw=self.file_contents[file["id"]], content_type="application/octet-stream")
            return _Reply(200, file)
        match = re.fullmatch(r"/v1/batches/([^/]+)(/cancel)?", path)
        if match:
            batch = self._batch(match.group(1))
            if method == "GET" and not match.group(2):
                return _Reply(200, self._retrieve_batch(batch))
            if method == "POST" and match.group(2):
                return _Reply(200, self._cancel_batch(batch))
        raise APIError(404, f"Invalid URL ({method} {path})", code="unknown_url")

    def _check_auth(self, headers: dict[str, str]) -> None:
        if self.api_key is not None and headers.get("authorization") != f"Bearer {self.api_key}":
            raise APIError(401, "Incorrect API key provided.", code="invalid_api_key")

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}_{next(self._ids):04d}{uuid.uuid4().hex[:12]}"

    # -- chat completions -------------------------------------------------------------------

    def _chat_request(self, raw: bytes) -> _Reply:
        body = _json_body(raw)
        with self._lock:
            self.chat_requests += 1
            self.bodies.append(body)
            if self.max_concurrent is not None and self.in_flight >= self.max_concurrent:
                self.rate_limited += 1
                return _Reply(429, APIError(429, "Rate limit reached for requests", "requests", code="rate_limit_exceeded").payload(), headers={"Retry-After": self.retry_after})
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            chosen = self.choose(body) if self.choose is not None else None
            behaviour = chosen if chosen is not None else (self.script.pop(0) if self.script else self.default)
        reply = None
        try:
            if self.delay_s:
                time.sleep(self.delay_s)
            reply = self._chat_reply(behaviour, body)
        finally:
            with self._lock:
                self.in_flight -= 1
                if reply is not None and reply.status == 200 and reply.raw is None:
                    self.answered += 1
        return reply

    def _chat_reply(self, behaviour: str, body: dict[str, Any]) -> _Reply:
        if behaviour == "hang":
            time.sleep(self.hang_s)
            behaviour = "ok"
        if behaviour == "429":
            return _Reply(429, APIError(429, "Rate limit reached for requests", "requests", code="rate_limit_exceeded").payload(), headers={"Retry-After": self.retry_after})
        if behaviour in ("500", "503"):
            return _Reply(int(behaviour), APIError(int(behaviour), f"fake server error {behaviour}", "server_error").payload())
        if behaviour == "400":
            return _Reply(400, APIError(400, "fake bad request").payload())
        if behaviour == "401":
            return _Reply(401, APIError(401, "Incorrect API key provided.", code="invalid_api_key").payload())
        if behaviour == "malformed":
            return _Reply(200, raw=b'{"id": "chatcmpl-x", "choices": [{"message": ')
        if behaviour == "html":
            return _Reply(200, raw=b"<html><body>502 Bad Gateway</body></html>", content_type="text/html")
        try:
            return _Reply(200, self.completion(body, empty=behaviour == "empty"))
        except APIError as exc:
            return _Reply(exc.status, exc.payload())

    def completion(self, body: dict[str, Any], *, empty: bool = False) -> dict[str, Any]:
        """The ``chat.completion`` for a valid request body (raises :class:`APIError` for an invalid one)."""
        model, messages = body.get("model"), body.get("messages")
        if not model:
            raise APIError(400, "Missing required parameter: 'model'.", param="model")
        if not isinstance(messages, list) or not messages:
            raise APIError(400, "Missing required parameter: 'messages'.", param="messages")
        structured = _response_format(body.get("response_format"))
        if (structured == "json_schema" and not self.json_schema) or (structured == "json_object" and not self.json_object):
            raise APIError(400, f"Invalid parameter: 'response_format' of type '{structured}' is not supported with this model.", param="response_format")
        text = "" if empty else self.answer(body)
        if structured and not empty:
            text = json.dumps({"price": _as_number(text)})
        prompt_tokens = sum(len(str(m.get("content", ""))) for m in messages if isinstance(m, dict)) // 4 + 3 * len(messages) + 3
        completion_tokens = len(text) // 4 + 1
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text, "refusal": None}, "logprobs": None, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens, "total_tokens": prompt_tokens + completion_tokens},
            "system_fingerprint": "fp_fake",
            "service_tier": "default",
        }

    # -- files ---------------------------------------------------------------------------------

    def _create_file(self, headers: dict[str, str], body: bytes) -> dict[str, Any]:
        fields = _parse_multipart(headers.get("content-type", ""), body)
        if "file" not in fields:
            raise APIError(400, "Missing required parameter: 'file'.", param="file")
        purpose = fields.get("purpose", (None, b""))[1].decode()
        if purpose not in FILE_PURPOSES:
            raise APIError(400, f"Invalid value for 'purpose': {purpose!r}.", param="purpose")
        filename, content = fields["file"]
        return self._store_file(filename or "upload", purpose, content)

    def _store_file(self, filename: str, purpose: str, content: bytes) -> dict[str, Any]:
        file_id = self._new_id("file")
        self.files[file_id] = {
            "id": file_id,
            "object": "file",
            "bytes": len(content),
            "created_at": int(time.time()),
            "filename": filename,
            "purpose": purpose,
            "status": "processed",
            "expires_at": None,
            "status_details": None,
        }
        self.file_contents[file_id] = content
        return self.files[file_id]

    def _file(self, file_id: str) -> dict[str, Any]:
        if file_id not in self.files:
            raise APIError(404, f"No such File object: {file_id}", param="id")
        return self.files[file_id]

    # -- batches --------------------------------------------------------------------------------

    def _create_batch(self, params: dict[str, Any]) -> dict[str, Any]:
        for name in ("input_file_id", "endpoint", "completion_window"):
            if not params.get(name):
                raise APIError(400, f"Missing required parameter: '{name}'.", param=name)
        if params["endpoint"] not in BATCH_ENDPOINTS:
            raise APIError(400, f"Invalid value for 'endpoint': {params['endpoint']!r}.", param="endpoint")
        if params["completion_window"] != "24h":
            raise APIError(400, "Invalid value for 'completion_window': only '24h' is supported.", param="completion_window")
        file = self.files.get(params["input_file_id"])
        if file is None:
            raise APIError(400, f"Invalid 'input_file_id': {params['input_file_id']}.", param="input_file_id")
        if file["purpose"] != "batch":
            raise APIError(400, f"File {file['id']} does not have purpose 'batch'.", param="input_file_id")
        now = int(time.time())
        batch_id = self._new_id("batch")
        data = {
            "id": batch_id,
            "object": "batch",
            "endpoint": params["endpoint"],
            "errors": None,
            "input_file_id": file["id"],
            "completion_window": "24h",
            "status": "validating",
            "output_file_id": None,
            "error_file_id": None,
            "created_at": now,
            "in_progress_at": None,
            "expires_at": now + 86400,
            "finalizing_at": None,
            "completed_at": None,
            "failed_at": None,
            "expired_at": None,
            "cancelling_at": None,
            "cancelled_at": None,
            "request_counts": {"total": 0, "completed": 0, "failed": 0},
            "metadata": params.get("metadata"),
        }
        self.batches[batch_id] = _Batch(data, list(self.batch_script[1:] if self.batch_script[:1] == ["validating"] else self.batch_script))
        return data

    def _batch(self, batch_id: str) -> _Batch:
        if batch_id not in self.batches:
            raise APIError(404, f"No batch found with id '{batch_id}'.", param="batch_id")
        return self.batches[batch_id]

    def _retrieve_batch(self, batch: _Batch) -> dict[str, Any]:
        if batch.data["status"] not in BATCH_TERMINAL and batch.script:
            self._advance(batch, batch.script.pop(0))
        return batch.data

    def _advance(self, batch: _Batch, status: str) -> None:
        data, now = batch.data, int(time.time())
        if data["status"] == "validating" and status != "failed":
            lines, problems = self._batch_lines(data)
            if problems:
                status = "failed"
            else:
                data["request_counts"]["total"] = len(lines)
        data["status"] = status
        if status == "in_progress":
            data["in_progress_at"] = now
        elif status == "finalizing":
            data["finalizing_at"] = now
        elif status == "failed":
            _, problems = self._batch_lines(data)
            data["errors"] = {"object": "list", "data": problems or [{"code": "invalid_request", "message": "The batch failed.", "param": None, "line": None}]}
            data["failed_at"] = now
        elif status == "cancelling":
            data["cancelling_at"] = now
        elif status in ("completed", "expired", "cancelled"):
            data[f"{status}_at"] = now
            self._finish_batch(data, answer_until=None if status == "completed" else (0 if status == "cancelled" else None), expired=status == "expired")

    def _batch_lines(self, data: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The parsed input lines and OpenAI-style problems (``code``, ``message``, ``param``, ``line``)."""
        lines, problems, seen = [], [], set()
        content = self.file_contents[data["input_file_id"]].decode("utf-8", errors="replace")
        for number, text in enumerate(content.splitlines(), start=1):
            if not text.strip():
                continue
            try:
                line = json.loads(text)
            except json.JSONDecodeError:
                problems.append({"code": "invalid_json_line", "message": "This line is not parseable as valid JSON.", "param": None, "line": number})
                continue
            if not isinstance(line, dict) or not isinstance(line.get("custom_id"), str):
                problems.append({"code": "missing_required_parameter", "message": "Missing required parameter: 'custom_id'.", "param": "custom_id", "line": number})
            elif line["custom_id"] in seen:
                problems.append({"code": "duplicate_custom_id", "message": f"The custom_id for this request is a duplicate of another request: {line['custom_id']}.", "param": "custom_id", "line": number})
            elif line.get("method") != "POST":
                problems.append({"code": "invalid_method", "message": "The method must be POST.", "param": "method", "line": number})
            elif line.get("url") != data["endpoint"]:
                problems.append({"code": "mismatched_endpoint", "message": f"The url must match the batch endpoint {data['endpoint']}.", "param": "url", "line": number})
            elif not isinstance(line.get("body"), dict):
                problems.append({"code": "missing_required_parameter", "message": "Missing required parameter: 'body'.", "param": "body", "line": number})
            else:
                seen.add(line["custom_id"])
                lines.append(line)
        if not lines and not problems:
            problems.append({"code": "empty_file", "message": "The input file is empty.", "param": None, "line": None})
        return lines, problems

    def _finish_batch(self, data: dict[str, Any], answer_until: int | None, expired: bool) -> None:
        lines, _ = self._batch_lines(data)
        limit = len(lines) // 2 if expired else (len(lines) if answer_until is None else answer_until)
        outputs, errors = [], []
        for index, line in enumerate(lines):
            request_id = f"req_{uuid.uuid4().hex[:24]}"
            entry = {"id": self._new_id("batch_req"), "custom_id": line["custom_id"]}
            if index >= limit:
                code, message = ("batch_expired", "This request could not be executed before the completion window expired.") if expired else ("batch_cancelled", "This request was cancelled.")
                errors.append({**entry, "response": None, "error": {"code": code, "message": message}})
                continue
            try:
                if line["custom_id"] in self.fail_custom_ids:
                    raise APIError(400, "fake per-request failure")
                body = self.completion(line["body"])
            except APIError as exc:
                errors.append({**entry, "response": {"status_code": exc.status, "request_id": request_id, "body": exc.payload()}, "error": None})
                continue
            outputs.append({**entry, "response": {"status_code": 200, "request_id": request_id, "body": body}, "error": None})
        outputs.reverse()  # OpenAI does not keep the input order
        counts = data["request_counts"]
        counts.update(total=len(lines), completed=len(outputs), failed=len(errors))
        if outputs:
            data["output_file_id"] = self._store_file(f"{data['id']}_output.jsonl", "batch_output", _jsonl(outputs))["id"]
        if errors:
            data["error_file_id"] = self._store_file(f"{data['id']}_error.jsonl", "batch_output", _jsonl(errors))["id"]

    def _cancel_batch(self, batch: _Batch) -> dict[str, Any]:
        if batch.data["status"] in BATCH_TERMINAL:
            raise APIError(409, f"Cannot cancel a batch with status {batch.data['status']}.", code="invalid_state")
        self._advance(batch, "cancelling")
        batch.script = ["cancelled"]
        return batch.data


def _response_format(value: Any) -> str | None:
    """"json_schema" or "json_object" for a structured response format, else None; a malformed one is a 400."""
    if value is None:
        return None
    if not isinstance(value, dict) or value.get("type") not in ("text", "json_object", "json_schema"):
        raise APIError(400, "Invalid value for 'response_format.type'.", param="response_format.type")
    if value["type"] == "text":
        return None
    if value["type"] == "json_object":
        return "json_object"
    schema = value.get("json_schema")
    if not isinstance(schema, dict) or not schema.get("name") or not isinstance(schema.get("schema"), dict):
        raise APIError(400, "Missing required parameter: 'response_format.json_schema.name' or '.schema'.", param="response_format.json_schema")
    return "json_schema"


def _as_number(text: str) -> float:
    match = re.search(r"-?[0-9]+(?:\.[0-9]+)?", text.replace(",", ""))
    return float(match.group(0)) if match else 0.0


def _jsonl(rows: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(row) + "\n" for row in rows).encode()


def _page(rows: list[dict[str, Any]], query: dict[str, str]) -> dict[str, Any]:
    """OpenAI's cursor pagination: ``after`` is the id of the last row already seen."""
    if query.get("after"):
        ids = [row["id"] for row in rows]
        rows = rows[ids.index(query["after"]) + 1 :] if query["after"] in ids else []
    try:
        limit = int(query.get("limit", 20))
    except ValueError:
        raise APIError(400, "Invalid value for 'limit'.", param="limit") from None
    page = rows[:limit]
    return {"object": "list", "data": page, "first_id": page[0]["id"] if page else None, "last_id": page[-1]["id"] if page else None, "has_more": len(rows) > limit}


def _json_body(body: bytes) -> dict[str, Any]:
    try:
        value = json.loads(body or b"{}")
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
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


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def get_request(self):
        # No Nagle: on loopback Nagle plus delayed ACKs would add ~40 ms to every answer.
        conn, address = super().get_request()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn, address

    def handle_error(self, request, client_address):  # a client hanging up on a hang is expected
        pass


class _Handler(BaseHTTPRequestHandler):
    fake: FakeOpenAIServer
    protocol_version = "HTTP/1.1"

    def _dispatch(self) -> None:
        if self.server is not self.fake._server:  # stopped: a kept-alive connection dies like the server did
            self.close_connection = True
            return
        url = urlsplit(self.path)
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        reply = self.fake.handle(self.command, url.path, dict(parse_qsl(url.query, keep_blank_values=True)), headers, body)
        data = reply.raw if reply.raw is not None else json.dumps(reply.payload).encode()
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(data)))
        for key, value in reply.headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_DELETE = _dispatch

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass
