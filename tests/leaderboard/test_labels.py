"""Row labels that say what ran, and the tiers that say which differences are real."""

from __future__ import annotations

import numpy as np
import pytest

from price_bench.leaderboard.labels import board_labels, endpoint_kind, is_local
from price_bench.metrics.ties import holm, pair_tests, rank_with_ties


@pytest.mark.parametrize("url, kind", [
    (None, "openai"), ("", "openai"), ("http://127.0.0.1:47555/v1", "local"), ("http://localhost:8080/v1", "local"),
    ("http://192.168.1.20:8000/v1", "local"), ("http://[::1]:8000/v1", "local"), ("https://api.together.xyz/v1", "api.together.xyz"),
    ("http://127.0.0.1:1/v1,http://127.0.0.1:2/v1", "local"),  # an endpoint pool: the first decides
])
def test_endpoint_kind(url, kind):
    assert endpoint_kind(url) == kind


def _rec(kit, pid, config, **kw):
    rec, _ = kit.record(pid, preds=kit.predictions("noisy", 0.5, 1, n=20), config=config, **kw)
    return rec


def test_llm_rows_name_model_and_endpoint_and_local_ones_are_marked(kit):
    local = _rec(kit, "frontier", {"model": "smollm2-135m-instruct", "base_url": "http://127.0.0.1:47555/v1", "concurrency": 4})
    hosted = _rec(kit, "frontier", {"model": "gpt-4o-mini", "base_url": None, "concurrency": 8})
    labels = board_labels([local, hosted])
    assert labels[(local.predictor.id, local.predictor.config_hash)] == "frontier · smollm2-135m-instruct · local"
    assert labels[(hosted.predictor.id, hosted.predictor.config_hash)] == "frontier · gpt-4o-mini · openai"
    assert is_local(local) and not is_local(hosted)


def test_other_rows_name_the_fields_that_tell_them_apart_and_runtime_fields_never(kit):
    a = _rec(kit, "forest", {"n_estimators": 300, "n_jobs": 2, "depth": 8})
    b = _rec(kit, "forest", {"n_estimators": 100, "n_jobs": 4, "depth": 8})
    for r in (a, b):
        r.predictor.runtime_fields = ["n_jobs"]
    labels = board_labels([a, b])
    assert sorted(labels.values()) == ["forest · n_estimators=100", "forest · n_estimators=300"]
    assert board_labels([a]) == {(a.predictor.id, a.predictor.config_hash): "forest"}


def test_declared_label_fields_win_and_equal_labels_fall_back_to_the_hash(kit):
    a = _rec(kit, "tuned", {"base_model": "llama-3.1-8b", "lr": 1e-4})
    a.predictor.label_fields = ["base_model"]
    assert list(board_labels([a]).values()) == ["tuned · llama-3.1-8b"]
    b = _rec(kit, "same", {"x": 1})
    c = _rec(kit, "same", {"x": 1})
    c.predictor.config_hash = "ffffffffffff"
    labels = board_labels([b, c])
    assert sorted(labels.values()) == [f"same @{b.predictor.config_hash[:7]}", "same @fffffff"]


def test_holm_adjusts_in_step_down_order():
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])


def test_tiers_and_rank_ranges_tie_the_indistinguishable():
    rng = np.random.default_rng(3)
    truth = rng.lognormal(4, 1, 2000)
    good = truth + rng.normal(0, 10, 2000)
    also_good = truth + rng.normal(0, 10, 2000)  # as good, with other errors: a statistical tie
    bad = truth + rng.normal(0, 60, 2000)
    ranking = rank_with_ties(truth, [good, also_good, bad], n_resamples=400)
    assert ranking.tiers == [1, 1, 2]
    assert [ranking.rank_range(i) for i in range(3)] == ["1-2", "1-2", "3"]
    assert ranking.worse_than(2, 0) and not ranking.worse_than(1, 0)
    assert ranking.n_pairs == 3


def test_a_small_but_consistent_difference_is_significant_on_paired_items():
    rng = np.random.default_rng(4)
    truth = rng.lognormal(4, 1, 2000)
    noise = rng.normal(0, 10, 2000)
    ranking = rank_with_ties(truth, [truth + noise, truth + noise * 1.05], n_resamples=400)
    assert ranking.tiers == [1, 2]  # the same items, always a little further off: the pairing sees it


def test_pair_tests_cover_every_headline_metric_with_directions():
    rng = np.random.default_rng(0)
    truth = rng.lognormal(4, 1, 1000)
    tests = pair_tests(truth, truth * 1.05, truth * 1.6, n_resamples=300)
    assert [t.metric for t in tests] == ["Error", "RMSLE", "Hits"]
    assert all(t.better == "A" for t in tests)
    assert tests[2].higher_is_better and tests[2].diff > 0
