"""The seed's word2vec models: ``w2v-linear``, ``w2v-rf`` and ``w2v-svr``.

gensim Word2Vec is trained on the train texts (vector size 400, window 5, as
the reference did); each document is the mean of its word vectors; then
LinearRegression, RandomForestRegressor or LinearSVR. Word2Vec runs with one
worker thread and the predictor's seed, which makes it reproducible.

gensim is the ``w2v`` extra of this plugin (``pip install 'price-bench-classic[w2v]'``):
the predictors are skipped, with that line as the reason, when it is missing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from price_bench import Item, Requirement, runtime_field
from price_bench_classic.base import ClassicPredictor, ItemRegressor, LogPriceConfig, texts_of
from price_bench_classic.embeddings import GENSIM_HINT, train_word_vectors


class Word2VecConfig(LogPriceConfig):
    """Configuration of ``w2v-linear`` (and the word2vec fields of the other two)."""

    vector_size: int = 400
    window: int = 5
    min_count: int = 2
    epochs: int = 5


class Word2VecForestConfig(Word2VecConfig):
    """Configuration of ``w2v-rf``."""

    n_estimators: int = 100
    max_depth: int | None = 16
    max_features: float = 0.2
    #: Threads building trees; the forest is the same whatever the value (each tree has its own seed).
    n_jobs: int = runtime_field(-1)


class Word2VecSVRConfig(Word2VecConfig):
    """Configuration of ``w2v-svr``."""

    C: float = 0.05


class Word2VecModel(ItemRegressor):
    """Mean word2vec document vectors + a regression head (subclasses make it: ``_head``)."""

    config: Word2VecConfig

    def _head(self) -> Any:
        from sklearn.linear_model import LinearRegression

        return LinearRegression()

    def _fit(self, items: Sequence[Item], y: np.ndarray) -> None:
        c = self.config
        texts = texts_of(items)
        self.vectors = train_word_vectors(
            texts, vector_size=c.vector_size, window=c.window, min_count=c.min_count, epochs=c.epochs, seed=self.seed
        )
        self.regressor = self._head()
        self.regressor.fit(self.vectors.document_vectors(texts), y)

    def _predict(self, items: Sequence[Item]) -> np.ndarray:
        return np.asarray(self.regressor.predict(self.vectors.document_vectors(texts_of(items))))


class Word2VecForestModel(Word2VecModel):
    """Mean word2vec document vectors + RandomForestRegressor."""

    config: Word2VecForestConfig

    def _head(self) -> Any:
        from sklearn.ensemble import RandomForestRegressor

        c = self.config
        return RandomForestRegressor(
            n_estimators=c.n_estimators,
            max_depth=c.max_depth,
            max_features=c.max_features,
            min_samples_leaf=2,
            n_jobs=c.n_jobs,
            random_state=self.seed,
        )


class Word2VecSVRModel(Word2VecModel):
    """Mean word2vec document vectors, standardised, + LinearSVR."""

    config: Word2VecSVRConfig

    def _head(self) -> Any:
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler
        from sklearn.svm import LinearSVR

        svr = LinearSVR(
            C=self.config.C, epsilon=0.0, loss="epsilon_insensitive", max_iter=5000, dual=True, random_state=self.seed
        )
        return make_pipeline(StandardScaler(), svr)


class Word2VecPredictor(ClassicPredictor):
    """Base of the word2vec predictors: they need gensim (the ``w2v`` extra)."""

    requires: ClassVar[tuple[Requirement, ...]] = (Requirement.package("gensim", GENSIM_HINT),)


class Word2VecLinear(Word2VecPredictor):
    id = "w2v-linear"
    Config = Word2VecConfig
    Model = Word2VecModel


class Word2VecForest(Word2VecPredictor):
    id = "w2v-rf"
    Config = Word2VecForestConfig
    Model = Word2VecForestModel


class Word2VecSVR(Word2VecPredictor):
    id = "w2v-svr"
    Config = Word2VecSVRConfig
    Model = Word2VecSVRModel
