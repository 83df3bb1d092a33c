"""price_bench.evaluate and Results: the CLI's runner as one call, for notebooks and scripts."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import price_bench
from price_bench import HarnessError, Item, Prediction, Predictor, PredictorConfig, predict_field
from price_bench.harness.cache import default_cache_path
from price_bench.results.store import ResultError


class ShiftConfig(PredictorConfig):
    shift: float = predict_field(0.0)
    scale: float = 1.0


class CategoryMean(Predictor):
    """Mean train price of the item's category: defined here, registered nowhere."""

    id = "category-mean-test"
    description = "category mean (test)"
    Config = ShiftConfig

    def fit(self, train, validation, workdir: Path) -> None:
        sums: dict[str, list[float]] = {}
        for item in train:
            sums.setdefault(item.category or "", []).append(item.price)
        self.means = {c: sum(v) / len(v) for c, v in sums.items()}
        (workdir / "means.json").write_text(json.dumps(self.means))

    def load(self, workdir: Path) -> bool:
        self.means = json.loads((workdir / "means.json").read_text())
        return True

    def predict(self, items: list[Item]) -> list[Prediction]:
        return [Prediction(price=self.means.get(i.category or "", 50.0) * self.config.scale + self.config.shift) for i in items]


class Talker(Predictor):
    """Answers in text with markup-looking junk the displays must escape."""

    id = "talker-test"
    description = "talks"

    def predict(self, items):
        return [Prediction(raw="[bold red]<b>about</b> $40[/]") for _ in items]


class Broken(Predictor):
    id = "broken-test"

    def predict(self, items):
        raise RuntimeError("<script>kaput</script> [red]x[/red]")


def test_a_notebook_class_runs_without_registration_and_writes_records_to_the_results_folder(tiny_dataset):
    results = price_bench.evaluate(CategoryMean, tiny_dataset)
    [run] = results.runs
    assert run.status == "complete"
    assert run.record.predictor.plugin_distribution == f"{__name__} (in-process)"
    assert run.record.predictor.plugin_version.startswith("code-")
    # The default results folder is the CLI's: $PRICE_BENCH_RESULTS (an isolated folder under pytest).
    assert run.path.is_relative_to(Path(os.environ["PRICE_BENCH_RESULTS"]))
    assert run.record.n_items == len(tiny_dataset.test)
    # Prediction(price=...) without raw: every answer counts as parsed.
    assert run.record.metrics["coverage"].value == 100.0
    assert default_cache_path().exists(), "the CLI's prediction cache is used"


def test_ids_classes_and_instances_with_overrides_and_seeds(register_predictor, tiny_dataset, tmp_path):
    register_predictor(Talker)
    instance = CategoryMean(CategoryMean.Config(shift=5.0))
    results = price_bench.evaluate(
        ["talker-test", instance], "tiny", overrides={"category-mean-test": {"scale": "2"}}, seeds=[0, 1], results_dir=tmp_path / "r"
    )
    assert [(r.predictor_id, r.record.seed) for r in results] == [
        ("talker-test", 0), ("category-mean-test", 0), ("talker-test", 1), ("category-mean-test", 1)
    ]
    config = results["category-mean-test"].record.predictor.config
    assert config.items() >= {"shift": 5.0, "scale": 2.0}.items(), "the instance's config plus the explicit override"
    assert results["talker-test"].record.predictor.plugin_distribution == "test-predictors[talker-test] (in-process)"
    assert all(r.path.is_relative_to(tmp_path / "r") for r in results)


def test_two_configs_of_one_class_are_two_runs(tiny_dataset):
    results = price_bench.evaluate([CategoryMean(), CategoryMean(CategoryMean.Config(shift=100.0))], tiny_dataset, limit=10)
    errors = [r.record.metrics["error"].value for r in results]
    assert len(errors) == 2 and errors[0] != errors[1]
    assert all(r.record.limit == 10 and r.record.n_items == 10 for r in results)


def test_a_second_call_is_served_from_the_cache_and_editing_the_code_is_not(tiny_dataset):
    first = price_bench.evaluate(CategoryMean, tiny_dataset)["category-mean-test"].record
    again = price_bench.evaluate(CategoryMean, tiny_dataset)["category-mean-test"].record
    assert (again.usage.cached_items, again.usage.new_items) == (len(tiny_dataset.test), 0)
    assert again.metrics["error"].value == first.metrics["error"].value

    class Edited(CategoryMean):  # the "same" predictor after editing predict() in a cell
        def predict(self, items):
            return [Prediction(price=1.0) for _ in items]

    edited = price_bench.evaluate(Edited, tiny_dataset)["category-mean-test"].record
    assert edited.usage.new_items == len(tiny_dataset.test), "new code never reuses the old code's answers"
    assert edited.predictor.plugin_version != first.predictor.plugin_version


def test_results_tables(tiny_dataset):
    results = price_bench.evaluate([CategoryMean, Talker, Broken], tiny_dataset)
    assert [r.status for r in results] == ["complete", "complete", "failed"]
    assert [r.predictor_id for r in results.failed] == ["broken-test"]

    metrics = results.metrics_df()
    assert list(metrics.predictor) == ["category-mean-test", "talker-test", "broken-test"]
    row = metrics.set_index("predictor").loc["category-mean-test"]
    record = results["category-mean-test"].record
    assert row.error == record.metrics["error"].value
    assert row.error_ci_low <= row.error <= row.error_ci_high
    for name in ("rmsle", "hits", "coverage", "r2", "orange"):
        assert name in metrics.columns
    assert metrics.set_index("predictor").loc["broken-test", "reason"].startswith("predict failed: RuntimeError")

    items = results.predictions_df()
    assert set(items.predictor) == {"category-mean-test", "talker-test"}
    one = items[items.predictor == "category-mean-test"]
    assert len(one) == len(tiny_dataset.test)
    assert list(one.id) == [i.id for i in tiny_dataset.test]
    assert (one.error - (one.guess - one.truth).abs()).abs().max() < 1e-9
    assert abs(one.error.mean() - record.metrics["error"].value) < 1e-6
    assert list(one.title) == [i.title for i in tiny_dataset.test]
    assert set(one.columns) >= {"id", "truth", "guess", "error", "category", "title"}

    comparison = results.compare("category-mean-test", "talker-test", n_resamples=200)
    assert comparison["a"]["predictor"] == "category-mean-test" and comparison["n"] == len(tiny_dataset.test)
    assert comparison["error_a"] == pytest.approx(record.metrics["error"].value)
    with pytest.raises(ResultError, match="failed, not complete"):
        results.compare("category-mean-test", "broken-test")


def test_displays_escape_what_predictors_wrote(tiny_dataset):
    from rich.console import Console

    results = price_bench.evaluate([Talker, Broken], tiny_dataset)
    page = results._repr_html_()
    assert "<script>" not in page and "&lt;script&gt;kaput&lt;/script&gt;" in page
    assert page.startswith("<table>")
    text = repr(results)
    assert "talker-test" in text and "[red]x[/red]" in text, "markup-looking text is shown literally"
    console = Console(record=True, width=200)
    console.print(results)
    assert "[red]x[/red]" in console.export_text()


def test_results_load_reads_a_results_folder(tiny_dataset, tmp_path):
    price_bench.evaluate([CategoryMean, Talker], tiny_dataset, results_dir=tmp_path / "res")
    loaded = price_bench.Results.load(tmp_path / "res", predictor="talker-test")
    assert [r.predictor_id for r in loaded] == ["talker-test"]
    assert len(loaded.predictions_df()) == len(tiny_dataset.test)
    assert "title" not in loaded.predictions_df().columns, "no dataset at hand: no product text"


def test_user_errors_are_one_line_harness_errors(tiny_dataset):
    with pytest.raises(HarnessError, match="unknown predictor 'nope'"):
        price_bench.evaluate("nope", tiny_dataset)
    with pytest.raises(HarnessError, match="unknown config key 'bogus'"):
        price_bench.evaluate(CategoryMean, tiny_dataset, overrides=["category-mean-test.bogus=1"])
    with pytest.raises(HarnessError, match="not part of this call"):
        price_bench.evaluate(CategoryMean, tiny_dataset, overrides={"other": {"x": 1}})
    with pytest.raises(HarnessError, match="no dataset named 'missing'"):
        price_bench.evaluate(CategoryMean, "missing")
    with pytest.raises(HarnessError, match="expected a predictor id"):
        price_bench.evaluate([42], tiny_dataset)


def test_a_class_reusing_a_registered_id_is_refused(register_predictor, tiny_dataset):
    register_predictor(Talker)

    class Impostor(Talker):
        pass

    with pytest.raises(HarnessError, match="already registered"):
        price_bench.evaluate(Impostor, tiny_dataset)
    assert price_bench.evaluate(Talker, tiny_dataset)["talker-test"].status == "complete", "the registered class itself is fine"
