"""The example plugin, registered in-process and run through the real harness."""

from __future__ import annotations

import random

import price_bench_example
from price_bench import Item
from price_bench.testing import RunOptions, get_registry, run_predictors, write_dataset


def _items(split: str, n: int, rng: random.Random) -> list[Item]:
    out = []
    for i in range(n):
        cheap = rng.random() < 0.5
        word = "cable" if cheap else "laptop"
        price = rng.uniform(5, 15) if cheap else rng.uniform(500, 900)
        out.append(Item(f"{split}-{i}", f"A {word} with extras number {i}", round(price, 2), "Electronics"))
    return out


def test_learns_keywords_and_beats_the_median(register_plugin, tmp_path):
    register_plugin(price_bench_example, name="example")
    rng = random.Random(1)
    ds = write_dataset("kw", {"train": _items("tr", 200, rng), "validation": [], "test": _items("te", 60, rng)}, {})
    assert "keyword-heuristic" in get_registry()
    [outcome] = run_predictors(["keyword-heuristic"], RunOptions(dataset="kw", results_dir=tmp_path, progress=False), dataset=ds)
    keyword = outcome.record
    assert keyword.status == "complete"
    assert keyword.predictor.plugin_distribution.startswith("example")
    # "cable" and "laptop" separate the two price clusters: every cable is a hit, and the
    # error is far below the ~$350 that always guessing the median would cost.
    median_error = sum(abs(item.price - keyword.fallback_price) for item in ds.test) / len(ds.test)
    assert median_error > 300
    assert keyword.metrics["error"].value < 100
    assert keyword.metrics["hits"].value > 70


def test_min_count_override_is_validated():
    from price_bench import HarnessError
    from price_bench.testing import build_config

    assert build_config(price_bench_example.KeywordHeuristic, {"min_count": "3"}).min_count == 3
    try:
        build_config(price_bench_example.KeywordHeuristic, {"min_count": "0"})
    except HarnessError as exc:
        assert "min_count" in str(exc)
    else:
        raise AssertionError("min_count=0 must be rejected")
