"""A pool of OpenAI-compatible replicas: least-in-flight routing and cool-down of failing replicas.

Each request goes to the available replica with the fewest requests in
flight (ties: the one that has served fewest). A replica that fails
``failures_to_cool`` times in a row (connection errors, timeouts, 5xx,
malformed answers; not rate limits or bad requests) is taken out for
``cooldown_s`` seconds, then offered again; if it fails again it goes back
into cool-down at once. When every replica is cooling down, the one whose
cool-down ends first is used, so a run never stalls on an empty pool.

Replica URLs come from ``-o frontier.base_url=URL1,URL2`` or a pool file
(:func:`read_pool_file`: one URL a line, ``#`` comments).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence
from urllib.parse import urlparse

log = logging.getLogger(__name__)


class PoolFileError(ValueError):
    """A pool file that cannot be used (the message names the file and line)."""


def validate_url(url: str, where: str = "base_url") -> str:
    """``url`` stripped of a trailing slash, when it is an http(s) URL with a host; else ValueError."""
    url = url.strip()
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ValueError(f"{where}: {url[:200]!r} is not an http(s) URL with a host")
    return url.rstrip("/")


def read_pool_file(path: str | Path) -> list[str]:
    """The replica URLs in a pool file: one per line, blank lines and ``#`` comments ignored."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PoolFileError(f"{path}: cannot read pool file: {exc}") from None
    urls = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.split("#", 1)[0].strip()
        if line:
            try:
                urls.append(validate_url(line, f"{path}:{number}"))
            except ValueError as exc:
                raise PoolFileError(str(exc)) from None
    if not urls:
        raise PoolFileError(f"{path}: the pool file lists no URL")
    return urls


@dataclass
class Replica:
    """One endpoint of the pool, with its live state and counters."""

    url: str
    client: Any
    in_flight: int = 0
    requests: int = 0
    errors: int = 0
    consecutive_failures: int = 0
    cooldowns: int = 0
    cooling_until: float = 0.0
    latencies: list[float] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """Requests, errors and answer latency (mean, p50, p95 seconds) of this replica."""
        ordered = sorted(self.latencies)

        def pct(q: float) -> float | None:
            return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 4) if ordered else None

        return {
            "url": self.url,
            "requests": self.requests,
            "errors": self.errors,
            "answers": len(ordered),
            "cooldowns": self.cooldowns,
            "latency_mean_s": round(sum(ordered) / len(ordered), 4) if ordered else None,
            "latency_p50_s": pct(0.5),
            "latency_p95_s": pct(0.95),
        }


class ReplicaPool:
    """Routes requests over replicas; thread-safe."""

    def __init__(
        self,
        urls: Sequence[str],
        make_client: Callable[[str], Any],
        *,
        failures_to_cool: int = 3,
        cooldown_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not urls:
            raise ValueError("a replica pool needs at least one URL")
        if len(set(urls)) != len(urls):
            raise ValueError(f"the pool lists a URL twice: {list(urls)}")
        self.replicas = [Replica(url, make_client(url)) for url in urls]
        self.failures_to_cool = max(1, failures_to_cool)
        self.cooldown_s = cooldown_s
        self._clock = clock
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.replicas)

    def acquire(self) -> Replica:
        """The replica for the next request (its in-flight count is raised)."""
        with self._lock:
            now = self._clock()
            ready = [r for r in self.replicas if r.cooling_until <= now]
            if ready:
                chosen = min(ready, key=lambda r: (r.in_flight, r.requests))
            else:
                chosen = min(self.replicas, key=lambda r: r.cooling_until)
            chosen.in_flight += 1
            chosen.requests += 1
            return chosen

    def release(self, replica: Replica, *, ok: bool, latency_s: float, replica_fault: bool = False) -> None:
        """Record the outcome of a request sent to ``replica``.

        ``replica_fault``: the failure says the replica is unwell (not the
        request's fault nor a rate limit), which counts towards a cool-down.
        """
        with self._lock:
            replica.in_flight -= 1
            if ok:
                replica.latencies.append(latency_s)
                replica.consecutive_failures = 0
                replica.cooling_until = 0.0
                return
            replica.errors += 1
            if not replica_fault:
                return
            replica.consecutive_failures += 1
            if replica.consecutive_failures >= self.failures_to_cool and replica.cooling_until <= self._clock():
                replica.cooling_until = self._clock() + self.cooldown_s
                replica.cooldowns += 1
                log.warning("replica %s failed %d times in a row: out for %.0fs", replica.url, replica.consecutive_failures, self.cooldown_s)

    def available(self) -> int:
        """Replicas not cooling down right now."""
        with self._lock:
            now = self._clock()
            return sum(1 for r in self.replicas if r.cooling_until <= now)

    def summary(self) -> list[dict[str, Any]]:
        """:meth:`Replica.summary` of every replica, in pool order."""
        with self._lock:
            return [r.summary() for r in self.replicas]

    def close(self) -> None:
        """Close every replica's HTTP client."""
        for replica in self.replicas:
            replica.client.close()
