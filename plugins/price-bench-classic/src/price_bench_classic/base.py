"""What every classic predictor shares: an item regressor, fitting, persistence, predicting.

A predictor here is a thin :class:`price_bench.Predictor` around an
:class:`ItemRegressor` (``fit(items, prices)`` / ``predict(items)``), built by
``build_model()`` from the predictor's config. The regressor is what gets
saved (joblib) in the harness's work folder, and what the ``ensemble`` trains
on folds, so it never touches another predictor's work folder.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from price_bench import Item, Prediction, Predictor, PredictorConfig, field_role
from price_bench_classic import description_of

MODEL_FILE = "model.joblib"
META_FILE = "model.json"
#: Bumped when the pickled regressors change shape (2: they keep their config object).
FORMAT = 2


class ItemRegressor:
    """Maps items to prices. Subclasses implement ``_fit`` and ``_predict`` on the target scale.

    A regressor keeps the predictor's config object (``self.config``) and
    reads its settings from it. With ``log_target`` (the config's field of
    that name; a config without one trains on the log price) the subclass
    sees ``log1p(price)`` and returns that scale; predictions are mapped back
    and clipped to the train price range (a linear model must never answer a
    negative price).
    """

    def __init__(self, config: PredictorConfig, *, seed: int) -> None:
        self.config = config
        self.seed = seed

    @property
    def log_target(self) -> bool:
        """Whether the model is fitted on ``log1p(price)``."""
        return bool(getattr(self.config, "log_target", True))

    def fit(self, items: Sequence[Item], prices: Sequence[float]) -> ItemRegressor:
        """Learn from ``items`` and their true ``prices``."""
        y = np.asarray(prices, dtype=np.float64)
        if len(items) != len(y) or len(y) < 2:
            raise ValueError(f"need at least 2 items with prices to fit, got {len(items)} items and {len(y)} prices")
        self._remember_targets(y)
        with single_threaded_blas():
            self._fit_prices(items, y)
        return self

    def _fit_prices(self, items: Sequence[Item], prices: np.ndarray) -> None:
        """:meth:`_fit` on the target scale; a model that needs the exact prices overrides this instead."""
        self._fit(items, np.log1p(prices) if self.log_target else prices)

    def _remember_targets(self, y: np.ndarray) -> None:
        """The train price range (predictions are clipped to it), a fallback price and the train size."""
        self.low, self.high = float(y.min()), float(y.max())
        self.fallback = float(np.median(y))
        self.train_items = len(y)

    def predict(self, items: Sequence[Item]) -> np.ndarray:
        """Prices for ``items`` (never reads ``item.price``)."""
        if not items:
            return np.zeros(0)
        with single_threaded_blas(), trusted_inputs():
            raw = np.asarray(self._predict(items), dtype=np.float64).reshape(-1)
        prices = np.expm1(np.clip(raw, -50, 50)) if self.log_target else raw
        prices = np.where(np.isfinite(prices), prices, self.fallback)  # never seen; a NaN must not reach the harness
        return np.clip(prices, self.low, self.high)

    def info(self) -> dict[str, Any]:
        """Facts about the fit for the result record (JSON-serialisable)."""
        return {"train_items": self.train_items}

    def _fit(self, items: Sequence[Item], y: np.ndarray) -> None:
        raise NotImplementedError

    def _predict(self, items: Sequence[Item]) -> np.ndarray:
        raise NotImplementedError


def single_threaded_blas() -> Any:
    """Limit numpy/scipy BLAS to one thread for the duration (a context manager).

    The models here do little dense algebra, and BLAS threads that spin-wait
    on a CPU shared with other jobs can make a 5-second fit take minutes.
    One thread also keeps floating-point sums in a fixed order. (Torch, used
    by MiniLM, has its own thread pool and is not affected.)

    One :class:`threadpoolctl.ThreadpoolController` is kept for the process:
    ``threadpool_limits()`` rescans every loaded library on each call (tens
    of ms on a busy machine), which dominated one-item predictions when served.
    """
    global _BLAS_CONTROLLER
    if _BLAS_CONTROLLER is None:
        from threadpoolctl import ThreadpoolController  # type: ignore[import-untyped]

        _BLAS_CONTROLLER = ThreadpoolController()
    return _BLAS_CONTROLLER.limit(limits=1, user_api="blas")


_BLAS_CONTROLLER: Any = None


def trusted_inputs() -> Any:
    """scikit-learn without its input and parameter checks for the duration (a context manager).

    At predict time every array reaching scikit-learn was made by this
    plugin's own fitted transformers (finite, of the right shape), so the
    finiteness scans and parameter validation only cost time: they were most
    of a one-item ``tfidf-ridge`` prediction. The answers are the same.
    """
    import sklearn

    return sklearn.config_context(assume_finite=True, skip_parameter_validation=True)


def texts_of(items: Sequence[Item]) -> list[str]:
    """The text a model may read: the category (when known) and the item text."""
    return [f"{item.category or ''}\n{item.text}" if item.category else item.text for item in items]


class ClassicConfig(PredictorConfig):
    """Fields every classic predictor's config has."""

    #: Train on train plus validation items: none of these models needs a held-out set.
    use_validation: bool = True


class LogPriceConfig(ClassicConfig):
    """A config whose model can regress the raw price or (default) the log price."""

    log_target: bool = True


class ClassicPredictor(Predictor):
    """Base for this plugin's predictors: fit/load/predict around :meth:`build_model`.

    A subclass names its ``id``, ``Config`` and ``Model`` (the
    :class:`ItemRegressor` built from the config); its description is read
    from the plugin's table (:data:`price_bench_classic.SPECS`).
    """

    batch_size: ClassVar[int] = 1024
    Model: ClassVar[type[ItemRegressor]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.id and "description" not in cls.__dict__:
            cls.description = description_of(cls.id)

    def build_model(self) -> ItemRegressor:
        """A fresh, unfitted regressor for this config and seed."""
        return self.Model(self.config, seed=self.seed)

    # -- the harness contract ----------------------------------------------------------

    def fit(self, train: Sequence[Item], validation: Sequence[Item], workdir: Path) -> None:
        from price_bench_classic.fitted import fit_or_reuse

        items = list(train) + (list(validation) if getattr(self.config, "use_validation", True) else [])
        self.model, self.reused_fit = fit_or_reuse(self.build_model(), items, [item.price for item in items])
        save_model(Path(workdir), self.model, self._identity())

    def load(self, workdir: Path) -> bool:
        model = load_model(Path(workdir), self._identity())
        if model is None:
            return False
        self.model = model
        return True

    def predict(self, items: Sequence[Item]) -> list[Prediction]:
        prices = [round(p, 2) for p in np.asarray(self.model.predict(list(items)), dtype=np.float64).tolist()]
        return [Prediction(raw=p, price=p) for p in prices]

    def info(self) -> dict[str, Any]:
        model = getattr(self, "model", None)
        if model is None:
            return {}
        # A fit this process had already made (same items, config and seed: e.g. an ensemble's member fit
        # earlier in the run); the record's fit time is then not the cost of the fit.
        return {**model.info(), "reused_fit": True} if getattr(self, "reused_fit", False) else model.info()

    def _identity(self) -> dict[str, Any]:
        """What a saved model must match to be reused: id, version, seed and the fit-relevant config."""
        config = self.config.model_dump(mode="json")
        fit_config = {k: v for k, v in config.items() if field_role(type(self.config), k) != "runtime"}
        return {"format": FORMAT, "predictor": self.id, "version": self.version, "seed": self.seed, "config": fit_config}


def save_model(workdir: Path, model: ItemRegressor, identity: dict[str, Any]) -> None:
    """Write ``model.joblib`` and ``model.json`` atomically into ``workdir``."""
    import joblib  # type: ignore[import-untyped]

    workdir.mkdir(parents=True, exist_ok=True)
    tmp = workdir / f".{MODEL_FILE}.{os.getpid()}.tmp"
    joblib.dump(model, tmp, compress=3)
    os.replace(tmp, workdir / MODEL_FILE)
    tmp_meta = workdir / f".{META_FILE}.{os.getpid()}.tmp"
    tmp_meta.write_text(json.dumps(identity, indent=2, sort_keys=True) + "\n")
    os.replace(tmp_meta, workdir / META_FILE)


def load_model(workdir: Path, identity: dict[str, Any]) -> ItemRegressor | None:
    """The model saved in ``workdir`` by :func:`save_model`, or None when absent or made by another config.

    Only ever unpickles ``workdir/model.joblib``, a file this plugin wrote.
    """
    meta_path, model_path = workdir / META_FILE, workdir / MODEL_FILE
    if not (meta_path.is_file() and model_path.is_file()):
        return None
    try:
        saved = json.loads(meta_path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    if saved != json.loads(json.dumps(identity, sort_keys=True)):
        return None
    import joblib

    model = joblib.load(model_path)
    return model if isinstance(model, ItemRegressor) else None
