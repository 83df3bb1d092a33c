"""The Prometheus side of ``price-bench serve``: request instruments and the live business figures.

Instruments (names prefixed ``price_bench_``):

========================================== ========= ================================================
``requests_total{endpoint,status}``        counter   every request, by route and HTTP status
``request_errors_total{endpoint,code}``    counter   4xx/5xx answers, by error code
``request_seconds{endpoint}``              histogram server-side latency
``requests_in_flight``                     gauge     requests being answered now (summed over workers)
``items_total``                            counter   items priced
``fallback_items_total``                   counter   items priced with the fallback (train median)
``cost_usd_total``                         counter   money spent by the predictor (LLM predictors)
``tokens_total{direction}``                counter   tokens in / out (LLM predictors)
``feedback_total``                         counter   true prices received
``live_error_dollars{category}`` ...       gauge     rolling Error, RMSLE, Hits %, mean % error
``offline_error_dollars{bound}``           gauge     the bundle's offline Error and its 95% CI
``drift{check}``, ``drift_value{check}``   gauge     1 when a drift check fires (NaN: not checked)
========================================== ========= ================================================

The live figures come from :class:`price_bench.serve.monitor.LiveJoin` fed
by a :class:`price_bench.serve.log.LogTail` of the shared log (so every
worker reports the same numbers, whichever worker saw the prediction or its
feedback): each scrape, at most every ``ttl_s`` seconds, parses only the
lines appended since the previous one, and the state is bounded. Their ``category`` label only takes the offline categories plus
``all``: a client cannot grow the label set. With several workers
(``PROMETHEUS_MULTIPROC_DIR`` set), counters and histograms are aggregated
across workers by prometheus-client's multiprocess mode.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class ServeMetrics:
    """The request instruments and the registry ``/metrics`` renders."""

    def __init__(self, log_dir: Path, manifest: dict[str, Any], *, window: int = 1000, ttl_s: float = 10.0, digest: str | None = None) -> None:
        from prometheus_client import disable_created_metrics

        disable_created_metrics()  # no `*_created` series: they double the output and nobody graphs them
        multiprocess = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        # Multiprocess mode: values live in files shared by the workers, the registry is rebuilt per scrape.
        own = None if multiprocess else CollectorRegistry()
        self.requests = Counter("price_bench_requests", "HTTP requests by route and status.", ["endpoint", "status"], registry=own)
        self.errors = Counter("price_bench_request_errors", "Error answers by route and error code.", ["endpoint", "code"], registry=own)
        self.latency = Histogram("price_bench_request_seconds", "Server-side request latency.", ["endpoint"], buckets=LATENCY_BUCKETS, registry=own)
        self.in_flight = Gauge("price_bench_requests_in_flight", "Requests being answered now.", registry=own, multiprocess_mode="livesum")
        self.items = Counter("price_bench_items", "Items priced.", registry=own)
        self.fallbacks = Counter("price_bench_fallback_items", "Items priced with the fallback price (train median).", registry=own)
        self.cost = Counter("price_bench_cost_usd", "Predictor spend in USD.", registry=own)
        self.tokens = Counter("price_bench_tokens", "Predictor tokens.", ["direction"], registry=own)
        self.feedback = Counter("price_bench_feedback", "True prices received.", registry=own)
        self.live = LiveCollector(log_dir, manifest, window=window, ttl_s=ttl_s, digest=digest)
        if own is not None:
            own.register(self.live)
        self._registry = own

    def registry(self) -> CollectorRegistry:
        """The registry to render now (a fresh multiprocess one per scrape when workers share files)."""
        if self._registry is not None:
            return self._registry
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        registry.register(self.live)
        return registry

    def render(self) -> bytes:
        from prometheus_client import generate_latest

        return generate_latest(self.registry())


class LiveCollector:
    """A prometheus collector of the monitor's live figures (cached for ``ttl_s`` seconds)."""

    def __init__(self, log_dir: Path, manifest: dict[str, Any], *, window: int, ttl_s: float, digest: str | None = None) -> None:
        self.log_dir, self.manifest, self.window, self.ttl_s = Path(log_dir), manifest, window, ttl_s
        self._lock = threading.Lock()
        self._at = -math.inf
        self._report: dict[str, Any] | None = None
        self._categories = sorted((manifest.get("breakdowns", {}).get("category") or {}).keys())
        from price_bench.serve.log import LogTail
        from price_bench.serve.monitor import LiveJoin

        self._tail = LogTail(self.log_dir)
        self._join = LiveJoin(window, bundle=digest)

    def report(self) -> dict[str, Any] | None:
        """The live report, updated from the lines appended since the last call (at most every ``ttl_s``)."""
        with self._lock:
            if time.monotonic() - self._at >= self.ttl_s:
                try:
                    self._join.add(self._tail.read_new())
                    self._report = self._join.report(manifest=self.manifest, log=str(self.log_dir))
                except OSError:
                    self._report = None
                self._at = time.monotonic()
            return self._report

    def describe(self) -> list[Metric]:  # no pre-collection at registration time
        return []

    def collect(self) -> Iterator[Metric]:
        report = self.report()
        families = {
            "error": GaugeMetricFamily("price_bench_live_error_dollars", "Rolling Error (mean absolute $) on joined feedback.", labels=["category"]),
            "rmsle": GaugeMetricFamily("price_bench_live_rmsle", "Rolling RMSLE on joined feedback.", labels=["category"]),
            "hits": GaugeMetricFamily("price_bench_live_hits_percent", "Rolling Hits % on joined feedback.", labels=["category"]),
            "mean_pct_error": GaugeMetricFamily("price_bench_live_mean_pct_error_percent", "Rolling mean % error on joined feedback.", labels=["category"]),
        }
        joined = GaugeMetricFamily("price_bench_live_joined_items", "Joined prediction/feedback pairs in the window.", labels=["category"])
        offline = GaugeMetricFamily("price_bench_offline_error_dollars", "The bundle's offline Error and its 95% CI.", labels=["bound"])
        drift = GaugeMetricFamily("price_bench_drift", "1 when a drift check fires, 0 when not, NaN when not checked.", labels=["check"])
        drift_value = GaugeMetricFamily("price_bench_drift_value", "The drift check's statistic (Error $ or PSI).", labels=["check"])
        error = self.manifest.get("metrics", {}).get("error") or {}
        for bound, key in (("value", "value"), ("ci_low", "ci_low"), ("ci_high", "ci_high")):
            offline.add_metric([bound], _num(error.get(key)))
        if report is not None:
            rows = [("all", report["overall"]["live"])]
            rows += [(c, report["categories"][c]["live"]) for c in self._categories if c in report["categories"]]
            for label, live in rows:
                joined.add_metric([label], float(live["n"]))
                for name, family in families.items():
                    family.add_metric([label], _num(live.get(name)))
            for check in report["drift"]:
                flag = check["flag"]
                drift.add_metric([check["check"]], math.nan if flag is None else float(flag))
                drift_value.add_metric([check["check"]], _num(check["value"]))
        yield from (*families.values(), joined, offline, drift, drift_value)


def _num(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else math.nan
