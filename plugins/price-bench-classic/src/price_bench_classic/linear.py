"""Linear models and the TF-IDF MLP: ``fe-linear``, ``bow-linear`` (the seed's), ``tfidf-ridge``, ``tfidf-mlp``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from price_bench import Item
from price_bench_classic.base import ClassicPredictor, ItemRegressor, LogPriceConfig, texts_of
from price_bench_classic.fast_tfidf import prepare, tfidf_transform
from price_bench_classic.features import FeatureEncoder


class TextRegressor(ItemRegressor):
    """A text vectorizer (fitted on the train texts) into a regressor: subclasses make the two."""

    def _vectorizer(self) -> Any:
        raise NotImplementedError

    def _regressor(self, n_items: int) -> Any:
        raise NotImplementedError

    def _fit(self, items: Sequence[Item], y: np.ndarray) -> None:
        self.vectorizer = self._vectorizer()
        x = self.vectorizer.fit_transform(texts_of(items))
        self.regressor = self._regressor(len(items)).fit(x, y)

    def _predict(self, items: Sequence[Item]) -> np.ndarray:
        return np.asarray(self.regressor.predict(tfidf_transform(self.vectorizer, texts_of(items))))


def make_tfidf(*, max_features: int, ngram_max: int, min_df: int) -> Any:
    """The word TF-IDF vectorizer shared by ``tfidf-ridge``, ``tfidf-mlp``, ``tfidf-knn`` and ``svd-hgb``."""
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


def titles_of(items: Sequence[Item]) -> list[str]:
    """Each item's title: ``Item.title`` when the curation kept it, else the first line of the text."""
    return [item.title or item.text.split("\n", 1)[0] for item in items]


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
        return np.asarray(self.regressor.predict(self.encoder.transform(items)))


class FeatureLinearConfig(LogPriceConfig):
    """Configuration of ``fe-linear`` (only the shared fields)."""


class FeatureLinear(ClassicPredictor):
    id = "fe-linear"
    Config = FeatureLinearConfig
    Model = FeatureLinearModel


# -- bow-linear -------------------------------------------------------------------------


class BagOfWordsLinearConfig(LogPriceConfig):
    """Configuration of ``bow-linear``."""

    max_features: int = 1000


class BagOfWordsLinearModel(TextRegressor):
    """CountVectorizer (English stop words) + LinearRegression."""

    config: BagOfWordsLinearConfig

    def _vectorizer(self) -> Any:
        from sklearn.feature_extraction.text import CountVectorizer

        return CountVectorizer(max_features=self.config.max_features, stop_words="english")

    def _regressor(self, n_items: int) -> Any:
        from sklearn.linear_model import LinearRegression

        return LinearRegression()


class BagOfWordsLinear(ClassicPredictor):
    id = "bow-linear"
    Config = BagOfWordsLinearConfig
    Model = BagOfWordsLinearModel


# -- tfidf-ridge ------------------------------------------------------------------------


class TfidfRidgeConfig(LogPriceConfig):
    """Configuration of ``tfidf-ridge``."""

    alpha: float = 1.0
    max_features: int = 200_000
    #: Size of the extra title-only TF-IDF block (0 turns it off).
    title_features: int = 100_000
    ngram_max: int = 2
    min_df: int = 2


class TfidfRidgeModel(ItemRegressor):
    """Word 1–2-gram TF-IDF of the whole text, plus a separate TF-IDF block of the title, + Ridge."""

    config: TfidfRidgeConfig

    def _matrix(self, items: Sequence[Item], fit: bool = False) -> Any:
        import scipy.sparse as sp

        c = self.config
        texts = texts_of(items)
        if fit:
            self.vectorizer = make_tfidf(max_features=c.max_features, ngram_max=c.ngram_max, min_df=c.min_df)
            self.title_vectorizer = (
                make_tfidf(max_features=c.title_features, ngram_max=c.ngram_max, min_df=1) if c.title_features else None
            )
        if fit:
            blocks = [self.vectorizer.fit_transform(texts)]
            if self.title_vectorizer is not None:
                blocks.append(self.title_vectorizer.fit_transform(titles_of(items)))
        else:  # the same matrix as ``transform``, byte for byte, computed in bulk
            blocks = [tfidf_transform(self.vectorizer, texts)]
            if self.title_vectorizer is not None:
                blocks.append(tfidf_transform(self.title_vectorizer, titles_of(items)))
        return sp.hstack(blocks).tocsr() if len(blocks) > 1 else blocks[0]

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Unpickled (a saved model or bundle, old ones included): build the bulk transform's tables at load, not on the first request."""
        self.__dict__.update(state)
        for vectorizer in (state.get("vectorizer"), state.get("title_vectorizer")):
            if vectorizer is not None:
                prepare(vectorizer)

    def _fit(self, items: Sequence[Item], y: np.ndarray) -> None:
        from sklearn.linear_model import Ridge

        self.regressor = Ridge(alpha=self.config.alpha, random_state=self.seed).fit(self._matrix(items, fit=True), y)

    def _predict(self, items: Sequence[Item]) -> np.ndarray:
        return linear_predict(self.regressor, self._matrix(items))


def linear_predict(regressor: Any, x: Any) -> np.ndarray:
    """``regressor.predict(x)`` for a fitted ``Ridge`` on a CSR matrix, without its per-call input validation.

    ``LinearModel.predict`` validates ``x`` (~0.3 ms a call: a served single
    item pays it on every request), then computes ``x @ coef_ + intercept_``;
    this checks what that validation would refuse (feature count, non-finite
    values) and computes the same expression on the same arrays, so the
    prices are the same bytes. Anything else goes to ``regressor.predict``.
    """
    import scipy.sparse as sp
    from sklearn.linear_model import Ridge

    coef = getattr(regressor, "coef_", None)
    if (type(regressor) is Ridge and sp.issparse(x) and x.format == "csr" and coef is not None and coef.ndim == 1
            and x.shape[1] == regressor.n_features_in_ and np.isfinite(x.data).all()):
        return np.asarray(x @ coef + regressor.intercept_)
    return np.asarray(regressor.predict(x))


class TfidfRidge(ClassicPredictor):
    id = "tfidf-ridge"
    Config = TfidfRidgeConfig
    Model = TfidfRidgeModel


# -- tfidf-mlp --------------------------------------------------------------------------


class TfidfMLPConfig(LogPriceConfig):
    """Configuration of ``tfidf-mlp``."""

    hidden: int = 64
    epochs: int = 10
    alpha: float = 1e-4
    max_features: int = 40_000
    learning_rate: float = 2e-3


class TfidfMLPModel(TextRegressor):
    """Word TF-IDF (sparse) into a one-hidden-layer MLP (scikit-learn, Adam) on the centred log price."""

    config: TfidfMLPConfig

    def _vectorizer(self) -> Any:
        return make_tfidf(max_features=self.config.max_features, ngram_max=2, min_df=2)

    def _regressor(self, n_items: int) -> Any:
        from sklearn.neural_network import MLPRegressor

        c = self.config
        return MLPRegressor(
            hidden_layer_sizes=(c.hidden,),
            alpha=c.alpha,
            batch_size=256,
            learning_rate_init=c.learning_rate,
            max_iter=c.epochs,
            random_state=self.seed,
        )

    def _fit(self, items: Sequence[Item], y: np.ndarray) -> None:
        import warnings

        from sklearn.exceptions import ConvergenceWarning

        self.offset = float(y.mean())
        with warnings.catch_warnings():  # a fixed epoch budget is the point, not convergence
            warnings.simplefilter("ignore", ConvergenceWarning)
            super()._fit(items, y - self.offset)

    def _predict(self, items: Sequence[Item]) -> np.ndarray:
        return super()._predict(items) + self.offset


class TfidfMLP(ClassicPredictor):
    id = "tfidf-mlp"
    Config = TfidfMLPConfig
    Model = TfidfMLPModel
