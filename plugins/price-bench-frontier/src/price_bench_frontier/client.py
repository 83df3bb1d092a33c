"""A reusable client for OpenAI-compatible chat completion endpoints.

Stable API (the ``openai-ft`` plugin builds on it; only ever extended)::

    from price_bench_frontier.client import LLMClient, ChatResult, Budget
    from price_bench_frontier.pricing import PriceTable
    from price_bench_frontier.prompts import build_messages, answer_text, PREFILL, SYSTEM_PROMPT

    client = LLMClient(
        "gpt-4o-mini",            # model name sent to the endpoint, also the price table key
        base_url=None,            # None: api.openai.com; e.g. "http://127.0.0.1:8080/v1",
                                  # or a list of replica URLs (a pool, see pool.py)
        api_key=None,             # None: $OPENAI_API_KEY, or "sk-local" for a local base_url
        timeout=60.0, max_retries=5,
        concurrency=4,            # requests in flight at the start (AIMD, see concurrency.py)
        max_concurrency=None,     # the most it may grow to (None: concurrency)
        budget=Budget(5.0),       # or budget_usd=5.0; None: no cap
        prices=PriceTable({"my-model": (1.0, 2.0)}),  # overrides, USD per 1M tokens (input, output);
                                  # everything else from genai-prices (pricing.py)
        cache=True,               # True: <PRICE_BENCH_HOME>/cache/llm-responses.sqlite;
                                  # a path; or False for no cache
    )
    result = client.chat(messages, temperature=0, seed=42, max_tokens=16)
    results = client.chat_many([messages1, messages2], temperature=0)  # in order
    client.stats.requests    # HTTP attempts actually sent (cache hits send none)
    client.summary()         # per-replica requests/errors/latency, concurrency levels
    client.close()

:meth:`LLMClient.chat` never raises for API trouble: a :class:`ChatResult`
has either ``text`` or ``error``. Retries (exponential backoff with jitter,
honouring ``Retry-After``) cover 408/409/429/5xx, timeouts, connection
errors, malformed JSON and empty answers; other statuses fail at once, and
401/403 make every later call fail without a request. With several
replicas a failing attempt is retried on another replica at once (no
back-off while one is available); 429s and timeouts shrink the number of
requests in flight, successes grow it back. Once the budget is
spent, calls that would need a request return ``error="budget exhausted"``
(cache hits still answer). Concurrent calls already in flight when the cap
is reached may overshoot it by at most ``concurrency`` calls.

The ``openai`` package is imported when a client is built, not on import.
"""

from __future__ import annotations

import email.utils
import json
import logging
import os
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence
from urllib.parse import urlparse

from price_bench_frontier.cache import ResponseCache, cache_key
from price_bench_frontier.concurrency import AdaptiveLimit
from price_bench_frontier.pool import ReplicaPool, validate_url
from price_bench_frontier.pricing import PriceTable

log = logging.getLogger(__name__)

BUDGET_EXHAUSTED = "budget exhausted"
LOCAL_API_KEY = "sk-local"
RETRYABLE_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 520, 522, 524, 529})
FATAL_STATUS = frozenset({401, 403})
_LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", "0.0.0.0", "host.docker.internal"}
OPENAI_ENDPOINT = "https://api.openai.com/v1"
#: The cache's endpoint for every server that is not api.openai.com: answers are keyed by
#: model, messages and parameters, never by which replica (host, port) produced them.
COMPATIBLE_ENDPOINT = "openai-compatible"

Messages = Sequence[Mapping[str, Any]]


@dataclass(frozen=True)
class ChatResult:
    """The outcome of one chat call: ``text`` on success, else ``error``.

    ``cost_usd`` is what the answer cost when it was produced (kept for cache
    hits); ``spent_usd`` is what this call spent now (0 for cache hits).
    ``price_known`` is False when the model is in no price list (its cost then
    reads 0 here, and predictors report it as unknown, never as $0). ``latency_s`` is the original request time for
    cache hits too.
    """

    text: str | None
    error: str | None = None
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0
    spent_usd: float = 0.0
    price_known: bool = True
    latency_s: float = 0.0
    cached: bool = False
    attempts: int = 0
    model: str | None = None
    finish_reason: str | None = None

    @property
    def ok(self) -> bool:
        """True when the call produced an answer."""
        return self.error is None and self.text is not None


@dataclass
class ClientStats:
    """Counters over a client's life (thread-safe through :meth:`add`)."""

    requests: int = 0
    retries: int = 0
    rate_limited: int = 0
    cache_hits: int = 0
    failures: int = 0
    spent_usd: float = 0.0
    tokens_in: int = 0
    tokens_out: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, **deltas: float) -> None:
        """Add ``deltas`` to the named counters atomically."""
        with self._lock:
            for name, delta in deltas.items():
                setattr(self, name, getattr(self, name) + delta)


class Budget:
    """A spending cap in USD shared by every call of a run (None: no cap)."""

    def __init__(self, cap_usd: float | None = None) -> None:
        if cap_usd is not None and cap_usd < 0:
            raise ValueError(f"budget must be >= 0 USD, got {cap_usd}")
        self.cap_usd = cap_usd
        self._spent = 0.0
        self._lock = threading.Lock()

    @property
    def spent_usd(self) -> float:
        """USD charged so far."""
        with self._lock:
            return self._spent

    def exhausted(self) -> bool:
        """True once the spend has reached the cap."""
        with self._lock:
            return self.cap_usd is not None and self._spent >= self.cap_usd

    def charge(self, usd: float) -> None:
        """Record ``usd`` spent."""
        with self._lock:
            self._spent += usd


class RetryableError(Exception):
    """A failed attempt worth retrying; ``retry_after`` is the server's hint in seconds.

    ``overload``: the server asks for less load (429, a timeout), which
    shrinks the concurrency; ``replica_fault``: the replica looks unwell
    (connection error, timeout, 5xx, malformed body), which counts towards
    its cool-down.
    """

    def __init__(self, message: str, retry_after: float | None = None, *, overload: bool = False, replica_fault: bool = False) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.overload = overload
        self.replica_fault = replica_fault


class FatalError(Exception):
    """A failed attempt not worth retrying (bad request, auth, unknown model)."""

    def __init__(self, message: str, sticky: bool = False) -> None:
        super().__init__(message)
        self.sticky = sticky


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with jitter: ``base * 2**attempt`` capped at ``cap``.

    The delay is drawn uniformly from ``[d/2, d]`` ("equal jitter"). A
    server's ``Retry-After`` (capped at ``max_retry_after``) wins when longer.
    """

    base: float = 0.5
    cap: float = 30.0
    max_retry_after: float = 120.0

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        """Seconds to wait before retry number ``attempt`` (0-based)."""
        ceiling = min(self.cap, self.base * (2**attempt))
        wait = ceiling / 2 + rng.uniform(0, ceiling / 2)
        if retry_after is not None:
            wait = max(wait, min(retry_after, self.max_retry_after))
        return wait


def is_local_url(base_url: str | None) -> bool:
    """True when ``base_url`` points at this machine (no API key needed)."""
    if not base_url:
        return False
    host = urlparse(base_url).hostname or ""
    return host in _LOCAL_HOSTS or host.startswith("127.")


def endpoint_identity(base_urls: Sequence[str]) -> str:
    """What the response cache keys answers by: api.openai.com, or any OpenAI-compatible server."""
    if not base_urls:
        return OPENAI_ENDPOINT
    hosts = {(urlparse(url).hostname or "").lower() for url in base_urls}
    if all(host == "openai.com" or host.endswith(".openai.com") for host in hosts):
        return OPENAI_ENDPOINT
    return COMPATIBLE_ENDPOINT


def normalise_base_urls(base_url: str | Sequence[str] | None) -> list[str]:
    """``None`` -> ``[]``; ``"a,b"`` or ``["a", "b"]`` -> validated URLs without trailing slashes."""
    if base_url is None:
        return []
    parts = base_url.split(",") if isinstance(base_url, str) else list(base_url)
    return [validate_url(part) for part in parts if part and part.strip()]


def resolve_api_key(base_url: str | None, api_key: str | None = None) -> str | None:
    """The key to use: explicit, else $OPENAI_API_KEY, else "sk-local" for a local or custom base_url."""
    if api_key:
        return api_key
    env = os.environ.get("OPENAI_API_KEY")
    if env:
        return env
    return LOCAL_API_KEY if base_url else None


def parse_retry_after(headers: Mapping[str, str] | None) -> float | None:
    """Seconds from ``retry-after-ms`` or ``retry-after`` (seconds or an HTTP date), or None."""
    if not headers:
        return None
    lowered = {k.lower(): v for k, v in headers.items()}
    value = lowered.get("retry-after-ms")
    if value is not None:
        try:
            return max(0.0, float(value) / 1000)
        except ValueError:
            pass
    value = lowered.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class LLMClient:
    """Chat completions with retries, a response cache, cost accounting and a spending cap."""

    def __init__(
        self,
        model: str,
        *,
        base_url: str | Sequence[str] | None = None,
        api_key: str | None = None,
        timeout: float = 60.0,
        max_retries: int = 5,
        concurrency: int = 4,
        max_concurrency: int | None = None,
        failures_to_cool: int = 3,
        cooldown_s: float = 30.0,
        budget: Budget | None = None,
        budget_usd: float | None = None,
        prices: PriceTable | Mapping[str, Any] | None = None,
        cache: bool | str | Path | ResponseCache = True,
        backoff: Backoff | None = None,
        sleep: Callable[[float], None] = time.sleep,
        seed: int | None = None,
    ) -> None:
        """See the module docstring; ``seed`` seeds the backoff jitter, ``sleep`` is injectable for tests.

        ``failures_to_cool`` failures in a row take a replica out for ``cooldown_s`` seconds.
        """
        if concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {concurrency}")
        if max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {max_retries}")
        self.model = model
        self.base_urls = normalise_base_urls(base_url)
        self.base_url = self.base_urls[0] if self.base_urls else None
        self.timeout = timeout
        self.max_retries = max_retries
        self.concurrency = concurrency
        self.limit = AdaptiveLimit(concurrency, max(concurrency, max_concurrency or concurrency))
        self.budget = budget if budget is not None else Budget(budget_usd)
        self.prices = prices if isinstance(prices, PriceTable) else PriceTable(prices)
        self.backoff = backoff or Backoff()
        self.stats = ClientStats()
        self._sleep = sleep
        self._rng = random.Random(seed)
        self._rng_lock = threading.Lock()
        self._fatal: str | None = None
        self._warned_unpriced = False
        key = resolve_api_key(self.base_url, api_key)
        if key is None:
            raise ValueError("no API key: set OPENAI_API_KEY or give a base_url of a local OpenAI-compatible server")
        self._cache = self._open_cache(cache)
        self._owns_cache = not isinstance(cache, ResponseCache)
        import openai

        def make(url: str) -> Any:
            return openai.OpenAI(api_key=key, base_url=None if url == OPENAI_ENDPOINT else url, timeout=timeout, max_retries=0)

        self.pool = ReplicaPool(self.base_urls or [OPENAI_ENDPOINT], make, failures_to_cool=failures_to_cool, cooldown_s=cooldown_s)
        self._openai = self.pool.replicas[0].client
        self._endpoint = endpoint_identity(self.base_urls)

    # -- public API -------------------------------------------------------------------

    def chat(self, messages: Messages, **params: Any) -> ChatResult:
        """One chat completion (cached, retried, costed); never raises for API trouble.

        ``params`` are passed to the endpoint as they are (``temperature``,
        ``seed``, ``max_tokens``, ``stop``...); None values are dropped. They
        are part of the cache key.
        """
        params = {k: v for k, v in params.items() if v is not None}
        messages = [dict(m) for m in messages]
        key = cache_key(self._endpoint, self.model, messages, params)
        started = time.perf_counter()
        hit = self._cache.get(key) if self._cache is not None else None
        if hit is not None:
            self.stats.add(cache_hits=1)
            return self._result_from_cache(hit)
        if self._fatal is not None:
            return self._failure(self._fatal, 0, started)
        if self.budget.exhausted():
            return self._failure(BUDGET_EXHAUSTED, 0, started)
        return self._request_with_retries(key, messages, params, started)

    def chat_many(self, conversations: Sequence[Messages], **params: Any) -> list[ChatResult]:
        """:meth:`chat` for each conversation, at most the current concurrency level in flight, results in order."""
        if self.limit.maximum == 1 or len(conversations) <= 1:
            return [self.chat(messages, **params) for messages in conversations]
        with ThreadPoolExecutor(max_workers=min(self.limit.maximum, len(conversations))) as pool:
            return list(pool.map(lambda messages: self.chat(messages, **params), conversations))

    # -- building blocks for other ways of sending requests (the Batch API, batch.py) --------

    @property
    def openai(self) -> Any:
        """The ``openai.OpenAI`` client of the first replica."""
        return self.pool.replicas[0].client

    def request_key(self, messages: Messages, params: Mapping[str, Any]) -> str:
        """The response-cache key of a request (the same as :meth:`chat` uses)."""
        params = {k: v for k, v in params.items() if v is not None}
        return cache_key(self._endpoint, self.model, [dict(m) for m in messages], params)

    def cached(self, key: str) -> ChatResult | None:
        """The cached answer for ``key``, or None."""
        hit = self._cache.get(key) if self._cache is not None else None
        if hit is None:
            return None
        self.stats.add(cache_hits=1)
        return self._result_from_cache(hit)

    def accept(self, key: str, body: str, *, batch: bool = False, latency_s: float = 0.0) -> ChatResult:
        """Cost, charge and cache a chat completion ``body`` obtained elsewhere (raises RetryableError when unusable)."""
        return self._success(key, _parse_completion(body), 1, time.perf_counter() - latency_s, batch=batch)

    def summary(self) -> dict[str, Any]:
        """Per-replica requests, errors and latency, and the concurrency levels seen (JSON-ready)."""
        return {"endpoint": self._endpoint, "replicas": self.pool.summary(), "concurrency": self.limit.summary(), "rate_limited": self.stats.rate_limited}

    def status_line(self) -> str:
        """A short live status for progress bars: concurrency level and replicas up."""
        line = f"conc {self.limit.level}/{self.limit.maximum}"
        if len(self.pool) > 1:
            line += f", replicas {self.pool.available()}/{len(self.pool)} up"
        return line

    def close(self) -> None:
        """Release the HTTP connection pools and the cache (idempotent)."""
        self.pool.close()
        if self._cache is not None and self._owns_cache:
            self._cache.close()

    def __enter__(self) -> LLMClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals --------------------------------------------------------------------

    @staticmethod
    def _open_cache(cache: bool | str | Path | ResponseCache) -> ResponseCache | None:
        if isinstance(cache, ResponseCache):
            return cache
        if cache is False:
            return None
        return ResponseCache(None if cache is True else Path(cache))

    def _request_with_retries(self, key: str, messages: list[dict], params: dict, started: float) -> ChatResult:
        attempt = 0
        while True:
            if attempt > 0 and self.budget.exhausted():
                return self._failure(BUDGET_EXHAUSTED, attempt, started)
            attempt += 1
            self.stats.add(requests=1)
            try:
                answer = self._attempt(messages, params)
            except FatalError as exc:
                if exc.sticky:
                    self._fatal = str(exc)
                return self._failure(str(exc), attempt, started)
            except RetryableError as exc:
                if attempt > self.max_retries:
                    return self._failure(f"{exc} (gave up after {attempt} attempts)", attempt, started)
                self.stats.add(retries=1)
                if exc.replica_fault and len(self.pool) > 1 and self.pool.available() > 0:
                    log.info("retrying %s on another replica after: %s", self.model, exc)
                    continue
                with self._rng_lock:
                    wait = self.backoff.delay(attempt - 1, exc.retry_after, self._rng)
                log.info("retrying %s in %.2fs after: %s", self.model, wait, exc)
                self._sleep(wait)
                continue
            return self._success(key, answer, attempt, started)

    def _attempt(self, messages: list[dict], params: dict) -> dict[str, Any]:
        """One attempt within the concurrency limit, on the least busy replica; outcomes feed both."""
        permit = self.limit.acquire()
        replica = self.pool.acquire()
        sent = time.perf_counter()
        outcome, ok, fault = "neutral", False, False
        try:
            answer = self._send(replica.client, messages, params)
            outcome, ok = "ok", True
            return answer
        except RetryableError as exc:
            outcome, fault = ("overload" if exc.overload else "neutral"), exc.replica_fault
            if exc.overload:
                self.stats.add(rate_limited=1)
            raise
        finally:
            self.pool.release(replica, ok=ok, latency_s=time.perf_counter() - sent, replica_fault=fault)
            self.limit.release(permit, outcome)

    def _send(self, client: Any, messages: list[dict], params: dict) -> dict[str, Any]:
        """One HTTP attempt; returns the parsed answer or raises Retryable/FatalError."""
        import openai

        try:
            raw = client.chat.completions.with_raw_response.create(model=self.model, messages=messages, **params)
            body = raw.text
        except openai.APITimeoutError:
            raise RetryableError(f"timed out after {self.timeout:g}s", overload=True, replica_fault=True) from None
        except openai.APIConnectionError as exc:
            raise RetryableError(f"connection error: {exc}", replica_fault=True) from None
        except openai.APIStatusError as exc:
            message = f"HTTP {exc.status_code}: {_error_message(exc)}"
            if "response_format" in message and "response_format" in params:
                # The request's fault, whatever the status (llama-cpp-python answers a 500 for an unknown format).
                raise FatalError(message) from None
            if exc.status_code in RETRYABLE_STATUS or exc.status_code >= 500:
                overload = exc.status_code in (429, 529)
                raise RetryableError(message, parse_retry_after(exc.response.headers), overload=overload, replica_fault=exc.status_code >= 500) from None
            raise FatalError(message, sticky=exc.status_code in FATAL_STATUS) from None
        except openai.OpenAIError as exc:  # anything else the SDK raises stays a per-item failure
            raise FatalError(f"{type(exc).__name__}: {str(exc)[:300]}") from None
        return _parse_completion(body)

    def _success(self, key: str, answer: dict[str, Any], attempts: int, started: float, batch: bool = False) -> ChatResult:
        latency = time.perf_counter() - started
        model = answer.get("model") or self.model
        cost = self.prices.cost(self.model, answer["tokens_in"], answer["tokens_out"], batch=batch)
        if not cost.known and not self._warned_unpriced:
            self._warned_unpriced = True
            log.warning("model %r is in no price list: its cost is recorded as unknown (give it with prices=...)", self.model)
        self.budget.charge(cost.usd)
        self.stats.add(spent_usd=cost.usd, tokens_in=answer["tokens_in"], tokens_out=answer["tokens_out"])
        stored = {**answer, "cost_usd": cost.usd, "price_known": cost.known, "latency_s": latency}
        if self._cache is not None:
            self._cache.put(key, self.model, stored)
        return ChatResult(
            text=answer["text"],
            tokens_in=answer["tokens_in"],
            tokens_out=answer["tokens_out"],
            cost_usd=cost.usd,
            spent_usd=cost.usd,
            price_known=cost.known,
            latency_s=latency,
            attempts=attempts,
            model=model,
            finish_reason=answer.get("finish_reason"),
        )

    def _result_from_cache(self, stored: dict[str, Any]) -> ChatResult:
        return ChatResult(
            text=stored["text"],
            tokens_in=int(stored.get("tokens_in", 0)),
            tokens_out=int(stored.get("tokens_out", 0)),
            cost_usd=float(stored.get("cost_usd", 0.0)),
            spent_usd=0.0,
            price_known=bool(stored.get("price_known", True)),
            latency_s=float(stored.get("latency_s", 0.0)),
            cached=True,
            attempts=0,
            model=stored.get("model"),
            finish_reason=stored.get("finish_reason"),
        )

    def _failure(self, error: str, attempts: int, started: float) -> ChatResult:
        self.stats.add(failures=1)
        return ChatResult(text=None, error=error, attempts=attempts, latency_s=time.perf_counter() - started)


def _error_message(exc: Any) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])[:300]
        if isinstance(inner, str):
            return inner[:300]
    return str(getattr(exc, "message", exc))[:300]


def _parse_completion(body: str) -> dict[str, Any]:
    """The text, usage and model of a chat completion body; malformed or empty answers are retryable."""
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, TypeError):
        raise RetryableError(f"malformed JSON in response: {body[:80]!r}", replica_fault=True) from None
    try:
        choice = data["choices"][0]
        text = choice["message"].get("content")
    except (KeyError, IndexError, TypeError, AttributeError):
        raise RetryableError(f"response without choices[0].message: {body[:80]!r}", replica_fault=True) from None
    if not isinstance(text, str) or not text.strip():
        raise RetryableError("empty content in response")
    usage = data.get("usage") or {}
    return {
        "text": text,
        "tokens_in": int(usage.get("prompt_tokens") or 0),
        "tokens_out": int(usage.get("completion_tokens") or 0),
        "model": data.get("model"),
        "finish_reason": choice.get("finish_reason"),
    }
