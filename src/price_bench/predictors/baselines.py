"""The seed's trivial baselines, registered through the ``price_bench`` entry point.

``random`` (seeded uniform over the train price range), ``constant-mean`` and
``constant-median``. They are the floor every real predictor must beat.
"""

from __future__ import annotations

import json
import random as _random
import statistics
from collections.abc import Callable, Sequence
from pathlib import Path

from price_bench.items import Item
from price_bench.plugins.hookspecs import hookimpl
from price_bench.predictors.contract import Prediction, Predictor
from price_bench.predictors.registry import PredictorSpec


class _ConstantPredictor(Predictor):
    """Predicts one number learned from the train prices."""

    batch_size = 4096
    default_batch_timeout_s = 60.0  # arithmetic on 4,096 items: a minute means a hang

    def _statistic(self, prices: list[float]) -> float:
        raise NotImplementedError

    def fit(self, train: Sequence[Item], validation: Sequence[Item], workdir: Path) -> None:
        self.value = float(self._statistic([item.price for item in train]))
        (workdir / "constant.json").write_text(json.dumps({"value": self.value}))

    def load(self, workdir: Path) -> bool:
        path = workdir / "constant.json"
        if not path.exists():
            return False
        self.value = float(json.loads(path.read_text())["value"])
        return True

    def predict(self, items: Sequence[Item]) -> list[Prediction]:
        return [Prediction(raw=self.value, price=self.value) for _ in items]


class ConstantMean(_ConstantPredictor):
    id = "constant-mean"
    description = "Always guesses the mean train price."

    def _statistic(self, prices: list[float]) -> float:
        return statistics.fmean(prices)


class ConstantMedian(_ConstantPredictor):
    id = "constant-median"
    description = "Always guesses the median train price."

    def _statistic(self, prices: list[float]) -> float:
        return statistics.median(prices)


class RandomUniform(Predictor):
    """Seeded uniform guesses over the train price range, stable per item id."""

    id = "random"
    description = "Seeded uniform random guess between the cheapest and dearest train price."
    batch_size = 4096
    default_batch_timeout_s = 60.0  # arithmetic on 4,096 items: a minute means a hang

    def fit(self, train: Sequence[Item], validation: Sequence[Item], workdir: Path) -> None:
        prices = [item.price for item in train]
        self.low, self.high = min(prices), max(prices)
        (workdir / "range.json").write_text(json.dumps({"low": self.low, "high": self.high}))

    def load(self, workdir: Path) -> bool:
        path = workdir / "range.json"
        if not path.exists():
            return False
        data = json.loads(path.read_text())
        self.low, self.high = data["low"], data["high"]
        return True

    def predict(self, items: Sequence[Item]) -> list[Prediction]:
        out = []
        for item in items:
            # Seeded by (seed, item id) so the guess does not depend on batch order or resumes.
            rng = _random.Random(f"{self.seed}:{item.id}")
            guess = round(rng.uniform(self.low, self.high), 2)
            out.append(Prediction(raw=guess, price=guess))
        return out


@hookimpl
def register_predictors(register: Callable[[type[Predictor] | PredictorSpec], None]) -> None:
    register(RandomUniform)
    register(ConstantMean)
    register(ConstantMedian)
