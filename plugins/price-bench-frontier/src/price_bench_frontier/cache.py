"""A persistent, thread-safe cache of chat responses (SQLite in WAL mode).

Keys are the sha256 of the canonical JSON of the endpoint, model, messages
and request parameters (:func:`cache_key`); the API key is never part of a
key or a value. Only successful responses are stored, so a rerun repeats
failures but never pays twice for an answer.

Default location: ``<PRICE_BENCH_HOME>/cache/llm-responses.sqlite``.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, Mapping

SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    value TEXT NOT NULL,
    created REAL NOT NULL
)
"""


def default_cache_path() -> Path:
    """``<data home>/cache/llm-responses.sqlite`` (data home honours PRICE_BENCH_HOME)."""
    from price_bench import data_home

    return data_home() / "cache" / "llm-responses.sqlite"


def cache_key(endpoint: str, model: str, messages: list[Mapping[str, Any]], params: Mapping[str, Any]) -> str:
    """sha256 hex of the canonical JSON of everything that shapes the answer."""
    payload = {"endpoint": endpoint, "model": model, "messages": list(messages), "params": dict(params)}
    canonical = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class ResponseCache:
    """Key/value store of JSON-serialisable response dicts.

    One connection shared by all threads behind a lock (SQLite calls are
    short); WAL mode and a busy timeout let several processes share a file.
    """

    def __init__(self, path: Path | str | None = None) -> None:
        self.path = Path(path) if path is not None else default_cache_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(self.path, check_same_thread=False, timeout=30, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute(SCHEMA)

    def get(self, key: str) -> dict[str, Any] | None:
        """The stored value for ``key``, or None (an unreadable row counts as a miss)."""
        with self._lock:
            row = self._conn.execute("SELECT value FROM responses WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        try:
            value = json.loads(row[0])
        except json.JSONDecodeError:
            return None
        return value if isinstance(value, dict) else None

    def put(self, key: str, model: str, value: Mapping[str, Any]) -> None:
        """Store ``value`` under ``key`` (replacing any previous one)."""
        text = json.dumps(dict(value), ensure_ascii=False)
        with self._lock:
            self._conn.execute(
                "INSERT OR REPLACE INTO responses (key, model, value, created) VALUES (?, ?, ?, ?)",
                (key, model, text, time.time()),
            )

    def __len__(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM responses").fetchone()[0])

    def close(self) -> None:
        """Close the connection (idempotent)."""
        with self._lock:
            try:
                self._conn.close()
            except sqlite3.Error:
                pass
