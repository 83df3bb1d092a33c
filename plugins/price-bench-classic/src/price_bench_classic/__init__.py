"""price-bench-classic: classical price predictors, registered through the ``price_bench`` entry point.

The seed's models (``fe-linear``, ``bow-linear``, ``w2v-linear``,
``w2v-rf``, ``w2v-svr``) and stronger ones (``tfidf-ridge``, ``tfidf-mlp``,
``tfidf-knn``, ``svd-hgb``, ``minilm-ridge``, ``minilm-knn``, ``sparse-mlp``, ``ensemble``).

Registration is lazy: each predictor is a ``"module:Class"`` spec, so
``price-bench list`` imports neither this plugin's modules nor scikit-learn,
gensim or torch.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from price_bench import Predictor, PredictorSpec, hookimpl

__version__ = "0.1.0"

#: (id, "module:Class", description) for every predictor of this plugin: the one place each
#: description is written (the classes read theirs from here, see :func:`description_of`).
SPECS: tuple[tuple[str, str, str], ...] = (
    ("fe-linear", "price_bench_classic.linear:FeatureLinear",
     "Engineered features (weight, rank, text length, brand, category) + LinearRegression (seed)."),
    ("bow-linear", "price_bench_classic.linear:BagOfWordsLinear",
     "Bag of words (CountVectorizer, 1,000 features, English stop words) + LinearRegression (seed)."),
    ("w2v-linear", "price_bench_classic.w2v:Word2VecLinear",
     "Mean word2vec (400-dim, window 5) document vectors + LinearRegression (seed)."),
    ("w2v-rf", "price_bench_classic.w2v:Word2VecForest", "Mean word2vec document vectors + RandomForestRegressor (seed)."),
    ("w2v-svr", "price_bench_classic.w2v:Word2VecSVR", "Mean word2vec document vectors + LinearSVR (seed)."),
    ("tfidf-ridge", "price_bench_classic.linear:TfidfRidge", "Word 1-2-gram TF-IDF (whole text plus a title block) + Ridge regression on log price."),
    ("tfidf-mlp", "price_bench_classic.linear:TfidfMLP", "Word 1-2-gram TF-IDF into a 64-unit MLP on log price (fixed 10 epochs)."),
    ("tfidf-knn", "price_bench_classic.neighbors:TfidfNeighbours",
     "Distance-weighted mean log price of the 10 nearest train items by TF-IDF cosine similarity."),
    ("svd-hgb", "price_bench_classic.boosting:SvdBoosting",
     "HistGradientBoosting on TF-IDF-SVD components plus engineered features, log price."),
    ("minilm-ridge", "price_bench_classic.minilm:MiniLMRidge",
     "all-MiniLM-L6-v2 sentence embeddings (packaged, offline) + Ridge on log price."),
    ("minilm-knn", "price_bench_classic.neighbors:MiniLMNeighbours",
     "Distance-weighted mean log price of the 5 nearest train items by all-MiniLM-L6-v2 embedding."),
    ("sparse-mlp", "price_bench_classic.sparse_mlp:SparseMLP",
     "Mercari-style sparse MLP (PyTorch): word/char TF-IDF, brand crosses and parsed quantities "
     "into 256-64-32 on log price, Huber loss, bagged over seeds."),
    ("ensemble", "price_bench_classic.ensemble:Ensemble",
     "Stacks classic models (by default SVD-HGB, MiniLM kNN and ridge, sparse MLP; chosen by CV on train) on "
     "out-of-fold predictions with non-negative weights on log price."),
)


def description_of(predictor_id: str) -> str:
    """The description of one of this plugin's predictors (KeyError for an unknown id)."""
    for spec_id, _, description in SPECS:
        if spec_id == predictor_id:
            return description
    raise KeyError(predictor_id)


def predictor_classes() -> list[type[Predictor]]:
    """Import and return every predictor class of this plugin (imports scikit-learn lazily still)."""
    classes = []
    for _, factory, _ in SPECS:
        module_name, _, attr = factory.partition(":")
        classes.append(getattr(importlib.import_module(module_name), attr))
    return classes


@hookimpl
def register_predictors(register: Callable[[PredictorSpec], None]) -> None:
    """Register every predictor of :data:`SPECS` (lazily: by ``"module:Class"`` spec)."""
    for predictor_id, factory, description in SPECS:
        register(PredictorSpec(id=predictor_id, factory=factory, description=description))
