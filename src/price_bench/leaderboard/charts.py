"""Leaderboard charts drawn with matplotlib as deterministic, inlineable SVG.

* :func:`error_bars`: Error per predictor with its 95% CI whiskers.
* :func:`truth_vs_guess`: log-log scatter, the y = x line, points coloured by
  the Hits bands (green: within $40 or 20%; orange: within $80 or 40%; red).
* :func:`running_error`: the running mean absolute error with its 95% band
  (mean ± 1.96·sd/√n), as in the reference pipeline.

matplotlib is imported inside the functions (``price-bench --help`` stays
fast) and only through the object API (no pyplot, no GUI, no global state).
Output is byte-stable: fixed ``svg.hashsalt``, text kept as ``<text>`` (which
matplotlib XML-escapes), no date in the metadata, and every ``id`` prefixed so
that several charts can share one HTML page.

Extreme values (a results folder is untrusted input) never break a chart:
values that are not finite numbers are left out, and axes stop at
:data:`AXIS_MAX` with anything beyond drawn on the edge (labels keep the
true value).
"""

from __future__ import annotations

import io
import math
import re
from html import escape
from typing import Sequence

from price_bench.metrics.point import HIT_ABS, HIT_REL, ORANGE_ABS, ORANGE_REL
from price_bench.parsing import MAX_PRICE
from price_bench.results.schema import ItemPrediction

GREEN, ORANGE, RED = "#2e9d4f", "#ef8a17", "#d64541"
BAR, WHISKER, REFERENCE = "#4c72b0", "#333333", "#3aa6dd"
RASTERIZE_ABOVE = 300  # scatter points beyond this are embedded as one image, keeping the page small
RASTER_DPI = 80  # resolution of the embedded scatter image: sharp enough on screen, ~4x smaller than 144 dpi
LINE_POINTS = 400  # the running-error curve is drawn through at most this many items (every k-th, and the last)
AXIS_MAX = 10 * MAX_PRICE  # dollar axes end here at the latest; larger values are drawn on the edge

RC = {
    "svg.hashsalt": "price-bench-leaderboard",
    "svg.fonttype": "none",
    "svg.image_inline": True,
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans"],
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.titleweight": "bold",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.edgecolor": "#999999",
    "axes.labelcolor": "#333333",
    "xtick.color": "#555555",
    "ytick.color": "#555555",
    "grid.color": "#e6e6e6",
    "figure.dpi": 100,
    "savefig.dpi": 144,
    "path.simplify": True,
    "text.parse_math": False,  # "$" is a dollar sign here, never a mathtext delimiter
}


def hits_band(truth: float, guess: float) -> str:
    """'green' (within $40 or 20%), 'orange' (within $80 or 40%) or 'red'."""
    err = abs(guess - truth)
    rel = err / truth if truth > 0 else math.inf
    if err < HIT_ABS or rel < HIT_REL:
        return "green"
    if err < ORANGE_ABS or rel < ORANGE_REL:
        return "orange"
    return "red"


def _dollar_tick(value: float, _pos: int) -> str:
    return f"${value:,.0f}" if value >= 1 else f"${value:g}"


def _finite(value: float | None) -> float | None:
    """``value`` when it is a finite number, else None."""
    return value if value is not None and math.isfinite(value) else None


def _money(value: float) -> str:
    """``$1,234.57``; ``$1.23e+12`` beyond :data:`AXIS_MAX` (a label never runs off the chart)."""
    return f"${value:,.2f}" if abs(value) < AXIS_MAX else f"${value:.3g}"


def _figure(width: float, height: float, constrained: bool = False):
    """A figure; ``constrained`` lays it out automatically (slower), else fixed margins suit one axes."""
    from matplotlib.figure import Figure

    if constrained:
        return Figure(figsize=(width, height), layout="constrained")
    fig = Figure(figsize=(width, height))
    fig.subplots_adjust(left=0.15, right=0.97, bottom=0.12, top=0.92)
    return fig


def _to_svg(fig, chart_id: str, label: str, raster_dpi: int | None = None) -> str:
    """Serialise ``fig`` as an inline ``<svg>`` element with ids namespaced by ``chart_id``.

    ``raster_dpi`` sets the resolution of rasterized layers (vector parts are unaffected).
    """
    import matplotlib

    buf = io.StringIO()
    with matplotlib.rc_context(RC):
        fig.savefig(buf, format="svg", metadata={"Date": None}, facecolor="white", **({"dpi": raster_dpi} if raster_dpi else {}))
    svg = buf.getvalue()
    svg = svg[svg.index("<svg"):]
    svg = re.sub(r'\bid="([^"]+)"', lambda m: f'id="{chart_id}-{m.group(1)}"', svg)
    svg = re.sub(r'url\(#([^)]+)\)', lambda m: f"url(#{chart_id}-{m.group(1)})", svg)
    svg = re.sub(r'(xlink:href|href)="#([^"]+)"', lambda m: f'{m.group(1)}="#{chart_id}-{m.group(2)}"', svg)

    return svg.replace("<svg ", f'<svg class="chart" role="img" aria-label="{escape(label)}" ', 1).rstrip() + "\n"


def error_bars(labels: Sequence[str], errors: Sequence[float | None],
               ci: Sequence[tuple[float | None, float | None]], chart_id: str = "errors") -> str:
    """Horizontal bars of Error (best at the top) with CI whiskers and value labels."""
    import matplotlib

    rows = [(lab, err, _finite(lo), _finite(hi)) for lab, err, (lo, hi) in zip(labels, errors, ci) if _finite(err) is not None]
    with matplotlib.rc_context(RC):
        fig = _figure(7, 0.42 * max(len(rows), 1) + 1.3, constrained=True)
        ax = fig.add_subplot()
        ys = list(range(len(rows)))
        values = [min(r[1], AXIS_MAX) for r in rows]
        ax.barh(ys, values, color=BAR, height=0.62, zorder=2)
        for y, (_, err, lo, hi) in zip(ys, rows):
            if lo is not None and hi is not None and err < AXIS_MAX:
                ax.errorbar([err], [y], xerr=[[max(err - lo, 0)], [max(min(hi, AXIS_MAX) - err, 0)]], fmt="none",
                            ecolor=WHISKER, elinewidth=1.2, capsize=4, zorder=3)
        top = min(max([r[3] if r[3] is not None else r[1] for r in rows] or [1.0]), AXIS_MAX)
        for y, (_, err, _lo, hi) in zip(ys, rows):
            ax.text(min(hi if hi is not None else err, AXIS_MAX) + top * 0.015, y, _money(err), va="center", fontsize=9, color="#222222")
        ax.set_yticks(ys, [r[0] for r in rows])
        ax.invert_yaxis()
        ax.set_xlim(0, top * 1.16)
        ax.set_xlabel("Error: mean absolute error in $ (lower is better); whiskers: 95% CI")
        ax.grid(axis="x", zorder=0)
        ax.tick_params(axis="y", length=0)
        return _to_svg(fig, chart_id, "Bar chart of Error per predictor with 95% confidence intervals")


def truth_vs_guess(predictions: Sequence[ItemPrediction], title: str, chart_id: str) -> str:
    """Log-log scatter of guess against truth, coloured by Hits band, with the y = x line."""
    import matplotlib
    from matplotlib.lines import Line2D
    from matplotlib.ticker import FuncFormatter, NullLocator

    predictions = [p for p in predictions if not (math.isnan(p.truth) or math.isnan(p.guess))]
    truths = [p.truth for p in predictions]
    guesses = [p.guess for p in predictions]
    positive = [v for v in truths + guesses if 0 < v < AXIS_MAX]
    low = max(min(positive) * 0.8, 0.1) if positive else 0.1
    high = min(max(positive) * 1.25, AXIS_MAX) if positive else 1000.0
    bands = [hits_band(t, g) for t, g in zip(truths, guesses)]
    colours = {"green": GREEN, "orange": ORANGE, "red": RED}
    with matplotlib.rc_context(RC):
        fig = _figure(5.2, 4.6)
        ax = fig.add_subplot()
        ax.plot([low, high], [low, high], color=REFERENCE, lw=1.6, alpha=0.8, zorder=1)
        ax.scatter([min(max(t, low), high) for t in truths], [min(max(g, low), high) for g in guesses], s=7, linewidths=0,
                   c=[colours[b] for b in bands], alpha=0.75, zorder=2,
                   rasterized=len(predictions) > RASTERIZE_ABOVE)
        ax.set_xscale("log")
        ax.set_yscale("log")
        for axis in (ax.xaxis, ax.yaxis):
            axis.set_major_formatter(FuncFormatter(_dollar_tick))
            axis.set_minor_locator(NullLocator())
        ax.set_xlim(low, high)
        ax.set_ylim(low, high)
        ax.set_aspect("equal")
        ax.set_xlabel("True price ($)")
        ax.set_ylabel("Guess ($)")
        ax.set_title(title, loc="left")
        ax.grid(True, which="major")
        n = len(bands) or 1
        legend = [
            Line2D([], [], ls="", marker="o", color=GREEN, label=f"within $40 or 20%: {100 * bands.count('green') / n:.0f}%"),
            Line2D([], [], ls="", marker="o", color=ORANGE, label=f"within $80 or 40%: {100 * bands.count('orange') / n:.0f}%"),
            Line2D([], [], ls="", marker="o", color=RED, label=f"further: {100 * bands.count('red') / n:.0f}%"),
            Line2D([], [], color=REFERENCE, label="guess = truth"),
        ]
        ax.legend(handles=legend, loc="upper left", fontsize=8, frameon=True, framealpha=0.9)
        return _to_svg(fig, chart_id, f"Scatter of guess against true price for {title}", raster_dpi=RASTER_DPI)


def running_error(predictions: Sequence[ItemPrediction], title: str, chart_id: str) -> str:
    """Running mean absolute error over the items in order, with its 95% band."""
    import matplotlib
    import numpy as np

    with np.errstate(over="ignore", invalid="ignore"):
        err = np.abs(np.array([p.guess for p in predictions], dtype=float) - np.array([p.truth for p in predictions], dtype=float))
        k = np.arange(1, len(err) + 1, dtype=float)
        mean = np.cumsum(err) / k
        var = np.maximum(np.cumsum(err * err) / k - mean * mean, 0.0) * k / np.maximum(k - 1, 1)
        half = 1.96 * np.sqrt(var) / np.sqrt(k)
    # Undefined stretches (an infinite or overflowing error) are gaps in the curve, never a crash.
    mean = np.where(np.isfinite(mean), mean, np.nan)
    half = np.where(np.isfinite(half), half, np.nan)
    step = max(1, math.ceil(len(err) / LINE_POINTS))
    keep = np.unique(np.append(np.arange(0, len(err), step), len(err) - 1)) if len(err) else np.arange(0)
    with matplotlib.rc_context(RC):
        fig = _figure(5.2, 4.6)
        ax = fig.add_subplot()
        ax.fill_between(k[keep], (mean - half)[keep], (mean + half)[keep], color=BAR, alpha=0.18, linewidth=0, label="95% band")
        ax.plot(k[keep], mean[keep], color=BAR, lw=1.6, label="running Error")
        ax.set_xlim(1, max(len(err), 2))
        tail = (mean + half)[min(len(err) - 1, 9):] if len(err) else np.array([])
        top = float(np.max(tail[np.isfinite(tail)])) * 1.1 if np.isfinite(tail).any() else 0.0
        ax.set_ylim(0, min(top, AXIS_MAX) if top > 0 else 1)
        ax.set_xlabel("Items scored")
        ax.set_ylabel("Mean absolute error ($)")
        if not len(err):
            final = "no items"
        elif np.isfinite(mean[-1]) and np.isfinite(half[-1]):
            final = f"{_money(mean[-1])} ± {_money(half[-1])}"
        else:
            final = "undefined (an error overflows)"
        ax.set_title(f"{title}: {final}", loc="left")
        ax.grid(True)
        ax.legend(loc="upper right", fontsize=8)
        return _to_svg(fig, chart_id, f"Running average error for {title}")
