"""The seed's word2vec models: ``w2v-linear``, ``w2v-rf`` and ``w2v-svr``.

gensim Word2Vec is trained on the train texts (vector size 400, window 5, as
the reference did); each document is the mean of its word vectors; then
LinearRegression, RandomForestRegressor or LinearSVR. Word2Vec runs with one
worker thread and the predictor's seed, which makes it reproducible.
"""

from __future__ import annotations

from typing import Literal, Sequence

import numpy as np

from price_bench import Item, PredictorConfig, runtime_field

from price_bench_classic.base import ClassicPredictor, ItemRegressor, texts_of
from price_bench_classic.embeddings import train_word_vectors

Head = Literal["linear", "rf", "svr"]


class Word2VecModel(ItemRegressor):
    """Mean word2vec document vectors + a regression head."""

    def __init__(
        self,
        *,
        head: Head,
        vector_size: int,
        window: int,
        min_count: int,
        epochs: int,
        n_estimators: int,
        max_depth: int | None,
        max_features: float,
        svr_c: float,
        n_jobs: int,
        log_target: bool,
        seed: int,
    ) -> None:
        super().__init__(log_target=log_target, seed=seed)
        self.head = head
        self.w2v_params = dict(vector_size=vector_size, window=window, min_count=min_count, epochs=epochs)
        self.n_estimators, self.max_depth, self.max_features = n_estimators, max_depth, max_features
        self.svr_c, self.n_jobs = svr_c, n_jobs

    def _make_head(self):
        from sklearn.ensemble import RandomForestRegressor
        from sklearn.linear_model import LinearRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler
        from sklearn.svm import LinearSVR

        if self.head == "linear":
            return LinearRegression()
        if self.head == "rf":
            return RandomForestRegressor(
                n_estimators=self.n_estimators,
                max_depth=self.max_depth,
                max_features=self.max_features,
                min_samples_leaf=2,
                n_jobs=self.n_jobs,
                random_state=self.seed,
            )
        return make_pipeline(
            StandardScaler(),
            LinearSVR(C=self.svr_c, epsilon=0.0, loss="epsilon_insensitive", max_iter=5000, dual=True, random_state=self.seed),
        )

    def _fit(self, items: Sequence[Item], y: np.ndarray) -> None:
        texts = texts_of(items)
        self.vectors = train_word_vectors(texts, seed=self.seed, **self.w2v_params)
        self.regressor = self._make_head()
        self.regressor.fit(self.vectors.document_vectors(texts), y)

    def _predict(self, items: Sequence[Item]) -> np.ndarray:
        return self.regressor.predict(self.vectors.document_vectors(texts_of(items)))


class Word2VecConfig(PredictorConfig):
    vector_size: int = 400
    window: int = 5
    min_count: int = 2
    epochs: int = 5
    log_target: bool = True
    use_validation: bool = True


class Word2VecForestConfig(Word2VecConfig):
    n_estimators: int = 100
    max_depth: int | None = 16
    max_features: float = 0.2
    #: Threads building trees; the forest is the same whatever the value (each tree has its own seed).
    n_jobs: int = runtime_field(-1)


class Word2VecSVRConfig(Word2VecConfig):
    C: float = 0.05


class _Word2VecPredictor(ClassicPredictor):
    head: Head = "linear"

    def build_model(self) -> ItemRegressor:
        c = self.config
        return Word2VecModel(
            head=self.head,
            vector_size=c.vector_size,
            window=c.window,
            min_count=c.min_count,
            epochs=c.epochs,
            n_estimators=getattr(c, "n_estimators", 0),
            max_depth=getattr(c, "max_depth", None),
            max_features=getattr(c, "max_features", 1.0),
            svr_c=getattr(c, "C", 1.0),
            n_jobs=getattr(c, "n_jobs", 1),
            log_target=c.log_target,
            seed=self.seed,
        )


class Word2VecLinear(_Word2VecPredictor):
    id = "w2v-linear"
    description = "Mean word2vec (400-dim, window 5) document vectors + LinearRegression (seed)."
    Config = Word2VecConfig
    head = "linear"


class Word2VecForest(_Word2VecPredictor):
    id = "w2v-rf"
    description = "Mean word2vec document vectors + RandomForestRegressor (seed)."
    Config = Word2VecForestConfig
    head = "rf"


class Word2VecSVR(_Word2VecPredictor):
    id = "w2v-svr"
    description = "Mean word2vec document vectors + LinearSVR (seed)."
    Config = Word2VecSVRConfig
    head = "svr"
