"""From a :class:`Board` to a :class:`Page`: the tables and facts both renderers show.

Metric keys read from ``RunRecord.metrics`` (written by the harness):
``error`` (mean absolute error in $, with its bootstrap CI), ``rmsle``,
``hits`` (% of items within $40 or 20%), ``r2`` and ``coverage`` (% of
answers that parsed); see :mod:`price_bench.metrics.point`. A 95% CI is shown
under any metric that has one.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from price_bench.leaderboard import fmt
from price_bench.leaderboard.select import Board, Entry
from price_bench.leaderboard.table import Cell, HeaderCell, Table
from price_bench.metrics.point import METRICS, MetricSpec
from price_bench.metrics.ties import Ranking
from price_bench.results.schema import ItemPrediction, MetricValue, RunRecord
from price_bench.results.store import read_predictions

MISSES_SHOWN = 5
#: How a figure is shown: a value (None: missing) to display text.
Show = Callable[[float | None], str]
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
    #: Per row of ``misses``: its category, and whether it is among the overall worst (else shown by the category filter).
    miss_categories: list[str | None] = field(default_factory=list)
    miss_overall: list[bool] = field(default_factory=list)


@dataclass
class Page:
    """A whole leaderboard, ready to render."""

    board: Board
    product_text: bool
    main: Table
    breakdowns: list[Table]
    sections: list[Section]
    notes: list[str] = field(default_factory=list)
    #: The significance verdicts behind the tiers (None when no two rows have per-item predictions).
    ranking: Ranking | None = None
    #: Per ranked row: its tier (None when it could not be tested).
    tiers: list[int | None] = field(default_factory=list)
    #: One sentence saying how ties were decided.
    method: str = ""
    #: Why worst misses have no titles although product text is allowed ("" when they have them).
    titles_note: str = ""


def _metric(record: RunRecord, key: str) -> MetricValue | None:
    metric = record.metrics.get(key)
    return metric if metric is not None and metric.value is not None else None


def _value(record: RunRecord, key: str) -> float | None:
    metric = _metric(record, key)
    return metric.value if metric else None


def metric_header(name: str, secondary_detail: bool = False) -> HeaderCell:
    """The column heading of a metric, from the registry (:data:`price_bench.metrics.point.METRICS`)."""
    spec = METRICS[name]
    return HeaderCell(spec.heading, spec.lower_is_better, spec.description, secondary_detail=secondary_detail)


def show_metric(spec: MetricSpec) -> Show:
    """The leaderboard's formatter for ``spec``'s values: its unit and digits in :mod:`fmt`'s style."""
    if spec.unit == "$":
        return lambda value: fmt.dollars(value, spec.digits)
    if spec.unit == "%":
        return lambda value: fmt.percent(value, spec.digits)
    return lambda value: fmt.number(value, spec.digits)


#: Non-metric columns the glossary explains (the metrics' entries come from the registry).
COST_GLOSSARY = ("Cost", "money spent on the API calls behind the scored predictions.")
#: The metrics a board shows, in column order.
BOARD_METRICS = ("error", "rmsle", "hits", "r2", "coverage")


def glossary() -> list[tuple[str, str]]:
    """(term, explanation) of every metric on a board, direction included, then Cost."""
    return [(METRICS[name].short, METRICS[name].explanation()) for name in BOARD_METRICS] + [COST_GLOSSARY]


def main_header() -> list[HeaderCell]:
    """The ranked table's header; the metric columns come from the registry."""
    return [
        HeaderCell("Tier", None, "Rows in one tier are not significantly different from the tier's first row "
                   "(paired bootstrap, Holm-Bonferroni over every pair)."),
        HeaderCell("Rank", None, "Ranks this row could hold given the significant differences: 2-6 means somewhere "
                   "between 2nd and 6th.", numeric=True),
        HeaderCell("Predictor", None, "What ran: predictor id, model and endpoint kind, or the config fields that tell "
                   "the rows of one id apart.", numeric=False, secondary_detail=True),
        metric_header("error"),
        HeaderCell("vs above", None, "Is this row significantly worse than the row above? (Holm-adjusted p)", numeric=False,
                   secondary_detail=True),
        HeaderCell("vs best", None, "Is this row significantly worse than the best row? (Holm-adjusted p)", numeric=False,
                   secondary_detail=True),
        metric_header("rmsle", secondary_detail=True),
        metric_header("hits", secondary_detail=True),
        metric_header("r2"),
        metric_header("coverage"),
        HeaderCell("Cost $", True, "Money spent on the scored predictions (original spend, also when cached)."),
        HeaderCell("Fit time", True, "Wall time of the fit that produced the model."),
        HeaderCell("Time / item", True, "Prediction time per item."),
        HeaderCell("n", None, "Items scored."),
    ]


def _metric_cell(record: RunRecord, key: str, show: Show) -> Cell:
    """A metric with its 95% CI (when the record has one) as the cell's detail."""
    metric = _metric(record, key)
    if metric is None:
        return Cell(None, fmt.MISSING)
    detail = ""
    if metric.ci_low is not None and metric.ci_high is not None:
        detail = f"{show(metric.ci_low)}–{show(metric.ci_high)}"
    return Cell(metric.value, show(metric.value), detail=detail, title="95% CI " + detail if detail else "")


@dataclass
class SeedSummary:
    """A row run with several seeds: the per-seed Errors, and per-item Errors averaged over the seeds."""

    seeds: list[int]
    errors: list[float]
    item_errors: dict[str, float]
    truth: dict[str, float]
    ci: tuple[float, float] | None

    @property
    def mean(self) -> float:
        return sum(self.errors) / len(self.errors)

    @property
    def sd(self) -> float:
        m = self.mean
        return (sum((e - m) ** 2 for e in self.errors) / (len(self.errors) - 1)) ** 0.5 if len(self.errors) > 1 else 0.0

    def as_predictions(self) -> list[ItemPrediction]:
        """Per-item rows whose absolute error is the seed-averaged one (what the tier tests compare)."""
        return [ItemPrediction(id=i, truth=self.truth[i], guess=self.truth[i] + e, parsed=self.truth[i] + e)
                for i, e in self.item_errors.items()]


def seed_summary(board: Board, entry: Entry) -> SeedSummary | None:
    """The seed statistics of ``entry``'s row (None for a row with one seed)."""
    from price_bench.metrics.bootstrap import mean_ci

    runs = board.seed_runs.get(entry.key)
    if not runs:
        return None
    values = [_value(e.record, "error") for e in runs]
    errors = [e for e in values if e is not None]
    if len(errors) < len(values):
        return None
    sums: dict[str, float] = {}
    counts: dict[str, int] = {}
    truth: dict[str, float] = {}
    for run in runs:
        rows, _ = _load_predictions(run)
        for p in rows or []:
            sums[p.id] = sums.get(p.id, 0.0) + abs(p.guess - p.truth)
            counts[p.id] = counts.get(p.id, 0) + 1
            truth[p.id] = p.truth
    common = {i: sums[i] / len(runs) for i in sums if counts[i] == len(runs)}
    ci = mean_ci(list(common.values()), n_resamples=BOARD_RESAMPLES, seed=BOARD_SEED) if common else None
    return SeedSummary([e.record.seed for e in runs], errors, common, truth, ci)


SAME = "≈"
WORSE = "worse"


def _verdict(ranking: Ranking | None, row: int | None, other: int | None) -> Cell:
    """"≈" or "worse" for row against other (rows of the ranking), with the adjusted p-value."""
    if ranking is not None and row == 0:
        return Cell("", "")
    if ranking is None or row is None or other is None:
        return Cell(None, fmt.MISSING)
    if row == other:
        return Cell("", "")
    p = ranking.p_adjusted[other][row]
    detail = f"p={fmt.p_value(p)}" if not fmt.p_value(p).startswith("<") else f"p{fmt.p_value(p)}"
    if ranking.worse_than(row, other):
        return Cell(1, WORSE, detail=detail, title=f"significantly worse (Holm-adjusted p = {fmt.p_value(p)})")
    return Cell(0, SAME, detail=detail, title=f"not significantly different (Holm-adjusted p = {fmt.p_value(p)})")


def _seed_error_cell(summary: SeedSummary) -> Cell:
    detail = f"{fmt.dollars(summary.ci[0])}–{fmt.dollars(summary.ci[1])}" if summary.ci else ""
    spread = f"{len(summary.seeds)} seeds, sd {fmt.dollars(summary.sd)}"
    title = (f"mean over seeds {', '.join(map(str, summary.seeds))} (per seed: "
             + ", ".join(fmt.dollars(e) for e in summary.errors) + f"); 95% CI over items {detail}")
    return Cell(summary.mean, fmt.dollars(summary.mean), detail=f"{detail}; {spread}" if detail else spread, title=title)


def _mean_metric_cell(runs: list[Entry], key: str, show: Show) -> Cell:
    found = [_value(e.record, key) for e in runs]
    values = [v for v in found if v is not None]
    if len(values) < len(found):
        return Cell(None, fmt.MISSING)
    mean = sum(values) / len(values)
    return Cell(mean, show(mean), title=f"mean over {len(values)} seeds")


def _main_row(board: Board, position: int, entry: Entry, ranking: Ranking | None, row: int | None,
              above: int | None, seeds: SeedSummary | None = None) -> list[Cell]:
    r = entry.record
    info = r.predictor
    r2, coverage = _value(r, "r2"), _value(r, "coverage")
    if ranking is not None and row is not None:
        tier = Cell(ranking.tiers[row], str(ranking.tiers[row]))
        rank = Cell(ranking.rank_low[row], ranking.rank_range(row), title=f"position {position} by Error")
    else:
        tier, rank = Cell(None, fmt.MISSING), Cell(position, str(position), title="not tested: no per-item predictions")
    runs = board.seed_runs.get(entry.key) if seeds is not None else None
    label = board.label(entry)
    return [
        tier,
        rank,
        Cell(label, label, detail=f"{info.plugin_distribution} {info.plugin_version}", title=info.description),
        _seed_error_cell(seeds) if seeds is not None else _metric_cell(r, "error", show_metric(METRICS["error"])),
        _verdict(ranking, row, above),
        _verdict(ranking, row, 0 if ranking is not None and row is not None else None),
        _mean_metric_cell(runs, "rmsle", show_metric(METRICS["rmsle"])) if runs else _metric_cell(r, "rmsle", show_metric(METRICS["rmsle"])),
        _mean_metric_cell(runs, "hits", show_metric(METRICS["hits"])) if runs else _metric_cell(r, "hits", show_metric(METRICS["hits"])),
        Cell(r2, show_metric(METRICS["r2"])(r2)),
        Cell(coverage, show_metric(METRICS["coverage"])(coverage)),
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
        cells: list[tuple[float, Cell]] = []
        for row in table.rows:
            value = row[col].value
            if isinstance(value, (int, float)):
                cells.append((float(value), row[col]))
        if len({c.display for _, c in cells}) < 2:
            continue
        pick = min if head.lower_is_better else max
        best = pick(cells, key=lambda vc: vc[0])[1].display  # ties as shown: equal displays are equally best
        for row in table.rows:
            if row[col].display == best and isinstance(row[col].value, (int, float)):
                row[col] = replace(row[col], best=True)


def main_table(board: Board, ranking: Ranking | None = None, rows: list[int | None] | None = None,
               seeds: list[SeedSummary | None] | None = None) -> Table:
    """The ranked table: one row per (predictor, config); ``rows[i]``: entry i's row in ``ranking`` (None: untested)."""
    table = Table("Leaderboard", main_header(), table_id="leaderboard")
    rows = rows or [None] * len(board.ranked)
    seeds = seeds or [None] * len(board.ranked)
    previous = None
    for position, (entry, row, summary) in enumerate(zip(board.ranked, rows, seeds), 1):
        table.add_row(_main_row(board, position, entry, ranking, row, previous if row is not None else None, summary))
        if row is not None:
            previous = row
    mark_best_in_columns(table)
    return table


BOARD_RESAMPLES = 1000
BOARD_SEED = 0


def rank_board(board: Board, predictions: list[list[ItemPrediction] | None]) -> tuple[Ranking | None, list[int | None]]:
    """Tiers and rank ranges of the ranked rows that have per-item predictions, on the items they all share.

    Returns the ranking and, per ranked entry, its row in it (None when it has no predictions).
    """
    from price_bench.metrics.ties import rank_with_ties

    usable = [(i, rows) for i, rows in enumerate(predictions) if rows]
    if len(usable) < 2:
        return None, [None] * len(predictions)
    by_id = [{p.id: p for p in rows} for _, rows in usable]
    common = [p.id for p in usable[0][1] if all(p.id in rows for rows in by_id[1:])]
    if not common:
        return None, [None] * len(predictions)
    truth = [by_id[0][i].truth for i in common]
    guesses = [[rows[i].guess for i in common] for rows in by_id]
    ranking = rank_with_ties(truth, guesses, n_resamples=BOARD_RESAMPLES, seed=BOARD_SEED)
    index: list[int | None] = [None] * len(predictions)
    for row, (i, _) in enumerate(usable):
        index[i] = row
    return ranking, index


def board_verdict(results_dir: str | Path, record_a: RunRecord, record_b: RunRecord) -> dict[str, Any] | None:
    """The leaderboard's verdict on two runs when both are rows of their dataset's board (else None).

    The same tiers, rank ranges and Holm-corrected p-value the page shows.
    """
    from price_bench.leaderboard.select import group_by_dataset, select_board
    from price_bench.results.store import load_records

    if record_a.dataset.name != record_b.dataset.name:
        return None
    entries = [Entry(p, r) for p, r in load_records(Path(results_dir)) if r.dataset.name == record_a.dataset.name]
    board = select_board(record_a.dataset.name, group_by_dataset(entries).get(record_a.dataset.name, []))
    if board is None:
        return None
    ids = [e.record.run_id for e in board.ranked]
    if record_a.run_id not in ids or record_b.run_id not in ids or record_a.run_id == record_b.run_id:
        return None
    summaries = [seed_summary(board, e) for e in board.ranked]
    ranking, rows = rank_board(board, [sm.as_predictions() if sm else _load_predictions(e)[0]
                                       for e, sm in zip(board.ranked, summaries)])
    ra, rb = rows[ids.index(record_a.run_id)], rows[ids.index(record_b.run_id)]
    if ranking is None or ra is None or rb is None:
        return None
    better = "A" if ranking.better[ra][rb] else "B" if ranking.better[rb][ra] else None
    return {"dataset": board.dataset, "tier_a": ranking.tiers[ra], "tier_b": ranking.tiers[rb],
            "rank_a": ranking.rank_range(ra), "rank_b": ranking.rank_range(rb), "better": better,
            "p_adjusted": ranking.p_adjusted[ra][rb], "n_pairs": ranking.n_pairs}


def method_note(ranking: Ranking | None) -> str:
    """How the tiers were decided, in one sentence."""
    from price_bench.metrics.ties import ALPHA, CORRECTION

    if ranking is None:
        return ""
    return (f"Tiers and rank ranges come from paired bootstrap tests of Error between every pair of rows on the same "
            f"{fmt.count(ranking.n_items)} items ({fmt.count(ranking.n_resamples)} resamples), corrected for "
            f"{fmt.count(ranking.n_pairs)} comparisons with {CORRECTION} at a family-wise α = {ALPHA:g}: a row starts a new "
            f"tier when it is significantly worse than the first row of the current tier, and a rank range such as 2-6 "
            f"means the data cannot order it more precisely than that. CIs: percentile bootstrap unless a record names "
            f"another method.")


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
    header += [HeaderCell(board.label(e), METRICS["error"].lower_is_better, "Mean absolute error in dollars.") for e in board.ranked]
    names = sorted(slices, key=str.casefold) if kind == "category" else list(slices)
    table = Table(title, header, table_id=f"by-{kind.replace('_', '-')}")
    for name in names:
        errors: list[float | None] = []
        for entry in board.ranked:
            found = entry.record.breakdowns.get(kind, {}).get(name)
            errors.append(found.error if found is not None else None)
        table.add_row([Cell.text(name), Cell(slices[name], fmt.count(slices[name]))] + _heat_cells(errors, slices[name]))
    return table


#: A slice with fewer items than this is greyed out and never marked best: its Error is too noisy to compare.
MIN_SLICE_N = 30


def _heat_cells(errors: list[float | None], n: int = MIN_SLICE_N) -> list[Cell]:
    """Error cells of one slice, tinted by rank within the row (best green .. worst red); greyed below MIN_SLICE_N items.

    Ranks, not min-max: one outlier cannot turn every other cell green.
    """
    known = sorted(e for e in errors if e is not None and math.isfinite(e))
    low = known[0] if known else None
    cells = []
    for err in errors:
        if err is None:
            cells.append(Cell(None, fmt.MISSING))
            continue
        shown = fmt.dollars(err, 0 if abs(err) >= 1000 else 2) if math.isfinite(err) else fmt.MISSING
        if n < MIN_SLICE_N:
            cells.append(Cell(err, shown, muted=True, title=f"only {n} items: too few to compare"))
            continue
        below = sum(1 for e in known if e < err)
        heat = below / (len(known) - 1) if len(known) > 1 else 0.0
        cells.append(Cell(err, shown, best=len(known) > 1 and err == low, heat=round(heat, 3)))
    return cells


MISSES_PER_CATEGORY = 5


def worst_items(predictions: list[ItemPrediction]) -> tuple[list[ItemPrediction], list[bool]]:
    """The misses a page lists: the worst :data:`MISSES_SHOWN` overall plus the worst few of every category.

    Returns the rows (worst first) and, per row, whether it is among the overall
    worst (the others show when a reader filters by category).
    """
    ordered = sorted(predictions, key=lambda p: (-abs(p.guess - p.truth), p.id))
    overall = ordered[:MISSES_SHOWN]
    picked = {p.id for p in overall}
    per_category: dict[str | None, int] = {}
    rows = list(overall)
    for p in ordered:
        if p.id in picked:
            per_category[p.category] = per_category.get(p.category, 0) + 1
            continue
        if per_category.get(p.category, 0) < MISSES_PER_CATEGORY:
            per_category[p.category] = per_category.get(p.category, 0) + 1
            rows.append(p)
    rows.sort(key=lambda p: (-abs(p.guess - p.truth), p.id))
    return rows, [p.id in picked for p in rows]


def misses_table(predictions: list[ItemPrediction], product_text: bool, titles: dict[str, str] | None = None) -> Table:
    """The worst misses by absolute error; titles and raw outputs only when product text may be shown."""
    titles = titles if product_text else None
    header = [HeaderCell("Item", None, numeric=False)]
    if titles is not None:
        header.append(HeaderCell("Title", None, "The product's title (from the local copy of the dataset).", numeric=False))
    header += [
        HeaderCell("Category", None, numeric=False),
        HeaderCell("Truth", None),
        HeaderCell("Guess", None),
        HeaderCell(METRICS["error"].short, METRICS["error"].lower_is_better),
    ]
    if product_text:
        header.append(HeaderCell("Raw output", None, "What the predictor answered (truncated).", numeric=False))
    table = Table("Worst misses", header)
    for p in predictions:
        guess_detail = "unparsed: train median" if p.parsed is None else ""
        row = [Cell.text(p.id)]
        if titles is not None:
            row.append(Cell.text(titles.get(p.id) or fmt.MISSING))
        row += [
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
        ("Label", ", ".join(r.predictor.label_fields) if r.predictor.label_fields else "default (model and endpoint fields)"),
    ]
    if r.timing.fit_reused:
        facts.append(("Fit", "reused from an earlier run (fit time is the original's)"))
    facts += _provenance_facts(r)
    return facts


def _provenance_facts(r: RunRecord) -> list[tuple[str, str]]:
    """Code, CI method and machine facts of a run (records before provenance say so)."""
    facts = [("Statistics", f"{r.ci_method or 'percentile bootstrap'} 95% CIs"
                            + (f", {fmt.count(r.n_resamples)} resamples" if r.n_resamples else "") + f"; seed {r.seed}")]
    if r.predictor.code_digest:
        facts.append(("Code digest", r.predictor.code_digest))
    p = r.provenance
    if p is None:
        facts.append(("Provenance", "not recorded (the record predates provenance)"))
        return facts
    git = (r.git_commit or fmt.MISSING)[:12] + {True: " (uncommitted changes)", False: " (clean)", None: ""}[p.git_dirty]
    facts += [
        ("Machine", f"{p.cpu or fmt.MISSING} × {p.cpu_count or '?'}; GPU {', '.join(p.gpu) or 'none'}; {p.platform or fmt.MISSING}"),
        ("Threads", ", ".join(f"{k}={v}" for k, v in p.threads.items()) or "library defaults"),
        ("Libraries", f"Python {p.python}; " + ", ".join(f"{k} {v}" for k, v in p.versions.items())),
        ("Git", git),
    ]
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
    import re

    return "p-" + (re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-") or "row")


def section(board: Board, entry: Entry, product_text: bool, titles: dict[str, str] | None = None) -> Section:
    """The detail section of one ranked predictor."""
    label = board.label(entry)
    predictions, note = _load_predictions(entry)
    misses, overall = worst_items(predictions) if predictions else ([], [])
    return Section(
        entry=entry,
        label=label,
        anchor=anchor(label),
        facts=_facts(entry),
        predictions=predictions,
        note=note,
        misses=misses_table(misses, product_text, titles) if predictions else None,
        miss_categories=[p.category for p in misses],
        miss_overall=overall,
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


def build_page(board: Board, product_text: bool = True, home: Path | None = None) -> Page:
    """Everything both renderers need for ``board``.

    Item titles come from a local copy of the dataset under ``home`` (the
    default data home when None), when there is one.

    Raises :class:`ResultError` (naming the file) on an unreadable sidecar.
    """
    tables = [t for t in (breakdown_table(board, "category"), breakdown_table(board, "price_band")) if t]
    titles, titles_note = _titles(board, home) if product_text else (None, "")
    sections = [section(board, e, product_text, titles) for e in board.ranked]
    seen: dict[str, int] = {}
    for sec in sections:  # two labels can give one anchor ("a.b", "a-b"): number the later ones
        seen[sec.anchor] = seen.get(sec.anchor, 0) + 1
        if seen[sec.anchor] > 1:
            sec.anchor += f"-{seen[sec.anchor]}"
    seeds = [seed_summary(board, e) for e in board.ranked]
    ranking, rows = rank_board(board, [sm.as_predictions() if sm else s.predictions for s, sm in zip(sections, seeds)])
    for sec, summary in zip(sections, seeds):
        if summary is not None:
            sec.facts.insert(0, ("Seeds", f"{len(summary.seeds)} runs (seeds {', '.join(map(str, summary.seeds))}): Error "
                                 + ", ".join(fmt.dollars(e) for e in summary.errors) + f"; mean {fmt.dollars(summary.mean)}, "
                                 f"sd {fmt.dollars(summary.sd)}. Charts and misses: the run with seed {sec.entry.record.seed}."))
    return Page(
        board=board,
        product_text=product_text,
        main=main_table(board, ranking, rows, seeds),
        breakdowns=tables,
        sections=sections,
        notes=_notes(board),
        ranking=ranking,
        tiers=[ranking.tiers[r] if ranking is not None and r is not None else None for r in rows],
        method=method_note(ranking),
        titles_note=titles_note,
    )


def _titles(board: Board, home: Path | None = None) -> tuple[dict[str, str] | None, str]:
    """Titles of the board's items from a local copy of its dataset (None and why when there is none)."""
    from price_bench.results.drilldown import titles

    if not board.ranked:
        return None, ""
    return titles(board.ranked[0].record, home)

