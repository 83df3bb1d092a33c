"""Leaderboard charts drawn with matplotlib as deterministic, inlineable SVG.

* :func:`error_bars`: Error per predictor with its 95% CI, coloured by tier,
  on an axis clipped so the leaders stay distinguishable.
* :func:`truth_vs_guess`: log-log scatter, the y = x line, points coloured by
  the Hits bands (green: within $40 or 20%; orange: within $80 or 40%; red).
* :func:`running_error`: the running mean absolute error with its 95%
  percentile-bootstrap band (the CI method of the whole page).
* :func:`band_calibration`: median guess / truth per true-price band.
* :func:`cost_frontier`: Error against cost or latency, Pareto front highlighted.

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
from collections.abc import Callable, Sequence
from html import escape
from typing import TYPE_CHECKING, Any, TypeGuard

from price_bench.metrics.point import HIT_ABS, HIT_REL, ORANGE_ABS, ORANGE_REL
from price_bench.parsing import MAX_PRICE
from price_bench.results.schema import ItemPrediction

if TYPE_CHECKING:  # matplotlib and numpy are imported inside the functions (``--help`` stays fast)
    import numpy as np
    import numpy.typing as npt
    from matplotlib.figure import Figure
    from matplotlib.typing import RcKeyType

GREEN, ORANGE, RED = "#2e9d4f", "#ef8a17", "#d64541"
BAR, WHISKER, REFERENCE = "#4c72b0", "#333333", "#3aa6dd"
RASTERIZE_ABOVE = 300  # scatter points beyond this are embedded as one image, keeping the page small
RASTER_DPI = 80  # resolution of the embedded scatter image: sharp enough on screen, ~4x smaller than 144 dpi
LINE_POINTS = 400  # the running-error curve is drawn through at most this many items (every k-th, and the last)
AXIS_MAX = 10 * MAX_PRICE  # dollar axes end here at the latest; larger values are drawn on the edge

RC: dict[RcKeyType, Any] = {
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


def _money(value: float) -> str:
    """``$1,234.57``; ``$1.23e+12`` beyond :data:`AXIS_MAX` (a label never runs off the chart)."""
    return f"${value:,.2f}" if abs(value) < AXIS_MAX else f"${value:.3g}"


def _figure(width: float, height: float, constrained: bool = False) -> Figure:
    """A figure; ``constrained`` lays it out automatically (slower), else fixed margins suit one axes."""
    from matplotlib.figure import Figure

    if constrained:
        return Figure(figsize=(width, height), layout="constrained")
    fig = Figure(figsize=(width, height))
    fig.subplots_adjust(left=0.15, right=0.97, bottom=0.12, top=0.92)
    return fig


def _to_svg(fig: Figure, chart_id: str, label: str, raster_dpi: int | None = None) -> str:
    """Serialise ``fig`` as an inline ``<svg>`` element with ids namespaced by ``chart_id``.

    ``raster_dpi`` sets the resolution of rasterized layers (vector parts are unaffected).
    """
    import matplotlib

    buf = io.StringIO()
    dpi: dict[str, Any] = {"dpi": raster_dpi} if raster_dpi else {}  # else savefig.dpi of RC
    with matplotlib.rc_context(RC):
        fig.savefig(buf, format="svg", metadata={"Date": None}, facecolor="white", **dpi)
    svg = buf.getvalue()
    svg = svg[svg.index("<svg"):]
    svg = re.sub(r'\bid="([^"]+)"', lambda m: f'id="{chart_id}-{m.group(1)}"', svg)
    svg = re.sub(r'url\(#([^)]+)\)', lambda m: f"url(#{chart_id}-{m.group(1)})", svg)
    svg = re.sub(r'(xlink:href|href)="#([^"]+)"', lambda m: f'{m.group(1)}="#{chart_id}-{m.group(2)}"', svg)

    return svg.replace("<svg ", f'<svg class="chart" role="img" aria-label="{escape(label)}" ', 1).rstrip() + "\n"


#: Tier colours, shared with the page's CSS (tier 7 reuses tier 1's colour, and so on).
TIER_COLOURS = ("#2e7d4f", "#4c72b0", "#8c6bb1", "#d08c2a", "#b5543c", "#6b6b6b", "#1a9fa0", "#c04f8f")
MORE_TIERS = "#a3a3a3"  # tiers past the palette share one grey (never a colour of a leading tier)


def tier_colour(tier: int | None) -> str:
    """The colour of ``tier`` (1-based); the default bar colour when untested."""
    if not tier:
        return BAR
    return TIER_COLOURS[tier - 1] if tier <= len(TIER_COLOURS) else MORE_TIERS


#: The Error axis ends at this multiple of the best row's upper CI bound; rows beyond it are drawn at the edge and annotated.
CLIP_FACTOR = 3.0


def _finite(value: float | None) -> TypeGuard[float]:
    return value is not None and math.isfinite(value)


def error_scale(errors: Sequence[float], highs: Sequence[float], lows: Sequence[float] | None = None) -> tuple[float, float]:
    """The x range of the Error chart: from just below the lowest CI bound to the clip limit.

    The limit is :data:`CLIP_FACTOR` times the best row's upper CI bound (or
    the largest value, when smaller), so that one predictor with a huge Error
    or CI cannot squeeze the leaders into one pixel.
    """
    best = min(errors)
    best_high = max(best, min((h for e, h in zip(errors, highs) if e == best), default=best))
    top = max(list(errors) + list(highs))
    limit = min(top, max(best_high * CLIP_FACTOR, best_high + 1.0)) * 1.04
    smallest = min(list(errors) + list(lows or []))
    low = smallest * 0.9 if smallest > 0 else 0.0
    if limit <= low:
        limit = low + 1.0
    return low, limit


def error_bars(labels: Sequence[str], errors: Sequence[float | None],
               ci: Sequence[tuple[float | None, float | None]], chart_id: str = "errors",
               tiers: Sequence[int | None] | None = None) -> str:
    """Error per row (best at the top) as a dot with its 95% CI whiskers, coloured by tier.

    The axis is clipped (see :func:`error_scale`): a row whose Error or CI runs
    past the limit is drawn to the edge with an arrow and its value written out.
    Rows with a missing or non-finite Error are left out.
    """
    import matplotlib
    from matplotlib.lines import Line2D
    from matplotlib.ticker import FuncFormatter

    tiers = list(tiers) if tiers is not None else [None] * len(labels)
    rows = []
    for lab, err, (lo, hi), tier in zip(labels, errors, ci, tiers + [None] * (len(labels) - len(tiers))):
        if not _finite(err):
            continue
        lo = lo if _finite(lo) else None
        hi = hi if _finite(hi) else None
        rows.append((lab, float(err), lo, hi, tier))
    with matplotlib.rc_context(RC):
        fig = _figure(9, 0.3 * max(len(rows), 1) + 1.6, constrained=True)
        ax = fig.add_subplot()
        if not rows:
            ax.text(0.5, 0.5, "no Error to show", ha="center", va="center", transform=ax.transAxes)
            ax.set_axis_off()
            return _to_svg(fig, chart_id, "Chart of Error per predictor (empty)")
        low, limit = error_scale([r[1] for r in rows], [r[3] if r[3] is not None else r[1] for r in rows],
                                 [r[2] if r[2] is not None else r[1] for r in rows])
        span = limit - low
        ys = list(range(len(rows)))
        for y, (_lab, err, lo, hi, tier) in zip(ys, rows):
            colour = tier_colour(tier)
            if lo is not None and hi is not None:
                ax.plot([max(lo, low), min(hi, limit)], [y, y], color=colour, lw=2.2, solid_capstyle="butt", zorder=2)
                if hi > limit:
                    ax.annotate("", xy=(limit, y), xytext=(limit - span * 0.04, y),
                                arrowprops={"arrowstyle": "-|>", "color": colour, "lw": 1.2}, zorder=3)
            clipped = err > limit
            ax.plot([min(err, limit)], [y], marker=">" if clipped else "o", ms=7, color=colour, zorder=4,
                    markeredgecolor="white", markeredgewidth=0.8)
            text = f"${err:,.2f}" + (" ▶" if clipped else "")
            anchor = min(hi if hi is not None else err, limit)
            left = min(err, lo if lo is not None else err, limit)
            if (clipped or anchor + span * 0.14 > limit) and left - span * 0.16 > low:
                ax.text(left - span * 0.015, y, text, va="center", ha="right", fontsize=8.5, color="#222222")
            elif clipped or anchor + span * 0.14 > limit:
                ax.text(limit - span * 0.01, y - 0.36, text, va="center", ha="right", fontsize=8, color="#222222")
            else:
                ax.text(anchor + span * 0.015, y, text, va="center", fontsize=8.5, color="#222222")
        ax.set_yticks(ys, [r[0] for r in rows])
        ax.invert_yaxis()
        ax.set_ylim(len(rows) - 0.4, -0.8)
        ax.set_xlim(low, limit)
        clipped_any = any(r[1] > limit or (r[3] is not None and r[3] > limit) for r in rows)
        ax.set_xlabel("Error in $ (lower is better); lines: 95% bootstrap CI" + ("; ▶ off the scale" if clipped_any else ""))
        ax.grid(axis="x", zorder=0)
        ax.tick_params(axis="y", length=0)
        ax.xaxis.set_major_formatter(FuncFormatter(_dollar_tick))
        used = sorted({r[4] for r in rows if r[4]})
        if len(used) > 1:
            handles = [Line2D([], [], ls="", marker="o", color=tier_colour(t), label=f"tier {t}")
                       for t in used if t <= len(TIER_COLOURS)]
            if used[-1] > len(TIER_COLOURS):
                handles.append(Line2D([], [], ls="", marker="o", color=MORE_TIERS,
                                      label=f"tiers {len(TIER_COLOURS) + 1}-{used[-1]}"))
            ax.legend(handles=handles, loc="lower left", bbox_to_anchor=(0.0, 1.0), fontsize=8, frameon=False,
                      ncol=min(4, len(handles)), title="colour: tier (rows of one tier are statistically tied)",
                      title_fontsize=8, alignment="left", handletextpad=0.2, columnspacing=0.9)
        return _to_svg(fig, chart_id, "Chart of Error per predictor with 95% confidence intervals, coloured by tier")


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


#: Distinct colours for lines of different rows (colour-blind-safe Okabe-Ito order).
SERIES_COLOURS = ("#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#000000", "#f0e442")
#: Checkpoints of the running-error band, and bootstrap resamples per checkpoint.
BAND_POINTS = 25
BAND_RESAMPLES = 200


def running_band(err: npt.NDArray[np.float64], points: int = BAND_POINTS, n_resamples: int = BAND_RESAMPLES,
                 seed: int = 0) -> tuple[npt.NDArray[np.int_], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """(checkpoints k, low, high): the percentile-bootstrap 95% band of the mean of the first k errors.

    The same method as every CI on the page (never a normal approximation).
    """
    import numpy as np

    from price_bench.metrics.bootstrap import bootstrap_means, percentile_ci

    n = len(err)
    if n == 0:
        return np.arange(0), np.arange(0.0), np.arange(0.0)
    ks = np.unique(np.linspace(1, n, min(points, n)).round().astype(int))
    lows, highs = [], []
    for k in ks:
        low, high = percentile_ci(bootstrap_means(err[:k], n_resamples, seed + int(k)))
        lows.append(low)
        highs.append(high)
    return ks, np.array(lows), np.array(highs)


def running_error(predictions: Sequence[ItemPrediction], title: str, chart_id: str,
                  ci: tuple[float | None, float | None] | None = None) -> str:
    """Running mean absolute error over the items in order, with its 95% percentile-bootstrap band.

    ``ci`` is the record's CI of the final Error (the table's number), shown in the title when given.
    """
    import matplotlib
    import numpy as np

    err = np.abs(np.array([p.guess - p.truth for p in predictions], dtype=float))
    err = np.where(np.isfinite(err), err, np.nan)
    err = err[~np.isnan(err)]
    k = np.arange(1, len(err) + 1, dtype=float)
    mean = np.cumsum(err) / k if len(err) else err
    step = max(1, math.ceil(len(err) / LINE_POINTS))
    keep = np.unique(np.append(np.arange(0, len(err), step), len(err) - 1)) if len(err) else np.arange(0)
    ks, lows, highs = running_band(err)
    with matplotlib.rc_context(RC):
        fig = _figure(5.2, 4.6)
        ax = fig.add_subplot()
        ax.fill_between(ks, lows, highs, color=BAR, alpha=0.18, linewidth=0, label="95% bootstrap band")
        ax.plot(k[keep], mean[keep], color=BAR, lw=1.6, label="running Error")
        ax.set_xlim(1, max(len(err), 2))
        if len(err):
            skip = min(len(ks) - 1, 3)
            top = float(np.nanmax(np.append(highs[skip:], mean[min(len(err) - 1, 9):])))
            ax.set_ylim(0, top * 1.1 if math.isfinite(top) and top > 0 else 1)
        ax.set_xlabel("Items scored")
        ax.set_ylabel("Mean absolute error ($)")
        if not len(err):
            final = "no items"
        elif ci is not None and _finite(ci[0]) and _finite(ci[1]):
            final = f"${mean[-1]:,.2f} (${ci[0]:,.2f}–${ci[1]:,.2f})"
        else:
            final = f"${mean[-1]:,.2f} (${lows[-1]:,.2f}–${highs[-1]:,.2f})"
        ax.set_title(f"{title}: {final}", loc="left")
        ax.grid(True)
        ax.legend(loc="upper right", fontsize=8)
        return _to_svg(fig, chart_id, f"Running average error for {title}")


def band_calibration(series: Sequence[tuple[str, int | None, Sequence[ItemPrediction]]], chart_id: str = "calibration") -> str:
    """Median guess / truth per true-price band, one line per row: does a predictor under-price expensive items?

    ``series`` holds (label, tier, predictions); lines get distinct colours. 1 is calibrated; below 1 the
    predictor guesses too low for the band. Bands with fewer than 5 items are left out.
    """
    import matplotlib
    import numpy as np
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    from price_bench.metrics.breakdown import PRICE_BAND_EDGES, band_labels

    labels = band_labels()
    with matplotlib.rc_context(RC):
        fig = _figure(7.5, 4.4, constrained=True)
        ax = fig.add_subplot()
        ax.axhline(1.0, color="#999999", lw=1.2, zorder=1)
        markers = "osD^vP*X"
        drawn = 0
        for index, (label, _tier, preds) in enumerate(series):
            truth = np.array([p.truth for p in preds], dtype=float)
            guess = np.array([p.guess for p in preds], dtype=float)
            ok = np.isfinite(truth) & np.isfinite(guess) & (truth > 0)
            truth, guess = truth[ok], guess[ok]
            codes = np.searchsorted(np.asarray(PRICE_BAND_EDGES), truth, side="right")
            xs, ys = [], []
            for band in range(len(labels)):
                ratio = np.clip(guess[codes == band], 0, None) / truth[codes == band]
                if ratio.size >= 5:
                    xs.append(band)
                    ys.append(max(float(np.median(ratio)), 0.01))
            if not xs:
                continue
            colour = SERIES_COLOURS[index % len(SERIES_COLOURS)]
            ax.plot(xs, ys, marker=markers[index % len(markers)], ms=5, lw=1.4, color=colour, alpha=0.9, label=label, zorder=2)
            drawn += 1
        ax.set_yscale("log")
        ax.yaxis.set_major_locator(FixedLocator([0.1, 0.25, 0.5, 1, 2, 4, 10]))
        ax.yaxis.set_minor_locator(NullLocator())
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _p: f"×{v:g}"))
        ax.set_xticks(range(len(labels)), labels)
        ax.set_xlabel("True price band")
        ax.set_ylabel("Median guess / truth (×1 = right on average)")
        ax.grid(True, axis="y")
        if drawn:
            ax.legend(loc="lower left", fontsize=7.5, frameon=True, framealpha=0.9, ncol=2)
        return _to_svg(fig, chart_id, "Median guess over true price per true-price band, one line per predictor")


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats on both axes (lower x and lower y), by ascending x."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], points[i][1]))
    front, best = [], math.inf
    for i in order:
        if points[i][1] < best:
            front.append(i)
            best = points[i][1]
    return front


def cost_frontier(rows: Sequence[tuple[str, float | None, float | None, int | None]], x_label: str,
                  chart_id: str = "frontier", x_format: Callable[[float], str] | None = None) -> str:
    """Error against cost or latency (log x), Pareto front highlighted and labelled.

    ``rows`` holds (label, x, Error, tier); rows with a missing, non-positive or
    non-finite value are left out (a free predictor has no place on a log axis,
    so callers pass latency when nothing costs money).
    """
    import matplotlib
    from matplotlib.ticker import FuncFormatter

    usable = [(lab, float(x), float(e), t) for lab, x, e, t in rows if _finite(x) and _finite(e) and x > 0]
    with matplotlib.rc_context(RC):
        fig = _figure(7.5, 4.6, constrained=True)
        ax = fig.add_subplot()
        if not usable:
            ax.text(0.5, 0.5, "nothing to plot", ha="center", va="center", transform=ax.transAxes)
            ax.set_axis_off()
            return _to_svg(fig, chart_id, "Error against cost or latency (empty)")
        front = pareto_front([(u[1], u[2]) for u in usable])
        low, _ = error_scale([u[2] for u in usable], [u[2] for u in usable])
        limit = max(usable[i][2] for i in front) * 1.08  # the whole front is on the chart; rows above it may run off
        for i, (_lab, x, e, tier) in enumerate(usable):
            colour = tier_colour(tier)
            on_front = i in front
            ax.scatter([x], [min(e, limit)], s=46 if on_front else 22, color=colour, zorder=3,
                       marker="^" if e > limit else "o", edgecolors="#222222" if on_front else "none", linewidths=0.9)
        xs = [usable[i][1] for i in front]
        ys = [min(usable[i][2], limit) for i in front]
        ax.step(xs + [max(u[1] for u in usable) * 1.5], ys + [ys[-1]], where="post", color="#222222", lw=1.2,
                alpha=0.7, zorder=2, label="Pareto front: nothing is both cheaper and better")
        for i in front:
            lab, x, e, _t = usable[i]
            ax.annotate(lab if len(lab) <= 34 else lab[:33] + "…", (x, min(e, limit)), xytext=(6, 4),
                        textcoords="offset points", fontsize=8, color="#222222")
        ax.set_xscale("log")
        if x_format is not None:
            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _p: x_format(v)))
        ax.set_ylim(low, limit)
        ax.yaxis.set_major_formatter(FuncFormatter(_dollar_tick))
        ax.set_xlabel(x_label + " (log scale)")
        ax.set_ylabel("Error ($, lower is better)")
        ax.grid(True, which="major")
        ax.legend(loc="upper right", fontsize=8)
        return _to_svg(fig, chart_id, f"Error against {x_label} with the Pareto front")
