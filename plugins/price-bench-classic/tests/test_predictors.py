"""Every classic predictor on a subsample of the demo catalog: beats constant-mean, reproducible, persisted."""

from __future__ import annotations

import math

import numpy as np
import price_bench_classic
import pytest
from price_bench_classic.embeddings import clear_memos

FAST = ["fe-linear", "bow-linear", "tfidf-ridge", "tfidf-mlp", "tfidf-knn", "svd-hgb", "w2v-linear", "w2v-svr", "w2v-rf"]
MINILM = ["minilm-ridge", "minilm-knn"]
ALL = [spec[0] for spec in price_bench_classic.SPECS]


def _needs_minilm(predictor_id: str) -> None:
    cls = {c.id: c for c in price_bench_classic.predictor_classes()}[predictor_id]
    reason = cls.skip_reason(cls.Config())
    if reason:
        pytest.skip(reason)


def test_fast_and_minilm_lists_cover_every_predictor():
    assert sorted(FAST + MINILM + ["sparse-mlp", "ensemble"]) == sorted(ALL)  # sparse-mlp: test_sparse_mlp.py


@pytest.mark.parametrize("predictor_id", FAST)
def test_beats_constant_mean_on_demo(predictor_id, demo_split, tmp_path, make_predictor, fit_predict):
    prices = fit_predict(make_predictor(predictor_id), demo_split, tmp_path)
    assert len(prices) == len(demo_split.test)
    assert all(math.isfinite(p) and p > 0 for p in prices)
    assert demo_split.error(prices) < demo_split.constant_mean_error()


@pytest.mark.slow
@pytest.mark.parametrize("predictor_id", MINILM)
def test_minilm_beats_constant_mean_on_demo(predictor_id, demo_split, tmp_path, make_predictor, fit_predict):
    _needs_minilm(predictor_id)
    prices = fit_predict(make_predictor(predictor_id), demo_split, tmp_path)
    assert demo_split.error(prices) < demo_split.constant_mean_error()


@pytest.mark.slow
def test_default_ensemble_beats_constant_mean_on_demo(demo_split, tmp_path, make_predictor, fit_predict):
    _needs_minilm("minilm-knn")
    predictor = make_predictor("ensemble", folds=3)
    prices = fit_predict(predictor, demo_split, tmp_path)
    assert demo_split.error(prices) < demo_split.constant_mean_error()
    assert list(predictor.model.weights) == list(predictor.config.bases)


@pytest.mark.slow
def test_ensemble_beats_its_bases_floor_and_constant_mean(demo_split, tmp_path, make_predictor, fit_predict):
    predictor = make_predictor("ensemble", bases="tfidf-ridge,svd-hgb,tfidf-knn", folds=3)
    prices = fit_predict(predictor, demo_split, tmp_path)
    error = demo_split.error(prices)
    assert error < demo_split.constant_mean_error()
    # The blend is learned out of fold: it must not be worse than its weakest base on the same test items.
    weakest = max(demo_split.error(fit_predict(make_predictor(b), demo_split, tmp_path / b)) for b in predictor.config.bases)
    assert error < weakest
    info = predictor.info()
    assert set(info["weights"]) == set(info["out_of_fold_error"]) == {"tfidf-ridge", "svd-hgb", "tfidf-knn"}
    assert all(w >= 0 for w in info["weights"].values())
    assert info["train_items"] == len(demo_split.train) + len(demo_split.validation)


@pytest.mark.parametrize("predictor_id", ["w2v-linear", "svd-hgb", "tfidf-mlp", "w2v-rf"])
def test_same_data_and_seed_give_the_same_predictions(predictor_id, demo_split, tmp_path, make_predictor, fit_predict):
    clear_memos()  # a real retrain of word2vec, not a memo hit
    first = fit_predict(make_predictor(predictor_id, seed=3), demo_split, tmp_path / "a")
    clear_memos()
    second = fit_predict(make_predictor(predictor_id, seed=3), demo_split, tmp_path / "b")
    assert first == second


def test_word2vec_is_reproducible_in_a_fresh_process(demo_split, tmp_path):
    """Python's per-process string hashing must not leak into gensim's vectors."""
    import os
    import subprocess
    import sys

    from price_bench.testing import write_split

    write_split(tmp_path / "train.parquet", demo_split.train[:400])
    script = (
        "import sys, numpy as np\n"
        "from pathlib import Path\n"
        "from price_bench.data.dataset import read_split\n"
        "from price_bench_classic.embeddings import train_word_vectors\n"
        "texts = [i.text for i in read_split(Path(sys.argv[1]))]\n"
        "wv = train_word_vectors(texts, vector_size=50, window=5, min_count=2, epochs=2, seed=1)\n"
        "print(repr(float(np.abs(wv.document_vectors(texts[:50])).sum())))\n"
    )
    outputs = set()
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        done = subprocess.run([sys.executable, "-c", script, str(tmp_path / "train.parquet")], env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr[-2000:]
        outputs.add(done.stdout.strip())
    assert len(outputs) == 1


def test_a_different_seed_changes_a_seeded_model(demo_split, tmp_path, make_predictor, fit_predict):
    clear_memos()
    first = fit_predict(make_predictor("w2v-linear", seed=1), demo_split, tmp_path / "a")
    second = fit_predict(make_predictor("w2v-linear", seed=2), demo_split, tmp_path / "b")
    assert first != second


@pytest.mark.parametrize("predictor_id", ["tfidf-ridge", "w2v-svr", "fe-linear"])
def test_persisted_model_is_reused_not_refitted(predictor_id, demo_split, tmp_path, monkeypatch, make_predictor, fit_predict):
    fitted = fit_predict(make_predictor(predictor_id), demo_split, tmp_path)
    assert (tmp_path / "model.joblib").is_file()

    fresh = make_predictor(predictor_id)
    monkeypatch.setattr(type(fresh), "fit", lambda *a, **k: pytest.fail("fit called although a fitted model was saved"))
    assert fresh.load(tmp_path) is True
    assert [p.price for p in fresh.predict(demo_split.test)] == fitted


def test_load_refuses_missing_or_foreign_models(demo_split, tmp_path, make_predictor, fit_predict):
    assert make_predictor("tfidf-ridge").load(tmp_path) is False
    fit_predict(make_predictor("tfidf-ridge"), demo_split, tmp_path)
    assert make_predictor("tfidf-ridge", alpha="3").load(tmp_path) is False  # another config
    assert make_predictor("tfidf-ridge", seed=9).load(tmp_path) is False  # another seed
    assert make_predictor("bow-linear").load(tmp_path) is False  # another predictor


def test_a_runtime_only_setting_does_not_force_a_refit(demo_split, tmp_path, make_predictor, fit_predict):
    fitted = fit_predict(make_predictor("w2v-rf", n_estimators="10", epochs="1"), demo_split, tmp_path)
    reloaded = make_predictor("w2v-rf", n_estimators="10", epochs="1", n_jobs="1")
    assert reloaded.load(tmp_path) is True
    assert [p.price for p in reloaded.predict(demo_split.test)] == fitted
    assert make_predictor("w2v-rf", n_estimators="11", epochs="1").load(tmp_path) is False


def test_predictions_stay_in_the_train_price_range(demo_split, tmp_path, make_predictor, fit_predict):
    prices = fit_predict(make_predictor("bow-linear", log_target="false"), demo_split, tmp_path)
    train_prices = [i.price for i in demo_split.train + demo_split.validation]
    assert min(train_prices) <= min(prices) and max(prices) <= max(train_prices)


def test_ensemble_config_rejects_unknown_bases(make_predictor):
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="unknown base 'nope'"):
        make_predictor("ensemble", bases="tfidf-ridge,nope")
    with pytest.raises(ValidationError, match="unknown base 'ensemble'"):
        make_predictor("ensemble", bases="ensemble")


def test_ensemble_is_skipped_when_a_base_is(monkeypatch, make_predictor):
    from price_bench_classic.minilm import MiniLMRidge

    from price_bench import Requirement

    monkeypatch.setattr(MiniLMRidge, "requires", (Requirement.package("no_such_package_xyz"),))
    ensemble = type(make_predictor("ensemble"))
    reason = ensemble.skip_reason(ensemble.Config())
    assert reason is not None and "minilm-ridge" in reason and "no_such_package_xyz" in reason
    assert ensemble.skip_reason(ensemble.make_config({"bases": "tfidf-ridge,svd-hgb"})) is None


def test_empty_batch_predicts_nothing(demo_split, tmp_path, make_predictor, fit_predict):
    predictor = make_predictor("fe-linear")
    fit_predict(predictor, demo_split, tmp_path)
    assert predictor.predict([]) == []


def test_the_cv_benchmarks_ensemble_row_equals_the_ensembles_own_fit(demo_split, make_predictor, monkeypatch):
    """bench/classic_cv.py computes the ensemble's test predictions from its bases' rows: the same as ``fit``."""
    import importlib.util
    import sys
    from pathlib import Path

    bench = Path(__file__).resolve().parents[3] / "bench" / "classic_cv.py"
    spec = importlib.util.spec_from_file_location("classic_cv_under_test", bench)
    classic_cv = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, classic_cv)  # its dataclasses look their module up
    monkeypatch.syspath_prepend(str(bench.parent))
    spec.loader.exec_module(classic_cv)

    items, test = demo_split.train[:600], demo_split.test[:100]
    prices = np.array([item.price for item in items])
    bases = ["tfidf-ridge", "fe-linear"]
    ensemble = make_predictor("ensemble", bases=",".join(bases), folds=3)
    fitted = ensemble.build_model().fit(items, prices)
    out_of_fold, test_guess = {}, {}
    for base in bases:
        out_of_fold[base] = np.zeros(len(items))
        for fit_rows, held_rows in fitted.folds_for(len(items)):
            model = make_predictor(base).build_model().fit([items[i] for i in fit_rows], prices[fit_rows])
            out_of_fold[base][held_rows] = model.predict([items[i] for i in held_rows])
        test_guess[base] = make_predictor(base).build_model().fit(items, prices).predict(test)
    guess, weights = classic_cv.stacked_test(out_of_fold, test_guess, bases, prices)
    np.testing.assert_allclose(guess, fitted.predict(test), rtol=1e-9)
    assert weights == fitted.info()["weights"]


def test_dollar_factor_minimises_the_absolute_dollar_error():
    from price_bench_classic.ensemble import dollar_factor

    rng = np.random.default_rng(0)
    guesses = np.exp(rng.normal(3.5, 1.0, 500))
    prices = guesses * np.exp(rng.normal(0.1, 0.6, 500))
    factor = dollar_factor(prices, guesses)
    best = np.mean(np.abs(prices - factor * guesses))
    for other in np.linspace(0.5, 2.0, 301):
        assert best <= np.mean(np.abs(prices - other * guesses)) + 1e-9
    assert dollar_factor(prices, np.zeros(500)) == 1.0


def test_the_blender_without_the_dollar_factor_is_the_log_price_blend():
    from price_bench_classic.ensemble import Blender

    rng = np.random.default_rng(1)
    prices = np.exp(rng.normal(3.5, 1.0, 300))
    guesses = np.column_stack([prices * np.exp(rng.normal(0, s, 300)) for s in (0.3, 0.8)])
    plain, scaled = Blender(dollar_scale=False).fit(guesses, prices), Blender(dollar_scale=True).fit(guesses, prices)
    assert plain.scale == 1.0 and scaled.scale != 1.0
    np.testing.assert_allclose(scaled.predict(guesses), scaled.scale * plain.predict(guesses))
    assert plain.linear.coef_[0] > plain.linear.coef_[1] >= 0  # the closer base gets the larger weight
    assert np.mean(np.abs(prices - scaled.predict(guesses))) <= np.mean(np.abs(prices - plain.predict(guesses)))
