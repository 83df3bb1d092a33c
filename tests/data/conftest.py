"""Fixtures for the data tests: builders of raw input files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from price_bench.data import demo


def _raw_records(n: int = 200, seed: int = 1) -> list[dict]:
    out: list[dict] = []
    seen: set[str] = set()
    for record in demo.generate(n * 3, seed):
        if isinstance(record["price"], (int, float)) and record["parent_asin"] not in seen:
            seen.add(record["parent_asin"])
            out.append(record)
        if len(out) == n:
            break
    return out


def _write_jsonl(path: Path, records: list) -> Path:
    with path.open("w", encoding="utf-8") as fh:
        for record in records:
            fh.write(record if isinstance(record, str) else json.dumps(record))
            fh.write("\n")
    return path


@pytest.fixture
def raw_records():
    """``raw_records(n, seed)``: realistic, priced, distinct raw-2023 records (demo generator)."""
    return _raw_records


@pytest.fixture
def write_jsonl():
    """``write_jsonl(path, records)``: records (dicts, or str lines written as-is) to JSON lines."""
    return _write_jsonl


@pytest.fixture
def shared_2023(shared_data) -> Path:
    return shared_data / "amazon-2023-raw"
