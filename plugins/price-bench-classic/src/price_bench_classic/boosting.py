"""``svd-hgb``: HistGradientBoosting on TF-IDF-SVD components plus the engineered features."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from price_bench.items import Item
from price_bench.predictors.contract import PredictorConfig

from price_bench_classic.base import ClassicPredictor, ItemRegressor, texts_of
from price_bench_classic.features import FeatureEncoder
from price_bench_classic.linear import make_tfidf


class SvdBoostingModel(ItemRegressor):
    """TF-IDF → TruncatedSVD (dense topics) ⊕ engineered features → HistGradientBoostingRegressor."""

    def __init__(
        self,
        *,
        svd_components: int,
        max_iter: int,
        learning_rate: float,
        max_leaf_nodes: int,
        l2_regularization: float,
        loss: str,
        log_target: bool,
        seed: int,
    ) -> None:
        super().__init__(log_target=log_target, seed=seed)
        self.svd_components, self.max_iter, self.learning_rate = svd_components, max_iter, learning_rate
        self.max_leaf_nodes, self.l2_regularization, self.loss = max_leaf_nodes, l2_regularization, loss

    def _matrix(self, items: Sequence[Item]) -> np.ndarray:
        topics = self.svd.transform(self.vectorizer.transform(texts_of(items)))
        return np.hstack([topics, self.encoder.transform(items)]).astype(np.float32)

    def _fit(self, items: Sequence[Item], y: np.ndarray) -> None:
        from sklearn.decomposition import TruncatedSVD
        from sklearn.ensemble import HistGradientBoostingRegressor

        self.vectorizer = make_tfidf(max_features=100_000, ngram_max=2, min_df=2)
        tfidf = self.vectorizer.fit_transform(texts_of(items))
        n_components = max(1, min(self.svd_components, tfidf.shape[1] - 1, len(items) - 1))
        self.svd = TruncatedSVD(n_components=n_components, algorithm="randomized", n_iter=4, random_state=self.seed)
        self.svd.fit(tfidf)
        self.encoder = FeatureEncoder().fit(items)
        self.regressor = HistGradientBoostingRegressor(
            loss=self.loss,
            learning_rate=self.learning_rate,
            max_iter=self.max_iter,
            max_leaf_nodes=self.max_leaf_nodes,
            l2_regularization=self.l2_regularization,
            early_stopping=False,
            random_state=self.seed,
        )
        self.regressor.fit(self._matrix(items), y)

    def _predict(self, items: Sequence[Item]) -> np.ndarray:
        return self.regressor.predict(self._matrix(items))


class SvdBoostingConfig(PredictorConfig):
    svd_components: int = 128
    max_iter: int = 400
    learning_rate: float = 0.05
    max_leaf_nodes: int = 31
    l2_regularization: float = 1.0
    loss: str = "squared_error"
    log_target: bool = True
    use_validation: bool = True


class SvdBoosting(ClassicPredictor):
    id = "svd-hgb"
    description = "HistGradientBoosting on TF-IDF-SVD components plus engineered features, log price."
    Config = SvdBoostingConfig

    def build_model(self) -> ItemRegressor:
        c = self.config
        return SvdBoostingModel(
            svd_components=c.svd_components,
            max_iter=c.max_iter,
            learning_rate=c.learning_rate,
            max_leaf_nodes=c.max_leaf_nodes,
            l2_regularization=c.l2_regularization,
            loss=c.loss,
            log_target=c.log_target,
            seed=self.seed,
        )
