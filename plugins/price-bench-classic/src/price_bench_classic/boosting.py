"""``svd-hgb``: HistGradientBoosting on TF-IDF-SVD components plus the engineered features."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from price_bench import Item
from price_bench_classic.base import ClassicPredictor, ItemRegressor, LogPriceConfig, texts_of
from price_bench_classic.features import FeatureEncoder
from price_bench_classic.linear import make_tfidf


class SvdBoostingConfig(LogPriceConfig):
    """Configuration of ``svd-hgb``."""

    svd_components: int = 128
    max_iter: int = 400
    learning_rate: float = 0.05
    max_leaf_nodes: int = 31
    l2_regularization: float = 1.0
    loss: Literal["squared_error", "absolute_error"] = "squared_error"
    #: OpenMP threads for the boosting (1 is safest on a shared CPU; raise it on an idle machine).
    n_threads: int = 1


class SvdBoostingModel(ItemRegressor):
    """TF-IDF → TruncatedSVD (dense topics) ⊕ engineered features → HistGradientBoostingRegressor."""

    config: SvdBoostingConfig

    def _matrix(self, items: Sequence[Item]) -> np.ndarray:
        topics = self.svd.transform(self.vectorizer.transform(texts_of(items)))
        return np.hstack([topics, self.encoder.transform(items)]).astype(np.float32)

    def _fit(self, items: Sequence[Item], y: np.ndarray) -> None:
        from sklearn.decomposition import TruncatedSVD
        from sklearn.ensemble import HistGradientBoostingRegressor

        c = self.config
        self.vectorizer = make_tfidf(max_features=100_000, ngram_max=2, min_df=2)
        tfidf = self.vectorizer.fit_transform(texts_of(items))
        n_components = max(1, min(c.svd_components, tfidf.shape[1] - 1, len(items) - 1))
        self.svd = TruncatedSVD(n_components=n_components, algorithm="randomized", n_iter=4, random_state=self.seed)
        self.svd.fit(tfidf)
        self.encoder = FeatureEncoder().fit(items)
        self.regressor = HistGradientBoostingRegressor(
            loss=c.loss,
            learning_rate=c.learning_rate,
            max_iter=c.max_iter,
            max_leaf_nodes=c.max_leaf_nodes,
            l2_regularization=c.l2_regularization,
            early_stopping=False,
            random_state=self.seed,
        )
        with _openmp_threads(c.n_threads):
            self.regressor.fit(self._matrix(items), y)

    def _predict(self, items: Sequence[Item]) -> np.ndarray:
        with _openmp_threads(self.config.n_threads):
            return np.asarray(self.regressor.predict(self._matrix(items)))


def _openmp_threads(n: int) -> Any:
    """Limit OpenMP (HistGradientBoosting's thread pool) to ``n`` threads for the duration.

    OpenMP threads spin while waiting; on a CPU shared with other jobs more
    than one thread was seen to turn a 7-second fit into ten minutes.
    """
    from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

    return threadpool_limits(limits=max(1, n), user_api="openmp")


class SvdBoosting(ClassicPredictor):
    id = "svd-hgb"
    Config = SvdBoostingConfig
    Model = SvdBoostingModel
