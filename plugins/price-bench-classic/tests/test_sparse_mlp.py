"""``sparse-mlp``: fits and predicts, byte-identical reruns, bagging, the bin head, config validation."""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pytest

pytest.importorskip("torch", reason="sparse-mlp needs torch (pip install 'price-bench-classic[torch]')")

#: A small, fast configuration: one epoch-pair on small inputs (the defaults are for real data).
TINY = {"hidden": "32,16", "epochs": "2", "seeds": "1", "word_features": "5000", "title_features": "2000", "char_features": "2000"}


def _digest(prices) -> str:
    return hashlib.sha256(np.asarray(prices, dtype=np.float64).tobytes()).hexdigest()


def test_fits_and_beats_constant_mean_on_demo(demo_split, tmp_path, make_predictor, fit_predict):
    predictor = make_predictor("sparse-mlp", **TINY)
    prices = fit_predict(predictor, demo_split, tmp_path)
    assert len(prices) == len(demo_split.test)
    assert all(math.isfinite(p) and p > 0 for p in prices)
    assert demo_split.error(prices) < demo_split.constant_mean_error()
    info = predictor.info()
    assert info["members"] == 1 and info["input_features"] > 100
    assert info["train_items"] == len(demo_split.train) + len(demo_split.validation)


def test_same_data_and_seed_give_byte_identical_predictions(demo_split, tmp_path, make_predictor):
    """Raw model output (before the harness rounds to cents) must be identical bytes on a refit."""
    items = demo_split.train + demo_split.validation
    prices = [item.price for item in items]
    first = make_predictor("sparse-mlp", seed=5, **TINY).build_model().fit(items, prices).predict(demo_split.test)
    second = make_predictor("sparse-mlp", seed=5, **TINY).build_model().fit(items, prices).predict(demo_split.test)
    assert _digest(first) == _digest(second)
    other = make_predictor("sparse-mlp", seed=6, **TINY).build_model().fit(items, prices).predict(demo_split.test)
    assert _digest(other) != _digest(first)


def test_the_torch_settings_are_restored_after_fit(demo_split, make_predictor):
    import torch

    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    items = demo_split.train[:300]
    make_predictor("sparse-mlp", threads="1", **TINY).build_model().fit(items, [i.price for i in items])
    assert (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()) == (threads, deterministic)


def test_bagging_trains_one_member_per_seed_and_alternates_binary_inputs(demo_split, make_predictor):
    items = demo_split.train[:600]
    model = make_predictor("sparse-mlp", **{**TINY, "seeds": "3", "binary": "alternate"}).build_model()
    model.fit(items, [i.price for i in items])
    assert len(model.members) == 3 and model.member_binary == [False, True, False]
    single = make_predictor("sparse-mlp", **{**TINY, "seeds": "1"}).build_model().fit(items, [i.price for i in items])
    assert not np.array_equal(model.predict(demo_split.test[:50]), single.predict(demo_split.test[:50]))


def test_bin_head_trains_and_predicts(demo_split, tmp_path, make_predictor, fit_predict):
    prices = fit_predict(make_predictor("sparse-mlp", **{**TINY, "bins": "16"}), demo_split, tmp_path)
    assert demo_split.error(prices) < demo_split.constant_mean_error()


def test_dollar_weights_follow_the_price_and_change_the_fit(demo_split, make_predictor):
    from price_bench_classic.sparse_mlp import _dollar_weights

    log_price = np.log1p(np.array([5.0, 50.0, 500.0]))
    assert _dollar_weights(log_price, 0.0) is None
    weights = _dollar_weights(log_price, 1.0)
    assert weights is not None and weights.mean() == pytest.approx(1.0)
    assert weights[2] / weights[1] == pytest.approx(501 / 51)
    items = demo_split.train[:400]
    plain = make_predictor("sparse-mlp", **TINY).build_model().fit(items, [i.price for i in items])
    weighted = make_predictor("sparse-mlp", **{**TINY, "dollar_weight": "1"}).build_model().fit(items, [i.price for i in items])
    assert not np.array_equal(plain.predict(demo_split.test[:50]), weighted.predict(demo_split.test[:50]))


def test_saved_model_is_reloaded_with_the_same_predictions(demo_split, tmp_path, make_predictor, fit_predict):
    fitted = fit_predict(make_predictor("sparse-mlp", **TINY), demo_split, tmp_path)
    again = make_predictor("sparse-mlp", **TINY)
    assert again.load(tmp_path) is True
    assert [p.price for p in again.predict(demo_split.test)] == fitted
    assert make_predictor("sparse-mlp", **{**TINY, "epochs": "3"}).load(tmp_path) is False


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"hidden": ""}, "hidden needs 1 to 8"),
        ({"hidden": "256,0"}, "between 1 and 4096"),
        ({"seeds": "0"}, "greater than or equal to 1"),
        ({"bins": "1"}, "at least 2"),
        ({"binary": "sometimes"}, "'off', 'on' or 'alternate'"),
        ({"char_ngram_min": "5", "char_ngram_max": "3"}, "exceeds char_ngram_max"),
        ({"threads": "0"}, "greater than or equal to 1"),
        ({"learning_rate": "0"}, "greater than 0"),
        ({"no_such_key": "1"}, "Extra inputs are not permitted"),
        (
            {"word_features": "0", "title_features": "0", "char_features": "0", "brand_crosses": "false",
             "quantities": "false", "category": "false"},
            "every input block is turned off",
        ),
    ],
)
def test_config_validation(overrides, message, make_predictor):
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match=message):
        make_predictor("sparse-mlp", **overrides)


def test_importing_the_module_does_not_import_torch():
    import subprocess
    import sys

    code = "import sys, price_bench_classic.sparse_mlp; print('torch' in sys.modules, 'sklearn' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "False False"


@pytest.mark.slow
def test_default_config_on_the_demo_subsample(demo_split, tmp_path, make_predictor, fit_predict):
    """The shipped defaults (2 members, 3 epochs, full input blocks) beat tfidf-ridge's floor on demo."""
    prices = fit_predict(make_predictor("sparse-mlp"), demo_split, tmp_path)
    assert demo_split.error(prices) < 0.9 * demo_split.constant_mean_error()
