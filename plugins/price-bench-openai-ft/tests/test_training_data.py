"""The JSONL training files: OpenAI's chat format, and its validation on real and broken examples."""

from __future__ import annotations

import json
import math
import re

import pytest

from price_bench_openai_ft.tokens import estimate_counter
from price_bench_openai_ft.training_data import answer_for, subsample, training_example, write_jsonl
from price_bench_openai_ft.validation import TrainingDataError, validate_file

MODEL = "gpt-4o-mini-2024-07-18"


def _valid_line(price: int = 10) -> str:
    return json.dumps(
        {"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "How much?"}, {"role": "assistant", "content": f"Price is ${price}.00"}]}
    )


def _file(tmp_path, lines, name="bad.jsonl"):
    path = tmp_path / name
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


@pytest.mark.shared_data
def test_jsonl_on_real_items_is_openai_chat_format(real_items, tmp_path):
    path = tmp_path / "train.jsonl"
    sha = write_jsonl(path, [training_example(item) for item in real_items])
    assert re.fullmatch(r"[0-9a-f]{64}", sha)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == len(real_items) == 300
    for line, item in zip(lines, real_items):
        example = json.loads(line)
        assert list(example) == ["messages"]
        system, user, assistant = example["messages"]
        assert [m["role"] for m in example["messages"]] == ["system", "user", "assistant"]
        assert system["content"].startswith("You estimate prices of items.")
        assert user["content"] == "How much does this cost?\n\n" + item.text.strip()
        assert assistant["content"] == f"Price is ${math.floor(item.price + 0.5)}.00"
    report = validate_file(path, MODEL)
    assert report.ok, report.problems[:3]
    assert report.examples == 300 and len(report.example_tokens) == 300
    assert all(0 < n <= report.token_limit for n in report.example_tokens)
    assert report.token_method  # exact or the labelled estimate


@pytest.mark.parametrize(
    ("price", "answer"),
    [(45.49, "Price is $45.00"), (45.5, "Price is $46.00"), (2.5, "Price is $3.00"), (0.87, "Price is $1.00"), (999.0, "Price is $999.00")],
)
def test_answer_rounds_to_nearest_dollar_halves_up(price, answer):
    assert answer_for(price) == answer


def test_subsample_is_seeded_and_bounded(item_factory):
    items = item_factory(50, 0, "x")
    assert subsample(items, 20, seed=3) == subsample(items, 20, seed=3)
    assert subsample(items, 20, seed=3) != subsample(items, 20, seed=4)
    assert len(set(i.id for i in subsample(items, 20, seed=3))) == 20
    assert subsample(items, 500, seed=3) == items


def test_max_chars_truncates_the_item_text(item_factory):
    item = item_factory(1, 0, "x")[0]
    user = training_example(item, max_chars=20)["messages"][1]["content"]
    assert len(user) < len("How much does this cost?\n\n") + 30


BROKEN = [
    ("not json {", "line", "not valid JSON"),
    ("[1, 2]", "line", "expected a JSON object"),
    ('{"prompt": "x", "completion": "y"}', "messages", "missing or not a non-empty list"),
    ('{"messages": []}', "messages", "missing or not a non-empty list"),
    ('{"messages": [{"role": "user", "content": "q"}, {"role": "tool", "content": "a"}, {"role": "assistant", "content": "b"}]}', "messages[1].role", "'tool' is not one of"),
    ('{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": 12}]}', "messages[1].content", "must be a string"),
    ('{"messages": [{"role": "user", "content": "q"}, {"role": "assistant"}]}', "messages[1].content", "missing"),
    ('{"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "q"}]}', "messages", "no assistant message"),
    ('{"messages": [{"role": "user", "content": "q", "colour": "red"}, {"role": "assistant", "content": "a"}]}', "messages[0].colour", "unrecognised key"),
    ('{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a", "weight": 2}]}', "messages[1].weight", "must be 0 or 1"),
    ('{"messages": ["hello", {"role": "assistant", "content": "a"}]}', "messages[0]", "expected an object"),
    ("", "line", "empty line"),
]


@pytest.mark.parametrize(("line", "field", "message"), BROKEN, ids=[b[1] + ":" + b[2] for b in BROKEN])
def test_broken_example_is_reported_with_file_line_and_field(tmp_path, line, field, message):
    lines = [_valid_line()] * 3 + [line] + [_valid_line()] * 8
    report = validate_file(_file(tmp_path, lines), MODEL, estimate_counter())
    assert not report.ok
    problem = report.problems[0]
    assert (problem.line, problem.field) == (4, field)
    assert message in problem.message
    with pytest.raises(TrainingDataError, match=rf"^bad\.jsonl:4: {re.escape(field)}: "):
        report.raise_for_problems()


def test_every_problem_is_counted_in_the_error(tmp_path):
    lines = ["nope", '{"messages": []}'] + [_valid_line()] * 10
    report = validate_file(_file(tmp_path, lines), MODEL, estimate_counter())
    assert len(report.problems) == 2
    with pytest.raises(TrainingDataError, match=r"bad\.jsonl:1: line: not valid JSON .*\(and 1 more problem\)$"):
        report.raise_for_problems()


def test_minimum_of_ten_examples(tmp_path):
    nine = validate_file(_file(tmp_path, [_valid_line()] * 9, "nine.jsonl"), MODEL, estimate_counter())
    assert [(p.line, p.field) for p in nine.problems] == [(0, "examples")]
    assert "9 examples; OpenAI requires at least 10" in nine.problems[0].message
    with pytest.raises(TrainingDataError, match=r"^nine\.jsonl: examples: 9 examples"):
        nine.raise_for_problems()
    assert validate_file(_file(tmp_path, [_valid_line()] * 10, "ten.jsonl"), MODEL, estimate_counter()).ok


def test_example_over_the_models_token_limit(tmp_path):
    long = json.dumps({"messages": [{"role": "user", "content": "x" * 70_000}, {"role": "assistant", "content": "Price is $1.00"}]})
    report = validate_file(_file(tmp_path, [_valid_line()] * 10 + [long]), "gpt-3.5-turbo-0125", estimate_counter())
    assert [(p.line, p.field) for p in report.problems] == [(11, "messages")]
    assert "(estimated), above the 16,385-token limit per example of gpt-3.5-turbo-0125" in report.problems[0].message
    # The same example fits gpt-4o-mini's 65,536-token limit.
    assert validate_file(_file(tmp_path, [_valid_line()] * 10 + [long], "ok.jsonl"), MODEL, estimate_counter()).ok
