"""Token usage to US dollars, through a configurable price table.

Prices are USD per one million tokens, ``(input, output)``. Lookup order for
a model name: exact match; a fine-tuned name ``ft:<base>:<org>::<id>`` as
``ft:<base>``; the name without a ``-YYYY-MM-DD`` snapshot suffix; the name
without an ``org/`` prefix. An unknown model costs 0 and is flagged
(``Cost.known`` is False), never guessed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Mapping

#: USD per 1M tokens (input, output): OpenAI list prices for standard requests.
DEFAULT_PRICES: dict[str, tuple[float, float]] = {
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4o": (2.50, 10.00),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1-nano": (0.10, 0.40),
    "gpt-5": (1.25, 10.00),
    "gpt-5.1": (1.25, 10.00),
    "gpt-5-mini": (0.25, 2.00),
    "gpt-5-nano": (0.05, 0.40),
    "o4-mini": (1.10, 4.40),
    "o3": (2.00, 8.00),
    "gpt-3.5-turbo": (0.50, 1.50),
    # Inference with fine-tuned models (``ft:<base>:...``).
    "ft:gpt-4o-mini-2024-07-18": (0.30, 1.20),
    "ft:gpt-4o-2024-08-06": (3.75, 15.00),
    "ft:gpt-4.1-mini-2025-04-14": (0.80, 3.20),
    "ft:gpt-4.1-nano-2025-04-14": (0.20, 0.80),
}

_SNAPSHOT = re.compile(r"-\d{4}-\d{2}-\d{2}$")


@dataclass(frozen=True)
class Cost:
    """The price of one call: ``usd`` and whether the model was in the table."""

    usd: float
    known: bool


class PriceTable:
    """Per-model token prices; ``overrides`` replace or extend :data:`DEFAULT_PRICES`."""

    def __init__(self, overrides: Mapping[str, tuple[float, float] | list[float]] | None = None) -> None:
        self.prices: dict[str, tuple[float, float]] = dict(DEFAULT_PRICES)
        for model, pair in (overrides or {}).items():
            self.prices[model] = _validate_pair(model, pair)

    def lookup(self, model: str) -> tuple[float, float] | None:
        """``(input, output)`` USD per 1M tokens for ``model``, or None when unknown."""
        for candidate in _candidates(model):
            if candidate in self.prices:
                return self.prices[candidate]
        return None

    def cost(self, model: str, tokens_in: int, tokens_out: int) -> Cost:
        """What ``tokens_in`` prompt and ``tokens_out`` completion tokens cost on ``model``."""
        pair = self.lookup(model)
        if pair is None:
            return Cost(0.0, False)
        return Cost((tokens_in * pair[0] + tokens_out * pair[1]) / 1_000_000, True)


def _validate_pair(model: str, pair: tuple[float, float] | list[float]) -> tuple[float, float]:
    try:
        price_in, price_out = (float(x) for x in pair)
    except (TypeError, ValueError):
        raise ValueError(f"price table entry for {model!r} must be [input, output] USD per 1M tokens, got {pair!r}") from None
    if price_in < 0 or price_out < 0:
        raise ValueError(f"price table entry for {model!r} has a negative price: {pair!r}")
    return price_in, price_out


def _candidates(model: str) -> list[str]:
    names = [model]
    if model.startswith("ft:"):
        names.append(":".join(model.split(":")[:2]))
    names.append(_SNAPSHOT.sub("", model))
    if "/" in model:
        names.append(model.rsplit("/", 1)[1])
        names.append(_SNAPSHOT.sub("", names[-1]))
    return names
