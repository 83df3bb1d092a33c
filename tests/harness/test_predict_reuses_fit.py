"""`price-bench predict` finds the fit `price-bench run` made: both key the work folder by the fit fields only."""

from __future__ import annotations

import json
from pathlib import Path
from typing import ClassVar

from click.testing import CliRunner

from price_bench import Prediction, Predictor, PredictorConfig, predict_field
from price_bench.cli.main import get_cli


class CountingConfig(PredictorConfig):
    scale: float = 1.0
    max_tokens: int = predict_field(16)


class CountsFits(Predictor):
    id = "counts-fits"
    Config = CountingConfig
    fits: ClassVar[int] = 0

    def fit(self, train, validation, workdir: Path) -> None:
        type(self).fits += 1
        (workdir / "mean.json").write_text(json.dumps(sum(i.price for i in train) / len(train)))
        self.load(workdir)

    def load(self, workdir: Path) -> bool:
        self.mean = json.loads((workdir / "mean.json").read_text())
        return True

    def predict(self, items):
        return [Prediction(price=self.mean * self.config.scale) for _ in items]


def test_predict_reuses_the_fit_of_run_even_with_another_predict_field(register_predictor, tiny_dataset):
    register_predictor(CountsFits)
    CountsFits.fits = 0
    cli = get_cli()
    ran = CliRunner().invoke(cli, ["run", "counts-fits", "--dataset", "tiny", "--limit", "5"])
    assert ran.exit_code == 0, ran.output
    assert CountsFits.fits == 1
    predicted = CliRunner().invoke(cli, ["predict", "counts-fits", "a mug", "--dataset", "tiny", "-o", "counts-fits.max_tokens=32", "--json"])
    assert predicted.exit_code == 0, predicted.output
    assert CountsFits.fits == 1, "predict must not refit (for a paid fine-tune that would be a new job)"
    refit = CliRunner().invoke(cli, ["predict", "counts-fits", "a mug", "--dataset", "tiny", "-o", "counts-fits.scale=2", "--json"])
    assert refit.exit_code == 0, refit.output
    assert CountsFits.fits == 2, "a fit field is a new work folder"
