"""Checking a chat fine-tuning file against OpenAI's documented rules, before uploading it.

The rules (OpenAI's fine-tuning guide and its data-preparation cookbook):

* every line is a JSON object with a non-empty ``messages`` list;
* every message is an object with a ``role`` and a string ``content``; only
  ``role``, ``content``, ``name`` and ``weight`` keys; roles ``system``, ``user``
  and ``assistant`` only; ``weight`` (assistant turns only) is 0 or 1;
* each example has at least one assistant message;
* each example fits the model's per-example token limit;
* the file has at least :data:`MIN_EXAMPLES` examples and at most 512 MB.

Problems are collected, never silently dropped, and reported as
``file:line: field: problem``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from price_bench_openai_ft.cost import example_token_limit
from price_bench_openai_ft.tokens import TokenCounter, token_counter

MIN_EXAMPLES = 10
MAX_FILE_BYTES = 512 * 1024 * 1024
ROLES = ("system", "user", "assistant")
MESSAGE_KEYS = ("role", "content", "name", "weight")


class TrainingDataError(ValueError):
    """A fine-tuning file breaks OpenAI's rules (the message is one line)."""


@dataclass(frozen=True)
class Problem:
    """One rule broken: where (line 0 means the whole file), which field, what."""

    line: int
    field: str
    message: str

    def format(self, path: Path) -> str:
        where = f"{path.name}:{self.line}" if self.line else path.name
        return f"{where}: {self.field}: {self.message}"


@dataclass
class ValidationReport:
    """What :func:`validate_file` found: counts, token figures and problems."""

    path: Path
    model: str
    token_method: str
    token_limit: int
    examples: int = 0
    example_tokens: list[int] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def raise_for_problems(self) -> None:
        """Raise :class:`TrainingDataError` naming the first problem and how many more there are."""
        if self.problems:
            more = len(self.problems) - 1
            tail = f" (and {more} more problem{'s' if more != 1 else ''})" if more else ""
            raise TrainingDataError(self.problems[0].format(self.path) + tail)


def validate_file(path: Path, model: str, counter: TokenCounter | None = None, min_examples: int = MIN_EXAMPLES) -> ValidationReport:
    """Check the JSONL file at ``path`` for fine-tuning ``model``."""
    counter = counter or token_counter(model)
    report = ValidationReport(path, model, counter.method, example_token_limit(model))
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        report.problems.append(Problem(0, "file", f"{size:,} bytes is above OpenAI's 512 MB limit"))
    with path.open("r", encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            report.examples += 1
            example = _parse_line(line, number, report)
            if example is not None:
                _check_example(example, number, counter, report)
    if report.examples < min_examples:
        report.problems.append(Problem(0, "examples", f"{report.examples} examples; OpenAI requires at least {min_examples}"))
    return report


def _parse_line(line: str, number: int, report: ValidationReport) -> dict[str, Any] | None:
    if not line.strip():
        report.problems.append(Problem(number, "line", "empty line (every line must be one JSON example)"))
        return None
    try:
        value = json.loads(line)
    except json.JSONDecodeError as exc:
        report.problems.append(Problem(number, "line", f"not valid JSON ({exc.msg} at column {exc.colno})"))
        return None
    if not isinstance(value, dict):
        report.problems.append(Problem(number, "line", f"expected a JSON object, got {type(value).__name__}"))
        return None
    return value


def _check_example(example: dict[str, Any], number: int, counter: TokenCounter, report: ValidationReport) -> None:
    messages = example.get("messages")
    if not isinstance(messages, list) or not messages:
        report.problems.append(Problem(number, "messages", "missing or not a non-empty list"))
        return
    problems_before = len(report.problems)
    for index, message in enumerate(messages):
        _check_message(message, f"messages[{index}]", number, report)
    if not any(isinstance(m, dict) and m.get("role") == "assistant" for m in messages):
        report.problems.append(Problem(number, "messages", "no assistant message (each example needs at least one)"))
    if len(report.problems) > problems_before:
        return
    tokens = counter.count_messages(messages)
    report.example_tokens.append(tokens)
    if tokens > report.token_limit:
        kind = "" if counter.exact else " (estimated)"
        report.problems.append(
            Problem(number, "messages", f"{tokens:,} tokens{kind}, above the {report.token_limit:,}-token limit per example of {report.model}")
        )


def _check_message(message: Any, where: str, number: int, report: ValidationReport) -> None:
    if not isinstance(message, dict):
        report.problems.append(Problem(number, where, f"expected an object, got {type(message).__name__}"))
        return
    for key in message:
        if key not in MESSAGE_KEYS:
            report.problems.append(Problem(number, f"{where}.{key}", f"unrecognised key (allowed: {', '.join(MESSAGE_KEYS)})"))
    role = message.get("role")
    if role not in ROLES:
        report.problems.append(Problem(number, f"{where}.role", f"{role!r} is not one of {', '.join(ROLES)}"))
    if "content" not in message:
        report.problems.append(Problem(number, f"{where}.content", "missing"))
    elif not isinstance(message["content"], str):
        report.problems.append(Problem(number, f"{where}.content", f"must be a string, got {type(message['content']).__name__}"))
    if "weight" in message:
        if message["weight"] not in (0, 1) or isinstance(message["weight"], bool):
            report.problems.append(Problem(number, f"{where}.weight", f"must be 0 or 1, got {message['weight']!r}"))
        elif role != "assistant":
            report.problems.append(Problem(number, f"{where}.weight", "only assistant messages may have a weight"))
