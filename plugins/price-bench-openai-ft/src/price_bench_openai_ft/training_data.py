"""Train and validation files in OpenAI's chat fine-tuning format.

One JSON object per line::

    {"messages": [{"role": "system", "content": SYSTEM_PROMPT},
                  {"role": "user", "content": "How much does this cost?\\n\\n<item text>"},
                  {"role": "assistant", "content": "Price is $45.00"}]}

The system and user turns are the frontier plugin's reference prompt
(:func:`price_bench_frontier.prompts.build_messages`, without the assistant
prefill), so the fine-tuned model is asked exactly what it was trained on.
The answer is the price rounded to the nearest dollar (halves round up).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import tempfile
from pathlib import Path
from typing import Any, Sequence

from price_bench import Item

Message = dict[str, str]


def answer_for(price: float) -> str:
    """``"Price is $N.00"`` with ``price`` rounded to the nearest dollar (0.5 rounds up)."""
    return f"Price is ${math.floor(price + 0.5)}.00"


def prompt_messages(text: str, max_chars: int | None = None) -> list[Message]:
    """System and user turns for an item text: what training shows and what predict sends.

    Built with the frontier prompt's prefill variant, minus the assistant prefill itself,
    so the user turn carries no "reply in the form" instruction (the fine-tuned model
    learns the answer format from the examples).
    """
    from price_bench_frontier.prompts import build_messages

    return [m for m in build_messages(text, prefill=True, max_chars=max_chars) if m["role"] != "assistant"]


def training_example(item: Item, max_chars: int | None = None) -> dict[str, list[Message]]:
    """One fine-tuning example: the prompt plus the assistant's rounded price."""
    return {"messages": prompt_messages(item.text, max_chars) + [{"role": "assistant", "content": answer_for(item.price)}]}


def subsample(items: Sequence[Item], size: int | None, seed: int) -> list[Item]:
    """``size`` items drawn without replacement with ``random.Random(seed)`` (all when None or larger)."""
    if size is None or size >= len(items):
        return list(items)
    return random.Random(seed).sample(list(items), size)


def write_jsonl(path: Path, examples: Sequence[dict[str, Any]]) -> str:
    """Write ``examples`` one per line, atomically; return the file's sha256 hex."""
    data = "".join(json.dumps(example, ensure_ascii=False) + "\n" for example in examples).encode("utf-8")
    atomic_write_bytes(path, data)
    return hashlib.sha256(data).hexdigest()


def file_sha256(path: Path) -> str:
    """sha256 hex of a file's bytes."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a synced temporary sibling and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
