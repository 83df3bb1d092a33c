"""The reference prompt builders."""

from __future__ import annotations

import pytest

from price_bench import parse_price
from price_bench_frontier.prompts import (
    NO_PREFILL_INSTRUCTION,
    PREFILL,
    QUESTION,
    SYSTEM_PROMPT,
    Example,
    answer_text,
    build_messages,
    truncate,
)


def test_zero_shot_reference_prompt():
    messages = build_messages("A ceramic mug")
    assert messages == [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": "How much does this cost?\n\nA ceramic mug"},
        {"role": "assistant", "content": "Price is $"},
    ]


def test_without_prefill_the_instruction_moves_into_the_prompt():
    messages = build_messages("A ceramic mug", prefill=False)
    assert messages[-1]["role"] == "user"
    assert messages[-1]["content"].endswith(NO_PREFILL_INSTRUCTION)
    assert "Price is $" in NO_PREFILL_INSTRUCTION


def test_examples_as_turns():
    messages = build_messages("A mug", [Example("A kettle", 30), Example("A lamp", 12.5)])
    roles = [m["role"] for m in messages]
    assert roles == ["system", "user", "assistant", "user", "assistant", "user", "assistant"]
    assert messages[2]["content"] == "Price is $30.00"
    assert messages[4]["content"] == "Price is $12.50"
    assert messages[5]["content"] == QUESTION + "A mug"


def test_examples_as_context():
    messages = build_messages("A mug", [Example("A kettle", 30)], style="context")
    assert len(messages) == 3
    user = messages[1]["content"]
    assert "A kettle\nPrice is $30.00" in user
    assert user.endswith(QUESTION + "A mug")


def test_unknown_style():
    with pytest.raises(ValueError, match="unknown example style"):
        build_messages("x", style="bogus")


def test_truncate_on_word_boundary():
    text = "word " * 100
    cut = truncate(text, 52)
    assert len(cut) <= 56 and cut.endswith(" ...")
    assert truncate("short", 50) == "short"
    assert truncate("  padded  ", None) == "padded"


@pytest.mark.parametrize(("completion", "price"), [("45.99", 45.99), ("Price is $12", 12.0), ("I don't know", None)])
def test_answer_text_with_prefill(completion, price):
    assert answer_text(completion).startswith(PREFILL)
    assert parse_price(answer_text(completion)) == price


def test_answer_text_without_prefill():
    assert answer_text("Price is $7", prefill=False) == "Price is $7"
