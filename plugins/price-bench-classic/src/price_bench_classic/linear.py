"""Linear models: ``fe-linear``, ``bow-linear`` (the seed's) and ``tfidf-ridge``."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from price_bench import Item, PredictorConfig

from price_bench_classic.base import ClassicPredictor, ItemRegressor, texts_of
from price_bench_classic.features import FeatureEncoder


# -- fe-linear --------------------------------------------------------------------------


class FeatureLinearModel(ItemRegressor):
    """Engineered features (see :class:`FeatureEncoder`), standardised, then LinearRegression."""

    def _fit(self, items: Sequence[Item], y: np.ndarray) -> None:
        from sklearn.linear_model import LinearRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        self.encoder = FeatureEncoder().fit(items)
        self.regressor = make_pipeline(StandardScaler(), LinearRegression())
        self.regressor.fit(self.encoder.transform(items), y)

    def _predict(self, items: Sequence[Item]) -> np.ndarray:
        return self.regressor.predict(self.encoder.transform(items))


class FeatureLinearConfig(PredictorConfig):
    log_target: bool = True
    use_validation: bool = True


class FeatureLinear(ClassicPredictor):
    id = "fe-linear"
    description = "Engineered features (weight, rank, text length, brand, category) + LinearRegression (seed)."
    Config = FeatureLinearConfig

    def build_model(self) -> ItemRegressor:
        return FeatureLinearModel(log_target=self.config.log_target, seed=self.seed)


# -- bow-linear -------------------------------------------------------------------------


class BagOfWordsLinearModel(ItemRegressor):
    """CountVectorizer (English stop words) + LinearRegression."""

    def __init__(self, *, max_features: int, log_target: bool, seed: int) -> None:
        super().__init__(log_target=log_target, seed=seed)
        self.max_features = max_features

    def _fit(self, items: Sequence[Item], y: np.ndarray) -> None:
        from sklearn.feature_extraction.text import CountVectorizer
        from sklearn.linear_model import LinearRegression

        self.vectorizer = CountVectorizer(max_features=self.max_features, stop_words="english")
        x = self.vectorizer.fit_transform(texts_of(items))
        self.regressor = LinearRegression().fit(x, y)

    def _predict(self, items: Sequence[Item]) -> np.ndarray:
        return self.regressor.predict(self.vectorizer.transform(texts_of(items)))


class BagOfWordsLinearConfig(PredictorConfig):
    max_features: int = 1000
    log_target: bool = True
    use_validation: bool = True


class BagOfWordsLinear(ClassicPredictor):
    id = "bow-linear"
    description = "Bag of words (CountVectorizer, 1,000 features, English stop words) + LinearRegression (seed)."
    Config = BagOfWordsLinearConfig

    def build_model(self) -> ItemRegressor:
        c = self.config
        return BagOfWordsLinearModel(max_features=c.max_features, log_target=c.log_target, seed=self.seed)


# -- tfidf-ridge ------------------------------------------------------------------------


def make_tfidf(*, max_features: int, ngram_max: int, min_df: int):
    """The word TF-IDF vectorizer shared by ``tfidf-ridge`` and ``svd-hgb``."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer(
        ngram_range=(1, ngram_max),
        min_df=min_df,
        max_df=0.9,
        max_features=max_features,
        sublinear_tf=True,
        strip_accents="unicode",
        dtype=np.float32,
    )


class TfidfRidgeModel(ItemRegressor):
    """Word 1–2-gram TF-IDF of the whole text, plus a separate TF-IDF block of the title, + Ridge."""

    def __init__(
        self, *, alpha: float, max_features: int, title_features: int, ngram_max: int, min_df: int, log_target: bool, seed: int
    ) -> None:
        super().__init__(log_target=log_target, seed=seed)
        self.alpha, self.max_features, self.ngram_max, self.min_df = alpha, max_features, ngram_max, min_df
        self.title_features = title_features

    def _matrix(self, items: Sequence[Item], fit: bool = False):
        import scipy.sparse as sp

        texts = texts_of(items)
        if fit:
            self.vectorizer = make_tfidf(max_features=self.max_features, ngram_max=self.ngram_max, min_df=self.min_df)
            self.title_vectorizer = (
                make_tfidf(max_features=self.title_features, ngram_max=self.ngram_max, min_df=1) if self.title_features else None
            )
        transform = "fit_transform" if fit else "transform"
        blocks = [getattr(self.vectorizer, transform)(texts)]
        if self.title_vectorizer is not None:
            blocks.append(getattr(self.title_vectorizer, transform)(titles_of(items)))
        return sp.hstack(blocks).tocsr() if len(blocks) > 1 else blocks[0]

    def _fit(self, items: Sequence[Item], y: np.ndarray) -> None:
        from sklearn.linear_model import Ridge

        self.regressor = Ridge(alpha=self.alpha, random_state=self.seed).fit(self._matrix(items, fit=True), y)

    def _predict(self, items: Sequence[Item]) -> np.ndarray:
        return self.regressor.predict(self._matrix(items))


def titles_of(items: Sequence[Item]) -> list[str]:
    """Each item's title: ``Item.title`` when the curation kept it, else the first line of the text."""
    return [item.title or item.text.split("\n", 1)[0] for item in items]


class TfidfRidgeConfig(PredictorConfig):
    alpha: float = 1.0
    max_features: int = 200_000
    #: Size of the extra title-only TF-IDF block (0 turns it off).
    title_features: int = 100_000
    ngram_max: int = 2
    min_df: int = 2
    log_target: bool = True
    use_validation: bool = True


class TfidfRidge(ClassicPredictor):
    id = "tfidf-ridge"
    description = "Word 1-2-gram TF-IDF (whole text plus a title block) + Ridge regression on log price."
    Config = TfidfRidgeConfig

    def build_model(self) -> ItemRegressor:
        c = self.config
        return TfidfRidgeModel(
            alpha=c.alpha,
            max_features=c.max_features,
            title_features=c.title_features,
            ngram_max=c.ngram_max,
            min_df=c.min_df,
            log_target=c.log_target,
            seed=self.seed,
        )


# -- tfidf-mlp --------------------------------------------------------------------------


class TfidfMLPModel(ItemRegressor):
    """Word TF-IDF (sparse) into a one-hidden-layer MLP (scikit-learn, Adam) on log price."""

    def __init__(
        self, *, hidden: int, epochs: int, alpha: float, max_features: int, learning_rate: float, log_target: bool, seed: int
    ) -> None:
        super().__init__(log_target=log_target, seed=seed)
        self.hidden, self.epochs, self.alpha = hidden, epochs, alpha
        self.max_features, self.learning_rate = max_features, learning_rate

    def _fit(self, items: Sequence[Item], y: np.ndarray) -> None:
        import warnings

        from sklearn.exceptions import ConvergenceWarning
        from sklearn.neural_network import MLPRegressor

        self.vectorizer = make_tfidf(max_features=self.max_features, ngram_max=2, min_df=2)
        x = self.vectorizer.fit_transform(texts_of(items))
        self.offset = float(y.mean())
        self.regressor = MLPRegressor(
            hidden_layer_sizes=(self.hidden,),
            alpha=self.alpha,
            batch_size=256,
            learning_rate_init=self.learning_rate,
            max_iter=self.epochs,
            random_state=self.seed,
        )
        with warnings.catch_warnings():  # a fixed epoch budget is the point, not convergence
            warnings.simplefilter("ignore", ConvergenceWarning)
            self.regressor.fit(x, y - self.offset)

    def _predict(self, items: Sequence[Item]) -> np.ndarray:
        return self.regressor.predict(self.vectorizer.transform(texts_of(items))) + self.offset


class TfidfMLPConfig(PredictorConfig):
    hidden: int = 64
    epochs: int = 10
    alpha: float = 1e-4
    max_features: int = 40_000
    learning_rate: float = 2e-3
    log_target: bool = True
    use_validation: bool = True


class TfidfMLP(ClassicPredictor):
    id = "tfidf-mlp"
    description = "Word 1-2-gram TF-IDF into a 64-unit MLP on log price (fixed 10 epochs)."
    Config = TfidfMLPConfig

    def build_model(self) -> ItemRegressor:
        c = self.config
        return TfidfMLPModel(
            hidden=c.hidden,
            epochs=c.epochs,
            alpha=c.alpha,
            max_features=c.max_features,
            learning_rate=c.learning_rate,
            log_target=c.log_target,
            seed=self.seed,
        )
