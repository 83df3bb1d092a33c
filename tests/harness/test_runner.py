"""The runner: caching, resume, failures, skips, limits, overwrite modes and secrets."""

from __future__ import annotations

import collections
import json
from pathlib import Path
from typing import ClassVar

import pytest

from price_bench import Prediction, Predictor, Requirement, hookimpl
from price_bench.harness.cache import PredictionCache, default_cache_path
from price_bench.harness.errors import HarnessError
from price_bench.harness.runner import RunOptions, run_predictors
from price_bench.predictors.contract import PredictorConfig, predict_field, runtime_field
from price_bench.results.store import read_predictions, read_record


class Plugin:
    """An in-process plugin registering the given predictor classes."""

    def __init__(self, *classes):
        self.classes = classes

    @hookimpl
    def register_predictors(self, register):
        for cls in self.classes:
            register(cls)


class CountingConfig(PredictorConfig):
    offset: float = 0.0
    api_key: str = ""
    max_tokens: int = 16


def make_counting(pid: str = "counting", batch_size: int = 4, **attrs) -> type[Predictor]:
    """A fresh predictor class that records every call it gets."""

    class Counting(Predictor):
        id = pid
        description = "counts its calls"
        Config = CountingConfig
        predicted: ClassVar[list[str]]
        batches: ClassVar[int]
        fits: ClassVar[int]
        loads: ClassVar[int]
        interrupt_after: ClassVar[int | None] = None

        def fit(self, train, validation, workdir: Path) -> None:
            type(self).fits += 1
            (workdir / "model.json").write_text(json.dumps({"n": len(train)}))

        def load(self, workdir: Path) -> bool:
            type(self).loads += 1
            return (workdir / "model.json").exists()

        def info(self):
            return {"batches_seen": type(self).batches}

        def predict(self, items):
            cls = type(self)
            if cls.interrupt_after is not None and cls.batches >= cls.interrupt_after:
                raise KeyboardInterrupt
            cls.batches += 1
            cls.predicted.extend(item.id for item in items)
            return [Prediction(raw=f"${10 + len(item.text) + self.config.offset:.2f}") for item in items]

    Counting.batch_size = batch_size
    Counting.predicted, Counting.batches, Counting.fits, Counting.loads = [], 0, 0, 0
    for key, value in attrs.items():
        setattr(Counting, key, value)
    return Counting


def run(ids, dataset, results_dir, **options):
    return run_predictors(ids, RunOptions(dataset=dataset.name, results_dir=results_dir, progress=False, **options), dataset=dataset)


def all_files_text(*roots: Path) -> str:
    chunks = []
    for root in roots:
        for path in Path(root).rglob("*"):
            if path.is_file():
                chunks.append(path.read_bytes().decode("utf-8", "replace"))
    return "\n".join(chunks)


def test_cached_rerun_makes_no_predictor_call_and_no_fit_or_load(register_plugin, tiny_dataset, results_dir):
    counting = make_counting()
    register_plugin(Plugin(counting), name="counting-plugin")
    [first] = run(["counting"], tiny_dataset, results_dir)
    assert first.status == "complete" and first.new_items == 30
    assert (counting.fits, counting.loads, len(counting.predicted)) == (1, 0, 30)

    [second] = run(["counting"], tiny_dataset, results_dir)
    assert (counting.fits, counting.loads, len(counting.predicted)) == (1, 0, 30)
    assert second.cached_items == 30 and second.new_items == 0
    a, b = first.record, second.record
    assert a.metrics["error"].value == b.metrics["error"].value
    # Cached items keep their original latency and the fit time of the fit that made them.
    assert b.timing.predict_seconds_per_item == pytest.approx(a.timing.predict_seconds_per_item)
    assert b.timing.fit_seconds == pytest.approx(a.timing.fit_seconds)
    assert b.usage.cached_items == 30 and b.timing.fit_reused
    # Predictor facts (info()) reach the record, also when nothing was recomputed.
    assert a.extra == b.extra == {"batches_seen": 8}


@pytest.mark.parametrize("workers", [1, 3])
def test_interrupted_run_resumes_without_repeating_saved_batches(register_plugin, tiny_dataset, results_dir, workers):
    counting = make_counting(interrupt_after=3)
    register_plugin(Plugin(counting), name="counting-plugin")
    with pytest.raises(KeyboardInterrupt):
        run(["counting"], tiny_dataset, results_dir, workers=workers)
    first_run = list(counting.predicted)
    with PredictionCache(default_cache_path()) as cache:
        saved = {row[0] for row in cache.conn.execute("SELECT item_id FROM predictions")}
    assert len(first_run) == 12  # three batches of four answered before the interrupt
    assert saved <= set(first_run)
    # At most the batches in flight are lost.
    assert len(saved) >= 12 - (workers - 1) * 4
    assert not list(results_dir.rglob("*.json")), "an interrupted run writes no record"

    counting.interrupt_after = None
    counting.predicted.clear()
    [outcome] = run(["counting"], tiny_dataset, results_dir, workers=workers)
    assert outcome.status == "complete"
    assert not saved & set(counting.predicted), "a saved prediction was asked for again"
    assert set(counting.predicted) | saved == {item.id for item in tiny_dataset.test}
    if workers == 1:
        assert collections.Counter(first_run + counting.predicted) == {item.id: 1 for item in tiny_dataset.test}
    assert counting.fits == 1 and counting.loads == 1  # the resumed run loaded the fit, never refitted


@pytest.mark.parametrize("workers", [1, 3])
def test_predictor_raising_mid_batch_fails_alone(register_plugin, tiny_dataset, results_dir, workers):
    class Boom(Predictor):
        id = "boom"
        batch_size = 5
        calls = 0
        broken = True

        def predict(self, items):
            type(self).calls += 1
            if type(self).broken and type(self).calls == 2:
                raise ValueError("model exploded\nsecond line of noise")
            return [Prediction(raw=12.5) for _ in items]

    counting = make_counting()
    register_plugin(Plugin(Boom, counting), name="p")
    boom, ok = run(["boom", "counting"], tiny_dataset, results_dir, workers=workers)
    assert boom.status == "failed"
    assert boom.reason == "predict failed: ValueError: model exploded"
    assert read_record(boom.path).status == "failed"
    assert ok.status == "complete"
    # The batch finished before the failure is kept: the fixed predictor only predicts the rest.
    Boom.broken, Boom.calls = False, 0
    [again] = run(["boom"], tiny_dataset, results_dir, workers=workers)
    assert again.status == "complete" and again.new_items + again.cached_items == 30
    if workers == 1:
        assert again.cached_items == 5
    else:  # the batches the other workers finished are kept too
        assert again.cached_items in (5, 10, 15)


def test_live_progress_bar_runs(register_plugin, tiny_dataset, results_dir, capsys):
    counting = make_counting()
    register_plugin(Plugin(counting), name="p")
    [outcome] = run_predictors(["counting"], RunOptions(results_dir=results_dir, progress=True), dataset=tiny_dataset)
    assert outcome.status == "complete"
    err = capsys.readouterr().err
    assert "counting" in err and "30/30" in err and "Error $" in err


def test_fit_failure_is_a_failed_record(register_plugin, tiny_dataset, results_dir):
    class BadFit(Predictor):
        id = "bad-fit"

        def fit(self, train, validation, workdir):
            raise RuntimeError("no GPU memory")

        def predict(self, items):
            raise AssertionError("never called")

    register_plugin(Plugin(BadFit), name="p")
    [outcome] = run(["bad-fit"], tiny_dataset, results_dir)
    assert (outcome.status, outcome.reason) == ("failed", "fit failed: RuntimeError: no GPU memory")


def test_wrong_number_of_predictions_fails(register_plugin, tiny_dataset, results_dir):
    class Short(Predictor):
        id = "short"

        def predict(self, items):
            return [Prediction(raw=1.0)]

    register_plugin(Plugin(Short), name="p")
    [outcome] = run(["short"], tiny_dataset, results_dir)
    assert outcome.status == "failed" and "returned 1 predictions for 30 items" in outcome.reason


def test_config_change_invalidates_cache_and_work_folder(register_plugin, tiny_dataset, results_dir):
    counting = make_counting()
    register_plugin(Plugin(counting), name="p")
    [a] = run(["counting"], tiny_dataset, results_dir)
    [b] = run(["counting"], tiny_dataset, results_dir, overrides={"counting": {"offset": "5"}})
    assert len(counting.predicted) == 60 and counting.fits == 2
    assert a.record.predictor.config_hash != b.record.predictor.config_hash
    assert b.record.predictor.config["offset"] == 5.0
    rows = read_predictions(b.path)
    assert rows[0].guess == pytest.approx(read_predictions(a.path)[0].guess + 5)
    # Back to the defaults: everything comes from the first run's cache.
    [c] = run(["counting"], tiny_dataset, results_dir)
    assert len(counting.predicted) == 60 and c.cached_items == 30


def test_predictor_version_bump_invalidates_cache(register_plugin, tiny_dataset, results_dir):
    counting = make_counting()
    register_plugin(Plugin(counting), name="p")
    run(["counting"], tiny_dataset, results_dir)
    counting.version = "2"
    [outcome] = run(["counting"], tiny_dataset, results_dir)
    assert outcome.new_items == 30 and counting.fits == 2


def test_unmet_requirements_skip_never_fail(register_plugin, tiny_dataset, results_dir, monkeypatch):
    monkeypatch.delenv("PB_TEST_NEVER_SET", raising=False)

    class NeedsKey(Predictor):
        id = "needs-key"
        requires = (Requirement.env("PB_TEST_NEVER_SET", "get one from the vendor"),)

        def predict(self, items):
            raise AssertionError("a skipped predictor is never called")

    class NeedsPackage(Predictor):
        id = "needs-package"
        requires = (Requirement.package("no_such_package_for_price_bench"),)

        def predict(self, items):
            raise AssertionError("a skipped predictor is never called")

    register_plugin(Plugin(NeedsKey, NeedsPackage), name="p")
    key, package = run(["needs-key", "needs-package"], tiny_dataset, results_dir)
    assert key.status == "skipped" and "PB_TEST_NEVER_SET" in key.reason and "vendor" in key.reason
    assert package.status == "skipped" and "no_such_package_for_price_bench" in package.reason
    assert read_record(key.path).status == "skipped"


def test_limit_marks_the_record_and_feeds_the_cache(register_plugin, tiny_dataset, results_dir):
    counting = make_counting()
    register_plugin(Plugin(counting), name="p")
    [limited] = run(["counting"], tiny_dataset, results_dir, limit=7)
    record = limited.record
    assert (record.limit, record.n_items, record.n_total) == (7, 7, 30)
    assert not record.is_leaderboard_eligible
    assert read_record(limited.path).limit == 7
    [full] = run(["counting"], tiny_dataset, results_dir)
    assert full.record.limit is None and full.record.is_leaderboard_eligible
    assert full.cached_items == 7 and full.new_items == 23 and counting.loads == 1 and counting.fits == 1


def test_overwrite_never_and_always(register_plugin, tiny_dataset, results_dir):
    counting = make_counting()
    register_plugin(Plugin(counting), name="p")
    [first] = run(["counting"], tiny_dataset, results_dir)
    [never] = run(["counting"], tiny_dataset, results_dir, overwrite="never")
    assert never.status == "up-to-date" and never.path == first.path
    assert len(list(results_dir.rglob("*.json"))) == 1
    [always] = run(["counting"], tiny_dataset, results_dir, overwrite="always")
    assert always.new_items == 30 and len(counting.predicted) == 60
    with pytest.raises(HarnessError, match="--overwrite"):
        run(["counting"], tiny_dataset, results_dir, overwrite="sometimes")


def test_nondeterministic_predictions_are_never_cached(register_plugin, tiny_dataset, results_dir):
    counting = make_counting(nondeterministic=True)
    register_plugin(Plugin(counting), name="p")
    run(["counting"], tiny_dataset, results_dir)
    [again] = run(["counting"], tiny_dataset, results_dir)
    assert again.new_items == 30 and len(counting.predicted) == 60
    with PredictionCache(default_cache_path()) as cache:
        assert cache.conn.execute("SELECT COUNT(*) FROM predictions").fetchone()[0] == 0


def test_unparseable_answers_are_counted_and_scored_with_the_train_median(register_plugin, tiny_dataset, results_dir):
    class Vague(Predictor):
        id = "vague"

        def predict(self, items):
            return [
                Prediction(raw="I cannot tell" if i % 2 else "Price is $1,234.50", tokens_in=10, cost_usd=0.001)
                for i, _ in enumerate(items)
            ]

    register_plugin(Plugin(Vague), name="p")
    [outcome] = run(["vague"], tiny_dataset, results_dir)
    record = outcome.record
    median = sorted(item.price for item in tiny_dataset.train)
    train_median = (median[19] + median[20]) / 2
    assert record.parse_failures == 15 and record.fallback_price == pytest.approx(train_median)
    assert record.metrics["coverage"].value == 50.0
    assert record.usage.tokens_in == 300 and record.usage.cost_usd == pytest.approx(0.03)
    rows = read_predictions(outcome.path)
    assert [row.guess for row in rows if row.parsed is None] == [pytest.approx(train_median)] * 15
    assert {row.parsed for row in rows if row.parsed is not None} == {1234.5}
    sidecar = outcome.path.with_name(record.predictions_file).read_text()
    assert "Product 3 of the test split" not in sidecar, "product text never goes into the sidecar"


def test_item_errors_are_counted_not_cached_and_retried(register_plugin, tiny_dataset, results_dir):
    class Flaky(Predictor):
        id = "flaky"
        calls: ClassVar[list[str]] = []

        def predict(self, items):
            type(self).calls.extend(item.id for item in items)
            return [Prediction(raw=None, error="HTTP 500 after 3 retries") if i == 0 else Prediction(raw=20.0) for i, _ in enumerate(items)]

    register_plugin(Plugin(Flaky), name="p")
    [outcome] = run(["flaky"], tiny_dataset, results_dir)
    assert outcome.record.item_errors == 1 and outcome.record.metrics["coverage"].value == pytest.approx(100 * 29 / 30)
    Flaky.calls.clear()
    [again] = run(["flaky"], tiny_dataset, results_dir)
    assert Flaky.calls == [tiny_dataset.test[0].id]


def test_no_secret_is_written_anywhere(register_plugin, tiny_dataset, results_dir, monkeypatch, price_bench_home):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env-SECRET-4567")
    config_secret = "sk-config-SECRET-1234"

    class Leaky(Predictor):
        id = "leaky"
        Config = CountingConfig
        requires = (Requirement.env("OPENAI_API_KEY"),)

        def predict(self, items):
            import os

            return [Prediction(raw=f"$12 (used {self.config.api_key} and {os.environ['OPENAI_API_KEY']})") for _ in items]

    class LeakyError(Leaky):
        id = "leaky-error"

        def predict(self, items):
            raise PermissionError(f"key {self.config.api_key} was refused")

    register_plugin(Plugin(Leaky, LeakyError), name="p")
    overrides = {"leaky": {"api_key": config_secret, "max_tokens": "99"}, "leaky-error": {"api_key": config_secret}}
    ok, failed = run(["leaky", "leaky-error"], tiny_dataset, results_dir, overrides=overrides)
    assert ok.status == "complete" and failed.status == "failed"
    assert ok.record.predictor.config["api_key"] == "***"
    assert ok.record.predictor.config["max_tokens"] == 99, "max_tokens is not a secret"
    assert failed.reason == "predict failed: PermissionError: key *** was refused"
    assert read_predictions(ok.path)[0].parsed == 12.0
    written = all_files_text(results_dir, price_bench_home)
    assert "SECRET" not in written


def test_user_errors_are_raised_before_anything_runs(register_plugin, tiny_dataset, results_dir):
    counting = make_counting()
    register_plugin(Plugin(counting), name="p")
    with pytest.raises(HarnessError, match="unknown predictor 'countin'; did you mean counting"):
        run(["countin"], tiny_dataset, results_dir)
    with pytest.raises(HarnessError, match="unknown config key 'offst'"):
        run(["counting"], tiny_dataset, results_dir, overrides={"counting": {"offst": "1"}})
    with pytest.raises(HarnessError, match="bad value for 'offset'"):
        run(["counting"], tiny_dataset, results_dir, overrides={"counting": {"offset": "lots"}})
    with pytest.raises(HarnessError, match="not part of this run"):
        run(["counting"], tiny_dataset, results_dir, overrides={"other": {"x": "1"}})
    assert counting.predicted == [] and not results_dir.exists()


def test_record_carries_provenance(register_plugin, tiny_dataset, results_dir):
    counting = make_counting()
    register_plugin(Plugin(counting), name="p")
    [outcome] = run(["counting"], tiny_dataset, results_dir, seed=3)
    record = read_record(outcome.path)
    assert record.dataset.fingerprint == tiny_dataset.fingerprint and record.dataset.recipe == "test@1"
    assert record.seed == 3 and record.predictor.plugin_distribution == "p (in-process)"
    assert record.timing.fit_seconds is not None and record.timing.predict_seconds_per_item > 0
    assert set(record.breakdowns) == {"category", "price_band"}
    assert sum(row.n for row in record.breakdowns["price_band"].values()) == 30
    assert record.metrics["error"].ci_low <= record.metrics["error"].value <= record.metrics["error"].ci_high
    # A different seed is a different cache key and work folder.
    [other] = run(["counting"], tiny_dataset, results_dir, seed=4)
    assert other.new_items == 30 and counting.fits == 2


class RoleConfig(PredictorConfig):
    offset: float = 0.0
    suffix: str = predict_field("")
    concurrency: int = runtime_field(1)


def test_field_roles_key_the_work_folder_and_cache_separately(register_plugin, tiny_dataset, results_dir):
    counting = make_counting(Config=RoleConfig)
    register_plugin(Plugin(counting), name="p")
    [a] = run(["counting"], tiny_dataset, results_dir)
    # A runtime field changes nothing that is cached: no fit, no predictor call.
    [b] = run(["counting"], tiny_dataset, results_dir, overrides={"counting": {"concurrency": "8"}})
    assert (counting.fits, len(counting.predicted), b.cached_items) == (1, 30, 30)
    assert a.record.predictor.config_hash == b.record.predictor.config_hash
    # A predict field makes new predictions from the same fit (loaded, not refitted).
    [c] = run(["counting"], tiny_dataset, results_dir, overrides={"counting": {"suffix": "x"}})
    assert (counting.fits, counting.loads, len(counting.predicted), c.new_items) == (1, 1, 60, 30)
    assert c.record.predictor.config_hash != a.record.predictor.config_hash
    # A fit field refits.
    run(["counting"], tiny_dataset, results_dir, overrides={"counting": {"offset": "1"}})
    assert counting.fits == 2


def test_no_raw_output_keeps_parsed_prices_only(register_plugin, tiny_dataset, results_dir):
    counting = make_counting()
    register_plugin(Plugin(counting), name="p")
    [outcome] = run(["counting"], tiny_dataset, results_dir, raw_output=False)
    rows = read_predictions(outcome.path)
    assert len(rows) == 30 and all(row.raw is None and row.parsed is not None for row in rows)
