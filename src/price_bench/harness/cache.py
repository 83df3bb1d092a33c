"""The per-item prediction cache: SQLite in WAL mode.

One row per (run key, item id). The run key is the sha256 of the predictor
id, config hash, plugin version, predictor version, seed, dataset
fingerprint and the digest of the predictor's source code
(:mod:`price_bench.harness.codedigest`), so anything that could change a
prediction gives a new key; the parts are kept readable in the ``keys`` table.

The runner writes from one thread only (workers only call ``predict``) and
commits after every finished batch: a crash or Ctrl-C loses at most the
batches in flight. The connection uses WAL and a busy timeout so two
``price-bench run`` processes can share the file.

Per-item errors (``Prediction.error``) are not cached: they are retried on
the next run. Raw answers are stored after secret scrubbing.

A corrupt file (garbage bytes, a truncated copy) is detected when it is
opened or read, renamed aside to ``predictions.sqlite.corrupt-<UTC time>``
(its bytes are kept: the answers in it were paid for), reported in one line,
and replaced by an empty cache, so the run goes on.
``price-bench cache info | check | clear`` inspect and manage the file.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import re
import sqlite3
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

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
    fingerprint TEXT NOT NULL,
    code_digest TEXT NOT NULL DEFAULT ''
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
    code_digest: str = ""

    @functools.cached_property
    def digest(self) -> str:
        """sha256 of the canonical JSON of the parts (a key without a code digest hashes as before it existed)."""
        parts = [self.predictor_id, self.config_hash, self.plugin_version, self.predictor_version, self.fingerprint, self.seed]
        if self.code_digest:
            parts.append(self.code_digest)
        return hashlib.sha256(json.dumps(parts).encode()).hexdigest()


#: SQLite primary result codes that mean "this file is damaged" (SQLITE_CORRUPT, SQLITE_NOTADB).
_CORRUPT_CODES = frozenset({11, 26})


def is_corrupt(exc: BaseException) -> bool:
    """True when ``exc`` says the database file is damaged (not locked, not read-only)."""
    if not isinstance(exc, sqlite3.DatabaseError):
        return False
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return (code & 0xFF) in _CORRUPT_CODES
    return type(exc) is sqlite3.DatabaseError


def _warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr, flush=True)


def move_aside(path: Path) -> Path:
    """Rename ``path`` (and its ``-wal``/``-shm`` files) to ``<path>.corrupt-<UTC time>``; returns the new path."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    n = 1
    while target.exists():
        n += 1
        target = path.with_name(f"{path.name}.corrupt-{stamp}-{n}")
    for suffix in ("-wal", "-shm"):
        side = path.with_name(path.name + suffix)
        if side.exists():
            side.rename(target.with_name(target.name + suffix))
    if path.exists():
        path.rename(target)
    return target


def aside_files(path: Path) -> list[Path]:
    """Corrupt caches moved aside next to ``path`` (oldest first)."""
    return sorted(p for p in path.parent.glob(f"{path.name}.corrupt-*") if not p.name.endswith(("-wal", "-shm")))


#: The columns every query relies on, per table (a foreign SQLite file or another tool's tables lack some).
_COLUMNS = {
    table: re.findall(r"^\s+(\w+) (?:TEXT|INTEGER|REAL)", body, re.M)
    for table, body in re.findall(r"CREATE TABLE IF NOT EXISTS (\w+) \((.*?)\n\)", SCHEMA, re.S)
}


def _check_columns(conn: sqlite3.Connection) -> None:
    """``sqlite3.DatabaseError`` (treated as a damaged file: moved aside) when an existing table lacks a column of :data:`SCHEMA`."""
    for table, columns in _COLUMNS.items():
        found = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
        missing = [column for column in columns if column not in found]
        if found and missing:
            raise sqlite3.DatabaseError(f"not a price-bench prediction cache: table {table} has no column {missing[0]}")


class PredictionCache:
    """Read and write cached predictions (one connection, used from one thread).

    ``on_corrupt`` gets the one-line message when a damaged file is moved
    aside (default: a ``warning:`` line on stderr).
    """

    def __init__(
        self, path: Path | None = None, *, timeout_s: float = 30.0, on_corrupt: Callable[[str], None] | None = None
    ) -> None:
        self.path = Path(path) if path is not None else default_cache_path()
        self.timeout_s = timeout_s
        self.on_corrupt = on_corrupt or _warn
        self.moved_aside: list[Path] = []
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.conn = self._connect()
        except sqlite3.DatabaseError as exc:
            if not is_corrupt(exc):
                raise
            self._set_aside(exc)
            self.conn = self._connect()

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=self.timeout_s, isolation_level=None)
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self.timeout_s * 1000)}")
            _check_columns(conn)  # before anything is written to the file
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.executescript(SCHEMA)
            columns = {row[1] for row in conn.execute("PRAGMA table_info(keys)")}
            if "code_digest" not in columns:  # a cache written before code digests: its keys have none
                conn.execute("ALTER TABLE keys ADD COLUMN code_digest TEXT NOT NULL DEFAULT ''")
            conn.execute("SELECT 1 FROM keys LIMIT 1").fetchall()
            conn.execute("SELECT 1 FROM predictions LIMIT 1").fetchall()
        except BaseException:
            conn.close()
            raise
        return conn

    def _set_aside(self, exc: BaseException) -> None:
        target = move_aside(self.path)
        self.moved_aside.append(target)
        self.on_corrupt(
            f"prediction cache {self.path} is corrupt ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__}); "
            f"moved it aside to {target.name} (bytes kept) and started an empty cache"
        )

    def _recover(self, exc: BaseException) -> None:
        """After a corruption error mid-use: move the file aside and continue with an empty cache."""
        try:
            self.conn.close()
        except sqlite3.Error:
            pass
        self._set_aside(exc)
        self.conn = self._connect()

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()

    def __enter__(self) -> PredictionCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def get(self, key: CacheKey) -> dict[str, Prediction]:
        """Every cached prediction for ``key``, by item id (empty after a corrupt file was moved aside)."""
        try:
            rows = self.conn.execute(
                "SELECT item_id, raw, raw_is_number, price, cost_usd, latency_s, tokens_in, tokens_out"
                " FROM predictions WHERE key = ?",
                (key.digest,),
            ).fetchall()
        except sqlite3.DatabaseError as exc:
            if not is_corrupt(exc):
                raise
            self._recover(exc)
            return {}
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
        try:
            self._put(key, values)
        except sqlite3.DatabaseError as exc:
            if not is_corrupt(exc):
                raise
            self._recover(exc)
            self._put(key, values)
        return len(values)

    def _put(self, key: CacheKey, values: Sequence[tuple[object, ...]]) -> None:
        with self._transaction():
            self.conn.execute(
                "INSERT OR IGNORE INTO keys (key, predictor_id, config_hash, plugin_version, predictor_version, seed, fingerprint,"
                " code_digest) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (key.digest, key.predictor_id, key.config_hash, key.plugin_version, key.predictor_version, key.seed, key.fingerprint,
                 key.code_digest),
            )
            self.conn.executemany("INSERT OR REPLACE INTO predictions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", values)

    def adopt_other_code(self, key: CacheKey) -> int:
        """Copy the answers cached for ``key`` under another code digest (the escape hatch); returns how many.

        Only items ``key`` has no answer for are copied; the newest other key wins.
        """
        others = [row[0] for row in self.conn.execute(
            "SELECT key FROM keys WHERE predictor_id = ? AND config_hash = ? AND plugin_version = ? AND predictor_version = ?"
            " AND seed = ? AND fingerprint = ? AND key != ? ORDER BY rowid DESC",
            (key.predictor_id, key.config_hash, key.plugin_version, key.predictor_version, key.seed, key.fingerprint, key.digest))]
        legacy = CacheKey(key.predictor_id, key.config_hash, key.plugin_version, key.predictor_version, key.fingerprint, key.seed)
        if legacy.digest != key.digest and legacy.digest not in others:
            others.append(legacy.digest)
        copied = 0
        with self._transaction():
            for other in others:
                cursor = self.conn.execute(
                    "INSERT OR IGNORE INTO predictions SELECT ?, item_id, raw, raw_is_number, price, cost_usd, latency_s,"
                    " tokens_in, tokens_out FROM predictions WHERE key = ?", (key.digest, other))
                copied += cursor.rowcount
            if copied:
                self.conn.execute(
                    "INSERT OR IGNORE INTO keys (key, predictor_id, config_hash, plugin_version, predictor_version, seed,"
                    " fingerprint, code_digest) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (key.digest, key.predictor_id, key.config_hash, key.plugin_version, key.predictor_version, key.seed,
                     key.fingerprint, key.code_digest))
        return copied

    def summary(self) -> list[dict[str, Any]]:
        """Per predictor id: how many run keys and cached predictions (sorted by id)."""
        rows = self.conn.execute(
            "SELECT k.predictor_id, COUNT(DISTINCT k.key), COUNT(p.item_id) FROM keys k"
            " LEFT JOIN predictions p ON p.key = k.key GROUP BY k.predictor_id ORDER BY k.predictor_id"
        ).fetchall()
        return [{"predictor": pid, "keys": n_keys, "predictions": n} for pid, n_keys, n in rows]

    def clear_predictor(self, predictor_id: str | None = None) -> int:
        """Forget every prediction of ``predictor_id`` (every predictor when None); returns how many."""
        where, args = ("WHERE key IN (SELECT key FROM keys WHERE predictor_id = ?)", (predictor_id,)) if predictor_id else ("", ())
        with self._transaction():
            n = self.conn.execute(f"DELETE FROM predictions {where}", args).rowcount
            self.conn.execute("DELETE FROM keys" + (" WHERE predictor_id = ?" if predictor_id else ""), args)
        return n

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT``; ``ROLLBACK`` when the block raises (the block's error propagates)."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            try:
                self.conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass  # keep the original error (e.g. a corrupt file), not the failed rollback
            raise
        self.conn.execute("COMMIT")
