"""The reference price prompt, as chat messages.

* system: :data:`SYSTEM_PROMPT` (reply only with the price);
* user: ``"How much does this cost?\\n\\n"`` + the item text;
* assistant prefill: ``"Price is $"`` (:data:`PREFILL`), so the model only
  has to continue with the number.

With ``answer_format="json"`` (structured answers, for servers that take
``response_format`` with a JSON schema) there is no prefill: the user prompt
asks for ``{"price": X}`` (:data:`JSON_INSTRUCTION`), example answers are
written the same way, and :func:`parse_json_price` reads the answer.

Chat APIs that cannot continue a prefilled assistant turn get
``prefill=False``: the user prompt then asks for an answer that starts with
"Price is $", and :func:`answer_text` parses whatever comes back.
Example items (few-shot or retrieved) come either as earlier user/assistant
turns (``style="turns"``) or as a context block inside the user prompt
(``style="context"``).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Literal, Sequence

SYSTEM_PROMPT = "You estimate prices of items. Reply only with the price, no explanation."
QUESTION = "How much does this cost?\n\n"
PREFILL = "Price is $"
NO_PREFILL_INSTRUCTION = '\n\nReply in the form "Price is $X.XX" and nothing else.'
JSON_INSTRUCTION = '\n\nReply with JSON of the form {"price": X.XX} and nothing else.'
#: The JSON schema sent as ``response_format`` for structured answers.
PRICE_SCHEMA = {
    "type": "object",
    "properties": {"price": {"type": "number"}},
    "required": ["price"],
    "additionalProperties": False,
}
CONTEXT_HEADER = "To provide some context, here are some other items that might be similar to the item you need to estimate.\n\n"

Message = dict[str, str]


@dataclass(frozen=True)
class Example:
    """An item with a known price shown to the model."""

    text: str
    price: float


def truncate(text: str, max_chars: int | None) -> str:
    """``text`` cut to ``max_chars`` characters on a word boundary (None: unchanged)."""
    text = text.strip()
    if max_chars is None or len(text) <= max_chars:
        return text
    cut = text[:max_chars]
    space = cut.rfind(" ")
    return (cut[:space] if space > max_chars // 2 else cut).rstrip() + " ..."


def format_price(price: float) -> str:
    """``45.0`` -> ``"45.00"``."""
    return f"{price:.2f}"


def build_messages(
    text: str,
    examples: Sequence[Example] = (),
    *,
    prefill: bool = True,
    style: Literal["turns", "context"] = "turns",
    max_chars: int | None = None,
    system_prompt: str = SYSTEM_PROMPT,
    answer_format: Literal["text", "json"] = "text",
) -> list[Message]:
    """The chat messages that ask for the price of the item described by ``text``.

    ``answer_format="json"`` asks for ``{"price": X}`` (and ignores ``prefill``).
    """
    if answer_format not in ("text", "json"):
        raise ValueError(f"unknown answer format {answer_format!r} (expected 'text' or 'json')")
    json_answers = answer_format == "json"
    prefill = prefill and not json_answers
    suffix = JSON_INSTRUCTION if json_answers else ("" if prefill else NO_PREFILL_INSTRUCTION)

    def shown(price: float) -> str:
        return json.dumps({"price": round(price, 2)}) if json_answers else PREFILL + format_price(price)

    messages: list[Message] = [{"role": "system", "content": system_prompt}]
    question = QUESTION + truncate(text, max_chars)
    if style == "turns":
        for example in examples:
            messages.append({"role": "user", "content": QUESTION + truncate(example.text, max_chars) + suffix})
            messages.append({"role": "assistant", "content": shown(example.price)})
    elif style == "context":
        if examples:
            block = "".join(
                f"{truncate(example.text, max_chars)}\n{shown(example.price)}\n\n" for example in examples
            )
            question = CONTEXT_HEADER + block + "And now the question for you:\n\n" + question
    else:
        raise ValueError(f"unknown example style {style!r} (expected 'turns' or 'context')")
    messages.append({"role": "user", "content": question + suffix})
    if prefill:
        messages.append({"role": "assistant", "content": PREFILL})
    return messages


def answer_text(completion: str, *, prefill: bool = True) -> str:
    """The full answer: the prefill plus the model's continuation.

    A model that repeats the prefill ("Price is $45") still parses, since
    "Price is $Price is $45" contains "$45".
    """
    return (PREFILL + completion) if prefill else completion


def parse_json_price(answer: str | None) -> float | None:
    """The price in a structured answer ``{"price": X}``, or None when it is not one.

    Only a JSON object whose ``price`` is a finite, non-negative number counts
    (a number written as a string such as ``"12.50"`` too).
    """
    if not answer:
        return None
    try:
        value = json.loads(answer)
    except (json.JSONDecodeError, TypeError, ValueError):
        return None
    price = value.get("price") if isinstance(value, dict) else None
    if isinstance(price, str):
        try:
            price = float(price.replace(",", "").lstrip("$"))
        except ValueError:
            return None
    if isinstance(price, bool) or not isinstance(price, (int, float)) or not math.isfinite(price) or price < 0:
        return None
    return float(price)
