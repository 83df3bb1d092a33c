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
The API key is read from the environment only: never in a config, a record
or the cache.
"""

from __future__ import annotations

import importlib.util
import json
import os
import random
import threading
from pathlib import Path
from typing import Any, ClassVar, Literal, Sequence
from urllib.parse import urlparse

from pydantic import field_validator

from price_bench import Item, Prediction, Predictor, PredictorConfig, parse_price, predict_field, runtime_field
from price_bench_frontier.prompts import Example, answer_text, build_messages

REASONING_PREFIXES = ("o1", "o3", "o4", "gpt-5")


class FrontierConfig(PredictorConfig):
    """Settings shared by the frontier predictors (``-o frontier.key=value``)."""

    model: str = predict_field("gpt-4o-mini")
    base_url: str | None = None
    temperature: float | None = predict_field(0.0)
    seed: int | None = predict_field(None)  # None: the harness's seed
    max_tokens: int = predict_field(16)
    concurrency: int = runtime_field(4)
    timeout: float = runtime_field(60.0)
    max_retries: int = runtime_field(5)
    backoff_s: float = runtime_field(0.5)  # first retry waits 0.25-0.5 s, doubling up to 30 s (Retry-After wins when longer)
    budget_usd: float | None = runtime_field(5.0)
    prices: dict[str, tuple[float, float]] = runtime_field({})  # USD per 1M tokens (input, output); JSON on the CLI
    prefill: bool = predict_field(True)  # False for chat APIs that cannot continue an assistant turn
    max_item_chars: int = predict_field(2000)
    cache: bool = runtime_field(True)

    @field_validator("prices", mode="before")
    @classmethod
    def _prices_from_json(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                return json.loads(value) if value.strip() else {}
            except json.JSONDecodeError as exc:
                raise ValueError(f'prices must be JSON like {{"model": [0.15, 0.6]}}: {exc.msg} at column {exc.colno}') from None
        return value

    @field_validator("concurrency", "max_tokens")
    @classmethod
    def _positive(cls, value: int) -> int:
        if value < 1:
            raise ValueError("must be >= 1")
        return value


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


def _needs_key(base_url: str | None) -> bool:
    if not base_url:
        return True
    host = (urlparse(base_url).hostname or "").lower()
    return host == "openai.com" or host.endswith(".openai.com")


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

    @classmethod
    def skip_reason(cls, config: PredictorConfig) -> str | None:
        """Skipped without ``openai``, or without a key for api.openai.com."""
        if importlib.util.find_spec("openai") is None:
            return "package 'openai' is not installed (pip install openai)"
        base_url = getattr(config, "base_url", None)
        if _needs_key(base_url) and not os.environ.get("OPENAI_API_KEY"):
            return f"environment variable OPENAI_API_KEY is not set (or give -o {cls.id}.base_url=http://127.0.0.1:PORT/v1 for a local server)"
        return None

    # -- the harness contract ---------------------------------------------------------

    def predict(self, items: Sequence[Item]) -> list[Prediction]:
        conversations = [self.messages_for(item, examples) for item, examples in zip(items, self.examples_for(items))]
        results = self.client.chat_many(conversations, **self.request_params())
        return [self._to_prediction(result) for result in results]

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    # -- building blocks (overridden by the few-shot and RAG variants) ---------------

    def examples_for(self, items: Sequence[Item]) -> list[list[Example]]:
        """The example items shown with each item (none for zero-shot)."""
        return [[] for _ in items]

    def messages_for(self, item: Item, examples: Sequence[Example]) -> list[dict[str, str]]:
        """The chat messages for one item."""
        cfg = self.config
        return build_messages(item.text, examples, prefill=cfg.prefill, style=self.example_style, max_chars=cfg.max_item_chars)

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
            base_url=cfg.base_url,
            timeout=cfg.timeout,
            max_retries=cfg.max_retries,
            concurrency=cfg.concurrency,
            budget_usd=cfg.budget_usd,
            prices=dict(cfg.prices),
            cache=cfg.cache,
            backoff=Backoff(base=cfg.backoff_s),
            seed=self.seed,
        )

    def _to_prediction(self, result) -> Prediction:
        if not result.ok:
            return Prediction(raw=None, error=result.error, latency_s=result.latency_s)
        raw = answer_text(result.text, prefill=self.config.prefill)
        return Prediction(
            raw=raw,
            price=parse_price(raw),
            cost_usd=result.cost_usd,
            latency_s=result.latency_s,
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
        seed = self.config.seed if self.config.seed is not None else self.seed
        chosen = random.Random(seed).sample(list(train), self.config.k)
        self.shots = [Example(item.text, item.price) for item in chosen]
        payload = {"ids": [item.id for item in chosen], "examples": [[e.text, e.price] for e in self.shots]}
        (workdir / self.FILE).write_text(json.dumps(payload))

    def load(self, workdir: Path) -> bool:
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

        index = SimilarityIndex.load(workdir / self.INDEX_DIR)
        # "auto" may resolve differently after (un)installing the embedding packages: refit then.
        if index is None or index.backend != resolve_backend(self.config.embedder):
            return False
        self.index = index
        return True

    def examples_for(self, items: Sequence[Item]) -> list[list[Example]]:
        return self.index.query([item.text for item in items], self.config.k)
