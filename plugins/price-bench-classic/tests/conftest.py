"""Fixtures for the classic predictors: a subsample of the real ``demo`` dataset, built once per session."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from price_bench import Item

TRAIN_SIZE = 1500
TEST_SIZE = 300


@dataclass(frozen=True)
class Split:
    """A small train/validation/test subsample and the constant-mean floor on it."""

    train: list[Item]
    validation: list[Item]
    test: list[Item]

    @property
    def truth(self) -> np.ndarray:
        return np.array([item.price for item in self.test])

    def constant_mean_error(self) -> float:
        """Mean absolute error of always guessing the mean train price (what ``constant-mean`` scores)."""
        mean = float(np.mean([item.price for item in self.train]))
        return float(np.mean(np.abs(self.truth - mean)))

    def error(self, prices) -> float:
        return float(np.mean(np.abs(np.asarray(prices, dtype=float) - self.truth)))


@pytest.fixture(scope="session")
def demo_split(tmp_path_factory) -> Split:
    """The first 1,500 train, 150 validation and 300 test items of the ``demo`` catalog."""
    from price_bench.testing import get_dataset

    dataset = get_dataset("demo", home=tmp_path_factory.mktemp("classic-demo-home"))
    return Split(dataset.train[:TRAIN_SIZE], dataset.validation[:150], dataset.test[:TEST_SIZE])


def _make_predictor(predictor_id: str, seed: int = 0, **overrides):
    from price_bench_classic import predictor_classes

    cls = {c.id: c for c in predictor_classes()}[predictor_id]
    return cls(cls.make_config(overrides), seed=seed)


def _fit_predict(predictor, split: Split, workdir) -> list[float]:
    predictor.fit(split.train, split.validation, workdir)
    return [p.price for p in predictor.predict(split.test)]


@pytest.fixture
def make_predictor():
    """``make_predictor(id, seed=0, **overrides)``: a predictor of this plugin with its default config plus overrides."""
    return _make_predictor


@pytest.fixture
def fit_predict():
    """``fit_predict(predictor, split, workdir)``: fit on train+validation in ``workdir``, return the test prices."""
    return _fit_predict


@pytest.fixture(autouse=True)
def _no_fit_from_another_test():
    """Each test starts without memoised fits, so a refit inside it is a real fit unless the test wants a reuse."""
    from price_bench_classic.fitted import clear_fitted

    clear_fitted()
    yield
    clear_fitted()
