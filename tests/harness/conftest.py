"""Fixtures for the harness tests: small datasets written with the real dataset writer."""

from __future__ import annotations

import random

import pytest

from price_bench.data.dataset import write_dataset
from price_bench.items import Item


def make_items(split: str, n: int, seed: int = 0) -> list[Item]:
    """``n`` items with prices spread over every price band and two categories."""
    rng = random.Random(f"{split}:{seed}")
    return [
        Item(
            id=f"{split}-{i:05d}",
            text=f"Product {i} of the {split} split",
            price=round(rng.choice([rng.uniform(2, 25), rng.uniform(25, 250), rng.uniform(250, 900)]), 2),
            category=rng.choice(["Electronics", "Toys"]),
        )
        for i in range(n)
    ]


@pytest.fixture
def tiny_dataset(price_bench_home):
    """A 40/5/30 item dataset named ``tiny`` in this test's home."""
    return write_dataset(
        "tiny",
        {"train": make_items("train", 40), "validation": make_items("validation", 5), "test": make_items("test", 30)},
        {"recipe": {"name": "test", "version": 1}},
    )


@pytest.fixture
def results_dir(tmp_path):
    return tmp_path / "results"
