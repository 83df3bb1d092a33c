"""Metrics per slice: per category and per price band (of the true price).

The price bands are the curation's (:data:`price_bench.bands.PRICE_BANDS`),
with open-ended outer bands (``<$10`` ... ``$500+``), since a scored dataset
may hold any price.

Each slice gets ``n``, Error, RMSLE, Hits % and the mean true price. The
grouping is vectorised (``np.unique`` + ``np.bincount``), so slicing 100,000
predictions costs milliseconds.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from price_bench.bands import PRICE_BANDS, inner_edges, open_labels
from price_bench.metrics.point import Prices, abs_errors, hit_mask, log_errors

#: One slice's figures: ``n`` (int), then Error, RMSLE, Hits and mean truth (floats).
SliceRow = dict[str, float | int | None]

#: Upper edges of the price bands (USD, exclusive); the last band is open. The
#: cut points of the one band definition, :data:`price_bench.bands.PRICE_BANDS`.
PRICE_BAND_EDGES: tuple[float, ...] = inner_edges(PRICE_BANDS)


def band_labels(edges: Sequence[float] = PRICE_BAND_EDGES) -> list[str]:
    """Human labels for the bands, e.g. ``['<$10', '$10-25', ..., '$500+']``."""
    return open_labels(edges)


def price_bands(truth: Prices, edges: Sequence[float] = PRICE_BAND_EDGES) -> npt.NDArray[np.object_]:
    """The band label of every true price (``$25`` falls in ``$25-50``)."""
    labels = np.array(band_labels(edges), dtype=object)
    codes = np.searchsorted(np.asarray(edges), np.asarray(truth, dtype=np.float64), side="right")
    out: npt.NDArray[np.object_] = labels[codes]
    return out


def breakdown(truth: Prices, guess: Prices, groups: Sequence[str | None]) -> dict[str, SliceRow]:
    """Error, RMSLE, Hits % and mean truth for every distinct value of ``groups``.

    ``groups`` holds one label per item (None becomes ``"(none)"``). Returns
    ``{label: {"n", "error", "rmsle", "hits", "mean_truth"}}`` sorted by label.
    """
    labels = np.asarray(["(none)" if x is None else str(x) for x in groups], dtype=str)
    if labels.shape != np.shape(truth):
        raise ValueError("groups must hold one label per item")
    if not labels.size:
        return {}
    keys, inverse = np.unique(labels, return_inverse=True)
    return _grouped(truth, guess, inverse, [str(k) for k in keys])


def band_breakdown(truth: Prices, guess: Prices, edges: Sequence[float] = PRICE_BAND_EDGES) -> dict[str, SliceRow]:
    """:func:`breakdown` by price band, bands in ascending price order (empty bands left out)."""
    t = np.asarray(truth, dtype=np.float64)
    if not t.size:
        return {}
    codes = np.searchsorted(np.asarray(edges), t, side="right")
    rows = _grouped(t, guess, codes, band_labels(edges))
    return {label: row for label, row in rows.items() if row["n"]}


def _grouped(truth: Prices, guess: Prices, codes: npt.NDArray[np.intp], labels: list[str]) -> dict[str, SliceRow]:
    """Per-group metrics with ``np.bincount`` over integer group ``codes`` (indices into ``labels``)."""
    t = np.asarray(truth, dtype=np.float64)
    g = np.asarray(guess, dtype=np.float64)
    k = len(labels)
    with np.errstate(over="ignore", invalid="ignore"):
        return _grouped_rows(t, g, codes, labels, k)


def _grouped_rows(t: npt.NDArray[np.float64], g: npt.NDArray[np.float64], codes: npt.NDArray[np.intp], labels: list[str],
                  k: int) -> dict[str, SliceRow]:
    counts = np.bincount(codes, minlength=k).astype(np.float64)
    safe = np.where(counts > 0, counts, 1.0)
    err = np.bincount(codes, weights=abs_errors(t, g), minlength=k) / safe
    le = log_errors(t, g)
    rms = np.sqrt(np.bincount(codes, weights=le * le, minlength=k) / safe)
    hit = np.bincount(codes, weights=hit_mask(t, g).astype(np.float64), minlength=k) / safe * 100.0
    mean_truth = np.bincount(codes, weights=t, minlength=k) / safe
    return {
        label: {
            "n": int(counts[i]),
            "error": float(err[i]),
            "rmsle": float(rms[i]),
            "hits": float(hit[i]),
            "mean_truth": float(mean_truth[i]),
        }
        for i, label in enumerate(labels)
    }
