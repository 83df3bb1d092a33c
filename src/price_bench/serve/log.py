"""The serving log: every prediction and every feedback as one JSON line, rotated by size.

Layout of a log folder (``price-bench serve --log-dir``)::

    bundle.json        a copy of the served bundle's manifest (monitor reads the offline figures here)
    events.jsonl       the current file
    events.jsonl.1 ..  older files, ``.1`` the newest; at most ``backups`` of them

Records (never product text, never headers or tokens)::

    {"kind": "prediction", "ts": 1733040000.12, "bundle": "9d6550e767035fb4", "id": "...", "price": 41.5, "fallback": false,
     "category": "Toys", "text_chars": 812, "latency_ms": 0.9, "cost_usd": 0.0,
     "tokens_in": 0, "tokens_out": 0, "error": null}
    {"kind": "feedback", "ts": 1733040100.5, "id": "...", "price": 39.99}

Several uvicorn workers append to the same file: each record is one
``write`` on a descriptor opened with ``O_APPEND`` (the kernel keeps whole
lines apart), and rotation happens under an exclusive ``flock`` on
``events.lock``. A worker notices that another one rotated (the inode under
the name changed) and reopens.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

EVENTS = "events.jsonl"
LOCK = "events.lock"
MANIFEST_COPY = "bundle.json"
DEFAULT_MAX_BYTES = 50 * 1024 * 1024
DEFAULT_BACKUPS = 5


class EventLog:
    """Appends JSON lines to ``<folder>/events.jsonl`` with size-based rotation (process- and thread-safe)."""

    def __init__(self, folder: Path, *, max_bytes: int = DEFAULT_MAX_BYTES, backups: int = DEFAULT_BACKUPS) -> None:
        if max_bytes < 1024:
            raise ValueError("log max_bytes must be at least 1024")
        if backups < 1:
            raise ValueError("log backups must be at least 1")
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.path = self.folder / EVENTS
        self.max_bytes = max_bytes
        self.backups = backups
        self._lock = threading.Lock()
        self._fd = -1
        self._inode = -1
        self._open()

    def _open(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        self._inode = os.fstat(self._fd).st_ino

    def write(self, records: list[dict[str, Any]], common: dict[str, Any] | None = None) -> None:
        """Append ``records`` (one line each) in one ``write`` call.

        ``common``: fields every line starts with (as if each record were
        ``{**common, **record}``, for records that repeat none of its keys),
        serialised once for the whole call.
        """
        if not records:
            return
        data = b"".join(_lines(records, common))
        with self._lock:
            try:
                if os.stat(self.path).st_ino != self._inode:
                    self._open()  # another worker rotated
            except FileNotFoundError:
                self._open()
            size = os.fstat(self._fd).st_size
            if size and size + len(data) > self.max_bytes:
                self._rotate()
            os.write(self._fd, data)

    def _rotate(self) -> None:
        with open(self.folder / LOCK, "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                # Another worker may have rotated while we waited: only rotate the file we hold, if still there.
                try:
                    ours = os.stat(self.path).st_ino == self._inode
                except FileNotFoundError:
                    ours = False
                if ours:
                    for i in range(self.backups - 1, 0, -1):
                        older = self.folder / f"{EVENTS}.{i}"
                        if older.exists():
                            os.replace(older, self.folder / f"{EVENTS}.{i + 1}")
                    os.replace(self.path, self.folder / f"{EVENTS}.1")
                self._open()
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1


def _lines(records: list[dict[str, Any]], common: dict[str, Any] | None) -> list[bytes]:
    """One JSON line per record (NaN/inf become null), each starting with ``common``'s fields."""
    lines = [orjson.dumps(r, option=orjson.OPT_APPEND_NEWLINE) for r in records]
    if not common:
        return lines
    head = orjson.dumps(common)[:-1]  # '{"kind":...,"ts":...'
    return [head + (b"," + line[1:] if len(line) > 3 else b"}\n") for line in lines]


def event_files(log: Path) -> list[Path]:
    """The event files of a log folder (or of one ``events.jsonl``), oldest first."""
    log = Path(log)
    current = log / EVENTS if log.is_dir() else log
    folder = current.parent
    rotated = []
    for candidate in folder.glob(f"{current.name}.*"):
        suffix = candidate.name[len(current.name) + 1 :]
        if suffix.isdigit():
            rotated.append((int(suffix), candidate))
    files = [path for _, path in sorted(rotated, reverse=True)]
    if current.is_file():
        files.append(current)
    return files


def parse_line(line: str | bytes) -> dict[str, Any] | None:
    """One log line as a prediction or feedback record, or None when it is neither."""
    try:
        record = orjson.loads(line)
    except ValueError:
        return None
    return record if isinstance(record, dict) and record.get("kind") in ("prediction", "feedback") else None


class LogTail:
    """Reads the records appended to a log folder since the last call (follows rotation).

    The first call reads every file (oldest first); later calls read only new
    complete lines. When ``events.jsonl`` was rotated, the rest of the file it
    used to be (now ``events.jsonl.1``, or older) is read before the new one.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self._inode: int | None = None
        self._offset = 0
        self.malformed = 0

    def read_new(self) -> list[dict[str, Any]]:
        current = self.folder / EVENTS
        try:
            inode = os.stat(current).st_ino
        except FileNotFoundError:
            return []
        out: list[dict[str, Any]] = []
        if self._inode is None:
            for path in event_files(self.folder)[:-1]:
                out += self._read(path, 0)[0]
        elif inode != self._inode:
            for path in event_files(self.folder)[:-1]:
                try:
                    if os.stat(path).st_ino == self._inode:
                        out += self._read(path, self._offset)[0]
                        break
                except FileNotFoundError:
                    continue
            self._offset = 0
        if inode != self._inode:
            self._inode, self._offset = inode, 0
        records, self._offset = self._read(current, self._offset)
        return out + records

    def _read(self, path: Path, offset: int) -> tuple[list[dict[str, Any]], int]:
        """Complete lines of ``path`` from ``offset``; returns them and the offset after the last newline."""
        try:
            with open(path, "rb") as fh:
                fh.seek(offset)
                data = fh.read()
        except FileNotFoundError:
            return [], offset
        end = data.rfind(b"\n") + 1
        records = []
        for line in data[:end].splitlines():
            if line.strip():
                record = parse_line(line)
                if record is None:
                    self.malformed += 1
                else:
                    records.append(record)
        return records, offset + end


def read_events(log: Path, warnings: list[str] | None = None) -> Iterator[dict[str, Any]]:
    """Every well-formed record of the log, oldest first.

    A malformed line is skipped; when ``warnings`` is given, one line naming
    the file and line number is appended to it for each.
    """
    for path in event_files(log):
        with open(path, encoding="utf-8", errors="replace") as fh:
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                record = parse_line(line)
                if record is None:
                    if warnings is not None:
                        warnings.append(f"{path}:{lineno}: not a prediction or feedback record; skipped")
                    continue
                yield record
