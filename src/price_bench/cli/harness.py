"""`price-bench` commands of the harness: list, plugins, run, results, show, compare, predict.

Nothing heavy is imported at module level (numpy, rich and the runner are
imported inside the commands), so ``price-bench --help`` and ``list`` stay
fast. User errors print one line (``Error: ...``) and exit 1, never a
traceback.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import click

from price_bench.names import printable as _printable

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from price_bench.harness.options import Overwrite
    from price_bench.harness.runner import RunOutcome
    from price_bench.predictors.registry import PredictorRegistry
    from price_bench.results.schema import RunRecord

_P = ParamSpec("_P")
_R = TypeVar("_R")

OVERWRITE_CHOICES = ("never", "always", "missing")


def register(cli: click.Group) -> None:
    """Add this module's commands to ``cli``."""
    for command in (list_cmd, plugins_cmd, run_cmd, results_cmd, show_cmd, compare_cmd, predict_cmd, export_cmd):
        cli.add_command(command)


# -- helpers -----------------------------------------------------------------------------------


def _user_errors(func: Callable[_P, _R]) -> Callable[_P, _R]:
    """Turn the known user errors into one-line ``Error: ...`` messages (exit 1): :func:`price_bench.cli.errors.user_errors`."""
    from price_bench.cli.errors import user_errors

    return user_errors(func)


def _warn_plugin_failures(registry: PredictorRegistry | None = None) -> None:
    """One stderr line per plugin that failed to load and per refused duplicate predictor id: loud, never fatal."""
    from price_bench.plugins.manager import get_registry, plugin_failures

    for info in plugin_failures():
        click.echo(_printable(f"warning: plugin {info.name} ({info.distribution} {info.version}) not loaded: {info.error}"
                   " (see `price-bench plugins`)"), err=True)
    for line in (registry if registry is not None else get_registry()).warnings:
        click.echo(_printable(f"warning: {line}"), err=True)


def _console() -> Console:
    from rich.console import Console

    # emoji=False: ":x:" in product text or a model answer stays ":x:".
    return Console(highlight=False, soft_wrap=False, emoji=False, width=None if sys.stdout.isatty() else 160)


def _safe(value: Any) -> str:
    """``value`` as text that Rich shows verbatim: markup escaped (emoji codes are off on :func:`_console`).

    Everything a plugin, a model, a dataset or a result record supplies goes
    through here before a Rich table or ``console.print`` sees it.
    """
    from rich.markup import escape

    return escape(_printable(value))


def _echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


def _results_dir(value: str | None) -> Path:
    from price_bench.results.store import default_results_dir

    return Path(value) if value else default_results_dir()


def _fmt(value: float | None, unit: str = "", digits: int = 2) -> str:
    if value is None:
        return "-"
    if unit == "$":
        return f"-${-value:,.{digits}f}" if value < 0 else f"${value:,.{digits}f}"
    if unit == "%":
        return f"{value:.1f}%"
    return f"{value:,.{digits}f}" if abs(value) < 1e6 else f"{value:,.3g}"


results_option = click.option(
    "--results", "results", metavar="DIR", default=None, help="Results folder (default: $PRICE_BENCH_RESULTS or ./results)."
)
json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable JSON output.")


# -- list / plugins --------------------------------------------------------------------------------


@click.command("list")
@json_option
@_user_errors
def list_cmd(as_json: bool) -> None:
    """List predictors: ready, or skipped and why, with their plugin."""
    from price_bench.plugins.status import predictor_statuses

    rows = predictor_statuses()
    _warn_plugin_failures()
    if as_json:
        _echo_json(rows)
        return
    from rich.table import Table

    table = Table(title=f"{len(rows)} predictors")
    for col in ("id", "status", "plugin", "description"):
        table.add_column(col)
    for row in rows:
        status = row["status"] if row["status"] == "ready" else f"{row['status']}: {row['reason']}"
        style = {"ready": "green", "skipped": "yellow"}.get(row["status"], "red")
        table.add_row(_safe(row["id"]), f"[{style}]{_safe(status)}[/]", _safe(f"{row['origin']} {row['plugin_version']}"),
                      _safe(row["description"]))
    _console().print(table)


@click.command("plugins")
@json_option
@_user_errors
def plugins_cmd(as_json: bool) -> None:
    """List loaded plugins (hooks, versions) and plugins that failed to load, with their errors."""
    from dataclasses import asdict

    from price_bench.plugins.manager import list_plugins

    infos = list_plugins()
    if as_json:
        _echo_json([asdict(info) for info in infos])
        return
    from rich.table import Table

    table = Table(title="plugins")
    for col in ("name", "distribution", "version", "hooks / error"):
        table.add_column(col)
    for info in infos:
        detail = f"[red]FAILED: {_safe(info.error)}[/]" if info.error else _safe(", ".join(info.hooks))
        table.add_row(_safe(info.name), _safe(info.distribution), _safe(info.version), detail)
    _console().print(table)


# -- run ------------------------------------------------------------------------------------------------


@click.command("run")
@click.argument("ids", nargs=-1)
@click.option("--all", "all_", is_flag=True, help="Run every registered predictor.")
@click.option("--exclude", "exclude", multiple=True, metavar="ID", help="With --all: leave this predictor out (repeatable).")
@click.option("--dataset", default="demo", show_default=True,
              help="Dataset name in the data home, or an explicit folder path (./x, /data/x): a bare name never reads the current folder.")
@click.option("--limit", type=int, default=None, help="Score only the first N test items (such runs never reach a leaderboard).")
@click.option("--workers", type=int, default=1, show_default=True, help="Batches predicted concurrently (threads).")
@click.option("-o", "--override", "overrides", multiple=True, metavar="ID.KEY=VALUE", help="Override a config field (repeatable).")
@click.option(
    "--overwrite",
    type=click.Choice(OVERWRITE_CHOICES),
    default="missing",
    show_default=True,
    help="missing: reuse cached predictions; always: ignore the cache; never: skip predictors with a complete record.",
)
@click.option("--refit", is_flag=True, help="Ignore previous fits in the work folders.")
@click.option("--vary", "variants", multiple=True, metavar="ID.KEY=VALUE",
              help="Run matrix: run ID once per value (repeatable; several keys combine), each a separate leaderboard row.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed passed to predictors (part of the cache key); 0 to 2**63-1.")
@click.option("--seeds", "seeds", default=None, metavar="0,1,2",
              help="Run every predictor once per seed; the leaderboard shows the mean and spread across seeds.")
@click.option("--bootstrap", "n_resamples", type=int, default=1000, show_default=True,
              help="Bootstrap resamples for the CIs: at least 10 (1000 for reported figures), or 0 for no CIs.")
@click.option("--ci", "ci_method", type=click.Choice(["percentile", "bca"]), default="percentile", show_default=True,
              help="Bootstrap CI method: percentile, or bias-corrected and accelerated (BCa); the record names it.")
@click.option("--keep-cache-on-code-change", "keep_cache", is_flag=True,
              help="Reuse answers and fits made by an earlier version of a predictor's code (for a change known not to "
                   "matter, when recomputing costs money; also PRICE_BENCH_KEEP_CACHE_ON_CODE_CHANGE=1).")
@click.option("--progress/--no-progress", default=None, help="Live progress bar (default: when stderr is a terminal).")
@click.option(
    "--raw-output/--no-raw-output",
    default=True,
    show_default=True,
    help="Keep the predictors' raw text in the per-item file; --no-raw-output for data that must not be "
    "redistributed (model answers can quote the product).",
)
@click.option(
    "--max-error-share",
    type=click.FloatRange(0.0, 1.0),
    default=0.0,
    show_default=True,
    help="Exit non-zero when more than this share of a complete run's items errored (errored items are "
    "never cached: a rerun retries them).",
)
@click.option("--engine", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="ray: predict with Ray Data over an actor pool (pip install price-bench[ray]).")
@click.option("--address", "ray_address", default=None, help="Ray cluster address for --engine ray (default: RAY_ADDRESS, else a local Ray).")
@results_option
@json_option
@_user_errors
def run_cmd(ids: tuple[str, ...], all_: bool, exclude: tuple[str, ...], dataset: str, limit: int | None, workers: int,
            overrides: tuple[str, ...], overwrite: Overwrite, refit: bool, variants: tuple[str, ...], seed: int, seeds: str | None,
            n_resamples: int, ci_method: str, keep_cache: bool, progress: bool | None, raw_output: bool, max_error_share: float,
            engine: str, ray_address: str | None, results: str | None, as_json: bool) -> None:
    """Fit and score predictors on a dataset's test split, with caching and resume.

    Exit code 0 when every predictor completed cleanly; 1 when any predictor
    failed (a run in which no item got a usable answer is failed), when a
    complete run has more errored items than --max-error-share allows, or
    when a predictor named on the command line was skipped (with --all,
    skipped predictors are not failures); 130 when interrupted (rerun the
    same command to resume).
    """
    from price_bench.harness.outcomes import run_problems
    from price_bench.harness.overrides import parse_overrides, parse_seeds, parse_variants
    from price_bench.harness.runner import RunOptions, resolve_ids, run_seeds
    from price_bench.plugins.manager import get_registry

    registry = get_registry()
    _warn_plugin_failures(registry)
    run_ids = resolve_ids(registry, ids, all_, exclude=exclude)
    options = RunOptions(
        dataset=dataset, limit=limit, workers=workers, seed=seed, n_resamples=n_resamples, ci_method=ci_method,
        overrides=parse_overrides(overrides), variants=parse_variants(variants), overwrite=overwrite, refit=refit,
        keep_cache_on_code_change=keep_cache, results_dir=_results_dir(results), progress=progress, raw_output=raw_output,
        engine=engine, ray_address=ray_address,
    )
    console = _console()

    def report(outcome: RunOutcome) -> None:
        if not as_json and not (progress or sys.stderr.isatty()):
            click.echo(_printable(f"{outcome.predictor_id}: {outcome.status}" + (f" ({outcome.reason})" if outcome.reason else "")), err=True)

    _warn_repository_results(results)
    try:
        outcomes = run_seeds(run_ids, options, parse_seeds(seeds) if seeds is not None else None, registry=registry, on_outcome=report)
    except KeyboardInterrupt:
        click.echo("Interrupted: finished batches are saved; rerun the same command to resume.", err=True)
        sys.exit(130)
    if as_json:
        _echo_json([_outcome_dict(o) for o in outcomes])
    else:
        console.print(_summary_table(outcomes))
        written = [o for o in outcomes if o.path is not None and o.status != "up-to-date"]
        if written:
            click.echo(f"{len(written)} record(s) written to {_results_dir(results).resolve()}", err=True)
    problems = run_problems(outcomes, max_error_share=max_error_share, skipped_ok=all_)
    for problem in problems:
        click.echo(_printable(f"Error: {problem}"), err=True)
    if problems:
        sys.exit(1)


def repository_root(path: Path) -> Path | None:
    """The git work tree that holds ``path`` (None outside one)."""
    for folder in [path.resolve(), *path.resolve().parents]:
        if (folder / ".git").exists():
            return folder
    return None


def _warn_repository_results(results: str | None) -> None:
    """Say so when records are about to go into a git repository's results/ without being asked for."""
    import os

    if results or os.environ.get("PRICE_BENCH_RESULTS"):
        return
    target = _results_dir(None)
    root = repository_root(target.parent if not target.exists() else target)
    if root is not None:
        click.echo(f"warning: writing records to {target.resolve()}, inside the git repository {root} (its committed "
                   "results?); pass --results DIR or set PRICE_BENCH_RESULTS to write elsewhere", err=True)


def _outcome_dict(outcome: RunOutcome) -> dict[str, Any]:
    record = outcome.record
    return {
        "predictor": outcome.predictor_id,
        "status": outcome.status,
        "reason": outcome.reason,
        "record": str(outcome.path) if outcome.path else None,
        "run_id": record.run_id if record else None,
        "new_items": outcome.new_items,
        "cached_items": outcome.cached_items,
        "metrics": {k: v.model_dump() for k, v in record.metrics.items()} if record else {},
    }


def _summary_table(outcomes: list[RunOutcome]) -> Table:
    from rich.table import Table

    table = Table(title="run summary")
    for col in ("predictor", "status", "run id", "dataset", "n", "Error (95% CI)", "Hits", "RMSLE", "coverage", "new/cached",
                "reason"):
        table.add_column(col, no_wrap=col in ("run id", "status"), overflow="fold")
    for o in outcomes:
        r = o.record
        style = {"complete": "green", "up-to-date": "green", "skipped": "yellow"}.get(o.status, "red")
        if r is not None and r.status == "complete":
            err = r.metrics["error"]
            style = "yellow" if r.item_errors else style
            table.add_row(
                _safe(o.predictor_id),
                f"[{style}]{_safe(o.status)}[/]",
                r.run_id,
                r.dataset.name,
                str(r.n_items) + (" (limit)" if r.limit else ""),
                f"{_fmt(err.value, '$')} [{_fmt(err.ci_low, '$')}, {_fmt(err.ci_high, '$')}]",
                _fmt(r.metrics["hits"].value, "%"),
                _fmt(r.metrics["rmsle"].value, digits=3),
                _fmt(r.metrics["coverage"].value, "%") + (f" ({r.item_errors} errored)" if r.item_errors else ""),
                f"{o.new_items}/{o.cached_items}",
                _safe(o.reason) if o.status != "complete" else "",
            )
        else:
            run_id = r.run_id if r is not None else "-"
            name = r.dataset.name if r is not None else "-"
            table.add_row(_safe(o.predictor_id), f"[{style}]{_safe(o.status)}[/]", _safe(run_id), _safe(name), "-", "-", "-", "-", "-", "-", _safe(o.reason))
    return table


# -- results / show ---------------------------------------------------------------------------------


@click.group("results", invoke_without_command=True)
@results_option
@click.option("--dataset", default=None, help="Only this dataset.")
@click.option("--predictor", default=None, help="Only this predictor id.")
@json_option
@click.pass_context
@_user_errors
def results_cmd(ctx: click.Context, results: str | None, dataset: str | None, predictor: str | None, as_json: bool) -> None:
    """Table of the result records in the results folder (``results prune``: delete the runs no leaderboard shows)."""
    if ctx.invoked_subcommand is not None:
        return
    from price_bench.results.store import select_records

    rows = select_records(_results_dir(results), dataset=dataset or None, predictor=predictor or None)
    if as_json:
        _echo_json([{"path": str(p), **_record_summary(r)} for p, r in rows])
        return
    from rich.table import Table

    table = Table(title=f"{len(rows)} records in {_safe(_results_dir(results))}")
    for col in ("run id", "predictor", "dataset", "status", "n", "Error", "Hits", "RMSLE", "finished"):
        # ids and dates are never cut: other columns fold to make room in a narrow terminal
        table.add_column(col, no_wrap=col in ("run id", "finished", "n"), overflow="fold", min_width=len(col))
    for _, r in rows:
        m = r.metrics
        table.add_row(
            _safe(r.run_id),
            _safe(r.predictor.id),
            _safe(r.dataset.name),
            _safe(r.status) if r.status != "complete" else ("complete" + (" (limit)" if r.limit else "")),
            str(r.n_items),
            _fmt(m["error"].value, "$") if "error" in m else _safe(r.reason or "-"),
            _fmt(m["hits"].value, "%") if "hits" in m else "-",
            _fmt(m["rmsle"].value, digits=3) if "rmsle" in m else "-",
            _safe(r.finished_at.replace("T", " ").replace("+00:00", "Z")),
        )
    _console().print(table)


@results_cmd.command("prune")
@results_option
@click.option("--dataset", default=None, help="Only this dataset.")
@click.option("--dry-run", is_flag=True, help="List what would be deleted; delete nothing.")
@_user_errors
def results_prune_cmd(results: str | None, dataset: str | None, dry_run: bool) -> None:
    """Delete the records no leaderboard shows (superseded, older, other-fingerprint and --limit runs).

    Kept: every run a leaderboard ranks (each seed of a multi-seed row) and the
    latest skipped or failed run of a predictor. Cached predictions are not
    touched, so a deleted run can be rescored for free.
    """
    from price_bench import leaderboard as lb

    results_dir = _results_dir(results)
    doomed = lb.prunable(results_dir, dataset)
    for path in doomed:
        click.echo(("would delete " if dry_run else "deleted ") + str(path))
        if not dry_run:
            path.unlink()
    records = sum(1 for p in doomed if not p.name.endswith(".predictions.jsonl"))
    click.echo(f"{'would delete' if dry_run else 'deleted'} {records} record(s) in {results_dir}", err=True)


def _record_summary(record: RunRecord) -> dict[str, Any]:
    return {
        "run_id": record.run_id,
        "predictor": record.predictor.id,
        "dataset": record.dataset.name,
        "status": record.status,
        "reason": record.reason,
        "n_items": record.n_items,
        "limit": record.limit,
        "leaderboard_eligible": record.is_leaderboard_eligible,
        "metrics": {k: v.value for k, v in record.metrics.items()},
        "finished_at": record.finished_at,
    }


@click.command("show")
@click.argument("run")
@click.option("--worst", "worst_n", type=click.IntRange(min=1), default=None, metavar="N",
              help="List the N items with the largest error instead of the summary.")
@click.option("--category", default=None, help="With --worst: only items of this category.")
@click.option("--text", "with_text", is_flag=True,
              help="With --worst: add each item's title from the local copy of the dataset (same fingerprint only).")
@results_option
@json_option
@_user_errors
def show_cmd(run: str, worst_n: int | None, category: str | None, with_text: bool, results: str | None, as_json: bool) -> None:
    """Metrics with 95% CIs and breakdowns of one run (run id, id prefix, record path or predictor name)."""
    from price_bench.results.store import resolve_run

    path, record = resolve_run(run, _results_dir(results))
    if worst_n is not None:
        _show_worst(path, record, worst_n, category, with_text, as_json)
        return
    if category or with_text:
        raise click.UsageError("--category and --text go with --worst N")
    if as_json:
        _echo_json(record.model_dump(mode="json"))
        return
    from rich.table import Table

    from price_bench.metrics.point import METRICS

    console = _console()
    p, d = record.predictor, record.dataset
    console.print(f"[bold]{_safe(record.run_id)}[/]  "
                  + _safe(f"{p.id} ({p.plugin_distribution} {p.plugin_version}, predictor v{p.predictor_version})"))
    console.print(_safe(f"dataset {d.name} {d.fingerprint[:19]}  split {d.split}  n={record.n_items}/{record.n_total}")
                  + (f"  [yellow]--limit {record.limit}: not leaderboard-eligible[/]" if record.limit else ""))
    console.print(_safe(f"status {record.status}" + (f": {record.reason}" if record.reason else "") + f"   record {path}"))
    if record.status != "complete":
        return
    console.print(_safe(f"config {json.dumps(p.config)}  (hash {p.config_hash})   seed {record.seed}   git {record.git_commit or '-'}"))
    t, u = record.timing, record.usage
    console.print(
        f"fit {_fmt(t.fit_seconds)} s{' (reused)' if t.fit_reused else ''}   predict {_fmt(t.predict_seconds_per_item, digits=5)} s/item"
        f"   cost {'unknown' if u.cost_usd is None else f'${u.cost_usd:.4f}'}   tokens {u.tokens_in}/{u.tokens_out}   cached {u.cached_items} new {u.new_items}"
    )
    console.print(f"parse failures {record.parse_failures}   item errors {record.item_errors}   fallback (train median) {_fmt(record.fallback_price, '$')}")
    for line in provenance_lines(record):
        console.print(line, markup=False)
    table = Table(title="metrics")
    for col in ("metric", "value", "95% CI", "better"):
        table.add_column(col)
    for name, value in record.metrics.items():
        spec = METRICS.get(name)  # the registry says how to show and read a metric; an unknown one, its record
        show = spec.format if spec else _fmt
        ci = f"[{show(value.ci_low)}, {show(value.ci_high)}]" if value.ci_low is not None else ""
        direction = spec.direction if spec else {True: "higher", False: "lower", None: "-"}[value.higher_is_better]
        table.add_row(spec.label if spec else _safe(name), show(value.value), ci, direction)
    console.print(table)
    for title, rows in record.breakdowns.items():
        sub = Table(title=f"by {_safe(title.replace('_', ' '))}")
        for col in (title, "n", "mean truth", "Error", "RMSLE", "Hits"):
            sub.add_column(_safe(col))
        for label, row in rows.items():
            sub.add_row(_safe(label), str(row.n), _fmt(row.mean_truth, "$"), _fmt(row.error, "$"), _fmt(row.rmsle, digits=3), _fmt(row.hits, "%"))
        console.print(sub)


def _titles_or_fail(record: RunRecord) -> dict[str, str]:
    from price_bench.harness.errors import HarnessError
    from price_bench.results.drilldown import titles

    found, why = titles(record)
    if found is None:
        raise HarnessError(f"no titles for run {record.run_id}: {why}")
    return found


def _show_worst(path: Path, record: RunRecord, n: int, category: str | None, with_text: bool, as_json: bool) -> None:
    """``show RUN --worst N``: the worst misses, as a table or JSON."""
    from rich.markup import escape

    from price_bench.results.drilldown import item_rows, worst

    rows = worst(item_rows(path, record), n, category)
    found = _titles_or_fail(record) if with_text else None
    if found is not None:
        rows = [{**row, "title": found.get(row["id"], "")} for row in rows]
    if as_json:
        _echo_json(rows)
        return
    from rich.table import Table

    where = f" in {category}" if category else ""
    table = Table(title=f"{len(rows)} worst misses{where} of {record.predictor.id} ({record.run_id})")
    for col in ("item", "category", "truth", "guess", "error") + (("title",) if found is not None else ()):
        table.add_column(col, overflow="fold")
    for row in rows:
        cells = [row["id"], row["category"] or "-", _fmt(row["truth"], "$"),
                 _fmt(row["guess"], "$") + (" (unparsed)" if row["unparsed"] else ""), _fmt(row["error"], "$")]
        if found is not None:
            cells.append(row["title"])
        table.add_row(*(escape(str(c)) for c in cells))  # ids, categories and titles are untrusted text
    _console().print(table)


@click.command("export")
@click.argument("run")
@click.option("--format", "fmt", type=click.Choice(["csv", "parquet"]), default="csv", show_default=True)
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Output file [default: <run id>.<format> in the current folder; '-' writes CSV to stdout].")
@click.option("--text", "with_text", is_flag=True,
              help="Add each item's title from the local copy of the dataset (same fingerprint only).")
@results_option
@_user_errors
def export_cmd(run: str, fmt: str, out: Path | None, with_text: bool, results: str | None) -> None:
    """Per-item results of one run (id, category, truth, guess, error, parsed) as CSV or Parquet."""
    from price_bench.results.drilldown import export, export_text, item_rows
    from price_bench.results.store import resolve_run

    path, record = resolve_run(run, _results_dir(results))
    rows = item_rows(path, record)
    found = _titles_or_fail(record) if with_text else None
    if out is not None and str(out) == "-":
        if fmt != "csv":
            raise click.UsageError("--out - writes CSV only")
        click.echo(export_text(rows, found), nl=False)
        return
    target = export(rows, out or Path(f"{record.run_id}.{fmt}"), fmt, found)
    click.echo(f"wrote {len(rows)} items of {record.predictor.id} ({record.run_id}) to {target}", err=True)


def provenance_lines(record: RunRecord) -> list[str]:
    """What ``show`` says about where and with what a run ran (older records: what they have)."""
    p = record.provenance
    lines = [f"code digest {record.predictor.code_digest or '- (recorded before code digests)'}   "
             f"CIs {record.ci_method or 'percentile bootstrap'}, {record.n_resamples or '?'} resamples"]
    if p is None:
        return lines + ["provenance: not recorded (a record written before provenance was kept)"]
    git = (record.git_commit or "-")[:12] + (" (dirty)" if p.git_dirty else "" if p.git_dirty is False else " (dirty: unknown)")
    lines.append(f"python {p.python}   git {git}   platform {p.platform}")
    lines.append(f"cpu {p.cpu or '-'} ({p.cpu_count or '?'} cores)   gpu {', '.join(p.gpu) or 'none'}   "
                 f"threads {', '.join(f'{k}={v}' for k, v in p.threads.items()) or 'defaults'}")
    lines.append("versions " + ", ".join(f"{k} {v}" for k, v in p.versions.items()))
    return lines


# -- compare ---------------------------------------------------------------------------------------------


@click.command("compare")
@click.argument("run_a")
@click.argument("run_b")
@click.option("--dataset", default=None, help="Dataset of the runs when A or B is a predictor name.")
@click.option("--bootstrap", "n_resamples", type=int, default=1000, show_default=True, help="Bootstrap resamples.")
@results_option
@json_option
@_user_errors
def compare_cmd(run_a: str, run_b: str, dataset: str | None, n_resamples: int, results: str | None, as_json: bool) -> None:
    """Are two runs really different? Paired bootstrap on the shared items for Error, RMSLE and Hits.

    RUN_A and RUN_B are run ids (or prefixes, or record paths) or predictor
    names or leaderboard labels (the latest complete run of each). When both
    are rows of their dataset's leaderboard, the leaderboard's verdict
    (Holm-corrected over every pair of rows) is printed too. Warns when the
    runs differ in versions, hardware, threads or code.
    """
    from price_bench.harness.errors import HarnessError
    from price_bench.harness.options import MIN_RESAMPLES
    from price_bench.leaderboard.build import board_verdict
    from price_bench.metrics.ties import ALPHA, CORRECTION
    from price_bench.results.compare import compare_runs
    from price_bench.results.store import resolve_run

    if n_resamples < MIN_RESAMPLES:
        raise HarnessError(f"--bootstrap must be at least {MIN_RESAMPLES} for a paired comparison, not {n_resamples}")

    results_dir = _results_dir(results)
    path_a, rec_a = resolve_run(run_a, results_dir, dataset)
    path_b, rec_b = resolve_run(run_b, results_dir, dataset)
    out = compare_runs(path_a, rec_a, path_b, rec_b, n_resamples=n_resamples)
    out["leaderboard"] = board_verdict(results_dir, rec_a, rec_b)
    if as_json:
        _echo_json(out)
        return
    from rich.markup import escape
    from rich.table import Table

    console = _console()
    a, b = out["a"], out["b"]
    console.print(f"A = {escape(a['predictor'])} ({a['run_id']})")
    console.print(f"B = {escape(b['predictor'])} ({b['run_id']})")
    if not out["same_dataset"]:
        console.print("[yellow]warning: different dataset fingerprints; compared on the shared item ids[/]")
    table = Table(title=f"A vs B on {out['n']} shared items, {out['n_resamples']} paired bootstrap resamples")
    for col in ("metric", "A", "B", "A - B (95% CI)", "p", "verdict"):
        table.add_column(col)
    for m in out["metrics"]:
        unit = "$" if m["metric"] == "Error" else "%" if m["metric"] == "Hits" else ""
        show = functools.partial(_fmt, unit=unit, digits=3 if not unit else 2)
        verdict = "[yellow]not significant[/]" if not m["significant"] else \
            f"[green]{'A' if m['better'] == 'A' else 'B'} better[/]"
        table.add_row(m["metric"], show(m["a"]), show(m["b"]),
                      f"{show(m['diff'])} [{show(m['ci_low'])}, {show(m['ci_high'])}]",
                      "<0.0001" if m["p_value"] < 0.0001 else f"{m['p_value']:.4f}", verdict)
    console.print(table)
    console.print(f"(two-sided paired bootstrap test per metric, α = {ALPHA:g}, no correction across the three metrics)")
    board = out["leaderboard"]
    if board is not None:
        verdicts = {"A": "A is significantly better", "B": "B is significantly better", None: "tied (not significantly different)"}
        console.print(f"leaderboard {escape(board['dataset'])}: A tier {board['tier_a']} (rank {board['rank_a']}), "
                      f"B tier {board['tier_b']} (rank {board['rank_b']}); Error: {verdicts[board['better']]} after "
                      f"{CORRECTION} over {board['n_pairs']} pairs (adjusted p = {board['p_adjusted']:.4f})")
    for line in out["provenance_differences"]:
        console.print(f"[yellow]warning: the runs differ in {escape(line)}[/]")


def _product_text(text: str, from_file: bool) -> str:
    """The text to price: the argument itself, stdin for '-', or a file's content with --file."""
    from price_bench.harness.errors import HarnessError

    if text == "-":
        value = sys.stdin.read()
    elif from_file:
        try:
            value = Path(text).read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            raise HarnessError(f"{text}: cannot read the product text: {exc.strerror or exc}") from None
    else:
        value = text
    if not value.strip():
        raise HarnessError("the product text is empty")
    return value


# -- predict ---------------------------------------------------------------------------------------------


@click.command("predict")
@click.argument("predictor_id")
@click.argument("text")
@click.option("--file", "from_file", is_flag=True, help="TEXT is a file to read the product text from ('-': stdin).")
@click.option("--dataset", default="demo", show_default=True, help="Dataset whose train split fits the predictor.")
@click.option("-o", "--override", "overrides", multiple=True, metavar="ID.KEY=VALUE", help="Override a config field.")
@click.option("--seed", type=int, default=0, show_default=True)
@json_option
@_user_errors
def predict_cmd(predictor_id: str, text: str, from_file: bool, dataset: str, overrides: tuple[str, ...], seed: int, as_json: bool) -> None:
    """Fit (or load a previous fit) on the dataset's train split, then price one TEXT ('-': read it from stdin)."""
    from price_bench.harness.overrides import parse_overrides
    from price_bench.harness.predict_text import predict_text

    answer = predict_text(predictor_id, _product_text(text, from_file), dataset=dataset, overrides=parse_overrides(overrides),
                          seed=seed)
    price, prediction = answer.price, answer.prediction
    if as_json:
        _echo_json({"predictor": predictor_id, "price": price, "raw": prediction.raw, "error": prediction.error,
                    "cost_usd": prediction.cost_usd, "latency_s": prediction.latency_s})
        return
    if price is None:
        click.echo(f"no price in the answer: {prediction.error or prediction.raw!r}")
    else:
        click.echo(f"${price:,.2f}")
