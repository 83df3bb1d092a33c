"""Live business metrics and drift from the serving log (``price-bench monitor``, ``/metrics``).

:func:`summarise` joins predictions with feedback by id (the latest of each
wins), keeps the last ``window`` joined pairs (in feedback order) and reports
the same metrics the harness reports offline -- Error, RMSLE, Hits, mean %
error -- overall and per category, next to the bundle's offline figure with
its 95% CI. It flags drift with four simple, documented checks:

``error_outside_ci``
    the live Error (last ``window`` joined pairs, at least
    :data:`MIN_JOINED`) lies outside the offline Error's 95% bootstrap CI.
    A flag to look, not a significance test: the live window has its own
    sampling noise, reported as its own bootstrap CI beside it.
``category_mix``, ``text_length``, ``predicted_price``
    the population stability index (PSI) between the offline test items and
    the last ``window`` predictions (at least :data:`MIN_PREDICTIONS`), over
    the categories (unseen ones pooled as ``(other)``) or over the offline
    deciles of text length and predicted price. PSI = Σ (aᵢ − eᵢ)·ln(aᵢ/eᵢ)
    with shares smoothed by :data:`PSI_EPSILON`; the usual reading is < 0.1
    stable, 0.1–0.25 moderate, ≥ :data:`PSI_DRIFT` a shift (flagged).

Input drift needs no feedback, so it is checked on predictions alone.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from price_bench.serve import ServeError

MIN_JOINED = 30
MIN_PREDICTIONS = 100
PSI_DRIFT = 0.25
PSI_MODERATE = 0.10
PSI_EPSILON = 1e-4
OTHER = "(other)"
NONE = "(none)"
LIVE_METRICS = ("error", "rmsle", "hits", "mean_pct_error")


# -- distributions -----------------------------------------------------------------------------


def reference_histogram(values: Sequence[float]) -> dict[str, list[float]]:
    """``{"edges", "proportions"}``: the deciles of ``values`` as bin edges and the share in each bin."""
    x = np.asarray(values, dtype=np.float64)
    edges = np.unique(np.round(np.quantile(x, np.linspace(0.1, 0.9, 9)), 4))
    return {"edges": [float(e) for e in edges], "proportions": [round(float(p), 6) for p in _shares(x, edges)]}


def _shares(x: np.ndarray, edges: np.ndarray) -> np.ndarray:
    counts = np.bincount(np.searchsorted(edges, x, side="right"), minlength=len(edges) + 1)
    return counts / max(1, x.size)


def psi(expected: Sequence[float] | npt.NDArray[np.float64], actual: Sequence[float] | npt.NDArray[np.float64], epsilon: float = PSI_EPSILON) -> float:
    """Population stability index of two share vectors over the same bins (0 when identical)."""
    e = np.clip(np.asarray(expected, dtype=np.float64), epsilon, None)
    a = np.clip(np.asarray(actual, dtype=np.float64), epsilon, None)
    e, a = e / e.sum(), a / a.sum()
    return float(np.sum((a - e) * np.log(a / e)))


def numeric_psi(histogram: dict[str, Any], values: Sequence[float]) -> float:
    """PSI of live ``values`` against a reference histogram (see :func:`reference_histogram`)."""
    edges = np.asarray(histogram["edges"], dtype=np.float64)
    return psi(histogram["proportions"], _shares(np.asarray(values, dtype=np.float64), edges))


def category_psi(reference_counts: dict[str, int], live: Sequence[str | None]) -> float:
    """PSI of the live category mix against the offline counts (unseen categories pooled as ``(other)``)."""
    labels = sorted(reference_counts) + [OTHER]
    index = {label: i for i, label in enumerate(labels)}
    expected = np.array([reference_counts.get(label, 0) for label in labels], dtype=np.float64)
    actual = np.zeros(len(labels))
    for category in live:
        actual[index.get(NONE if category is None else str(category), index[OTHER])] += 1
    return psi(expected / max(1.0, expected.sum()), actual / max(1.0, actual.sum()))


# -- joining and scoring ------------------------------------------------------------------------


def join(events: Iterable[dict[str, Any]], bundle: str | None = None) -> tuple[list[dict[str, Any]], list[tuple[dict[str, Any], float]], dict[str, int]]:
    """``(predictions, joined, counts)``: predictions in log order, (prediction, true price) pairs in feedback order.

    With ``bundle`` (a digest prefix), predictions made by another bundle
    (a log folder reused for a new model) are left out and counted.
    """
    predictions: dict[str, dict[str, Any]] = {}
    feedback: dict[str, tuple[int, float]] = {}
    order = 0
    counts = {"predictions": 0, "feedback": 0, "other_bundle_predictions": 0}
    for event in events:
        item_id = event.get("id")
        if not isinstance(item_id, str):
            continue
        if event["kind"] == "prediction" and _other_bundle(event, bundle):
            counts["other_bundle_predictions"] += 1
        elif event["kind"] == "prediction" and _number(event.get("price")) is not None:
            predictions.pop(item_id, None)  # re-insert: dicts keep the latest prediction last
            predictions[item_id] = event
            counts["predictions"] += 1
        elif event["kind"] == "feedback" and (_number(event.get("price")) or 0) > 0:
            order += 1
            feedback[item_id] = (order, float(event["price"]))
            counts["feedback"] += 1
    pairs = sorted(((o, predictions[i], p) for i, (o, p) in feedback.items() if i in predictions), key=lambda t: t[0])
    counts["unmatched_feedback"] = sum(1 for i in feedback if i not in predictions)
    return list(predictions.values()), [(pred, truth) for _, pred, truth in pairs], counts


def _other_bundle(event: dict[str, Any], bundle: str | None) -> bool:
    made_by = event.get("bundle")
    return bundle is not None and isinstance(made_by, str) and not bundle.startswith(made_by)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def live_figures(truth: np.ndarray, guess: np.ndarray) -> dict[str, float | int | None]:
    """Error, RMSLE, Hits and mean % error of ``guess`` against ``truth``."""
    from price_bench.metrics import point

    return {
        "n": int(truth.size),
        "error": point.error(truth, guess),
        "rmsle": point.rmsle(truth, guess),
        "hits": point.hits(truth, guess),
        "mean_pct_error": point.mean_pct_error(truth, guess),
    }


def summarise(log: Path, *, window: int = 1000, manifest: dict[str, Any] | None = None, digest: str | None = None) -> dict[str, Any]:
    """The monitoring report of a serving log (see the module docstring); JSON-ready.

    ``manifest`` is the served bundle's manifest (``bundle.json``) and
    ``digest`` its sha256; by default the copy the server keeps in the log
    folder. Predictions logged by another bundle are left out.
    """
    from price_bench.serve.log import event_files, read_events

    if window < 1:
        raise ServeError("--window must be at least 1")
    log = Path(log)
    if not event_files(log):
        raise ServeError(f"{log}: no serving log here (expected a folder with events.jsonl, or an events file)")
    if manifest is None:
        manifest, digest = load_log_manifest(log)
    warnings: list[str] = []
    predictions, joined, counts = join(read_events(log, warnings), bundle=digest)
    if counts["other_bundle_predictions"]:
        warnings.insert(0, f"{counts['other_bundle_predictions']} predictions were made by another bundle (the log folder was reused) and are left out")
    if len(warnings) > 20:
        warnings = warnings[:20] + [f"... {len(warnings) - 20} more malformed lines"]
    return build_report(predictions[-window:], joined[-window:], {**counts, "joined": len(joined)}, window=window, manifest=manifest,
                        log=str(log), warnings=warnings)


def build_report(
    recent: list[dict[str, Any]],
    pairs: list[tuple[dict[str, Any], float]],
    counts: dict[str, int],
    *,
    window: int,
    manifest: dict[str, Any] | None,
    log: str,
    warnings: list[str] = (),  # type: ignore[assignment]
) -> dict[str, Any]:
    """The report from the window's predictions (``recent``) and joined ``pairs``."""
    from price_bench.metrics.bootstrap import mean_ci
    from price_bench.metrics.point import abs_errors

    truth = np.array([t for _, t in pairs], dtype=np.float64)
    guess = np.array([p["price"] for p, _ in pairs], dtype=np.float64)
    overall = live_figures(truth, guess)
    if truth.size >= 2:
        low, high = mean_ci(abs_errors(truth, guess), n_resamples=1000, seed=0)
        overall["error_ci_low"], overall["error_ci_high"] = low, high
    offline = _offline(manifest)
    return {
        "log": log,
        "window": window,
        "counts": {**counts, "window_joined": int(truth.size)},
        "model": _model(manifest),
        "overall": {"live": overall, "offline": offline.get("overall", {})},
        "categories": _categories(pairs, offline.get("categories", {})),
        "drift": _drift(manifest, overall, recent),
        "warnings": list(warnings),
    }


class LiveJoin:
    """The join of :func:`join`, kept incrementally and bounded (what ``/metrics`` uses).

    Holds the last ``keep_predictions`` predictions by id, the last
    ``window`` predictions in order and the last ``window`` joined pairs
    (a repeated feedback for an id replaces its pair). Feedback that arrives
    before its prediction counts as unmatched (in one server's own log a
    prediction always comes first).
    """

    def __init__(self, window: int, keep_predictions: int = 200_000, bundle: str | None = None) -> None:
        from collections import OrderedDict, deque

        self.window, self.bundle = window, bundle
        self.keep = max(window, keep_predictions)
        self.predictions: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self.recent: deque[dict[str, Any]] = deque(maxlen=window)
        self.pairs: OrderedDict[str, tuple[dict[str, Any], float]] = OrderedDict()
        self.counts = {"predictions": 0, "feedback": 0, "other_bundle_predictions": 0, "unmatched_feedback": 0, "joined": 0}

    def add(self, events: Iterable[dict[str, Any]]) -> None:
        for event in events:
            item_id = event.get("id")
            if not isinstance(item_id, str):
                continue
            if event["kind"] == "prediction" and _other_bundle(event, self.bundle):
                self.counts["other_bundle_predictions"] += 1
            elif event["kind"] == "prediction" and _number(event.get("price")) is not None:
                self.predictions.pop(item_id, None)
                self.predictions[item_id] = event
                if len(self.predictions) > self.keep:
                    self.predictions.popitem(last=False)
                self.recent.append(event)
                self.counts["predictions"] += 1
            elif event["kind"] == "feedback" and (_number(event.get("price")) or 0) > 0:
                self.counts["feedback"] += 1
                prediction = self.predictions.get(item_id)
                if prediction is None:
                    self.counts["unmatched_feedback"] += 1
                    continue
                if self.pairs.pop(item_id, None) is None:
                    self.counts["joined"] += 1
                self.pairs[item_id] = (prediction, float(event["price"]))
                if len(self.pairs) > self.window:
                    self.pairs.popitem(last=False)

    def report(self, *, manifest: dict[str, Any] | None, log: str) -> dict[str, Any]:
        return build_report(list(self.recent), list(self.pairs.values()), dict(self.counts), window=self.window, manifest=manifest, log=log)


def load_log_manifest(log: Path) -> tuple[dict[str, Any] | None, str | None]:
    """The ``bundle.json`` copy next to the log's events and its sha256 (``(None, None)`` when absent or unreadable)."""
    import hashlib
    import json

    from price_bench.serve.log import MANIFEST_COPY

    folder = log if log.is_dir() else log.parent
    try:
        raw = (folder / MANIFEST_COPY).read_bytes()
        data = json.loads(raw)
    except (OSError, ValueError):
        return None, None
    return (data, hashlib.sha256(raw).hexdigest()) if isinstance(data, dict) else (None, None)


def _model(manifest: dict[str, Any] | None) -> dict[str, Any] | None:
    if not manifest:
        return None
    predictor, run, dataset = manifest.get("predictor", {}), manifest.get("run", {}), manifest.get("dataset", {})
    return {"predictor": predictor.get("id"), "run_id": run.get("run_id"), "dataset": dataset.get("name"), "fingerprint": dataset.get("fingerprint")}


def _offline(manifest: dict[str, Any] | None) -> dict[str, Any]:
    """Offline figures from the manifest: overall metrics with CIs and the per-category breakdown."""
    if not manifest:
        return {}
    metrics = manifest.get("metrics", {})
    overall = {name: metrics[name] for name in LIVE_METRICS if isinstance(metrics.get(name), dict)}
    categories = manifest.get("breakdowns", {}).get("category", {})
    return {"overall": overall, "categories": categories if isinstance(categories, dict) else {}}


def _categories(pairs: list[tuple[dict[str, Any], float]], offline: dict[str, Any]) -> dict[str, Any]:
    groups: dict[str, list[tuple[float, float]]] = {}
    for prediction, truth in pairs:
        category = prediction.get("category")
        groups.setdefault(NONE if category is None else str(category), []).append((truth, prediction["price"]))
    out = {}
    for label in sorted(set(groups) | set(offline)):
        rows = groups.get(label, [])
        t = np.array([r[0] for r in rows], dtype=np.float64)
        g = np.array([r[1] for r in rows], dtype=np.float64)
        out[label] = {"live": live_figures(t, g), "offline": offline.get(label)}
    return out


def _drift(manifest: dict[str, Any] | None, live: dict[str, Any], recent: list[dict[str, Any]]) -> list[dict[str, Any]]:
    checks = []
    offline_error = (manifest or {}).get("metrics", {}).get("error") or {}
    low, high = offline_error.get("ci_low"), offline_error.get("ci_high")
    if live["n"] < MIN_JOINED or low is None or high is None:
        need = f"needs {MIN_JOINED} joined pairs (have {live['n']})" if live["n"] < MIN_JOINED else "no offline CI in the bundle"
        checks.append({"check": "error_outside_ci", "flag": None, "value": live.get("error"), "detail": f"not checked: {need}"})
    else:
        value = live["error"]
        outside = not (low <= value <= high)
        where = "above" if value > high else "below" if value < low else "inside"
        checks.append({"check": "error_outside_ci", "flag": outside, "value": value,
                       "detail": f"live Error ${value:,.2f} is {where} the offline 95% CI ${low:,.2f}–${high:,.2f}"})
    reference = (manifest or {}).get("reference") or {}
    n = len(recent)
    inputs: list[tuple[str, Any, Callable[[Any], float]]] = [
        ("category_mix", reference.get("category_counts") or None, lambda ref: category_psi(ref, [p.get("category") for p in recent])),
        ("text_length", reference.get("text_length"), lambda ref: numeric_psi(ref, [p["text_chars"] for p in recent if _number(p.get("text_chars")) is not None])),
        ("predicted_price", reference.get("predicted_price"), lambda ref: numeric_psi(ref, [p["price"] for p in recent])),
    ]
    for name, ref, compute in inputs:
        if not ref:
            checks.append({"check": name, "flag": None, "value": None, "detail": "not checked: the bundle has no offline reference"})
        elif n < MIN_PREDICTIONS:
            checks.append({"check": name, "flag": None, "value": None, "detail": f"not checked: needs {MIN_PREDICTIONS} predictions (have {n})"})
        else:
            value = compute(ref)
            level = "shift" if value >= PSI_DRIFT else "moderate" if value >= PSI_MODERATE else "stable"
            checks.append({"check": name, "flag": value >= PSI_DRIFT, "value": value, "detail": f"PSI {value:.3f} ({level}) over the last {n} predictions"})
    return checks
