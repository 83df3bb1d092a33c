"""Nearest-neighbour models: ``minilm-knn`` (sentence embeddings) and ``tfidf-knn`` (TF-IDF).

Both predict the similarity-weighted mean log price of the ``k`` train items
closest in cosine similarity. Brute-force search over ~10k train items is
fast and exact, so results do not depend on an index's approximations.
"""

from __future__ import annotations

from typing import Any

from price_bench_classic.base import ClassicPredictor, LogPriceConfig
from price_bench_classic.linear import TextRegressor, make_tfidf
from price_bench_classic.minilm import EmbeddingRegressor, MiniLMConfig, MiniLMPredictor


class NeighboursHead:
    """The regressor of both kNN models: the config's ``k`` nearest train items (cosine), distance-weighted."""

    config: Any

    def _regressor(self, n_items: int) -> Any:
        from sklearn.neighbors import KNeighborsRegressor

        k = min(self.config.k, n_items)
        return KNeighborsRegressor(n_neighbors=k, weights="distance", metric="cosine", algorithm="brute")


class MiniLMNeighboursConfig(MiniLMConfig):
    """Configuration of ``minilm-knn``."""

    k: int = 5


class MiniLMNeighboursModel(NeighboursHead, EmbeddingRegressor):
    """k nearest train items by MiniLM embedding."""

    config: MiniLMNeighboursConfig


class MiniLMNeighbours(MiniLMPredictor):
    id = "minilm-knn"
    Config = MiniLMNeighboursConfig
    Model = MiniLMNeighboursModel


class TfidfNeighboursConfig(LogPriceConfig):
    """Configuration of ``tfidf-knn``."""

    k: int = 10


class TfidfNeighboursModel(NeighboursHead, TextRegressor):
    """k nearest train items by TF-IDF (word 1-2-grams)."""

    config: TfidfNeighboursConfig

    def _vectorizer(self) -> Any:
        return make_tfidf(max_features=100_000, ngram_max=2, min_df=2)


class TfidfNeighbours(ClassicPredictor):
    id = "tfidf-knn"
    Config = TfidfNeighboursConfig
    Model = TfidfNeighboursModel
