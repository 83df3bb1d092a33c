"""Leaderboard charts drawn with matplotlib as deterministic, inlineable SVG.

* :func:`error_bars`: Error per predictor with its 95% CI, coloured by tier,
  on an axis clipped so the leaders stay distinguishable.
* :func:`truth_vs_guess`: log-log scatter, the y = x line, points coloured by
  the Hits bands (green: within $40 or 20%; orange: within $80 or 40%; red).
* :func:`running_error`: the running mean absolute error with its 95% band
  (mean ± 1.96·sd/√n), as in the reference pipeline.

matplotlib is imported inside the functions (``price-bench --help`` stays
fast) and only through the object API (no pyplot, no GUI, no global state).
Output is byte-stable: fixed ``svg.hashsalt``, text kept as ``<text>`` (which
matplotlib XML-escapes), no date in the metadata, and every ``id`` prefixed so
that several charts can share one HTML page.
"""

from __future__ import annotations

import io
import math
import re
from html import escape
from typing import Sequence

from price_bench.metrics.point import HIT_ABS, HIT_REL, ORANGE_ABS, ORANGE_REL
from price_bench.results.schema import ItemPrediction

GREEN, ORANGE, RED = "#2e9d4f", "#ef8a17", "#d64541"
BAR, WHISKER, REFERENCE = "#4c72b0", "#333333", "#3aa6dd"
RASTERIZE_ABOVE = 300  # scatter points beyond this are embedded as one image, keeping the page small
RASTER_DPI = 80  # resolution of the embedded scatter image: sharp enough on screen, ~4x smaller than 144 dpi
LINE_POINTS = 400  # the running-error curve is drawn through at most this many items (every k-th, and the last)

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


#: Tier colours, shared with the page's CSS (tier 7 reuses tier 1's colour, and so on).
TIER_COLOURS = ("#2e7d4f", "#4c72b0", "#8c6bb1", "#d08c2a", "#b5543c", "#6b6b6b", "#1a9fa0", "#c04f8f")
#: The Error axis ends at this multiple of the best row's upper CI bound; rows beyond it are drawn at the edge and annotated.
CLIP_FACTOR = 3.0


def _finite(value: float | None) -> bool:
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
            colour = TIER_COLOURS[(tier - 1) % len(TIER_COLOURS)] if tier else BAR
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
            handles = [Line2D([], [], ls="", marker="o", color=TIER_COLOURS[(t - 1) % len(TIER_COLOURS)], label=f"tier {t}")
                       for t in used[:8]]
            ax.legend(handles=handles, loc="lower left", bbox_to_anchor=(0.0, 1.0), fontsize=8, frameon=False,
                      ncol=min(4, len(handles)), title="colour: tier (rows of one tier are statistically tied)",
                      title_fontsize=8, alignment="left", handletextpad=0.2, columnspacing=0.9)
        return _to_svg(fig, chart_id, "Chart of Error per predictor with 95% confidence intervals, coloured by tier")


def truth_vs_guess(predictions: Sequence[ItemPrediction], title: str, chart_id: str) -> str:
    """Log-log scatter of guess against truth, coloured by Hits band, with the y = x line."""
    import matplotlib
    from matplotlib.lines import Line2D
    from matplotlib.ticker import FuncFormatter, NullLocator

    truths = [p.truth for p in predictions]
    guesses = [p.guess for p in predictions]
    positive = [v for v in truths + guesses if v > 0]
    low = max(min(positive) * 0.8, 0.1) if positive else 0.1
    high = max(positive) * 1.25 if positive else 1000.0
    bands = [hits_band(t, g) for t, g in zip(truths, guesses)]
    colours = {"green": GREEN, "orange": ORANGE, "red": RED}
    with matplotlib.rc_context(RC):
        fig = _figure(5.2, 4.6)
        ax = fig.add_subplot()
        ax.plot([low, high], [low, high], color=REFERENCE, lw=1.6, alpha=0.8, zorder=1)
        ax.scatter([max(t, low) for t in truths], [max(g, low) for g in guesses], s=7, linewidths=0,
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

    err = np.abs(np.array([p.guess - p.truth for p in predictions], dtype=float))
    k = np.arange(1, len(err) + 1, dtype=float)
    mean = np.cumsum(err) / k
    var = np.maximum(np.cumsum(err * err) / k - mean * mean, 0.0) * k / np.maximum(k - 1, 1)
    half = 1.96 * np.sqrt(var) / np.sqrt(k)
    step = max(1, math.ceil(len(err) / LINE_POINTS))
    keep = np.unique(np.append(np.arange(0, len(err), step), len(err) - 1)) if len(err) else np.arange(0)
    with matplotlib.rc_context(RC):
        fig = _figure(5.2, 4.6)
        ax = fig.add_subplot()
        ax.fill_between(k[keep], (mean - half)[keep], (mean + half)[keep], color=BAR, alpha=0.18, linewidth=0, label="95% band")
        ax.plot(k[keep], mean[keep], color=BAR, lw=1.6, label="running Error")
        ax.set_xlim(1, max(len(err), 2))
        ax.set_ylim(0, float(np.max(mean[min(len(err) - 1, 9):] + half[min(len(err) - 1, 9):])) * 1.1 if len(err) else 1)
        ax.set_xlabel("Items scored")
        ax.set_ylabel("Mean absolute error ($)")
        final = f"${mean[-1]:,.2f} ± ${half[-1]:,.2f}" if len(err) else "no items"
        ax.set_title(f"{title}: {final}", loc="left")
        ax.grid(True)
        ax.legend(loc="upper right", fontsize=8)
        return _to_svg(fig, chart_id, f"Running average error for {title}")
