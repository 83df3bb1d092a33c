"""An in-process memo of fitted regressors, so one run never fits the same model on the same items twice.

``price-bench run --all`` (and ``bench/classic_suite.py``) fit ``sparse-mlp``,
``svd-hgb``, ``minilm-knn`` and ``minilm-ridge`` on the train items, and the
``ensemble`` refits each of its bases on the very same items with the same
default config and seed. Every classic fit is deterministic (the same items,
config and seed give the same predictions; the plugin's ``tests/test_predictors.py`` and
``tests/test_sparse_mlp.py`` check it), so the second fit is pure cost. :func:`fit_or_reuse` keys a fit by

* the regressor's class and its whole config (runtime fields included: a
  different thread count may change the float sums),
* the seed,
* every field of every item, in order, and the prices' bytes,

and hands back the regressor fitted earlier in this process when all of it
matches. Only the last :data:`KEEP` fits are kept (a fitted sparse-mlp holds a
few hundred MB); the memo lives in memory only and is never pickled or
written. Fitted regressors are only read after their fit (``predict`` does
not change them), so sharing one object is safe.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from price_bench import Item

if TYPE_CHECKING:
    from price_bench_classic.base import ItemRegressor

#: How many fitted regressors the memo keeps (the ensemble's default bases are four).
KEEP = 4

_FITTED: OrderedDict[str, ItemRegressor] = OrderedDict()
_LOCK = threading.Lock()


def fit_key(model: ItemRegressor, items: Sequence[Item], prices: Sequence[float]) -> str:
    """What a fit depends on, as a digest: the class, the whole config, the seed, the items and the prices."""
    digest = hashlib.blake2b(digest_size=20)
    kind = type(model)
    header = [f"{kind.__module__}.{kind.__qualname__}", model.config.model_dump(mode="json"), model.seed]
    digest.update(json.dumps(header, sort_keys=True).encode())
    for item in items:
        fields = [item.id, item.text, item.price, item.category, item.title, sorted(item.details.items())]
        digest.update(json.dumps(fields, ensure_ascii=False).encode("utf-8", "surrogatepass"))
        digest.update(b"\x00")
    digest.update(np.ascontiguousarray(prices, dtype=np.float64).tobytes())
    return digest.hexdigest()


def fit_or_reuse(model: ItemRegressor, items: Sequence[Item], prices: Sequence[float]) -> tuple[ItemRegressor, bool]:
    """``(model.fit(items, prices), False)``, or ``(regressor, True)`` for the one this process fitted with the same key."""
    key = fit_key(model, items, prices)
    with _LOCK:
        fitted = _FITTED.get(key)
        if fitted is not None:
            _FITTED.move_to_end(key)
            return fitted, True
    model.fit(items, prices)
    with _LOCK:
        _FITTED[key] = model
        while len(_FITTED) > KEEP:
            _FITTED.popitem(last=False)
    return model, False


def clear_fitted() -> None:
    """Forget every memoised fit (tests use it to prove that a reused fit equals a fresh one)."""
    with _LOCK:
        _FITTED.clear()
