"""The stand-in server itself: an ``http.server`` on 127.0.0.1, routing, recording, auth and lost answers."""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from price_bench.testing.openai_server.batches import BatchEndpoints
from price_bench.testing.openai_server.wire import APIError, RecordedRequest, Reply


class FakeOpenAIServer(BatchEndpoints):
    """The stand-in; a context manager (``with FakeOpenAIServer() as server: server.url``).

    Keyword options, each documented where it acts: ``script``, ``default``,
    ``answer``, ``choose``, ``models``, ``json_schema``, ``json_object``,
    ``max_concurrent``, ``retry_after``, ``delay_s``, ``hang_s``:
    :mod:`~price_bench.testing.openai_server.chat`;
    ``batch_script``, ``fail_custom_ids``: :mod:`~price_bench.testing.openai_server.batches`;
    ``job_script``, ``fail_jobs``: :mod:`~price_bench.testing.openai_server.fine_tuning`.
    ``api_key``: when set, every request must carry ``Authorization: Bearer <api_key>`` (else a 401).

    :attr:`requests` records every request with its answer (:meth:`requests_to`,
    :meth:`count` select them); :attr:`drop_answers` (``{"METHOD
    /path": n}``) makes the next ``n`` such requests take effect on the server
    but lose their answer (the connection closes), like a response lost on the way.
    """

    def __init__(self, script: Iterable[str] = (), *, api_key: str | None = None, **options: Any) -> None:
        super().__init__(script, **options)
        self.api_key = api_key
        self.requests: list[RecordedRequest] = []
        self.drop_answers: Counter[str] = Counter()
        self._server: ThreadingHTTPServer | None = None
        self._port: int | None = None

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> FakeOpenAIServer:
        """Bind 127.0.0.1 on a free port and serve in a daemon thread (idempotent)."""
        if self._server is None:
            handler = type("Handler", (_Handler,), {"fake": self})
            self._server = LoopbackHTTPServer(("127.0.0.1", 0), handler)
            self._port = int(self._server.server_address[1])
            serve = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-openai", daemon=True)
            serve.start()
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

    # -- inspection helpers for tests --------------------------------------------------

    def requests_to(self, method: str, path_pattern: str) -> list[RecordedRequest]:
        """The recorded requests whose method is ``method`` and whose path fully matches the regex ``path_pattern``."""
        with self._lock:
            return [r for r in self.requests if r.method == method and re.fullmatch(path_pattern, r.path)]

    def count(self, method: str, path_pattern: str) -> int:
        """How many requests :meth:`requests_to` finds."""
        return len(self.requests_to(method, path_pattern))

    # -- routing -------------------------------------------------------------------------

    def handle(self, method: str, path: str, query: dict[str, str], headers: dict[str, str], body: bytes) -> Reply:
        """Answer one request, and record it with its answer."""
        recorded = RecordedRequest(method, path, query, headers, body, received_at=time.monotonic())
        key = f"{method} {path}"
        with self._lock:
            self.requests.append(recorded)
        try:
            self._check_auth(headers)
            if (method, path) == ("POST", "/v1/chat/completions"):
                reply = self._chat_request(body)
            else:
                with self._lock:
                    reply = self._route(method, path, query, headers, body)
        except APIError as exc:
            reply = Reply.error(exc)
        with self._lock:
            recorded.status = reply.status
            recorded.response = json.loads(json.dumps(reply.payload)) if reply.raw is None else None  # a snapshot
            if reply.status == 200 and self.drop_answers[key] > 0:
                self.drop_answers[key] -= 1
                reply.drop = True
        return reply

    def _route(self, method: str, path: str, query: dict[str, str], headers: dict[str, str], body: bytes) -> Reply:
        if (method, path) == ("GET", "/v1/models"):
            return Reply(200, {"object": "list", "data": [_model(name) for name in self._model_names()]})
        reply = (
            self._route_files(method, path, headers, body)
            or self._route_batches(method, path, query, body)
            or self._route_fine_tuning(method, path, query, body)
        )
        if reply is None:
            raise APIError(404, f"Invalid URL ({method} {path})", code="unknown_url")
        return reply

    def _model_names(self) -> list[str]:
        tuned = [job.data["fine_tuned_model"] for job in self.jobs.values() if job.data["status"] == "succeeded"]
        return ["fake-model", *sorted(self.models), *tuned]

    def _check_auth(self, headers: dict[str, str]) -> None:
        if self.api_key is not None and headers.get("authorization") != f"Bearer {self.api_key}":
            raise APIError(401, "Incorrect API key provided.", code="invalid_api_key")


def _model(name: str) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": 0, "owned_by": "price-bench"}


class LoopbackHTTPServer(ThreadingHTTPServer):
    """A threading HTTP server for local stand-ins: daemon threads, no Nagle, quiet about clients hanging up."""

    daemon_threads = True

    def get_request(self) -> tuple[socket.socket, Any]:
        # No Nagle: on loopback Nagle plus delayed ACKs would add ~40 ms to every answer.
        conn, address = super().get_request()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn, address

    def handle_error(self, request: Any, client_address: Any) -> None:  # a client hanging up on a hang is expected
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
        if reply.drop:
            self.close_connection = True
            return
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
