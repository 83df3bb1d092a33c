"""The per-item prediction cache: SQLite in WAL mode.

One row per (run key, item id). The run key is the sha256 of the predictor
id, config hash, plugin version, predictor version, seed and dataset
fingerprint, so anything that could change a prediction gives a new key; the
parts are kept readable in the ``keys`` table.

The runner writes from one thread only (workers only call ``predict``) and
commits after every finished batch: a crash or Ctrl-C loses at most the
batches in flight. The connection uses WAL and a busy timeout so two
``price-bench run`` processes can share the file.

Per-item errors (``Prediction.error``) are not cached: they are retried on
the next run. Raw answers are stored after secret scrubbing.
"""

from __future__ import annotations

import functools
import hashlib
import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from price_bench.data.dataset import data_home
from price_bench.predictors.contract import Prediction

SCHEMA = """
CREATE TABLE IF NOT EXISTS keys (
    key TEXT PRIMARY KEY,
    predictor_id TEXT NOT NULL,
    config_hash TEXT NOT NULL,
    plugin_version TEXT NOT NULL,
    predictor_version TEXT NOT NULL,
    seed INTEGER NOT NULL,
    fingerprint TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS predictions (
    key TEXT NOT NULL,
    item_id TEXT NOT NULL,
    raw TEXT,
    raw_is_number INTEGER NOT NULL DEFAULT 0,
    price REAL,
    cost_usd REAL NOT NULL DEFAULT 0,
    latency_s REAL,
    tokens_in INTEGER NOT NULL DEFAULT 0,
    tokens_out INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (key, item_id)
) WITHOUT ROWID;
"""

#: Stored for a prediction whose cost is unknown (``cost_usd=None``); a real cost is never negative.
COST_UNKNOWN = -1.0


def default_cache_path(home: Path | None = None) -> Path:
    """``<home>/cache/predictions.sqlite``."""
    return (home or data_home()) / "cache" / "predictions.sqlite"


@dataclass(frozen=True)
class CacheKey:
    """Everything that identifies one predictor's answers on one dataset."""

    predictor_id: str
    config_hash: str
    plugin_version: str
    predictor_version: str
    fingerprint: str
    seed: int = 0

    @functools.cached_property
    def digest(self) -> str:
        """sha256 of the canonical JSON of the parts."""
        parts = [self.predictor_id, self.config_hash, self.plugin_version, self.predictor_version, self.fingerprint, self.seed]
        return hashlib.sha256(json.dumps(parts).encode()).hexdigest()


class PredictionCache:
    """Read and write cached predictions (one connection, used from one thread)."""

    def __init__(self, path: Path | None = None, *, timeout_s: float = 30.0) -> None:
        self.path = Path(path) if path is not None else default_cache_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.conn = sqlite3.connect(self.path, timeout=timeout_s, isolation_level=None)
        self.conn.execute(f"PRAGMA busy_timeout = {int(timeout_s * 1000)}")
        self.conn.execute("PRAGMA journal_mode = WAL")
        self.conn.execute("PRAGMA synchronous = NORMAL")
        self.conn.executescript(SCHEMA)

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()

    def __enter__(self) -> PredictionCache:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def get(self, key: CacheKey) -> dict[str, Prediction]:
        """Every cached prediction for ``key``, by item id."""
        rows = self.conn.execute(
            "SELECT item_id, raw, raw_is_number, price, cost_usd, latency_s, tokens_in, tokens_out"
            " FROM predictions WHERE key = ?",
            (key.digest,),
        )
        out = {}
        for item_id, raw, raw_is_number, price, cost, latency, tin, tout in rows:
            if raw_is_number and raw is not None:
                raw = float(raw)
            out[item_id] = Prediction(raw, price, None if cost is not None and cost < 0 else cost, latency, tin, tout)
        return out

    def put(self, key: CacheKey, rows: Iterable[tuple[str, Prediction]]) -> int:
        """Store predictions (errors left out) and commit; returns how many were written."""
        digest = key.digest
        values = [
            (
                digest,
                item_id,
                None if p.raw is None else str(p.raw),
                int(isinstance(p.raw, (int, float)) and not isinstance(p.raw, bool)),
                p.price,
                COST_UNKNOWN if p.cost_usd is None else float(p.cost_usd),
                p.latency_s,
                int(p.tokens_in or 0),
                int(p.tokens_out or 0),
            )
            for item_id, p in rows
            if p.error is None
        ]
        if not values:
            return 0
        with self._transaction():
            self.conn.execute(
                "INSERT OR IGNORE INTO keys VALUES (?, ?, ?, ?, ?, ?, ?)",
                (digest, key.predictor_id, key.config_hash, key.plugin_version, key.predictor_version, key.seed, key.fingerprint),
            )
            self.conn.executemany("INSERT OR REPLACE INTO predictions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", values)
        return len(values)

    def clear(self, key: CacheKey) -> None:
        """Forget every prediction for ``key``."""
        with self._transaction():
            self.conn.execute("DELETE FROM predictions WHERE key = ?", (key.digest,))

    def count(self, key: CacheKey) -> int:
        """How many predictions are cached for ``key``."""
        return self.conn.execute("SELECT COUNT(*) FROM predictions WHERE key = ?", (key.digest,)).fetchone()[0]

    def _transaction(self):
        conn = self.conn

        class _Tx:
            def __enter__(self_inner):
                conn.execute("BEGIN IMMEDIATE")

            def __exit__(self_inner, exc_type, exc, tb):
                conn.execute("ROLLBACK" if exc_type else "COMMIT")

        return _Tx()
