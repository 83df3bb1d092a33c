"""Render a :class:`Page` as one self-contained HTML file.

Inline CSS and inline SVG charts; no font, script, image or style is fetched
(a Content-Security-Policy forbids it, and only the inline sort script, pinned
by its hash, may run). The page reads fine without JavaScript; with it, the
tables sort by clicking a heading.

Every string that comes from a record goes through :func:`html.escape`.
"""

from __future__ import annotations

import base64
import hashlib
from html import escape
from importlib import resources

from price_bench.leaderboard import build, charts, fmt
from price_bench.leaderboard.build import MIN_SLICE_N, Page, Section
from price_bench.leaderboard.table import Cell, HeaderCell, Table
from price_bench.results.schema import MetricValue, RunRecord

SORT_SCRIPT = """
(function () {
  function key(cell) {
    var v = cell.getAttribute("data-value");
    if (v === null || v === "") return null;
    var n = Number(v);
    return isNaN(n) ? v.toLowerCase() : n;
  }
  function sortBy(table, col, th) {
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    var asc = th.getAttribute("aria-sort") !== "ascending";
    rows.sort(function (a, b) {
      var x = key(a.cells[col]), y = key(b.cells[col]);
      if (x === null) return y === null ? 0 : 1;
      if (y === null) return -1;
      if (x < y) return asc ? -1 : 1;
      if (x > y) return asc ? 1 : -1;
      return 0;
    });
    rows.forEach(function (r) { body.appendChild(r); });
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", asc ? "ascending" : "descending");
  }
  var filter = document.getElementById("category-filter");
  if (filter) {
    document.getElementById("category-filter-box").hidden = false;
    filter.addEventListener("change", function () {
      var want = filter.value;
      Array.prototype.forEach.call(document.querySelectorAll("table.misses tbody tr"), function (tr) {
        var show = want === "" ? !tr.hasAttribute("data-extra") : tr.getAttribute("data-category") === want;
        tr.hidden = !show;
      });
    });
  }
  Array.prototype.forEach.call(document.querySelectorAll("table.sortable"), function (table) {
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, col) {
      th.classList.add("sortable");
      th.tabIndex = 0;
      th.addEventListener("click", function () { sortBy(table, col, th); });
      th.addEventListener("keydown", function (e) {
        if (e.key === "Enter" || e.key === " ") { e.preventDefault(); sortBy(table, col, th); }
      });
    });
  });
})();
"""

OPEN_SECTIONS = 3

def _style() -> str:
    return resources.files("price_bench.leaderboard").joinpath("style.css").read_text(encoding="utf-8")


def _csp() -> str:
    digest = base64.b64encode(hashlib.sha256(SORT_SCRIPT.encode()).digest()).decode()
    return (f"default-src 'none'; style-src 'unsafe-inline'; img-src data:; script-src 'sha256-{digest}'; "
            "base-uri 'none'; form-action 'none'")


def _heat(heat: float) -> str:
    """Background tint from green (0, best) through pale yellow to red (1, worst)."""
    stops = [(0.0, (220, 242, 226)), (0.5, (253, 246, 222)), (1.0, (251, 218, 212))]
    for (a, ca), (b, cb) in zip(stops, stops[1:]):
        if heat <= b:
            t = (heat - a) / (b - a)
            rgb = [round(x + (y - x) * t) for x, y in zip(ca, cb)]
            return "#{:02x}{:02x}{:02x}".format(*rgb)
    return "#{:02x}{:02x}{:02x}".format(*stops[-1][1])


def _th(head: HeaderCell) -> str:
    arrow = ' <span class="dir">↓</span>' if head.lower_is_better else ' <span class="dir">↑</span>' if head.lower_is_better is False else ""
    cls = ' class="num"' if head.numeric else ""
    title = f' title="{escape(head.description)}"' if head.description else ""
    return f"<th scope=\"col\"{cls}{title}>{escape(head.label)}{arrow}</th>"


def _td(cell: Cell, head: HeaderCell, link: str = "") -> str:
    classes = ["num"] if head.numeric else []
    if cell.best:
        classes.append("best")
    if cell.muted:
        classes.append("grey")
    if not head.numeric and len(cell.display) > 40:
        classes.append("wrap-text")
    attrs = f' data-value="{escape(str(cell.value))}"' if cell.value is not None else ' data-value=""'
    if classes:
        attrs += f' class="{" ".join(classes)}"'
    if cell.title:
        attrs += f' title="{escape(cell.title)}"'
    if cell.heat is not None:
        attrs += f' style="background-color:{_heat(cell.heat)}"'
    body = escape(cell.display)
    if link:
        body = f'<a href="#{escape(link)}">{body}</a>'
    if cell.detail:
        body += f"<small>{escape(cell.detail)}</small>"
    return f"<td{attrs}>{body}</td>"


def table(tbl: Table, css: str = "", links: dict[int, str] | None = None, link_col: int = -1,
          row_attrs: dict[int, str] | None = None) -> str:
    """A sortable HTML table; ``links`` maps a row index to an anchor for the cell in ``link_col``.

    ``row_attrs`` maps a row index to extra (already escaped) attributes of its ``<tr>``.
    """
    links = links or {}
    row_attrs = row_attrs or {}
    ident = f' id="{escape(tbl.table_id)}"' if tbl.table_id else ""
    classes = f"sortable {css}".strip()
    out = [f'<div class="scroll"><table{ident} class="{classes}">']
    if tbl.caption:
        out.append(f"<caption>{escape(tbl.caption)}</caption>")
    out.append("<thead><tr>" + "".join(_th(h) for h in tbl.header) + "</tr></thead>")
    out.append("<tbody>")
    for i, row in enumerate(tbl.rows):
        tds = "".join(_td(c, h, links.get(i, "") if col == link_col else "") for col, (c, h) in enumerate(zip(row, tbl.header)))
        extra = f" {row_attrs[i]}" if i in row_attrs else ""
        out.append(f"<tr{extra}>{tds}</tr>")
    out.append("</tbody></table></div>")
    return "\n".join(out)


def _head(page: Page) -> str:
    b = page.board
    title = f"Leaderboard: {b.dataset} — price-bench"
    return "\n".join([
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_csp()}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<meta name="generator" content="price-bench leaderboard">',
        f'<meta name="price-bench:product-text" content="{"included" if page.product_text else "omitted"}">',
        '<meta name="referrer" content="no-referrer">',
        f"<title>{escape(title)}</title>",
        f"<style>\n{_style()}</style>",
        "</head>",
    ])


def _page_header(page: Page) -> str:
    b = page.board
    badge = ('<span class="badge synthetic" title="Generated items, not real products">synthetic</span>' if b.synthetic
             else '<span class="badge real" title="Real products with real prices">real data</span>')
    meta = [
        ("Fingerprint", f'<code title="{escape(b.fingerprint)}">{escape(fmt.short_hash(b.fingerprint, 16))}</code>'),
        ("Recipe", escape(b.recipe) if b.recipe else fmt.MISSING),
        ("Split", f"{escape(b.split)} · {fmt.count(b.n_total)} items"),
        ("Latest run", escape(fmt.date(b.latest_run))),
        ("Predictors", f"{len(b.ranked)} ranked" + (f" · {len(b.not_run)} not run" if b.not_run else "")),
    ]
    items = "".join(f"<div><dt>{k}</dt><dd>{v}</dd></div>" for k, v in meta)
    notice = ('\n<p class="notice">Product text omitted: this data may not be redistributed, so the page shows '
              "no titles, descriptions or raw model outputs.</p>") if not page.product_text else ""
    return (f'<header class="page-head"><div class="wrap">\n<p class="kicker">price-bench leaderboard</p>\n'
            f"<h1>{escape(b.dataset)} {badge}</h1>\n<dl class=\"meta\">{items}</dl>{notice}\n</div></header>")


def _ranking(page: Page) -> str:
    b = page.board
    if not page.main.rows:
        return '<section id="ranking"><h2>Ranking</h2><p class="lede">No complete run yet.</p></section>'
    links = {i: s.anchor for i, s in enumerate(page.sections)}
    metrics = [e.record.metrics.get("error") or MetricValue(value=None) for e in b.ranked]
    chart = charts.error_bars([b.label(e) for e in b.ranked], [m.value for m in metrics],
                              [(m.ci_low, m.ci_high) for m in metrics], chart_id="errors", tiers=page.tiers)
    rows = {i: f'class="{tier_class(t)}" data-tier="{t}"' for i, t in enumerate(page.tiers) if t is not None}
    method = f'<p class="method">{escape(page.method)}</p>' if page.method else ""
    return "\n".join([
        '<section id="ranking">',
        "<h2>Ranking</h2>",
        '<p class="lede">Ranked by Error, the mean absolute error in dollars; 95% confidence intervals in small print. '
        "Rows of one tier are statistically tied; the rank range says which places a row could hold. "
        "↓ lower is better, ↑ higher is better; the best value of each column is green. Click a heading to sort, "
        "a predictor for its charts.</p>",
        '<div class="board-table">' + table(page.main, css="board", links=links, link_col=PREDICTOR_COL, row_attrs=rows) + "</div>",
        _cards(page, links),
        method,
        "<h3>Error with 95% confidence intervals</h3>",
        f'<div class="chart-box wide">{chart}</div>',
        _frontier(page),
        "</section>",
    ])


def _frontier(page: Page) -> str:
    """Error against cost (when anything cost money) or time per item, with the Pareto front."""
    b = page.board
    costs = [e.record.usage.cost_usd for e in b.ranked]
    use_cost = any(c and c > 0 for c in costs)
    rows = []
    for entry, tier in zip(b.ranked, page.tiers + [None] * (len(b.ranked) - len(page.tiers))):
        r = entry.record
        error = r.metrics.get("error")
        cost_usd = r.usage.cost_usd  # None: cost unknown, left off the chart (never drawn as $0)
        x = (cost_usd * 1000 / r.n_items if r.n_items and cost_usd is not None else None) if use_cost else r.timing.predict_seconds_per_item
        rows.append((b.label(entry), x, error.value if error else None, tier))
    if sum(1 for _, x, e, _ in rows if x and e is not None) < 2:
        return ""
    if use_cost:
        label, show, what = "Cost per 1,000 items ($)", (lambda v: f"${v:g}"), "cost"
    else:
        label, show, what = "Prediction time per item", fmt.per_item, "time per item"
    chart = charts.cost_frontier(rows, label, chart_id="frontier", x_format=show)
    note = ("" if use_cost else " Nothing on this board cost money, so the x axis is the prediction time per item.")
    return "\n".join([
        f"<h3>Error against {what}</h3>",
        f'<p class="lede">The Pareto front joins the rows that nothing beats on both Error and {what}.{escape(note)}</p>',
        f'<div class="chart-box wide">{chart}</div>',
    ])


CALIBRATION_ROWS = 6


def _calibration(page: Page) -> str:
    """Median guess / truth per true-price band for the leading rows."""
    series = [(s.label, page.tiers[i] if i < len(page.tiers) else None, s.predictions)
              for i, s in enumerate(page.sections) if s.predictions][:CALIBRATION_ROWS]
    if not series:
        return ""
    return "\n".join([
        "<h3>Calibration by true price</h3>",
        f'<p class="lede">Median guess over true price in each price band, for the {len(series)} leading rows: ×1 is right '
        "on average; below ×1 a predictor under-prices the band (common for expensive items).</p>",
        f'<div class="chart-box wide">{charts.band_calibration(series, chart_id="calibration")}</div>',
    ])


PREDICTOR_COL = 2


def tier_class(tier: int) -> str:
    """The CSS class that colours a tier like the charts do (``tier-more`` past the palette)."""
    return f"tier-{tier}" if tier <= len(charts.TIER_COLOURS) else "tier-more"
CARD_COLUMNS = ("Error $", "vs above", "Hits %", "RMSLE", "Cost $", "Time / item")


def _cards(page: Page, links: dict[int, str]) -> str:
    """The ranking as cards, for phone widths (CSS shows either these or the table)."""
    heads = [h.label for h in page.main.header]
    where = {label: heads.index(label) for label in CARD_COLUMNS if label in heads}
    items = []
    for i, row in enumerate(page.main.rows):
        tier = page.tiers[i] if i < len(page.tiers) else None
        cls = f" {tier_class(tier)}" if tier is not None else ""
        label = escape(row[PREDICTOR_COL].display)
        name = f'<a href="#{escape(links[i])}">{label}</a>' if i in links else label
        facts = []
        for head, col in where.items():
            cell = row[col]
            if cell.display in ("", fmt.MISSING) and head != "Error $":
                continue
            detail = f" <small>{escape(cell.detail)}</small>" if cell.detail and head == "Error $" else ""
            facts.append(f"<div><dt>{escape(head)}</dt><dd>{escape(cell.display)}{detail}</dd></div>")
        tier_text = f"tier {tier}" if tier is not None else "untested"
        items.append(f'<li class="card{cls}"><p class="card-head"><span class="card-rank">#{escape(row[1].display)}</span> '
                     f'{name} <span class="card-tier">{tier_text}</span></p><dl>{"".join(facts)}</dl></li>')
    return '<ol class="cards" aria-label="Ranking">' + "".join(items) + "</ol>"


def _not_run(page: Page) -> str:
    b = page.board
    if not b.not_run:
        return ""
    items = []
    for entry in b.not_run:
        r = entry.record
        shown = " <em>(an earlier complete run is in the table)</em>" if any(e.key == entry.key for e in b.ranked) else ""
        items.append(f'<li><strong>{escape(b.label(entry))}</strong> <span class="status {escape(r.status)}">{escape(r.status)}</span> '
                     f"{escape(r.reason or 'no reason recorded')}{shown}</li>")
    return '<section id="not-run">\n<h2>Not run</h2>\n<ul class="plain">\n' + "\n".join(items) + "\n</ul>\n</section>"


def _left_out(page: Page) -> str:
    if not page.notes:
        return ""
    items = "\n".join(f"<li>{escape(note)}</li>" for note in page.notes)
    return f'<section id="left-out">\n<h2>Left out</h2>\n<ul class="plain">\n{items}\n</ul>\n</section>'


def _breakdowns(page: Page) -> str:
    if not page.breakdowns:
        return ""
    parts = ['<section id="breakdowns">', "<h2>Where predictors miss</h2>",
             '<p class="lede">Error in dollars per slice of the test items. Cells are tinted by rank within the row, from '
             f'green (best) to red (worst); grey: a slice of fewer than {MIN_SLICE_N} items, too few to compare.</p>']
    for tbl in page.breakdowns:
        parts += [f"<h3>{escape(tbl.title)}</h3>", table(tbl, css="slices")]
    parts.append(_calibration(page))
    parts.append("</section>")
    return "\n".join(parts)


def _section(index: int, page: Page, sec: Section) -> str:
    r = sec.entry.record
    error = r.metrics.get("error")
    summary = f"#{index} {escape(sec.label)}"
    if error is not None and error.value is not None:
        summary += f'<span class="sub">Error {escape(fmt.dollars(error.value))}</span>'
    facts = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in sec.facts)
    # The anchor sits inside the details body: following a link to it opens a closed section.
    parts = [f'<details class="predictor"{" open" if index <= OPEN_SECTIONS else ""}>',
             f"<summary>{summary}</summary>", f'<div class="body" id="{escape(sec.anchor)}">']
    if sec.predictions:
        slug = sec.anchor
        parts.append('<div class="charts">'
                     f'<div class="chart-box">{charts.truth_vs_guess(sec.predictions, sec.label, chart_id=slug + "-scatter")}</div>'
                     f'<div class="chart-box">{charts.running_error(sec.predictions, sec.label, chart_id=slug + "-running", ci=_ci(r))}</div>'
                     "</div>")
    else:
        parts.append(f'<p class="lede">{escape(sec.note)}</p>')
    parts.append(f'<dl class="facts">{facts}</dl>')
    if sec.misses is not None:
        note = "" if page.product_text else " (titles and raw outputs omitted)"
        attrs = {i: f'data-category="{escape(cat or "")}"' + ("" if overall else ' data-extra="1" hidden')
                 for i, (cat, overall) in enumerate(zip(sec.miss_categories, sec.miss_overall))}
        parts += [f"<h3>Worst misses{note}</h3>", table(sec.misses, css="misses", row_attrs=attrs)]
    parts += ["</div>", "</details>"]
    return "\n".join(parts)


def _ci(record: RunRecord) -> tuple[float | None, float | None] | None:
    error = record.metrics.get("error")
    return (error.ci_low, error.ci_high) if error is not None else None


def _category_filter(page: Page) -> str:
    """A category picker for the worst-miss tables (hidden until the script runs: it needs JavaScript)."""
    categories = sorted({c for s in page.sections for c in s.miss_categories if c}, key=str.casefold)
    if not categories:
        return ""
    options = "".join(f'<option value="{escape(c)}">{escape(c)}</option>' for c in categories)
    note = ""
    if page.product_text and page.titles_note:
        note = f'<p class="lede">No titles in the worst misses: {escape(page.titles_note)}.</p>'
    return (f'{note}<p class="filter" id="category-filter-box" hidden><label for="category-filter">Worst misses in </label>'
            f'<select id="category-filter"><option value="">every category</option>{options}</select></p>\n')


def _footer(page: Page) -> str:
    glossary = "".join(f"<dt>{k}</dt><dd>{escape(v)}</dd>" for k, v in build.glossary())  # from the metric registry
    b = page.board
    records = len(b.ranked) + len(b.not_run)
    return (f'<footer><div class="wrap">\n<dl>{glossary}</dl>\n'
            f"<p>Generated by <code>price-bench leaderboard</code> from {records} result records; "
            f"regenerate with the same command to get this exact file.</p>\n</div></footer>")


def render(page: Page) -> str:
    """The whole HTML page as text."""
    sections = [_section(i, page, s) for i, s in enumerate(page.sections, 1)]
    predictors = ('<section id="predictors">\n<h2>Predictors</h2>\n' + _category_filter(page) + "\n".join(sections)
                  + "\n</section>") if sections else ""
    body = [
        _head(page),
        "<body>",
        _page_header(page),
        '<main class="wrap">',
        _ranking(page),
        _not_run(page),
        _left_out(page),
        _breakdowns(page),
        predictors,
        "</main>",
        _footer(page),
        f"<script>{SORT_SCRIPT}</script>",
        "</body>",
        "</html>",
    ]
    return "\n".join(part for part in body if part) + "\n"
