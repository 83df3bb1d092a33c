"""The synthetic demo catalog: deterministic, varied, labelled, and learnable from text."""

from __future__ import annotations

import itertools
import json
from collections import Counter

import pytest

from price_bench.data import demo
from price_bench.data.catalog import get_dataset
from price_bench.data.sources import detect_format


def test_generator_is_deterministic_and_seeded():
    first = list(itertools.islice(demo.generate(n=500, seed=11), 500))
    again = list(demo.generate(n=500, seed=11))
    other = list(demo.generate(n=500, seed=12))
    assert json.dumps(first) == json.dumps(again)
    assert json.dumps(first) != json.dumps(other)


def test_records_are_raw_2023_format_and_varied():
    records = list(demo.generate(n=3000, seed=5))
    assert all(detect_format(r) == "raw2023" for r in records)
    categories = Counter(r["main_category"] for r in records)
    assert len(categories) >= 8 and min(categories.values()) > 150
    titles = {r["title"] for r in records}
    assert len(titles) > 0.9 * len(records)
    prices = [r["price"] for r in records if isinstance(r["price"], float)]
    assert min(prices) < 10 and max(prices) > 500
    unpriced = sum(r["price"] in (None, "None") for r in records)
    assert 0.01 * len(records) < unpriced < 0.06 * len(records)
    assert all("Best Sellers Rank" in r["details"] and r["features"] and r["description"] for r in records)


@pytest.mark.slow
def test_demo_dataset_is_synthetic_and_text_beats_constant_mean_by_1_5x():
    import numpy as np
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import Ridge

    ds = get_dataset("demo")
    assert ds.synthetic and ds.manifest["synthetic"] is True
    assert ds.manifest["sources"][0]["label"].startswith("generated:demo-generator@1")
    sizes = ds.manifest["sizes"]
    assert 18_000 <= sum(sizes.values()) <= 22_000 and sizes["test"] >= 1500
    assert len(ds.manifest["counts"]["categories"]["test"]) >= 8
    train_y = np.array([i.price for i in ds.train])
    test_y = np.array([i.price for i in ds.test])
    constant_error = np.abs(test_y - train_y.mean()).mean()
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
    model = Ridge(alpha=1.0).fit(vectorizer.fit_transform([i.text for i in ds.train]), train_y)
    ridge_error = np.abs(test_y - model.predict(vectorizer.transform([i.text for i in ds.test]))).mean()
    assert constant_error >= 1.5 * ridge_error, (constant_error, ridge_error)
    # second use opens the built folder, same content
    assert get_dataset("demo").fingerprint == ds.fingerprint
