"""The ``frontier``, ``frontier-fewshot`` and ``frontier-rag`` predictors.

All three send the reference prompt (:mod:`price_bench_frontier.prompts`)
through :class:`~price_bench_frontier.client.LLMClient`; they differ in the
example items shown to the model:

* ``frontier``: none (zero-shot);
* ``frontier-fewshot``: ``k`` train items drawn with the seed in ``fit``,
  the same for every test item, shown as earlier chat turns;
* ``frontier-rag``: the ``k`` train items most similar to each test item
  (:mod:`price_bench_frontier.retrieval`), shown as a context block.

Runnable with ``OPENAI_API_KEY`` or a ``base_url`` of a self-hosted
OpenAI-compatible server (llama.cpp, vLLM, Ollama); otherwise skipped.
``base_url`` may list several replicas (``-o frontier.base_url=URL1,URL2``)
or come from a pool file (``-o frontier.pool_file=PATH``, one URL a line);
which replica answered never changes a cache key. ``structured`` asks for
``{"price": number}`` with ``response_format`` and a JSON schema: "auto"
(the default) tries OpenAI's ``json_schema`` format, then llama-cpp-python's
``json_object`` with a schema, then free text, each time the server rejects
one; the record's ``extra.answer_format`` counts the answers of each.
``batch=true`` sends the uncached requests through the OpenAI Batch API
(:mod:`price_bench_frontier.batch`: half the price, resumable from the work
folder) instead of one request each.
The API key is read from the environment only: never in a config, a record
or the cache.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import random
import re
import threading
from pathlib import Path
from typing import Any, ClassVar, Literal, Sequence
from urllib.parse import urlparse

from pydantic import field_validator

from price_bench import Item, Prediction, Predictor, PredictorConfig, parse_price, predict_field, runtime_field
from price_bench_frontier.prompts import PRICE_SCHEMA, Example, answer_text, build_messages, parse_json_price

log = logging.getLogger(__name__)

REASONING_PREFIXES = ("o1", "o3", "o4", "gpt-5")
#: ``response_format`` per structured format: OpenAI's (also vLLM's and llama.cpp's own server), and
#: llama-cpp-python's server's (a JSON object constrained by a grammar built from the schema).
RESPONSE_FORMATS: dict[str, dict[str, Any]] = {
    "json_schema": {"type": "json_schema", "json_schema": {"name": "price", "schema": PRICE_SCHEMA, "strict": True}},
    "json_object": {"type": "json_object", "schema": PRICE_SCHEMA},
}
STRUCTURED_CHAIN = {"auto": ("json_schema", "json_object"), "json_schema": ("json_schema",), "json_object": ("json_object",), "text": ()}


class FrontierConfig(PredictorConfig):
    """Settings shared by the frontier predictors (``-o frontier.key=value``)."""

    model: str = predict_field("gpt-4o-mini")
    # Replicas of one OpenAI-compatible endpoint ("URL1,URL2" on the CLI); None: api.openai.com.
    base_url: list[str] | None = runtime_field(None)
    pool_file: str | None = runtime_field(None)  # more replica URLs, one a line ("#" comments)
    structured: Literal["auto", "json_schema", "json_object", "text"] = predict_field("auto")
    temperature: float | None = predict_field(0.0)
    seed: int | None = predict_field(None)  # None: the harness's seed
    max_tokens: int = predict_field(16)
    concurrency: int = runtime_field(4)  # requests in flight at the start; 429s/timeouts halve it, successes grow it back
    max_concurrency: int | None = runtime_field(None)  # the most it may grow to (None: concurrency)
    cooldown_s: float = runtime_field(30.0)  # a replica failing 3 times in a row is out this long
    timeout: float = runtime_field(60.0)
    max_retries: int = runtime_field(5)
    backoff_s: float = runtime_field(0.5)  # first retry waits 0.25-0.5 s, doubling up to 30 s (Retry-After wins when longer)
    budget_usd: float | None = runtime_field(5.0)
    prices: dict[str, tuple[float, float]] = runtime_field({})  # USD per 1M tokens (input, output); JSON on the CLI
    prefill: bool = predict_field(True)  # False for chat APIs that cannot continue an assistant turn
    max_item_chars: int = predict_field(2000)
    cache: bool = runtime_field(True)
    batch: bool = runtime_field(False)  # the OpenAI Batch API: half the price, answers within 24 h, resumable
    batch_poll_s: float = runtime_field(30.0)
    batch_max_wait_s: float | None = runtime_field(None)  # None: wait for the batch to end

    @field_validator("prices", mode="before")
    @classmethod
    def _prices_from_json(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                return json.loads(value) if value.strip() else {}
            except json.JSONDecodeError as exc:
                raise ValueError(f'prices must be JSON like {{"model": [0.15, 0.6]}}: {exc.msg} at column {exc.colno}') from None
        return value

    @field_validator("concurrency", "max_tokens", "max_concurrency")
    @classmethod
    def _positive(cls, value: int | None) -> int | None:
        if value is not None and value < 1:
            raise ValueError("must be >= 1")
        return value

    @field_validator("base_url", mode="before")
    @classmethod
    def _urls(cls, value: Any) -> Any:
        from price_bench_frontier.client import normalise_base_urls

        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        urls = normalise_base_urls(value)
        if len(set(urls)) != len(urls):
            raise ValueError("a URL is listed twice")
        return urls or None

    @field_validator("pool_file")
    @classmethod
    def _pool_file(cls, value: str | None) -> str | None:
        from price_bench_frontier.pool import read_pool_file

        if value:
            read_pool_file(value)  # one clear line naming the file and line when unusable
        return value or None

    def replica_urls(self) -> list[str]:
        """``base_url`` then the pool file's URLs, without repeats ([] for api.openai.com)."""
        from price_bench_frontier.pool import read_pool_file

        urls = list(self.base_url or []) + (read_pool_file(self.pool_file) if self.pool_file else [])
        return list(dict.fromkeys(urls))


class FewShotConfig(FrontierConfig):
    """``frontier-fewshot``: ``k`` seeded train examples."""

    k: int = 4
    max_item_chars: int = 600


class RagConfig(FrontierConfig):
    """``frontier-rag``: the ``k`` most similar train items."""

    k: int = 5
    max_item_chars: int = 600
    embedder: Literal["auto", "minilm", "tfidf"] = "auto"
    index_size: int | None = None  # None: all train items; else a seeded sample of this size


def _needs_key(base_url: str | list[str] | None) -> bool:
    urls = [base_url] if isinstance(base_url, str) else list(base_url or [])
    if not urls:
        return True
    hosts = [(urlparse(url).hostname or "").lower() for url in urls]
    return any(host == "openai.com" or host.endswith(".openai.com") for host in hosts)


class FrontierZeroShot(Predictor):
    """Zero-shot prompted LLM with the reference prompt."""

    id: ClassVar[str] = "frontier"
    description: ClassVar[str] = "Prompted LLM over an OpenAI-compatible API, zero-shot (default gpt-4o-mini)."
    version: ClassVar[str] = "1"
    Config: ClassVar[type[PredictorConfig]] = FrontierConfig
    batch_size: ClassVar[int] = 64
    #: 64 API calls with retries and backoff (or a local LLM on a CPU): half an hour means a hang.
    default_batch_timeout_s: ClassVar[float] = 1800.0
    example_style: ClassVar[Literal["turns", "context"]] = "turns"
    label_fields: ClassVar[tuple[str, ...]] = ("model", "base_url")  # the leaderboard row: model and endpoint kind

    def __init__(self, config: PredictorConfig | None = None, *, seed: int = 0) -> None:
        super().__init__(config, seed=seed)
        self._client: Any = None
        self._client_lock = threading.Lock()  # the harness may call predict from several threads
        self._chain = list(STRUCTURED_CHAIN[self.config.structured])  # "auto" drops a format the server rejects
        self._formats = {"json_schema": 0, "json_object": 0, "text": 0}
        self._chain_lock = threading.Lock()
        self.workdir: Path | None = None
        self._batch: Any = None
        if self.config.batch:
            self.batch_size = 50_000  # one predict call per run: one batch (OpenAI's limit per batch)

    @classmethod
    def skip_reason(cls, config: PredictorConfig) -> str | None:
        """Skipped without ``openai``, or without a key for api.openai.com."""
        if importlib.util.find_spec("openai") is None:
            return "package 'openai' is not installed (pip install openai)"
        base_url = getattr(config, "base_url", None) or (["pool"] if getattr(config, "pool_file", None) else None)
        if _needs_key(base_url) and not os.environ.get("OPENAI_API_KEY"):
            return f"environment variable OPENAI_API_KEY is not set (or give -o {cls.id}.base_url=http://127.0.0.1:PORT/v1 for a local server)"
        return None

    # -- the harness contract ---------------------------------------------------------

    def predict(self, items: Sequence[Item]) -> list[Prediction]:
        examples = self.examples_for(items)
        predictions: list[Prediction | None] = [None] * len(items)
        pending = list(range(len(items)))
        while pending and self._chain:
            answer_format = self._chain[0]
            conversations = [self.messages_for(items[i], examples[i], answer_format="json") for i in pending]
            results = self.ask(conversations, **self.request_params(), response_format=RESPONSE_FORMATS[answer_format])
            rejected = []
            for i, result in zip(pending, results):
                if self.config.structured == "auto" and _rejects_response_format(result):
                    rejected.append((i, result.error))
                else:
                    predictions[i] = self._to_prediction(result, answer_format)
            pending = [i for i, _ in rejected]
            if rejected:
                with self._chain_lock:
                    if self._chain[:1] == [answer_format]:
                        self._chain.pop(0)
                        then = self._chain[0] if self._chain else "free text"
                        log.warning("%s: the server rejects response_format %s (%s); asking for %s instead", self.id, answer_format, rejected[0][1], then)
        if pending:
            conversations = [self.messages_for(items[i], examples[i]) for i in pending]
            for i, result in zip(pending, self.ask(conversations, **self.request_params())):
                predictions[i] = self._to_prediction(result, "text")
        return predictions  # type: ignore[return-value]

    def ask(self, conversations: Sequence[list[dict[str, str]]], **params: Any) -> list[Any]:
        """Results for ``conversations``: one request each, or one OpenAI batch with ``batch=true``."""
        if not self.config.batch:
            return self.client.chat_many(conversations, **params)
        if self._batch is None:
            from price_bench_frontier.batch import BatchRun
            from price_bench_frontier.cache import default_cache_path

            folder = self.workdir if self.workdir is not None else default_cache_path().parent / "batches"
            self._batch = BatchRun(self.client, folder, poll_interval_s=self.config.batch_poll_s, max_wait_s=self.config.batch_max_wait_s)
        return self._batch.chat_many(conversations, **params)

    def fit(self, train: Sequence[Item], validation: Sequence[Item], workdir: Path) -> None:
        """Nothing to learn; remembers the work folder (the Batch API keeps its ids there)."""
        self.workdir = Path(workdir)

    def load(self, workdir: Path) -> bool:
        self.workdir = Path(workdir)
        return True

    def info(self) -> dict[str, Any]:
        """Which answer format was used (items per format), the client's per-replica and concurrency summary, the batch."""
        info: dict[str, Any] = {"answer_format": dict(self._formats)}
        if self._client is not None:
            info.update(self._client.summary())
        if self._batch is not None and self._batch.last is not None:
            last = self._batch.last
            info["batch"] = {"batch_id": last.batch_id, "status": last.status, "counts": last.counts}
        return info

    def progress_note(self) -> str | None:
        """The live concurrency level and replicas up, for the progress bar."""
        return self._client.status_line() if self._client is not None else None

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    # -- building blocks (overridden by the few-shot and RAG variants) ---------------

    def examples_for(self, items: Sequence[Item]) -> list[list[Example]]:
        """The example items shown with each item (none for zero-shot)."""
        return [[] for _ in items]

    def messages_for(self, item: Item, examples: Sequence[Example], answer_format: Literal["text", "json"] = "text") -> list[dict[str, str]]:
        """The chat messages for one item (``answer_format="json"``: for a structured answer)."""
        cfg = self.config
        return build_messages(
            item.text, examples, prefill=cfg.prefill, style=self.example_style, max_chars=cfg.max_item_chars, answer_format=answer_format
        )

    def request_params(self) -> dict[str, Any]:
        """Parameters sent with every request (and part of the cache key)."""
        cfg = self.config
        seed = cfg.seed if cfg.seed is not None else self.seed
        reasoning = cfg.model.startswith(REASONING_PREFIXES)
        params: dict[str, Any] = {"seed": seed}
        # Reasoning models reject max_tokens and any temperature but the default.
        params["max_completion_tokens" if reasoning else "max_tokens"] = cfg.max_tokens
        if cfg.temperature is not None and not reasoning:
            params["temperature"] = cfg.temperature
        return params

    @property
    def client(self):
        """The :class:`LLMClient`, built on first use."""
        with self._client_lock:
            if self._client is None:
                self._client = self._make_client()
        return self._client

    def _make_client(self):
        from price_bench_frontier.client import Backoff, LLMClient

        cfg = self.config
        return LLMClient(
            cfg.model,
            base_url=cfg.replica_urls() or None,
            timeout=cfg.timeout,
            max_retries=cfg.max_retries,
            concurrency=cfg.concurrency,
            max_concurrency=cfg.max_concurrency,
            cooldown_s=cfg.cooldown_s,
            budget_usd=cfg.budget_usd,
            prices=dict(cfg.prices),
            cache=cfg.cache,
            backoff=Backoff(base=cfg.backoff_s),
            seed=self.seed,
        )

    def _to_prediction(self, result, answer_format: str) -> Prediction:
        if not result.ok:
            return Prediction(raw=None, error=result.error, latency_s=result.latency_s)
        self._formats[answer_format] += 1
        if answer_format != "text":
            raw = result.text
            price = parse_json_price(raw)
            if price is None:  # a server that ignores response_format answers in free text
                price = parse_price(raw)
        else:
            raw = answer_text(result.text, prefill=self.config.prefill)
            price = parse_price(raw)
        return Prediction(
            raw=raw,
            price=price,
            cost_usd=result.cost_usd if result.price_known else None,
            latency_s=None if self.config.batch and not result.cached else result.latency_s,  # batch: the harness shares the wall time
            tokens_in=result.tokens_in,
            tokens_out=result.tokens_out,
        )


class FrontierFewShot(FrontierZeroShot):
    """``k`` train items with their prices, drawn with the seed, before every question."""

    id: ClassVar[str] = "frontier-fewshot"
    description: ClassVar[str] = "Prompted LLM with k seeded train examples and their prices."
    Config: ClassVar[type[PredictorConfig]] = FewShotConfig
    FILE: ClassVar[str] = "fewshot.json"

    def fit(self, train: Sequence[Item], validation: Sequence[Item], workdir: Path) -> None:
        if len(train) < self.config.k:
            raise ValueError(f"frontier-fewshot needs k={self.config.k} train items, the dataset has {len(train)}")
        self.workdir = Path(workdir)
        seed = self.config.seed if self.config.seed is not None else self.seed
        chosen = random.Random(seed).sample(list(train), self.config.k)
        self.shots = [Example(item.text, item.price) for item in chosen]
        payload = {"ids": [item.id for item in chosen], "examples": [[e.text, e.price] for e in self.shots]}
        (workdir / self.FILE).write_text(json.dumps(payload))

    def load(self, workdir: Path) -> bool:
        self.workdir = Path(workdir)
        try:
            payload = json.loads((workdir / self.FILE).read_text())
            self.shots = [Example(text, float(price)) for text, price in payload["examples"]]
        except (OSError, ValueError, KeyError, TypeError):
            return False
        return len(self.shots) == self.config.k

    def examples_for(self, items: Sequence[Item]) -> list[list[Example]]:
        return [list(self.shots) for _ in items]


class FrontierRag(FrontierZeroShot):
    """The ``k`` most similar train items and their prices, as context."""

    id: ClassVar[str] = "frontier-rag"
    description: ClassVar[str] = "Prompted LLM with the k most similar train items (MiniLM embeddings or TF-IDF)."
    Config: ClassVar[type[PredictorConfig]] = RagConfig
    example_style: ClassVar[Literal["turns", "context"]] = "context"
    INDEX_DIR: ClassVar[str] = "rag-index"

    def fit(self, train: Sequence[Item], validation: Sequence[Item], workdir: Path) -> None:
        from price_bench_frontier.retrieval import SimilarityIndex, resolve_backend

        self.workdir = Path(workdir)
        pool = list(train)
        size = self.config.index_size
        if size is not None and size < len(pool):
            seed = self.config.seed if self.config.seed is not None else self.seed
            pool = random.Random(seed).sample(pool, size)
        examples = [Example(item.text, item.price) for item in pool]
        self.index = SimilarityIndex.build(examples, resolve_backend(self.config.embedder))
        self.index.save(workdir / self.INDEX_DIR)

    def load(self, workdir: Path) -> bool:
        from price_bench_frontier.retrieval import SimilarityIndex, resolve_backend

        self.workdir = Path(workdir)
        index = SimilarityIndex.load(workdir / self.INDEX_DIR)
        # "auto" may resolve differently after (un)installing the embedding packages: refit then.
        if index is None or index.backend != resolve_backend(self.config.embedder):
            return False
        self.index = index
        return True

    def examples_for(self, items: Sequence[Item]) -> list[list[Example]]:
        return self.index.query([item.text for item in items], self.config.k)


def _rejects_response_format(result: Any) -> bool:
    """True when a call failed because the server does not take ``response_format`` with a JSON schema."""
    error = (result.error or "").lower()
    return not result.ok and re.search(r"\bhttp \d{3}\b", error) is not None and "response_format" in error
