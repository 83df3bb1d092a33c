"""Batched decoding of prices: greedy, or expected price over the top-k numeric next tokens.

Prompts are left-padded so every row's last real token sits at the end.
Expected-price decoding (the reference's trick for Llama 3.1, whose
tokenizer writes up to three digits as one token) takes the ``top_k`` most
likely next tokens, keeps those that start a number, completes each
greedily (so tokenizers with one token per digit, like SmolLM2's, still
give whole prices) and averages the numbers weighted by the first token's
probability, renormalised over the numeric candidates.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Sequence

from price_bench import parse_price

from price_bench_qlora.prompts import left_pad

_LEADING_NUMBER = re.compile(r"^\s*\$?\s*(\d[\d,]*(?:\.\d+)?)")
_DIGIT_START = re.compile(r"^\s*\d")


@dataclass
class Answer:
    """One decoded answer: the model text, its price and token counts."""

    text: str
    price: float | None
    tokens_in: int
    tokens_out: int


def parse_answer(text: str) -> float | None:
    """The number that starts the continuation of "Price is $", else :func:`parse_price` on the whole text."""
    match = _LEADING_NUMBER.match(text)
    if match:
        return float(match.group(1).replace(",", ""))
    return parse_price(text)


def _generation_config(tokenizer: Any, max_new_tokens: int, **extra: Any) -> Any:
    from transformers import GenerationConfig

    return GenerationConfig(
        max_new_tokens=max_new_tokens,
        do_sample=False,
        num_beams=1,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        **extra,
    )


def _strip_eos(tokens: Sequence[int], eos_id: int | None) -> list[int]:
    out = []
    for token in tokens:
        if eos_id is not None and token == eos_id:
            break
        out.append(int(token))
    return out


def greedy_tokens(model: Any, tokenizer: Any, prompts: Sequence[Sequence[int]], max_new_tokens: int, batch_size: int) -> list[list[int]]:
    """Greedy continuations (token ids, cut at EOS) of left-padded prompt batches."""
    import torch

    config = _generation_config(tokenizer, max_new_tokens)
    out: list[list[int]] = []
    for start in range(0, len(prompts), batch_size):
        chunk = prompts[start : start + batch_size]
        ids, mask = left_pad(chunk, tokenizer.pad_token_id)
        ids, mask = ids.to(model.device), mask.to(model.device)
        with torch.inference_mode():
            generated = model.generate(input_ids=ids, attention_mask=mask, generation_config=config)
        for row in generated[:, ids.shape[1] :].tolist():
            out.append(_strip_eos(row, tokenizer.eos_token_id))
    return out


def greedy_answers(model: Any, tokenizer: Any, prompts: Sequence[Sequence[int]], max_new_tokens: int, batch_size: int) -> list[Answer]:
    """Greedy decoding then parsing, one :class:`Answer` per prompt."""
    answers = []
    for prompt, tokens in zip(prompts, greedy_tokens(model, tokenizer, prompts, max_new_tokens, batch_size)):
        text = tokenizer.decode(tokens, skip_special_tokens=True)
        answers.append(Answer(text=text, price=parse_answer(text), tokens_in=len(prompt), tokens_out=len(tokens)))
    return answers


def next_token_top_k(model: Any, tokenizer: Any, prompts: Sequence[Sequence[int]], top_k: int, batch_size: int) -> list[list[tuple[int, float]]]:
    """The ``top_k`` most likely next tokens with their probabilities, per prompt."""
    import torch

    config = _generation_config(tokenizer, 1, output_logits=True, return_dict_in_generate=True)
    out: list[list[tuple[int, float]]] = []
    for start in range(0, len(prompts), batch_size):
        ids, mask = left_pad(prompts[start : start + batch_size], tokenizer.pad_token_id)
        ids, mask = ids.to(model.device), mask.to(model.device)
        with torch.inference_mode():
            result = model.generate(input_ids=ids, attention_mask=mask, generation_config=config)
        probs = torch.softmax(result.logits[0].float(), dim=-1)
        values, indices = probs.topk(top_k, dim=-1)
        out.extend(list(zip(row_i, row_p)) for row_i, row_p in zip(indices.tolist(), values.tolist()))
    return out


def expected_answers(
    model: Any, tokenizer: Any, prompts: Sequence[Sequence[int]], top_k: int, max_new_tokens: int, batch_size: int
) -> list[Answer]:
    """Probability-weighted average price over the top-k numeric next tokens, each completed greedily.

    A prompt whose top-k holds no number falls back to greedy decoding.
    """
    candidates = next_token_top_k(model, tokenizer, prompts, top_k, batch_size)
    numeric: list[tuple[int, int, float]] = []  # (prompt index, token, probability)
    for index, row in enumerate(candidates):
        for token, prob in row:
            if _DIGIT_START.match(tokenizer.decode([token], skip_special_tokens=True)):
                numeric.append((index, token, prob))
    extended = [list(prompts[index]) + [token] for index, token, _ in numeric]
    tails = greedy_tokens(model, tokenizer, extended, max_new_tokens - 1, batch_size) if max_new_tokens > 1 and extended else [[] for _ in extended]
    weighted: dict[int, list[tuple[float, float, str]]] = {}
    for (index, token, prob), tail in zip(numeric, tails):
        text = tokenizer.decode([token] + tail, skip_special_tokens=True)
        value = _leading_number(text)
        if value is not None:
            weighted.setdefault(index, []).append((prob, value, text))
    answers: list[Answer | None] = [None] * len(prompts)
    fallback = [i for i in range(len(prompts)) if i not in weighted]
    for i, answer in zip(fallback, greedy_answers(model, tokenizer, [prompts[i] for i in fallback], max_new_tokens, batch_size)):
        answers[i] = answer
    for index, options in weighted.items():
        total = sum(prob for prob, _, _ in options)
        price = sum(prob * value for prob, value, _ in options) / total
        detail = "; ".join(f"{text.strip()} p={prob:.3f}" for prob, _, text in options)
        answers[index] = Answer(
            text=f"{price:.2f} (expected over: {detail})",
            price=round(price, 2),
            tokens_in=len(prompts[index]),
            tokens_out=max(1 + len(tail) for (i, _, _), tail in zip(numeric, tails) if i == index),
        )
    missing = [i for i, answer in enumerate(answers) if answer is None]
    if missing:
        raise RuntimeError(f"expected-price decoding produced no answer for prompts {missing}")
    return answers  # type: ignore[return-value]


def _leading_number(text: str) -> float | None:
    match = _LEADING_NUMBER.match(text)
    return float(match.group(1).replace(",", "")) if match else None
