"""price_bench.load_dataset and Dataset."""

from __future__ import annotations

import pytest

import price_bench


def test_load_dataset_by_name_and_by_folder(tiny_dataset):
    by_name = price_bench.load_dataset("tiny")
    by_path = price_bench.load_dataset(tiny_dataset.path)
    assert by_name.fingerprint == by_path.fingerprint == tiny_dataset.fingerprint
    for split in ("train", "validation", "test"):
        items = getattr(by_name, split)
        assert isinstance(items, list) and items and all(isinstance(i, price_bench.Item) for i in items)


def test_repr_is_one_short_line(tiny_dataset):
    text = repr(tiny_dataset)
    sizes = tiny_dataset.manifest["sizes"]
    assert text.startswith("Dataset('tiny', synthetic, ")
    assert f"train={sizes['train']:,}" in text and f"test={sizes['test']:,}" in text
    assert "\n" not in text and len(text) < 250, "never the whole manifest"


def test_to_pandas(tiny_dataset):
    frame = tiny_dataset.to_pandas("train")
    assert list(frame.columns) == ["id", "text", "price", "category", "title", "details"]
    assert len(frame) == len(tiny_dataset.train)
    assert frame.price.tolist() == [i.price for i in tiny_dataset.train]
    with pytest.raises(price_bench.DatasetError, match="unknown split"):
        tiny_dataset.to_pandas("tset")


def test_a_missing_dataset_is_one_line():
    with pytest.raises(price_bench.DatasetError, match="no dataset named 'absent'"):
        price_bench.load_dataset("absent")
