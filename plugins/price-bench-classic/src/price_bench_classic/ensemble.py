"""``ensemble``: stacking this plugin's models on out-of-fold predictions.

For each base model listed in the config, ``fit`` computes out-of-fold
predictions on the training items with a seeded KFold (each fold trains a
fresh copy of the base model from its default config), then fits a
non-negative linear blend of the bases' log prices to the true log price
(``LinearRegression(positive=True)``: a base that does not help gets weight 0).
With ``dollar_scale`` (the default) the blend's prices are then multiplied by
one factor fitted on the same out-of-fold predictions to minimise the mean
absolute error in dollars, the benchmark's Error (a blend on log price aims
at the median of the log; the factor is the weighted median of
``price / guess`` with weights ``guess``, the exact minimiser of
``sum |price - s * guess|``). Each base is also fitted on all training items; when the same process has
already fitted that base on the same items with the same config and seed (the standalone predictor earlier
in ``price-bench run --all``), that fit is reused (:mod:`price_bench_classic.fitted`; the record's
``info.reused_fits`` lists them). Everything happens inside the process: the ensemble never reads
another predictor's work folder.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
from pydantic import field_validator

from price_bench import Item, PredictorConfig
from price_bench_classic.base import ClassicConfig, ClassicPredictor, ItemRegressor

#: Chosen by 5-fold CV on amazon-course's train items (bench/RESULTS.md, issue 18): the blend of
#: these four is within 0.002 x constant-mean of all seven classic bases at two thirds of the fit time.
DEFAULT_BASES = ("svd-hgb", "minilm-knn", "minilm-ridge", "sparse-mlp")


def base_classes() -> dict[str, type[ClassicPredictor]]:
    """The predictors an ensemble may stack, by id (every classic predictor but the ensemble)."""
    from price_bench_classic import predictor_classes

    return {cls.id: cls for cls in predictor_classes() if issubclass(cls, ClassicPredictor) and cls.id != Ensemble.id}


class StackingModel(ItemRegressor):
    """Out-of-fold stacking of base :class:`ItemRegressor` s with a non-negative linear blender."""

    config: EnsembleConfig

    @property
    def base_ids(self) -> list[str]:
        """The stacked bases' ids, in the order of the blender's columns."""
        return list(self.config.bases)

    def _new_base(self, base_id: str) -> ItemRegressor:
        cls = base_classes()[base_id]
        return cls(cls.Config(), seed=self.seed).build_model()

    def folds_for(self, n_items: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """The seeded KFold (fit rows, held rows) pairs that the out-of-fold predictions use."""
        from sklearn.model_selection import KFold  # type: ignore[import-untyped]

        return list(KFold(n_splits=min(self.config.folds, n_items), shuffle=True, random_state=self.seed).split(np.zeros(n_items)))

    def _fit_prices(self, items: Sequence[Item], prices: np.ndarray) -> None:
        """Fit the stack; the bases see the exact ``prices`` (not ``expm1(log1p(price))``)."""
        from price_bench_classic.fitted import fit_or_reuse

        folds = self.folds_for(len(items))
        out_of_fold = np.zeros((len(items), len(self.base_ids)))
        models: list[ItemRegressor] = []
        self.reused_fits: list[str] = []
        for column, base_id in enumerate(self.base_ids):
            # The full fit first: when this process already fitted the base on these items (the
            # standalone predictor in the same run), only the fold fits remain.
            model, reused = fit_or_reuse(self._new_base(base_id), items, prices)
            models.append(model)
            if reused:
                self.reused_fits.append(base_id)
            for fit_rows, held_rows in folds:
                fold_model = self._new_base(base_id).fit([items[i] for i in fit_rows], prices[fit_rows])
                out_of_fold[held_rows, column] = fold_model.predict([items[i] for i in held_rows])
        self.stack(out_of_fold, models, np.log1p(prices))

    def stack(self, out_of_fold: np.ndarray, models: Sequence[ItemRegressor], y: np.ndarray) -> None:
        """Fit the blender on the bases' out-of-fold predictions (columns in ``bases`` order) and keep the full fits.

        ``y`` is the log price.
        """
        prices = np.expm1(y)
        self.models = list(models)
        self.blender = Blender(dollar_scale=self.config.dollar_scale).fit(out_of_fold, prices)
        self.oof_error = {b: float(np.mean(np.abs(out_of_fold[:, c] - prices))) for c, b in enumerate(self.base_ids)}

    def _predict(self, items: Sequence[Item]) -> np.ndarray:
        stacked = np.column_stack([model.predict(items) for model in self.models])
        return np.asarray(np.log1p(np.maximum(self.blender.predict(stacked), 0.0)), dtype=np.float64)

    @property
    def weights(self) -> dict[str, float]:
        """The blender's weight per base (log-price space)."""
        return {b: float(w) for b, w in zip(self.base_ids, self.blender.linear.coef_)}

    def info(self) -> dict[str, Any]:
        return {
            **super().info(),
            "weights": {b: round(w, 4) for b, w in self.weights.items()},
            "intercept": round(float(self.blender.linear.intercept_), 4),
            "dollar_scale": round(self.blender.scale, 4),
            "out_of_fold_error": {b: round(e, 2) for b, e in self.oof_error.items()},
            # Bases whose full fit was the one the same process had already made (same items, config, seed).
            "reused_fits": list(getattr(self, "reused_fits", [])),
        }


class Blender:
    """The stack's blender: non-negative weights on the bases' log prices, then an optional dollar factor.

    ``fit(guesses, prices)`` takes the bases' price guesses (one column per
    base) and the true prices; ``predict(guesses)`` returns prices (not
    clipped: the caller clips to the train range). bench/classic_cv.py uses
    this same class for the ensemble's rows.
    """

    def __init__(self, *, dollar_scale: bool) -> None:
        self.dollar_scale = dollar_scale
        self.scale = 1.0

    def fit(self, guesses: np.ndarray, prices: np.ndarray) -> Blender:
        from sklearn.linear_model import LinearRegression  # type: ignore[import-untyped]

        self.linear = LinearRegression(positive=True).fit(np.log1p(guesses), np.log1p(prices))
        if self.dollar_scale:
            self.scale = dollar_factor(prices, self.predict(guesses))
        return self

    def predict(self, guesses: np.ndarray) -> np.ndarray:
        raw = np.asarray(self.linear.predict(np.log1p(guesses)), dtype=np.float64)
        return self.scale * np.expm1(np.clip(raw, -50, 50))


def dollar_factor(prices: np.ndarray, guesses: np.ndarray) -> float:
    """The factor ``s`` minimising ``sum |price - s * guess|``: the median of ``price / guess`` weighted by ``guess``."""
    keep = guesses > 0
    ratios, weights = prices[keep] / guesses[keep], guesses[keep]
    if not len(ratios):
        return 1.0
    order = np.argsort(ratios, kind="stable")
    cumulative = np.cumsum(weights[order])
    return float(ratios[order][np.searchsorted(cumulative, cumulative[-1] / 2)])


class EnsembleConfig(ClassicConfig):
    """Configuration of ``ensemble``."""

    #: Ids of this plugin's predictors to stack (each with its default config).
    bases: list[str] = list(DEFAULT_BASES)
    folds: int = 5
    #: Multiply the blend's prices by one factor fitted (out of fold) to minimise the Error in dollars.
    dollar_scale: bool = True

    @field_validator("bases")
    @classmethod
    def _known_bases(cls, value: list[str]) -> list[str]:
        known = base_classes()
        unknown = [b for b in value if b not in known]
        if unknown:
            raise ValueError(f"unknown base {unknown[0]!r}; choose from {', '.join(sorted(known))}")
        if not value:
            raise ValueError("list at least one base predictor")
        return list(dict.fromkeys(value))

    @field_validator("folds")
    @classmethod
    def _enough_folds(cls, value: int) -> int:
        if value < 2:
            raise ValueError("folds must be at least 2")
        return value


class Ensemble(ClassicPredictor):
    id = "ensemble"
    Config = EnsembleConfig
    Model = StackingModel
    batch_size: ClassVar[int] = 256

    @classmethod
    def skip_reason(cls, config: PredictorConfig) -> str | None:
        known = base_classes()
        for base_id in getattr(config, "bases", ()):
            reason = known[base_id].skip_reason(known[base_id].Config())
            if reason:
                return f"base {base_id}: {reason} (or leave it out: -o ensemble.bases=...)"
        return None
