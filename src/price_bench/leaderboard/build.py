"""From a :class:`Board` to a :class:`Page`: the tables and facts both renderers show.

Metric keys read from ``RunRecord.metrics`` (written by the harness):
``error`` (mean absolute error in $, with its bootstrap CI), ``rmsle``,
``hits`` (% of items within $40 or 20%), ``r2`` and ``coverage`` (% of
answers that parsed); see :mod:`price_bench.metrics.point`. A 95% CI is shown
under any metric that has one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace

from price_bench.leaderboard import fmt
from price_bench.leaderboard.select import Board, Entry
from price_bench.leaderboard.table import Cell, HeaderCell, Table
from price_bench.results.schema import ItemPrediction, MetricValue, RunRecord
from price_bench.results.store import read_predictions

MISSES_SHOWN = 5
RAW_CHARS = 160


@dataclass
class Section:
    """One predictor's detail: its facts, per-item predictions and worst misses."""

    entry: Entry
    label: str
    anchor: str
    facts: list[tuple[str, str]]
    predictions: list[ItemPrediction] | None
    note: str = ""
    misses: Table | None = None


@dataclass
class Page:
    """A whole leaderboard, ready to render."""

    board: Board
    product_text: bool
    main: Table
    breakdowns: list[Table]
    sections: list[Section]
    notes: list[str] = field(default_factory=list)


def _metric(record: RunRecord, key: str) -> MetricValue | None:
    metric = record.metrics.get(key)
    return metric if metric is not None and metric.value is not None else None


def _value(record: RunRecord, key: str) -> float | None:
    metric = _metric(record, key)
    return metric.value if metric else None


MAIN_HEADER = [
    HeaderCell("Rank", None, "Ordered by Error (lower is better).", numeric=True),
    HeaderCell("Predictor", None, "Predictor id (and config hash when one id ran with several configs).", numeric=False,
               secondary_detail=True),
    HeaderCell("Error $", True, "Mean absolute error in dollars, with its bootstrap 95% confidence interval."),
    HeaderCell("RMSLE", True, "Root mean squared log error (log1p, negatives clipped).", secondary_detail=True),
    HeaderCell("Hits %", False, "Share of items guessed within $40 or within 20% of the true price.", secondary_detail=True),
    HeaderCell("R²", False, "Coefficient of determination of guess against truth."),
    HeaderCell("Coverage", False, "Share of answers with a usable price; the rest are scored with the train median."),
    HeaderCell("Cost $", True, "Money spent on the scored predictions (original spend, also when cached)."),
    HeaderCell("Fit time", True, "Wall time of the fit that produced the model."),
    HeaderCell("Time / item", True, "Prediction time per item."),
    HeaderCell("n", None, "Items scored."),
]


def _metric_cell(record: RunRecord, key: str, show) -> Cell:
    """A metric with its 95% CI (when the record has one) as the cell's detail."""
    metric = _metric(record, key)
    if metric is None:
        return Cell(None, fmt.MISSING)
    detail = ""
    if metric.ci_low is not None and metric.ci_high is not None:
        detail = f"{show(metric.ci_low)}–{show(metric.ci_high)}"
    return Cell(metric.value, show(metric.value), detail=detail, title="95% CI " + detail if detail else "")


def _main_row(board: Board, rank: int, entry: Entry) -> list[Cell]:
    r = entry.record
    info = r.predictor
    r2, coverage = _value(r, "r2"), _value(r, "coverage")
    return [
        Cell(rank, str(rank)),
        Cell(board.label(entry), board.label(entry), detail=f"{info.plugin_distribution} {info.plugin_version}",
             title=info.description),
        _metric_cell(r, "error", fmt.dollars),
        _metric_cell(r, "rmsle", fmt.number),
        _metric_cell(r, "hits", fmt.percent),
        Cell(r2, fmt.number(r2)),
        Cell(coverage, fmt.percent(coverage)),
        Cell(r.usage.cost_usd, fmt.cost(r.usage.cost_usd) if r.usage.cost_usd is not None else fmt.COST_UNKNOWN),
        Cell(r.timing.fit_seconds, fmt.duration(r.timing.fit_seconds)),
        Cell(r.timing.predict_seconds_per_item, fmt.per_item(r.timing.predict_seconds_per_item)),
        Cell(r.n_items, fmt.count(r.n_items)),
    ]


def mark_best_in_columns(table: Table) -> None:
    """Flag the best value of every column that has a direction.

    Ties are judged on what a reader sees (two "<0.01 s" are equally best);
    nothing is flagged when every row shows the same.
    """
    for col, head in enumerate(table.header):
        if head.lower_is_better is None:
            continue
        cells = [row[col] for row in table.rows if isinstance(row[col].value, (int, float))]
        if len({c.display for c in cells}) < 2:
            continue
        pick = min if head.lower_is_better else max
        best = pick(cells, key=lambda c: c.value).display  # ties as shown: equal displays are equally best
        for row in table.rows:
            if row[col].display == best and isinstance(row[col].value, (int, float)):
                row[col] = replace(row[col], best=True)


def main_table(board: Board) -> Table:
    """The ranked table: one row per (predictor, config)."""
    table = Table("Leaderboard", list(MAIN_HEADER), table_id="leaderboard")
    for rank, entry in enumerate(board.ranked, 1):
        table.add_row(_main_row(board, rank, entry))
    mark_best_in_columns(table)
    return table


BREAKDOWN_TITLES = {"category": ("Error by category", "Category"), "price_band": ("Error by price band", "True price")}


def breakdown_table(board: Board, kind: str) -> Table | None:
    """Error per slice (rows) and predictor (columns, in rank order); None when no run has the slice."""
    slices: dict[str, int] = {}
    for entry in board.ranked:
        for name, row in entry.record.breakdowns.get(kind, {}).items():
            slices.setdefault(name, row.n)
    if not slices:
        return None
    title, first = BREAKDOWN_TITLES.get(kind, (f"Error by {kind}", kind))
    header = [HeaderCell(first, None, numeric=False), HeaderCell("n", None, "Items in the slice.")]
    header += [HeaderCell(board.label(e), True, "Mean absolute error in dollars.") for e in board.ranked]
    names = sorted(slices, key=str.casefold) if kind == "category" else list(slices)
    table = Table(title, header, table_id=f"by-{kind.replace('_', '-')}")
    for name in names:
        errors = []
        for entry in board.ranked:
            row = entry.record.breakdowns.get(kind, {}).get(name)
            errors.append(row.error if row is not None else None)
        table.add_row([Cell.text(name), Cell(slices[name], fmt.count(slices[name]))] + _heat_cells(errors))
    return table


def _heat_cells(errors: list[float | None]) -> list[Cell]:
    known = [e for e in errors if e is not None]
    low, high = (min(known), max(known)) if known else (0.0, 0.0)
    cells = []
    for err in errors:
        if err is None:
            cells.append(Cell(None, fmt.MISSING))
            continue
        heat = (err - low) / (high - low) if high > low else 0.0
        cells.append(Cell(err, fmt.dollars(err, 0 if err >= 1000 else 2), best=len(known) > 1 and err == low, heat=round(heat, 3)))
    return cells


def misses_table(predictions: list[ItemPrediction], product_text: bool) -> Table:
    """The worst misses by absolute error; raw outputs only when product text may be shown."""
    header = [
        HeaderCell("Item", None, numeric=False),
        HeaderCell("Category", None, numeric=False),
        HeaderCell("Truth", None),
        HeaderCell("Guess", None),
        HeaderCell("Error", True),
    ]
    if product_text:
        header.append(HeaderCell("Raw output", None, "What the predictor answered (truncated).", numeric=False))
    table = Table("Worst misses", header)
    worst = sorted(predictions, key=lambda p: (-abs(p.guess - p.truth), p.id))[:MISSES_SHOWN]
    for p in worst:
        guess_detail = "unparsed: train median" if p.parsed is None else ""
        row = [
            Cell.text(p.id),
            Cell.text(p.category or fmt.MISSING),
            Cell(p.truth, fmt.dollars(p.truth)),
            Cell(p.guess, fmt.dollars(p.guess), detail=guess_detail),
            Cell(abs(p.guess - p.truth), fmt.dollars(abs(p.guess - p.truth))),
        ]
        if product_text:
            raw = p.error and f"error: {p.error}" or (p.raw or "")
            raw = " ".join(raw.split())
            row.append(Cell.text(raw if len(raw) <= RAW_CHARS else raw[: RAW_CHARS - 1] + "…"))
        table.add_row(row)
    return table


def _facts(entry: Entry) -> list[tuple[str, str]]:
    r = entry.record
    info = r.predictor
    config = json.dumps(info.config, sort_keys=True, ensure_ascii=False) if info.config else "defaults"
    facts = [
        ("Description", info.description or fmt.MISSING),
        ("Plugin", f"{info.plugin_distribution} {info.plugin_version} (predictor v{info.predictor_version})"),
        ("Config", f"{config} (hash {info.config_hash})"),
        ("Run", f"{r.run_id}, {fmt.date(r.started_at)} → {fmt.date(r.finished_at)}"),
        ("Parse failures", f"{fmt.count(r.parse_failures)}; item errors {fmt.count(r.item_errors)}; "
                           f"fallback {fmt.dollars(r.fallback_price)}"),
        ("Tokens", f"{fmt.count(r.usage.tokens_in)} in, {fmt.count(r.usage.tokens_out)} out"),
        ("Versions", f"price-bench {r.price_bench_version}" + (f", commit {r.git_commit[:12]}" if r.git_commit else "")),
    ]
    if r.timing.fit_reused:
        facts.append(("Fit", "reused from an earlier run (fit time is the original's)"))
    return facts


def _load_predictions(entry: Entry) -> tuple[list[ItemPrediction] | None, str]:
    if not entry.record.predictions_file:
        return None, "This run has no per-item predictions file."
    sidecar = entry.path.with_name(entry.record.predictions_file)
    if not sidecar.exists():
        return None, f"Per-item predictions file {sidecar.name} is not present."
    rows = read_predictions(entry.path, entry.record)
    if not rows:
        return None, f"Per-item predictions file {sidecar.name} is empty."
    return rows, ""


def anchor(label: str) -> str:
    """A safe HTML id for a predictor label."""
    return "p-" + "".join(ch if ch.isalnum() else "-" for ch in label.lower())


def section(board: Board, entry: Entry, product_text: bool) -> Section:
    """The detail section of one ranked predictor."""
    label = board.label(entry)
    predictions, note = _load_predictions(entry)
    return Section(
        entry=entry,
        label=label,
        anchor=anchor(label),
        facts=_facts(entry),
        predictions=predictions,
        note=note,
        misses=misses_table(predictions, product_text) if predictions else None,
    )


def _notes(board: Board) -> list[str]:
    notes = []
    if board.other_fingerprint:
        which = sorted({f"{e.record.predictor.id} (fingerprint {fmt.short_hash(e.record.dataset.fingerprint)}, "
                        f"{fmt.date(e.record.finished_at)})" for e in board.other_fingerprint})
        runs = "run" if len(board.other_fingerprint) == 1 else "runs"
        notes.append(f"{len(board.other_fingerprint)} {runs} on another version of this dataset left out: " + "; ".join(which) + ".")
    if board.limit_runs:
        runs = "run" if board.limit_runs == 1 else "runs"
        notes.append(f"{board.limit_runs} --limit {runs} (a subset of the items) left out.")
    if board.superseded:
        runs = "run" if board.superseded == 1 else "runs"
        notes.append(f"{board.superseded} older complete {runs} replaced by a newer run of the same predictor and config.")
    return notes


def build_page(board: Board, product_text: bool = True) -> Page:
    """Everything both renderers need for ``board``.

    Raises :class:`ResultError` (naming the file) on an unreadable sidecar.
    """
    tables = [t for t in (breakdown_table(board, "category"), breakdown_table(board, "price_band")) if t]
    return Page(
        board=board,
        product_text=product_text,
        main=main_table(board),
        breakdowns=tables,
        sections=[section(board, e, product_text) for e in board.ranked],
        notes=_notes(board),
    )

