"""Counting the tokens of chat fine-tuning examples.

Exact counts come from ``tiktoken`` when its encoding files are available
(tiktoken downloads them on first use and caches them, see
``TIKTOKEN_CACHE_DIR``). Offline, with no cached copy, the count is a
character-based *estimate* (4 characters per token, rounded up per message),
and every figure built on it says so through :attr:`TokenCounter.method`.

The per-message overhead follows OpenAI's cookbook ``num_tokens_from_messages``:
3 tokens per message, 1 more for a ``name``, 3 to prime the reply.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

TOKENS_PER_MESSAGE = 3
TOKENS_PER_NAME = 1
REPLY_PRIMING = 3
CHARS_PER_TOKEN = 4
ESTIMATE_METHOD = "estimate:4-chars-per-token"


@dataclass(frozen=True)
class TokenCounter:
    """Counts tokens of text and of chat examples; ``method`` says how (exact or estimate)."""

    method: str
    encode_len: Callable[[str], int]

    @property
    def exact(self) -> bool:
        """True when counts come from the model's real tokenizer."""
        return self.method.startswith("tiktoken")

    def count_text(self, text: str) -> int:
        """Tokens in ``text``."""
        return self.encode_len(text)

    def count_messages(self, messages: Sequence[Mapping[str, Any]]) -> int:
        """Tokens in one chat example, with OpenAI's per-message overhead."""
        total = REPLY_PRIMING
        for message in messages:
            total += TOKENS_PER_MESSAGE
            for key, value in message.items():
                if isinstance(value, str) and key in ("role", "content", "name"):
                    total += self.encode_len(value)
                if key == "name":
                    total += TOKENS_PER_NAME
        return total


def _estimate_len(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def estimate_counter() -> TokenCounter:
    """The offline character-based estimate."""
    return TokenCounter(ESTIMATE_METHOD, _estimate_len)


def encoding_name(model: str) -> str:
    """The tiktoken encoding of an OpenAI model (fine-tuned names included)."""
    base = model.split(":")[1] if model.startswith("ft:") else model
    if base.startswith(("gpt-3.5", "gpt-4-", "gpt-4")) and not base.startswith(("gpt-4o", "gpt-4.1", "gpt-4.5")):
        return "cl100k_base"
    return "o200k_base"


_cache: dict[str, TokenCounter] = {}


def token_counter(model: str) -> TokenCounter:
    """A counter for ``model``: tiktoken when usable offline, else the labelled estimate.

    The outcome is memoised per encoding, so a failed download is tried once per process.
    """
    name = encoding_name(model)
    if name not in _cache:
        _cache[name] = _tiktoken_counter(name) or estimate_counter()
    return _cache[name]


def _tiktoken_counter(name: str) -> TokenCounter | None:
    try:
        import tiktoken
    except ImportError:
        return None
    try:
        encoding = tiktoken.get_encoding(name)
    except Exception:  # no network and no cached file: requests' ConnectionError, OSError, ...
        return None
    return TokenCounter(f"tiktoken:{name}", lambda text: len(encoding.encode(text, disallowed_special=())))


def reset_cache() -> None:
    """Forget memoised counters (tests)."""
    _cache.clear()
