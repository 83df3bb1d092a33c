"""`run`, `predict` and `serve bundle` find one fit through one RunKey: predict after run never refits."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import ClassVar

import pytest
from click.testing import CliRunner

from price_bench import Prediction, Predictor, PredictorConfig, predict_field
from price_bench.cli.main import get_cli
from price_bench.harness.cache import PredictionCache, default_cache_path
from price_bench.harness.runkey import RunKey
from price_bench.results.store import find_run


class KeyedConfig(PredictorConfig):
    """``scale`` is a fit field (a new work folder); ``max_tokens`` a predict field (the same one)."""

    max_tokens: int = predict_field(16)
    scale: float = 1.0


class KeyedMean(Predictor):
    """Prices every item at the train mean times ``scale``; counts its fits."""

    id = "keyed-mean"
    Config = KeyedConfig
    fits: ClassVar[int] = 0
    mean = 0.0

    def load(self, workdir: Path) -> bool:
        saved = workdir / "train-mean.txt"
        if saved.is_file():
            self.mean = float(saved.read_text())
        return saved.is_file()

    def fit(self, train, validation, workdir: Path) -> None:
        KeyedMean.fits += 1
        prices = [item.price for item in train]
        (workdir / "train-mean.txt").write_text(repr(sum(prices) / len(prices)))
        assert self.load(workdir)

    def predict(self, items):
        price = self.mean * self.config.scale
        return [Prediction(price=price) for _ in items]


@pytest.fixture
def workdirs(monkeypatch):
    """Every work folder a RunKey hands out during the test, in order."""
    seen: list[Path] = []
    original = RunKey.workdir

    def recording(self, home=None):
        path = original(self, home)
        seen.append(path)
        return path

    monkeypatch.setattr(RunKey, "workdir", recording)
    return seen


def test_run_predict_and_bundle_share_one_run_key(register_predictor, tiny_dataset, tmp_path, workdirs):
    from price_bench.serve.bundle import build_bundle

    register_predictor(KeyedMean)
    KeyedMean.fits = 0
    cli, results = get_cli(), tmp_path / "results"
    ran = CliRunner().invoke(cli, ["run", "keyed-mean", "--dataset", "tiny", "--limit", "5", "--results", str(results)])
    assert ran.exit_code == 0, ran.output
    predicted = CliRunner().invoke(cli, ["predict", "keyed-mean", "a mug", "--dataset", "tiny", "-o", "keyed-mean.max_tokens=64"])
    assert predicted.exit_code == 0, predicted.output
    _, record = find_run(record_id(results), results)
    bundle = build_bundle(record.run_id, tmp_path / "bundle", results_dir=results)

    assert KeyedMean.fits == 1, "predict after run must load run's fit, not refit"
    assert len(workdirs) == 3 and len(set(workdirs)) == 1, workdirs  # run, predict and bundle: one folder
    assert bundle.manifest.fit.workdir == str(workdirs[0])
    from price_bench.plugins.manager import get_registry

    key = RunKey.for_predictor(get_registry().get("keyed-mean"), KeyedMean, KeyedMean.Config(), tiny_dataset.fingerprint)
    assert key.code_digest and record.predictor.code_digest == key.code_digest
    assert RunKey.for_record(record, KeyedMean.Config()) == key
    with PredictionCache(default_cache_path()) as cache:
        assert len(cache.get(key.cache_key())) == 5, "the run's answers are cached under the RunKey's cache key"


def test_a_predict_field_keeps_the_work_folder_and_changes_the_cache_key(tiny_dataset):
    spec = register_predictor_spec()
    plain = RunKey.for_predictor(spec, KeyedMean, KeyedMean.Config(), tiny_dataset.fingerprint)
    longer = RunKey.for_predictor(spec, KeyedMean, KeyedMean.Config(max_tokens=64), tiny_dataset.fingerprint)
    scaled = RunKey.for_predictor(spec, KeyedMean, KeyedMean.Config(scale=2.0), tiny_dataset.fingerprint)
    assert longer.workdir() == plain.workdir() and longer.cache_key() != plain.cache_key()
    assert scaled.workdir() != plain.workdir()
    assert RunKey.for_predictor(spec, KeyedMean, KeyedMean.Config(), tiny_dataset.fingerprint, seed=1).workdir() != plain.workdir()


class FailsToClose(KeyedMean):
    id = "fails-to-close"

    def close(self) -> None:
        raise RuntimeError("socket already gone")


def test_a_close_failure_is_logged_and_the_run_completes(register_predictor, tiny_dataset, tmp_path, caplog):
    from price_bench.harness.runner import RunOptions, run_predictors

    register_predictor(FailsToClose)
    with caplog.at_level(logging.WARNING, logger="price_bench.harness"):
        (outcome,) = run_predictors(["fails-to-close"], RunOptions(dataset="tiny", limit=5, results_dir=tmp_path / "r", n_resamples=0))
    assert outcome.status == "complete"
    assert any("fails-to-close: close() raised RuntimeError: socket already gone" in r.getMessage() for r in caplog.records)


def register_predictor_spec():
    from price_bench.predictors.registry import PredictorSpec

    return PredictorSpec(id=KeyedMean.id, factory=KeyedMean, description="", origin="tests", plugin_version="0")


def record_id(results: Path) -> str:
    (path,) = sorted(results.rglob("*.json"))
    return path.stem
