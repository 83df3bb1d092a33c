"""OpenAI's wire format, as the stand-in speaks it: the error envelope, JSON and multipart bodies, list pages."""

from __future__ import annotations

import email.parser
import email.policy
import json
from dataclasses import dataclass, field
from typing import Any


class APIError(Exception):
    """An error answered in OpenAI's envelope ``{"error": {"message", "type", "param", "code"}}``."""

    def __init__(
        self, status: int, message: str, type_: str = "invalid_request_error", param: str | None = None, code: str | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, message, type_, param, code

    def payload(self) -> dict[str, Any]:
        """``{"error": {...}}``."""
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


@dataclass
class Reply:
    """One answer: a JSON ``payload`` or ``raw`` bytes; ``drop``: close the connection without answering."""

    status: int
    payload: Any = None
    raw: bytes | None = None
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False

    @classmethod
    def error(cls, exc: APIError, headers: dict[str, str] | None = None) -> Reply:
        """The reply for an :class:`APIError`."""
        return cls(exc.status, exc.payload(), headers=headers or {})


@dataclass
class RecordedRequest:
    """One request as the stand-in received it, and what it answered (``response``: a JSON snapshot or None)."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    received_at: float
    status: int | None = None
    response: Any = None

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)


def json_body(body: bytes) -> dict[str, Any]:
    """A request's JSON object (a 400 for anything else)."""
    try:
        value = json.loads(body or b"{}")
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise APIError(400, f"We could not parse the JSON body of your request: {exc}") from None
    if not isinstance(value, dict):
        raise APIError(400, "The request body must be a JSON object.")
    return value


def parse_multipart(content_type: str, body: bytes) -> dict[str, tuple[str | None, bytes]]:
    """``{field name: (filename, bytes)}`` from a multipart/form-data body."""
    if not content_type.startswith("multipart/form-data"):
        raise APIError(400, "Expected a multipart/form-data body.")
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\nMIME-Version: 1.0\r\n\r\n" + body
    )
    fields: dict[str, tuple[str | None, bytes]] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if isinstance(name, str) and name:
            payload = part.get_payload(decode=True)
            fields[name] = (part.get_filename(), payload if isinstance(payload, bytes) else b"")
    return fields


def page(rows: list[dict[str, Any]], query: dict[str, str]) -> dict[str, Any]:
    """OpenAI's cursor pagination (``after``: the id of the last row already seen; ``limit``, default 20)."""
    if query.get("after"):
        ids = [row["id"] for row in rows]
        rows = rows[ids.index(query["after"]) + 1 :] if query["after"] in ids else []
    try:
        limit = int(query.get("limit", 20))
    except ValueError:
        raise APIError(400, "Invalid value for 'limit'.", param="limit") from None
    shown = rows[:limit]
    return {
        "object": "list",
        "data": shown,
        "first_id": shown[0]["id"] if shown else None,
        "last_id": shown[-1]["id"] if shown else None,
        "has_more": len(rows) > limit,
    }


def jsonl(rows: list[dict[str, Any]]) -> bytes:
    """JSON Lines."""
    return "".join(json.dumps(row) + "\n" for row in rows).encode()
