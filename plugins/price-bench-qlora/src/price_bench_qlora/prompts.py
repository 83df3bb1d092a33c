"""The reference prompt, its tokenization, and training examples with masked labels.

Training and prediction tokenize the prompt the same way (the prompt alone,
ending in ``"Price is $"``), so the model is trained on exactly the token
sequence it later continues. The answer ``"{dollars}.00"`` plus the EOS token
are the only tokens with a loss; the prompt's labels are -100.
"""

from __future__ import annotations

from typing import Any, Sequence

QUESTION = "How much does this cost to the nearest dollar?"
ANSWER_PREFIX = "Price is $"
IGNORE_INDEX = -100
ANSWER_BUDGET = 10


def prompt_text(text: str) -> str:
    """The reference prompt for one item text."""
    return f"{QUESTION}\n\n{text}\n\n{ANSWER_PREFIX}"


def answer_text(price: float) -> str:
    """The training answer: the price rounded to the dollar, e.g. ``"45.00"``."""
    return f"{round(price)}.00"


class PromptEncoder:
    """Tokenizes prompts (cutting long item texts) and builds training examples.

    ``max_seq_length`` bounds prompt plus answer; ``answer_budget`` tokens are
    kept free after the prompt for the answer (enough for "99999.00" plus EOS
    with one token per digit). It is fixed, not tied to ``max_new_tokens``,
    so that the decoding settings never change how training prompts are cut.
    """

    def __init__(self, tokenizer: Any, max_seq_length: int, answer_budget: int = ANSWER_BUDGET) -> None:
        self.tokenizer = tokenizer
        self.max_prompt_tokens = max(16, max_seq_length - answer_budget)

    def prompt_ids(self, text: str) -> list[int]:
        """Token ids of the prompt for ``text``, with the item text cut to fit."""
        ids = self._encode(prompt_text(text))
        if len(ids) <= self.max_prompt_tokens:
            return ids
        text_ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        keep = max(0, len(text_ids) - (len(ids) - self.max_prompt_tokens))
        while True:
            cut = self.tokenizer.decode(text_ids[:keep], skip_special_tokens=True).rstrip()
            ids = self._encode(prompt_text(cut))
            if len(ids) <= self.max_prompt_tokens or keep == 0:
                return ids
            keep = max(0, keep - (len(ids) - self.max_prompt_tokens))

    def answer_ids(self, price: float) -> list[int]:
        """Token ids of the answer for ``price``, ending with EOS when the tokenizer has one."""
        ids = self.tokenizer(answer_text(price), add_special_tokens=False)["input_ids"]
        eos = self.tokenizer.eos_token_id
        return ids + ([eos] if eos is not None else [])

    def train_example(self, text: str, price: float) -> dict[str, list[int]]:
        """``input_ids``/``labels``/``attention_mask`` with the loss on the answer only."""
        prompt, answer = self.prompt_ids(text), self.answer_ids(price)
        return {
            "input_ids": prompt + answer,
            "labels": [IGNORE_INDEX] * len(prompt) + answer,
            "attention_mask": [1] * (len(prompt) + len(answer)),
        }

    def _encode(self, text: str) -> list[int]:
        return self.tokenizer(text)["input_ids"]


class PadCollator:
    """Right-pads training examples (labels with -100) into torch tensors."""

    def __init__(self, pad_token_id: int) -> None:
        self.pad_token_id = pad_token_id

    def __call__(self, examples: Sequence[dict[str, list[int]]]) -> dict[str, Any]:
        import torch

        width = max(len(example["input_ids"]) for example in examples)
        batch: dict[str, list[list[int]]] = {"input_ids": [], "labels": [], "attention_mask": []}
        for example in examples:
            pad = width - len(example["input_ids"])
            batch["input_ids"].append(example["input_ids"] + [self.pad_token_id] * pad)
            batch["labels"].append(example["labels"] + [IGNORE_INDEX] * pad)
            batch["attention_mask"].append(example["attention_mask"] + [0] * pad)
        return {key: torch.tensor(value, dtype=torch.long) for key, value in batch.items()}


def left_pad(sequences: Sequence[Sequence[int]], pad_token_id: int) -> tuple[Any, Any]:
    """Left-pad token id lists into ``(input_ids, attention_mask)`` tensors for generation."""
    import torch

    width = max(len(seq) for seq in sequences)
    ids = torch.full((len(sequences), width), pad_token_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, seq in enumerate(sequences):
        if seq:
            ids[row, width - len(seq):] = torch.tensor(list(seq), dtype=torch.long)
            mask[row, width - len(seq):] = 1
    return ids, mask
