"""What a fine-tuning job will cost, estimated before anything is spent.

OpenAI bills supervised fine-tuning per training token: the tokens of the
training file (each example capped at the model's per-example limit) times
the number of epochs, at the model's training price per million tokens.
Validation tokens are not billed for training.

Training prices come from the frontier plugin's price module
(:mod:`price_bench_frontier.pricing`, the one place for prices; the
maintained list it uses, genai-prices, has inference prices only, so the
training prices are its :data:`~price_bench_frontier.pricing.TRAINING_PRICE_PER_1M`);
they change, so override them with ``-o openai-ft.training_price_per_1m=X``.
A model missing from the table has no default: the estimate refuses to guess.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Sequence

from price_bench_frontier.pricing import TRAINING_PRICE_PER_1M  # noqa: F401  (re-exported: USD per 1M training tokens)

#: Most tokens one training example may have (longer ones are truncated by OpenAI).
EXAMPLE_TOKEN_LIMIT: dict[str, int] = {
    "gpt-4o-mini-2024-07-18": 65_536,
    "gpt-4o-2024-08-06": 65_536,
    "gpt-4.1-2025-04-14": 65_536,
    "gpt-4.1-mini-2025-04-14": 65_536,
    "gpt-4.1-nano-2025-04-14": 65_536,
    "gpt-3.5-turbo-0125": 16_385,
}
DEFAULT_EXAMPLE_TOKEN_LIMIT = 16_385  # the smallest limit in the table: safe for unknown models

class UnknownPriceError(ValueError):
    """The model has no training price in the table and none was configured."""


class SpendNotConfirmedError(RuntimeError):
    """Fine-tuning would spend money and the user has not confirmed it."""


class SpendCapError(RuntimeError):
    """The estimated training cost is above the configured cap."""


def example_token_limit(model: str) -> int:
    """Per-example token limit for ``model`` (conservative default when unknown)."""
    return EXAMPLE_TOKEN_LIMIT.get(model, DEFAULT_EXAMPLE_TOKEN_LIMIT)


def training_price(model: str, override: float | None = None) -> float:
    """USD per 1M training tokens: ``override`` when given, else the table's price."""
    if override is not None:
        return float(override)
    try:
        return TRAINING_PRICE_PER_1M[model]
    except KeyError:
        raise UnknownPriceError(
            f"no training price known for {model!r}; set -o openai-ft.training_price_per_1m=<USD per 1M tokens>"
        ) from None


@dataclass(frozen=True)
class CostEstimate:
    """The expected bill of one fine-tuning job."""

    model: str
    examples: int
    tokens_per_epoch: int
    epochs: int
    price_per_1m: float
    token_method: str

    @property
    def billed_tokens(self) -> int:
        """Training tokens times epochs."""
        return self.tokens_per_epoch * self.epochs

    @property
    def usd(self) -> float:
        """Estimated cost in USD."""
        return self.billed_tokens * self.price_per_1m / 1_000_000

    @property
    def exact_tokens(self) -> bool:
        return self.token_method.startswith("tiktoken")

    def summary(self) -> str:
        """One line: the cost first, then how it was computed."""
        how = f"counted with {self.token_method}" if self.exact_tokens else "estimated at 4 chars each, tiktoken encoding unavailable offline"
        epochs = f"{self.epochs} epoch{'s' if self.epochs != 1 else ''}"
        return (
            f"about ${self.usd:.2f} to fine-tune {self.model}: {self.examples} examples, "
            f"{self.tokens_per_epoch:,} tokens x {epochs} at ${self.price_per_1m:.2f}/1M (tokens {how})"
        )

    def to_dict(self) -> dict:
        return {**asdict(self), "billed_tokens": self.billed_tokens, "usd": round(self.usd, 6)}


def estimate_cost(
    model: str, example_tokens: Sequence[int], epochs: int, price_per_1m: float, token_method: str
) -> CostEstimate:
    """Estimate from per-example token counts (each capped at the model's limit, as OpenAI bills)."""
    cap = example_token_limit(model)
    return CostEstimate(
        model=model,
        examples=len(example_tokens),
        tokens_per_epoch=sum(min(n, cap) for n in example_tokens),
        epochs=epochs,
        price_per_1m=price_per_1m,
        token_method=token_method,
    )


def check_spend(estimate: CostEstimate, confirmed: bool, cap_usd: float | None) -> None:
    """Raise unless spending ``estimate`` is confirmed and within ``cap_usd``."""
    if cap_usd is not None and estimate.usd > cap_usd:
        raise SpendCapError(f"{estimate.summary()}; above max_training_usd=${cap_usd:.2f}, nothing spent")
    if not confirmed:
        raise SpendNotConfirmedError(
            f"{estimate.summary()}; nothing spent: rerun with -o openai-ft.confirm=true"
        )
