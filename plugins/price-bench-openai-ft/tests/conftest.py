"""Fixtures for the openai-ft tests: items, a small dataset, the stand-in server, the plugin."""

from __future__ import annotations

import json
import random
import pytest

from price_bench import Item

API_KEY = "sk-test-openai-ft-0123456789"


def make_items(n: int, seed: int, prefix: str) -> list[Item]:
    """``n`` synthetic items with varied texts and prices."""
    rng = random.Random(seed)
    nouns = ["kettle", "guitar strap", "car battery", "phone case", "drill", "mouse", "lamp", "blender"]
    items = []
    for i in range(n):
        noun = rng.choice(nouns)
        price = round(rng.uniform(2, 400), 2)
        text = f"{noun.title()} model {prefix}{i}\nA sturdy {noun} with {rng.randint(1, 9)} features. Weight {rng.randint(1, 30)} pounds."
        items.append(Item(id=f"{prefix}{i:03d}", text=text, price=price, category="Test"))
    return items


@pytest.fixture
def item_factory():
    """:func:`make_items`, for tests that need their own items."""
    return make_items


@pytest.fixture
def dataset(price_bench_home):
    """A small synthetic dataset: 40 train, 15 validation, 6 test items."""
    from price_bench.testing import write_dataset

    splits = {"train": make_items(40, 1, "tr"), "validation": make_items(15, 2, "va"), "test": make_items(6, 3, "te")}
    return write_dataset("ft-test", splits, {"recipe": {"name": "openai-ft-tests", "version": 1}, "synthetic": True}, home=price_bench_home)


@pytest.fixture
def stand_in(monkeypatch):
    """The local OpenAI stand-in (requires our test key), with OPENAI_API_KEY set to it."""
    from price_bench.testing import FakeOpenAIServer

    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
    with FakeOpenAIServer(api_key=API_KEY) as server:
        yield server


@pytest.fixture
def plugin(register_plugin):
    """The openai-ft plugin module, registered in-process."""
    import price_bench_openai_ft

    register_plugin(price_bench_openai_ft, name="openai-ft-under-test")
    return price_bench_openai_ft


@pytest.fixture
def real_items(shared_data) -> list[Item]:
    """The first 300 curated real items of ../shared/data/amazon-course/items.jsonl."""
    path = shared_data / "amazon-course" / "items.jsonl"
    if not path.exists():
        pytest.skip(f"{path} not found")
    items = []
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            items.append(Item(id=row["id"], text=row["text"], price=float(row["price"]), category=row.get("category")))
            if len(items) == 300:
                break
    return items
