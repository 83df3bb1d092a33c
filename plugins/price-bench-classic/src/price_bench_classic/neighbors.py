"""Nearest-neighbour models: ``minilm-knn`` (sentence embeddings) and ``tfidf-knn`` (TF-IDF).

Both predict the similarity-weighted mean log price of the ``k`` train items
closest in cosine similarity. Brute-force search over ~10k train items is
fast and exact, so results do not depend on an index's approximations.
"""

from __future__ import annotations

from typing import ClassVar, Sequence

import numpy as np

from price_bench import Item, PredictorConfig, Requirement

from price_bench_classic.base import ClassicPredictor, ItemRegressor, texts_of
from price_bench_classic.embeddings import minilm_embed
from price_bench_classic.linear import make_tfidf
from price_bench_classic.minilm import MINILM_REQUIREMENTS


def _knn(k: int):
    from sklearn.neighbors import KNeighborsRegressor

    return KNeighborsRegressor(n_neighbors=k, weights="distance", metric="cosine", algorithm="brute")


class MiniLMNeighboursModel(ItemRegressor):
    """k nearest train items by MiniLM embedding (cosine), distance-weighted."""

    def __init__(self, *, k: int, max_seq_length: int, log_target: bool, seed: int) -> None:
        super().__init__(log_target=log_target, seed=seed)
        self.k, self.max_seq_length = k, max_seq_length

    def _embed(self, items: Sequence[Item]) -> np.ndarray:
        return minilm_embed(texts_of(items), max_seq_length=self.max_seq_length)

    def _fit(self, items: Sequence[Item], y: np.ndarray) -> None:
        self.regressor = _knn(min(self.k, len(items))).fit(self._embed(items), y)

    def _predict(self, items: Sequence[Item]) -> np.ndarray:
        return self.regressor.predict(self._embed(items))


class MiniLMNeighboursConfig(PredictorConfig):
    k: int = 5
    #: Tokens per text fed to MiniLM; the same as minilm-ridge's, so the two share embeddings.
    max_seq_length: int = 64
    log_target: bool = True
    use_validation: bool = True


class MiniLMNeighbours(ClassicPredictor):
    id = "minilm-knn"
    description = "Distance-weighted mean log price of the 5 nearest train items by all-MiniLM-L6-v2 embedding."
    Config = MiniLMNeighboursConfig
    requires: ClassVar[tuple[Requirement, ...]] = MINILM_REQUIREMENTS
    batch_size: ClassVar[int] = 256

    def build_model(self) -> ItemRegressor:
        c = self.config
        return MiniLMNeighboursModel(k=c.k, max_seq_length=c.max_seq_length, log_target=c.log_target, seed=self.seed)


class TfidfNeighboursModel(ItemRegressor):
    """k nearest train items by TF-IDF cosine similarity, distance-weighted."""

    def __init__(self, *, k: int, log_target: bool, seed: int) -> None:
        super().__init__(log_target=log_target, seed=seed)
        self.k = k

    def _fit(self, items: Sequence[Item], y: np.ndarray) -> None:
        self.vectorizer = make_tfidf(max_features=100_000, ngram_max=2, min_df=2)
        x = self.vectorizer.fit_transform(texts_of(items))
        self.regressor = _knn(min(self.k, len(items))).fit(x, y)

    def _predict(self, items: Sequence[Item]) -> np.ndarray:
        return self.regressor.predict(self.vectorizer.transform(texts_of(items)))


class TfidfNeighboursConfig(PredictorConfig):
    k: int = 10
    log_target: bool = True
    use_validation: bool = True


class TfidfNeighbours(ClassicPredictor):
    id = "tfidf-knn"
    description = "Distance-weighted mean log price of the 10 nearest train items by TF-IDF cosine similarity."
    Config = TfidfNeighboursConfig

    def build_model(self) -> ItemRegressor:
        c = self.config
        return TfidfNeighboursModel(k=c.k, log_target=c.log_target, seed=self.seed)
