"""The sparse input of ``sparse-mlp``: TF-IDF blocks, brand crosses, parsed quantities, the category.

The Mercari Price Suggestion winners fed sparse matrices of word 1–2-gram and
character n-gram TF-IDF (of the title and of the whole text) into small MLPs;
crossing the brand with every title token helped every model. On product
text without structured fields the brand and the quantities are parsed from
the text (:mod:`price_bench_classic.features`).

Blocks (each optional, sizes configurable):

* word 1–2-gram TF-IDF of the whole text (category line included);
* word 1–2-gram TF-IDF of the title;
* character n-gram TF-IDF (``char_wb``) of the title;
* "side" tokens, one-hot: ``brand=<b>``, ``brand=<b>|<title token>``,
  ``cat=<c>``, ``cat=<c>|brand=<b>`` and the bucketed quantities
  (:func:`~price_bench_classic.features.quantity_tokens`);
* the quantities as numbers: ``log1p(value)`` standardised on train, 0 when
  not stated.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import Field, model_validator

from price_bench import Item, PredictorConfig
from price_bench_classic.base import texts_of
from price_bench_classic.features import QUANTITY_NAMES, parse_quantities, quantity_tokens, raw_features
from price_bench_classic.linear import titles_of

_TOKEN = re.compile(r"(?u)\b\w\w+\b")


class SparseInputConfig(PredictorConfig):
    """Which blocks to build and how large (0 turns a block off): the input fields of ``sparse-mlp``'s config."""

    word_features: int = Field(100_000, ge=0)
    title_features: int = Field(50_000, ge=0)
    char_features: int = Field(50_000, ge=0)
    char_ngram_min: int = Field(2, ge=1, le=10)
    char_ngram_max: int = Field(4, ge=1, le=10)
    brand_crosses: bool = True
    quantities: bool = True
    category: bool = True
    min_df: int = Field(2, ge=1)

    @model_validator(mode="after")
    def _consistent_blocks(self) -> SparseInputConfig:
        if self.char_ngram_min > self.char_ngram_max:
            raise ValueError(f"char_ngram_min ({self.char_ngram_min}) exceeds char_ngram_max ({self.char_ngram_max})")
        if not (self.word_features or self.title_features or self.char_features or self.brand_crosses or self.quantities or self.category):
            raise ValueError("every input block is turned off")
        return self


@dataclass(frozen=True)
class ItemFacts:
    """What the side blocks read from one item: its brand (lower case), category and quantities."""

    brand: str | None
    category: str | None
    quantities: dict[str, float]

    @classmethod
    def of(cls, item: Item) -> ItemFacts:
        raw = raw_features(item)
        brand = raw.brand.lower().strip() if raw.brand else None
        return cls(brand or None, item.category or None, parse_quantities(item, raw))


def side_tokens(facts: ItemFacts, title: str, spec: SparseInputConfig) -> list[str]:
    """Brand x title-token crosses, category tokens and bucketed quantities of one item."""
    tokens: list[str] = []
    brand, category = facts.brand, facts.category
    if spec.brand_crosses and brand:
        tokens.append(f"brand={brand}")
        tokens += [f"brand={brand}|{t}" for t in dict.fromkeys(_TOKEN.findall(title.lower()))]
    if spec.category and category:
        tokens.append(f"cat={category}")
        if brand:
            tokens.append(f"cat={category}|brand={brand}")
    if spec.quantities:
        tokens += quantity_tokens(facts.quantities)
    return tokens


class SparseInputEncoder:
    """Learns the vocabularies on train items; ``transform`` gives a float32 CSR matrix."""

    def __init__(self, spec: SparseInputConfig) -> None:
        self.spec = spec

    def fit_transform(self, items: Sequence[Item]) -> Any:
        """Fit every block on ``items`` and return their matrix."""
        from sklearn.feature_extraction.text import CountVectorizer

        s = self.spec
        self.word = _tfidf(s.word_features, s.min_df, analyzer="word", ngram_range=(1, 2)) if s.word_features else None
        self.title = _tfidf(s.title_features, s.min_df, analyzer="word", ngram_range=(1, 2)) if s.title_features else None
        self.char = (
            _tfidf(s.char_features, s.min_df, analyzer="char_wb", ngram_range=(s.char_ngram_min, s.char_ngram_max))
            if s.char_features
            else None
        )
        self.side = (
            CountVectorizer(analyzer=_identity, min_df=s.min_df, binary=True, dtype=np.float32)
            if (s.brand_crosses or s.category or s.quantities)
            else None
        )
        return self._blocks(items, fit=True)

    def transform(self, items: Sequence[Item]) -> Any:
        """The matrix of ``items`` (float32 CSR) with the vocabularies learnt by :meth:`fit_transform`."""
        return self._blocks(items, fit=False)

    @property
    def n_features(self) -> int:
        return int(self._width)

    def _blocks(self, items: Sequence[Item], *, fit: bool) -> Any:
        import scipy.sparse as sp

        titles = titles_of(items)
        facts = [ItemFacts.of(item) for item in items] if (self.side is not None or self.spec.quantities) else []
        blocks = []
        for vectorizer, texts in ((self.word, texts_of(items)), (self.title, titles), (self.char, titles)):
            if vectorizer is not None:
                blocks.append(vectorizer.fit_transform(texts) if fit else vectorizer.transform(texts))
        if self.side is not None:
            docs = [side_tokens(f, title, self.spec) for f, title in zip(facts, titles)]
            try:
                blocks.append(self.side.fit_transform(docs) if fit else self.side.transform(docs))
            except ValueError:  # fit: no token reached min_df (tiny data); drop the block
                if not fit:
                    raise
                self.side = None
        if self.spec.quantities:
            blocks.append(sp.csr_matrix(self._numeric(facts, fit=fit)))
        if not blocks:
            raise ValueError("every input block is turned off")
        matrix = sp.hstack(blocks, format="csr", dtype=np.float32)
        matrix.sort_indices()
        self._width = matrix.shape[1]
        return matrix

    def _numeric(self, facts: Sequence[ItemFacts], *, fit: bool) -> np.ndarray:
        """log1p of each quantity, standardised on train over the items that state it; 0 when absent."""
        values = np.full((len(facts), len(QUANTITY_NAMES)), np.nan)
        for row, item_facts in enumerate(facts):
            for name, value in item_facts.quantities.items():
                values[row, QUANTITY_NAMES.index(name)] = math.log1p(value)
        if fit:
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # a quantity no train item states: mean 0, sd 1
                self.q_mean = np.nan_to_num(np.nanmean(values, axis=0))
                self.q_std = np.nan_to_num(np.nanstd(values, axis=0), nan=1.0)
            self.q_std[self.q_std < 1e-6] = 1.0
        scaled: np.ndarray = np.nan_to_num((values - self.q_mean) / self.q_std).astype(np.float32)
        return scaled


def _identity(tokens: list[str]) -> list[str]:
    return tokens


def _tfidf(max_features: int, min_df: int, **kwargs: Any) -> Any:
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer(
        max_features=max_features,
        min_df=min_df,
        max_df=0.9,
        sublinear_tf=True,
        strip_accents="unicode",
        lowercase=True,
        dtype=np.float32,
        **kwargs,
    )
