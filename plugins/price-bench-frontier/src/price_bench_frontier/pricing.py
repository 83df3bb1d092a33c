"""Token usage to US dollars, from a maintained price list.

Prices come from `genai-prices <https://pypi.org/project/genai-prices/>`_
(pydantic's maintained list of LLM API prices; its data is bundled in the
package, so no network is used at run time; upgrading the package updates
the prices), looked up for the OpenAI provider: it knows dated snapshots
(``gpt-4o-mini-2024-07-18``) and fine-tuned names
(``ft:gpt-4o-mini-2024-07-18:org::id``). The project's own table is only an
override: ``PriceTable({"model": (input, output)})`` in USD per one million
tokens, looked up first (exact name; ``ft:<base>:<org>::<id>`` as
``ft:<base>``; without a ``-YYYY-MM-DD`` suffix; without an ``org/`` prefix).

A model found in neither has an **unknown** cost (``Cost.known`` False,
``Cost.usd`` 0 only for budget arithmetic): predictors report it as
``cost_usd=None`` and records and leaderboards show "unknown", never $0.

Fine-tuning *training* prices are not in genai-prices (it lists inference
prices only): :data:`TRAINING_PRICE_PER_1M` is the one table of those, used
by the ``openai-ft`` plugin's estimate, with an override there too.
"""

from __future__ import annotations

import functools
import importlib.metadata
import logging
import re
from dataclasses import dataclass
from typing import Mapping

log = logging.getLogger(__name__)

PROVIDER = "openai"

#: USD per 1M training tokens for OpenAI supervised fine-tuning (not in genai-prices).
TRAINING_PRICE_PER_1M: dict[str, float] = {
    "gpt-4o-mini-2024-07-18": 3.00,
    "gpt-4o-2024-08-06": 25.00,
    "gpt-4.1-2025-04-14": 25.00,
    "gpt-4.1-mini-2025-04-14": 5.00,
    "gpt-4.1-nano-2025-04-14": 1.50,
    "gpt-3.5-turbo-0125": 8.00,
}

_SNAPSHOT = re.compile(r"-\d{4}-\d{2}-\d{2}$")


@dataclass(frozen=True)
class Cost:
    """The price of one call: ``usd``, whether the model's price is known, and where it came from."""

    usd: float
    known: bool
    source: str | None = None


def price_source() -> str:
    """``"genai-prices X.Y.Z"``, or a note that the package is missing."""
    try:
        return f"genai-prices {importlib.metadata.version('genai-prices')}"
    except importlib.metadata.PackageNotFoundError:
        return "genai-prices not installed"


#: OpenAI's Batch API discount, applied to override prices (genai-prices has batch prices of its own).
BATCH_DISCOUNT = 0.5


@functools.lru_cache(maxsize=256)
def maintained_price(model: str, batch: bool = False) -> tuple[float, float] | None:
    """``(input, output)`` USD per 1M tokens for ``model`` from genai-prices (at the Batch API price when ``batch``), or None."""
    try:
        from genai_prices import Usage, calc_price
    except ImportError:
        log.warning("genai-prices is not installed: token costs are unknown unless given with prices=...")
        return None
    for candidate in dict.fromkeys([model, model.rsplit("/", 1)[-1]]):  # also without an "org/" prefix
        try:
            calc = calc_price(
                Usage(input_tokens=1_000_000, output_tokens=1_000_000),
                candidate,
                provider_id=PROVIDER,
                price_context={"processing": "batch"} if batch else None,
            )
        except LookupError:
            continue
        return float(calc.input_price), float(calc.output_price)
    return None


class PriceTable:
    """Per-model token prices: ``overrides`` first, then genai-prices."""

    def __init__(self, overrides: Mapping[str, tuple[float, float] | list[float]] | None = None, *, maintained: bool = True) -> None:
        self.prices: dict[str, tuple[float, float]] = {}
        self.maintained = maintained
        for model, pair in (overrides or {}).items():
            self.prices[model] = _validate_pair(model, pair)

    def lookup(self, model: str) -> tuple[float, float] | None:
        """``(input, output)`` USD per 1M tokens for ``model``, or None when unknown."""
        found = self._lookup(model)
        return found[0] if found else None

    def source(self, model: str) -> str | None:
        """Where ``model``'s price comes from ("override" or "genai-prices X.Y.Z"), None when unknown."""
        found = self._lookup(model)
        return found[1] if found else None

    def _lookup(self, model: str, batch: bool = False) -> tuple[tuple[float, float], str] | None:
        for candidate in _candidates(model):
            if candidate in self.prices:
                price_in, price_out = self.prices[candidate]
                if batch:
                    return (price_in * BATCH_DISCOUNT, price_out * BATCH_DISCOUNT), f"override, batch at {BATCH_DISCOUNT:g}x"
                return (price_in, price_out), "override"
        if self.maintained:
            pair = maintained_price(model, batch)
            if pair is not None:
                return pair, price_source() + (" (batch)" if batch else "")
        return None

    def cost(self, model: str, tokens_in: int, tokens_out: int, *, batch: bool = False) -> Cost:
        """What ``tokens_in`` prompt and ``tokens_out`` completion tokens cost on ``model`` (``batch``: at the Batch API price)."""
        found = self._lookup(model, batch)
        if found is None:
            return Cost(0.0, False)
        (price_in, price_out), source = found
        return Cost((tokens_in * price_in + tokens_out * price_out) / 1_000_000, True, source)


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
