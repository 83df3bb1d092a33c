"""``price-bench predict``: price one product text with a predictor fitted (or restored) on a dataset's train split.

The work folder is the one ``price-bench run`` uses for the same predictor,
fit fields, versions, code, seed and dataset (:class:`~price_bench.harness.runkey.RunKey`),
so predicting after a run never refits; nothing is cached or recorded.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from price_bench.harness.errors import HarnessError, one_line
from price_bench.harness.fitting import close_predictor, fit_or_load
from price_bench.harness.options import check_seed, open_dataset_by_name
from price_bench.harness.overrides import build_config
from price_bench.harness.runkey import RunKey
from price_bench.harness.scoring import answer_price
from price_bench.items import Item
from price_bench.predictors.contract import Prediction
from price_bench.predictors.registry import PredictorRegistry, UnknownPredictorError


@dataclass
class PricedText:
    """One predictor's answer for one product text."""

    predictor_id: str
    #: The price the answer gives (None: the answer has no price).
    price: float | None
    prediction: Prediction
    #: True when the fit was restored from the work folder (no refit).
    fit_reused: bool


def predict_text(
    predictor_id: str,
    text: str,
    *,
    dataset: str = "demo",
    overrides: Mapping[str, Mapping[str, str]] | None = None,
    seed: int = 0,
    registry: PredictorRegistry | None = None,
    home: Path | None = None,
) -> PricedText:
    """Fit ``predictor_id`` on ``dataset`` (or load its fit) and price ``text``.

    ``overrides``: ``{predictor id: {key: value}}`` as ``-o`` gives them (only
    for this predictor). HarnessError (one line) for an unknown or unloadable
    predictor, a bad override, an unmet requirement, an empty text or a
    predictor that raises.
    """
    check_seed(seed)
    if not text.strip():
        raise HarnessError("the product text is empty")
    stray = sorted(set(overrides or {}) - {predictor_id})
    if stray:
        raise HarnessError(f"-o {stray[0]}.…: predictor {stray[0]!r} is not the one predicting")
    if registry is None:
        from price_bench.plugins.manager import get_registry

        registry = get_registry()
    try:
        spec = registry.get(predictor_id)
    except UnknownPredictorError as exc:
        raise HarnessError(str(exc)) from None
    try:
        cls = spec.load()
    except Exception as exc:
        raise HarnessError(f"could not load {predictor_id}: {one_line(exc)}") from None
    config = build_config(cls, dict((overrides or {}).get(predictor_id, {})))
    reason = cls.skip_reason(config)
    if reason:
        raise HarnessError(f"{predictor_id} cannot run here: {reason}")
    ds = open_dataset_by_name(dataset)
    workdir = RunKey.for_predictor(spec, cls, config, ds.fingerprint, seed).workdir(home)
    predictor = cls(config, seed=seed)
    try:
        _, reused = fit_or_load(predictor, ds, workdir)
        prediction = predictor.predict([Item(id="cli", text=text, price=float("nan"))])[0]
    except Exception as exc:
        raise HarnessError(f"{predictor_id} failed: {one_line(exc)}") from None
    finally:
        close_predictor(predictor)
    return PricedText(predictor_id, answer_price(prediction), prediction, reused)
