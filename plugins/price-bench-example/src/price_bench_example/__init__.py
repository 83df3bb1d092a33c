"""price-bench-example: the smallest useful price-bench plugin.

One predictor, ``keyword-heuristic``, registered through the ``price_bench``
entry point with the ``register_predictors`` hook. Only the standard library
is used, so importing this module is instant (``price-bench list`` stays fast).
"""

from __future__ import annotations

import json
import math
import re
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Sequence

from pydantic import Field

from price_bench import Item, Prediction, Predictor, PredictorConfig, hookimpl

__version__ = "0.1.0"

_WORD = re.compile(r"[a-z][a-z0-9\-]{2,}")


class KeywordConfig(PredictorConfig):
    """Settings of :class:`KeywordHeuristic` (override with ``-o keyword-heuristic.KEY=VALUE``)."""

    min_count: int = Field(5, ge=1, description="A word must appear in this many train texts to count.")
    max_words: int = Field(40, ge=1, description="Only the first N distinct words of a text are used.")


def words(text: str, limit: int) -> list[str]:
    """The first ``limit`` distinct lowercase words of ``text``."""
    return list(dict.fromkeys(_WORD.findall(text.lower())))[:limit]


class KeywordHeuristic(Predictor):
    """Weighted geometric mean of the median train price of the words in the text.

    A word's weight is the inverse of the variance of its train log prices.
    """

    id = "keyword-heuristic"
    description = "Median train price of each known word, averaged in log space weighted by price spread (example plugin)."
    version = "1"
    Config = KeywordConfig
    batch_size = 1024

    def fit(self, train: Sequence[Item], validation: Sequence[Item], workdir: Path) -> None:
        logs: dict[str, list[float]] = defaultdict(list)
        for item in train:
            for word in words(item.text, self.config.max_words):
                logs[word].append(math.log1p(item.price))
        # (median log price, weight): words with a tight price spread ("laptop") outweigh
        # words found at every price ("with").
        self.medians = {
            w: (statistics.median(v), 1.0 / (statistics.pvariance(v) + 0.05))
            for w, v in logs.items()
            if len(v) >= self.config.min_count
        }
        self.default = math.log1p(statistics.median(item.price for item in train))
        (workdir / "words.json").write_text(json.dumps({"default": self.default, "medians": self.medians}))

    def load(self, workdir: Path) -> bool:
        path = workdir / "words.json"
        if not path.exists():
            return False
        data = json.loads(path.read_text())
        self.default, self.medians = data["default"], data["medians"]
        return True

    def predict(self, items: Sequence[Item]) -> list[Prediction]:
        out = []
        for item in items:
            known = [self.medians[w] for w in words(item.text, self.config.max_words) if w in self.medians]
            if known:
                log_guess = sum(m * wt for m, wt in known) / sum(wt for _, wt in known)
            else:
                log_guess = self.default
            guess = round(math.expm1(log_guess), 2)
            out.append(Prediction(raw=guess, price=guess))
        return out


@hookimpl
def register_predictors(register):
    """Register this plugin's predictors."""
    register(KeywordHeuristic)
