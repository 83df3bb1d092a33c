"""The stand-in's ``/v1/batches`` endpoints: create, list, retrieve, cancel.

**Each retrieve advances a batch one step** along ``batch_script`` (by
default validating, in_progress, finalizing, completed); a script may end
``failed`` (the input file's problems listed in ``errors``), ``expired`` (only
the first half of the requests answered, the rest ``batch_expired``) or
``cancelled``. Input lines are validated as OpenAI does (JSON, unique
``custom_id``, ``method`` POST, ``url`` equal to the batch's endpoint);
requests whose ``custom_id`` is in ``fail_custom_ids`` end in the error file
with a 400 (partial errors). The output file lists answers in reverse order:
clients must match ``custom_id``.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from price_bench.testing.openai_server.chat import ChatEndpoints
from price_bench.testing.openai_server.wire import APIError, Reply, json_body, jsonl, page

BATCH_STATES = ("validating", "in_progress", "finalizing", "completed", "failed", "expired", "cancelling", "cancelled")
BATCH_TERMINAL = ("completed", "failed", "expired", "cancelled")
DEFAULT_BATCH_SCRIPT = ("validating", "in_progress", "finalizing", "completed")
BATCH_ENDPOINTS = ("/v1/chat/completions",)


@dataclass
class Batch:
    """A batch: its API object (``data``) and the states still ahead."""

    data: dict[str, Any]
    script: list[str]


class BatchEndpoints(ChatEndpoints):
    """The Batch API over uploaded ``batch`` files, answering with :meth:`completion` (:attr:`batches`, by id)."""

    def __init__(self, *args: Any, batch_script: Iterable[str] = DEFAULT_BATCH_SCRIPT, fail_custom_ids: Iterable[str] = (), **chat: Any) -> None:
        super().__init__(*args, **chat)
        self.batch_script = list(batch_script)
        for state in self.batch_script:
            if state not in BATCH_STATES:
                raise ValueError(f"unknown batch state {state!r}; expected one of {BATCH_STATES}")
        self.fail_custom_ids = set(fail_custom_ids)
        self.batches: dict[str, Batch] = {}

    def _route_batches(self, method: str, path: str, query: dict[str, str], body: bytes) -> Reply | None:
        if (method, path) == ("POST", "/v1/batches"):
            return Reply(200, self._create_batch(json_body(body)))
        if (method, path) == ("GET", "/v1/batches"):
            return Reply(200, page([b.data for b in reversed(self.batches.values())], query))
        match = re.fullmatch(r"/v1/batches/([^/]+)(/cancel)?", path)
        if match:
            batch = self._batch(match.group(1))
            if method == "GET" and not match.group(2):
                return Reply(200, self._retrieve_batch(batch))
            if method == "POST" and match.group(2):
                return Reply(200, self._cancel_batch(batch))
        return None

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
        batch_id = self._new_id("batch_")
        data: dict[str, Any] = {
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
        script = self.batch_script[1:] if self.batch_script[:1] == ["validating"] else self.batch_script
        self.batches[batch_id] = Batch(data, list(script))
        return data

    def _batch(self, batch_id: str) -> Batch:
        if batch_id not in self.batches:
            raise APIError(404, f"No batch found with id '{batch_id}'.", param="batch_id")
        return self.batches[batch_id]

    def _retrieve_batch(self, batch: Batch) -> dict[str, Any]:
        if batch.data["status"] not in BATCH_TERMINAL and batch.script:
            self._advance_batch(batch, batch.script.pop(0))
        return batch.data

    def _advance_batch(self, batch: Batch, status: str) -> None:
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
            fallback = [{"code": "invalid_request", "message": "The batch failed.", "param": None, "line": None}]
            data["errors"] = {"object": "list", "data": problems or fallback}
            data["failed_at"] = now
        elif status == "cancelling":
            data["cancelling_at"] = now
        elif status in ("completed", "expired", "cancelled"):
            data[f"{status}_at"] = now
            self._finish_batch(data, status)

    def _batch_lines(self, data: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The parsed input lines and OpenAI-style problems (``code``, ``message``, ``param``, ``line``)."""
        lines: list[dict[str, Any]] = []
        problems: list[dict[str, Any]] = []
        seen: set[str] = set()
        content = self.file_contents[data["input_file_id"]].decode("utf-8", errors="replace")
        for number, text in enumerate(content.splitlines(), start=1):
            if not text.strip():
                continue
            try:
                line = json.loads(text)
            except json.JSONDecodeError:
                problems.append({"code": "invalid_json_line", "message": "This line is not parseable as valid JSON.", "param": None, "line": number})
                continue
            problem = _line_problem(line, seen, data["endpoint"])
            if problem:
                problems.append({**problem, "line": number})
            else:
                seen.add(line["custom_id"])
                lines.append(line)
        if not lines and not problems:
            problems.append({"code": "empty_file", "message": "The input file is empty.", "param": None, "line": None})
        return lines, problems

    def _finish_batch(self, data: dict[str, Any], status: str) -> None:
        """Answer the lines: all (completed), the first half (expired) or none (cancelled)."""
        lines, _ = self._batch_lines(data)
        limit = {"completed": len(lines), "expired": len(lines) // 2, "cancelled": 0}[status]
        outputs, errors = [], []
        for index, line in enumerate(lines):
            request_id = f"req_{uuid.uuid4().hex[:24]}"
            entry = {"id": self._new_id("batch_req_"), "custom_id": line["custom_id"]}
            if index >= limit:
                if status == "expired":
                    code, message = "batch_expired", "This request could not be executed before the completion window expired."
                else:
                    code, message = "batch_cancelled", "This request was cancelled."
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
        data["request_counts"].update(total=len(lines), completed=len(outputs), failed=len(errors))
        if outputs:
            data["output_file_id"] = self._store_file(f"{data['id']}_output.jsonl", "batch_output", jsonl(outputs))["id"]
        if errors:
            data["error_file_id"] = self._store_file(f"{data['id']}_error.jsonl", "batch_output", jsonl(errors))["id"]

    def _cancel_batch(self, batch: Batch) -> dict[str, Any]:
        if batch.data["status"] in BATCH_TERMINAL:
            raise APIError(409, f"Cannot cancel a batch with status {batch.data['status']}.", code="invalid_state")
        self._advance_batch(batch, "cancelling")
        batch.script = ["cancelled"]
        return batch.data


def _line_problem(line: Any, seen: set[str], endpoint: str) -> dict[str, Any] | None:
    """What is wrong with one parsed input line (``code``, ``message``, ``param``), or None."""
    if not isinstance(line, dict) or not isinstance(line.get("custom_id"), str):
        return {"code": "missing_required_parameter", "message": "Missing required parameter: 'custom_id'.", "param": "custom_id"}
    if line["custom_id"] in seen:
        message = f"The custom_id for this request is a duplicate of another request: {line['custom_id']}."
        return {"code": "duplicate_custom_id", "message": message, "param": "custom_id"}
    if line.get("method") != "POST":
        return {"code": "invalid_method", "message": "The method must be POST.", "param": "method"}
    if line.get("url") != endpoint:
        return {"code": "mismatched_endpoint", "message": f"The url must match the batch endpoint {endpoint}.", "param": "url"}
    if not isinstance(line.get("body"), dict):
        return {"code": "missing_required_parameter", "message": "Missing required parameter: 'body'.", "param": "body"}
    return None
