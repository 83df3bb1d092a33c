"""The stand-in's ``/v1/files`` endpoints (upload, retrieve, content), and the id counter every endpoint shares."""

from __future__ import annotations

import itertools
import re
import threading
import time
import uuid
from typing import Any

from price_bench.testing.openai_server.wire import APIError, Reply, parse_multipart

FILE_PURPOSES = ("fine-tune", "assistants", "batch", "vision", "user_data", "evals")


class FileEndpoints:
    """``POST /v1/files`` (multipart ``purpose`` + ``file``), ``GET /v1/files/{id}``, ``GET /v1/files/{id}/content``.

    Uploaded files are kept in :attr:`files` (the ``file`` objects) and
    :attr:`file_contents` (their bytes), by id.
    """

    def __init__(self) -> None:
        self.files: dict[str, dict[str, Any]] = {}
        self.file_contents: dict[str, bytes] = {}
        self._lock = threading.RLock()  # reentrant: batches compute completions under it
        self._ids = itertools.count(1)

    def _new_id(self, prefix: str) -> str:
        """A unique id in OpenAI's style: ``prefix`` (with its separator, ``file-``, ``batch_``) then hex."""
        return f"{prefix}{next(self._ids):04d}{uuid.uuid4().hex[:12]}"

    def _route_files(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Reply | None:
        if (method, path) == ("POST", "/v1/files"):
            return Reply(200, self._create_file(headers, body))
        match = re.fullmatch(r"/v1/files/([^/]+)(/content)?", path)
        if match and method == "GET":
            file = self._file(match.group(1))
            if match.group(2):
                return Reply(200, raw=self.file_contents[file["id"]], content_type="application/octet-stream")
            return Reply(200, file)
        return None

    def _create_file(self, headers: dict[str, str], body: bytes) -> dict[str, Any]:
        fields = parse_multipart(headers.get("content-type", ""), body)
        if "file" not in fields:
            raise APIError(400, "Missing required parameter: 'file'.", param="file")
        purpose = fields.get("purpose", (None, b""))[1].decode(errors="replace")
        if purpose not in FILE_PURPOSES:
            raise APIError(400, f"Invalid value for 'purpose': {purpose!r}.", param="purpose")
        filename, content = fields["file"]
        return self._store_file(filename or "upload", purpose, content)

    def _store_file(self, filename: str, purpose: str, content: bytes) -> dict[str, Any]:
        file_id = self._new_id("file-")
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
