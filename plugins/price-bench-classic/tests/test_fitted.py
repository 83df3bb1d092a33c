"""The in-process memo of fitted regressors: a reused fit is the fit, and only an exact match is reused."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from price_bench_classic import fitted
from price_bench_classic.fitted import clear_fitted, fit_key, fit_or_reuse


def _items_and_prices(split, n=400):
    items = split.train[:n]
    return items, [item.price for item in items]


def test_the_same_fit_is_reused_and_any_difference_refits(demo_split, make_predictor):
    items, prices = _items_and_prices(demo_split)
    first, reused = fit_or_reuse(make_predictor("tfidf-ridge").build_model(), items, prices)
    assert reused is False
    again, reused = fit_or_reuse(make_predictor("tfidf-ridge").build_model(), items, prices)
    assert reused is True and again is first

    changed_text = [dataclasses.replace(items[0], text=items[0].text + " x"), *items[1:]]
    changed_details = [dataclasses.replace(items[0], details={**items[0].details, "k": "v"}), *items[1:]]
    variants = {
        "another seed": (make_predictor("tfidf-ridge", seed=1).build_model(), items, prices),
        "another config": (make_predictor("tfidf-ridge", alpha="3").build_model(), items, prices),
        "another predictor": (make_predictor("bow-linear").build_model(), items, prices),
        "one text changed": (make_predictor("tfidf-ridge").build_model(), changed_text, prices),
        "one detail changed": (make_predictor("tfidf-ridge").build_model(), changed_details, prices),
        "one price off by an ulp": (make_predictor("tfidf-ridge").build_model(), items, [np.nextafter(prices[0], 1e9), *prices[1:]]),
        "items reordered": (make_predictor("tfidf-ridge").build_model(), items[::-1], prices[::-1]),
        "fewer items": (make_predictor("tfidf-ridge").build_model(), items[:-1], prices[:-1]),
    }
    keys = {name: fit_key(*args) for name, args in variants.items()}
    assert fit_key(make_predictor("tfidf-ridge").build_model(), items, prices) not in keys.values()
    assert len(set(keys.values())) == len(keys)
    model, reused = fit_or_reuse(*variants["another seed"])
    assert reused is False and model is not first


def test_the_memo_keeps_only_the_last_fits(demo_split, make_predictor, monkeypatch):
    monkeypatch.setattr(fitted, "KEEP", 2)
    items, prices = _items_and_prices(demo_split, 200)
    models = [fit_or_reuse(make_predictor("fe-linear", seed=s).build_model(), items, prices)[0] for s in range(3)]
    assert fit_or_reuse(make_predictor("fe-linear", seed=2).build_model(), items, prices) == (models[2], True)
    assert fit_or_reuse(make_predictor("fe-linear", seed=0).build_model(), items, prices)[1] is False  # evicted


@pytest.mark.slow
def test_an_ensemble_after_its_bases_reuses_their_fits_with_the_same_predictions(demo_split, tmp_path, make_predictor, fit_predict):
    """As in ``price-bench run --all``: the standalone bases first, then the ensemble, in one process."""
    bases = "tfidf-ridge,svd-hgb,fe-linear"
    clear_fitted()
    fresh = make_predictor("ensemble", bases=bases, folds=3)
    fresh_prices = fit_predict(fresh, demo_split, tmp_path / "fresh")
    assert fresh.info()["reused_fits"] == []

    clear_fitted()
    for base in bases.split(","):
        standalone = make_predictor(base)
        fit_predict(standalone, demo_split, tmp_path / base)
        assert "reused_fit" not in standalone.info()  # a fresh fit
    after = make_predictor("ensemble", bases=bases, folds=3)
    after_prices = fit_predict(after, demo_split, tmp_path / "after")
    assert after.info()["reused_fits"] == bases.split(",")
    assert after_prices == fresh_prices
    assert after.info()["weights"] == fresh.info()["weights"]


def test_a_standalone_predictor_after_the_ensemble_reuses_its_base_fit(demo_split, tmp_path, make_predictor, fit_predict):
    clear_fitted()
    ensemble = make_predictor("ensemble", bases="fe-linear,bow-linear", folds=2)
    fit_predict(ensemble, demo_split, tmp_path / "ensemble")
    standalone = make_predictor("bow-linear")
    reused_prices = fit_predict(standalone, demo_split, tmp_path / "bow")
    assert standalone.model is ensemble.model.models[1]
    assert standalone.info()["reused_fit"] is True
    clear_fitted()
    assert fit_predict(make_predictor("bow-linear"), demo_split, tmp_path / "bow-fresh") == reused_prices
