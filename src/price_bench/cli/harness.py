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
from pathlib import Path
from typing import Any, Callable

import click

OVERWRITE_CHOICES = ("never", "always", "missing")


def register(cli: click.Group) -> None:
    """Add this module's commands to ``cli``."""
    for command in (list_cmd, plugins_cmd, run_cmd, results_cmd, show_cmd, compare_cmd, predict_cmd):
        cli.add_command(command)


# -- helpers -----------------------------------------------------------------------------------


def _user_errors(func: Callable) -> Callable:
    """Turn the known user errors into one-line ``Error: ...`` messages (exit 1)."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        from price_bench.data.dataset import DatasetError
        from price_bench.harness.errors import HarnessError
        from price_bench.plugins.manager import PluginError
        from price_bench.predictors.registry import DuplicatePredictorError, UnknownPredictorError
        from price_bench.results.store import ResultError

        errors = (HarnessError, DatasetError, ResultError, DuplicatePredictorError, UnknownPredictorError, PluginError)
        try:
            return func(*args, **kwargs)
        except errors as exc:
            raise click.ClickException(str(exc).splitlines()[0] if str(exc) else type(exc).__name__) from None

    return wrapper


def _warn_plugin_failures() -> None:
    """One stderr line per plugin that failed to load: loud, but never fatal."""
    from price_bench.plugins.manager import plugin_failures

    for info in plugin_failures():
        click.echo(f"warning: plugin {info.name} ({info.distribution} {info.version}) not loaded: {info.error}"
                   " (see `price-bench plugins`)", err=True)


def _console():
    from rich.console import Console

    return Console(highlight=False, soft_wrap=False, width=None if sys.stdout.isatty() else 160)


def _echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


def _results_dir(value: str | None) -> Path:
    from price_bench.results.store import default_results_dir

    return Path(value) if value else default_results_dir()


def _fmt(value: float | None, unit: str = "", digits: int = 2) -> str:
    if value is None:
        return "-"
    if unit == "$":
        return f"${value:,.{digits}f}"
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
        table.add_row(row["id"], f"[{style}]{status}[/]", f"{row['origin']} {row['plugin_version']}", row["description"])
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
        detail = f"[red]FAILED: {info.error}[/]" if info.error else ", ".join(info.hooks)
        table.add_row(info.name, info.distribution, info.version, detail)
    _console().print(table)


# -- run ------------------------------------------------------------------------------------------------


@click.command("run")
@click.argument("ids", nargs=-1)
@click.option("--all", "all_", is_flag=True, help="Run every registered predictor.")
@click.option("--dataset", default="demo", show_default=True, help="Dataset name (or folder).")
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
@click.option("--seed", type=int, default=0, show_default=True, help="Seed passed to predictors (part of the cache key).")
@click.option("--bootstrap", "n_resamples", type=int, default=1000, show_default=True, help="Bootstrap resamples for the CIs.")
@click.option("--progress/--no-progress", default=None, help="Live progress bar (default: when stderr is a terminal).")
@click.option(
    "--raw-output/--no-raw-output",
    default=True,
    show_default=True,
    help="Keep the predictors' raw text in the per-item file; --no-raw-output for data that must not be "
    "redistributed (model answers can quote the product).",
)
@results_option
@json_option
@_user_errors
def run_cmd(ids, all_, dataset, limit, workers, overrides, overwrite, refit, seed, n_resamples, progress, raw_output, results, as_json) -> None:
    """Fit and score predictors on a dataset's test split, with caching and resume.

    Exit code 1 when any predictor failed (skipped ones are not failures),
    130 when interrupted (rerun the same command to resume).
    """
    from price_bench.harness.overrides import parse_overrides
    from price_bench.harness.runner import RunOptions, resolve_ids, run_predictors
    from price_bench.plugins.manager import get_registry

    registry = get_registry()
    _warn_plugin_failures()
    run_ids = resolve_ids(registry, ids, all_)
    options = RunOptions(
        dataset=dataset,
        limit=limit,
        workers=workers,
        overrides=parse_overrides(overrides),
        overwrite=overwrite,
        refit=refit,
        results_dir=_results_dir(results),
        seed=seed,
        n_resamples=n_resamples,
        progress=progress,
        raw_output=raw_output,
    )
    console = _console()

    def report(outcome) -> None:
        if not as_json and not (progress or sys.stderr.isatty()):
            click.echo(f"{outcome.predictor_id}: {outcome.status}" + (f" ({outcome.reason})" if outcome.reason else ""), err=True)

    try:
        outcomes = run_predictors(run_ids, options, registry=registry, on_outcome=report)
    except KeyboardInterrupt:
        click.echo("Interrupted: finished batches are saved; rerun the same command to resume.", err=True)
        sys.exit(130)
    if as_json:
        _echo_json([_outcome_dict(o) for o in outcomes])
    else:
        console.print(_summary_table(outcomes))
    if any(o.status == "failed" for o in outcomes):
        failed = [o.predictor_id for o in outcomes if o.status == "failed"]
        click.echo(f"Error: {len(failed)} predictor(s) failed: {', '.join(failed)}", err=True)
        sys.exit(1)


def _outcome_dict(outcome) -> dict[str, Any]:
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


def _summary_table(outcomes):
    from rich.table import Table

    table = Table(title="run summary")
    for col in ("predictor", "status", "n", "Error (95% CI)", "Hits", "RMSLE", "coverage", "new/cached", "record / reason"):
        table.add_column(col)
    for o in outcomes:
        r = o.record
        style = {"complete": "green", "up-to-date": "green", "skipped": "yellow"}.get(o.status, "red")
        if r is not None and r.status == "complete":
            err = r.metrics["error"]
            table.add_row(
                o.predictor_id,
                f"[{style}]{o.status}[/]",
                str(r.n_items) + (" (limit)" if r.limit else ""),
                f"{_fmt(err.value, '$')} [{_fmt(err.ci_low, '$')}, {_fmt(err.ci_high, '$')}]",
                _fmt(r.metrics["hits"].value, "%"),
                _fmt(r.metrics["rmsle"].value, digits=3),
                _fmt(r.metrics["coverage"].value, "%"),
                f"{o.new_items}/{o.cached_items}",
                str(o.path) if o.status == "complete" else (o.reason or ""),
            )
        else:
            table.add_row(o.predictor_id, f"[{style}]{o.status}[/]", "-", "-", "-", "-", "-", "-", o.reason or "")
    return table


# -- results / show ---------------------------------------------------------------------------------


@click.command("results")
@results_option
@click.option("--dataset", default=None, help="Only this dataset.")
@click.option("--predictor", default=None, help="Only this predictor id.")
@json_option
@_user_errors
def results_cmd(results, dataset, predictor, as_json) -> None:
    """Table of the result records in the results folder."""
    from price_bench.results.store import load_records

    rows = []
    for path, record in load_records(_results_dir(results)):
        if (dataset and record.dataset.name != dataset) or (predictor and record.predictor.id != predictor):
            continue
        rows.append((path, record))
    if as_json:
        _echo_json([{"path": str(p), **_record_summary(r)} for p, r in rows])
        return
    from rich.table import Table

    table = Table(title=f"{len(rows)} records in {_results_dir(results)}")
    for col in ("run id", "predictor", "dataset", "status", "n", "Error", "Hits", "RMSLE", "finished"):
        table.add_column(col)
    for _, r in rows:
        m = r.metrics
        table.add_row(
            r.run_id,
            r.predictor.id,
            r.dataset.name,
            r.status if r.status != "complete" else ("complete" + (" (limit)" if r.limit else "")),
            str(r.n_items),
            _fmt(m["error"].value, "$") if "error" in m else (r.reason or "-"),
            _fmt(m["hits"].value, "%") if "hits" in m else "-",
            _fmt(m["rmsle"].value, digits=3) if "rmsle" in m else "-",
            r.finished_at,
        )
    _console().print(table)


def _record_summary(record) -> dict[str, Any]:
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
@results_option
@json_option
@_user_errors
def show_cmd(run, results, as_json) -> None:
    """Metrics with 95% CIs and breakdowns of one run (run id, id prefix or record path)."""
    from price_bench.results.store import find_run

    path, record = find_run(run, _results_dir(results))
    if as_json:
        _echo_json(record.model_dump(mode="json"))
        return
    from rich.table import Table

    from price_bench.metrics.point import METRICS

    console = _console()
    p, d = record.predictor, record.dataset
    console.print(f"[bold]{record.run_id}[/]  {p.id} ({p.plugin_distribution} {p.plugin_version}, predictor v{p.predictor_version})")
    console.print(f"dataset {d.name} {d.fingerprint[:19]}  split {d.split}  n={record.n_items}/{record.n_total}"
                  + (f"  [yellow]--limit {record.limit}: not leaderboard-eligible[/]" if record.limit else ""))
    console.print(f"status {record.status}" + (f": {record.reason}" if record.reason else "") + f"   record {path}")
    if record.status != "complete":
        return
    console.print(f"config {json.dumps(p.config)}  (hash {p.config_hash})   seed {record.seed}   git {record.git_commit or '-'}")
    t, u = record.timing, record.usage
    console.print(
        f"fit {_fmt(t.fit_seconds)} s{' (reused)' if t.fit_reused else ''}   predict {_fmt(t.predict_seconds_per_item, digits=5)} s/item"
        f"   cost ${u.cost_usd:.4f}   tokens {u.tokens_in}/{u.tokens_out}   cached {u.cached_items} new {u.new_items}"
    )
    console.print(f"parse failures {record.parse_failures}   item errors {record.item_errors}   fallback (train median) {_fmt(record.fallback_price, '$')}")
    table = Table(title="metrics")
    for col in ("metric", "value", "95% CI", "better"):
        table.add_column(col)
    for name, value in record.metrics.items():
        spec = METRICS.get(name)
        unit = spec.unit if spec else ""
        ci = f"[{_fmt(value.ci_low, unit)}, {_fmt(value.ci_high, unit)}]" if value.ci_low is not None else ""
        direction = {True: "higher", False: "lower", None: "-"}[spec.higher_is_better if spec else value.higher_is_better]
        table.add_row(spec.label if spec else name, _fmt(value.value, unit if unit in "$%" else ""), ci, direction)
    console.print(table)
    for title, rows in record.breakdowns.items():
        sub = Table(title=f"by {title.replace('_', ' ')}")
        for col in (title, "n", "mean truth", "Error", "RMSLE", "Hits"):
            sub.add_column(col)
        for label, row in rows.items():
            sub.add_row(label, str(row.n), _fmt(row.mean_truth, "$"), _fmt(row.error, "$"), _fmt(row.rmsle, digits=3), _fmt(row.hits, "%"))
        console.print(sub)


# -- compare ---------------------------------------------------------------------------------------------


@click.command("compare")
@click.argument("run_a")
@click.argument("run_b")
@click.option("--bootstrap", "n_resamples", type=int, default=1000, show_default=True, help="Bootstrap resamples.")
@results_option
@json_option
@_user_errors
def compare_cmd(run_a, run_b, n_resamples, results, as_json) -> None:
    """Is run A's Error really different from run B's? (paired bootstrap on shared items)"""
    from price_bench.results.compare import compare_runs
    from price_bench.results.store import find_run

    results_dir = _results_dir(results)
    path_a, rec_a = find_run(run_a, results_dir)
    path_b, rec_b = find_run(run_b, results_dir)
    out = compare_runs(path_a, rec_a, path_b, rec_b, n_resamples=n_resamples)
    if as_json:
        _echo_json(out)
        return
    console = _console()
    a, b = out["a"], out["b"]
    console.print(f"A = {a['predictor']} ({a['run_id']})   Error {_fmt(out['error_a'], '$')}")
    console.print(f"B = {b['predictor']} ({b['run_id']})   Error {_fmt(out['error_b'], '$')}")
    if not out["same_dataset"]:
        console.print("[yellow]warning: different dataset fingerprints; compared on the shared item ids[/]")
    console.print(
        f"A - B = {_fmt(out['diff'], '$')}  95% CI [{_fmt(out['ci_low'], '$')}, {_fmt(out['ci_high'], '$')}]"
        f"  p = {out['p_value']:.4f}  on {out['n']} shared items, {out['n_resamples']} paired resamples"
    )
    if out["significant"]:
        winner = a["predictor"] if out["better"] == "A" else b["predictor"]
        console.print(f"[bold green]significant[/]: {winner} ({out['better']}) has the lower Error")
    else:
        console.print("[bold yellow]not significant[/]: the CI of the difference contains 0")


# -- predict ---------------------------------------------------------------------------------------------


@click.command("predict")
@click.argument("predictor_id")
@click.argument("text")
@click.option("--dataset", default="demo", show_default=True, help="Dataset whose train split fits the predictor.")
@click.option("-o", "--override", "overrides", multiple=True, metavar="ID.KEY=VALUE", help="Override a config field.")
@click.option("--seed", type=int, default=0, show_default=True)
@json_option
@_user_errors
def predict_cmd(predictor_id, text, dataset, overrides, seed, as_json) -> None:
    """Fit (or load a previous fit) on the dataset's train split, then price one TEXT."""
    from price_bench.harness.errors import HarnessError
    from price_bench.harness.overrides import build_config, config_hash, parse_overrides
    from price_bench.harness.runner import fit_or_load, one_line, open_dataset_by_name
    from price_bench.harness.workdir import workdir_for
    from price_bench.items import Item
    from price_bench.parsing import parse_price
    from price_bench.plugins.manager import get_registry

    spec = get_registry().get(predictor_id)
    parsed_overrides = parse_overrides(overrides)
    stray = sorted(set(parsed_overrides) - {predictor_id})
    if stray:
        raise HarnessError(f"-o {stray[0]}.…: predictor {stray[0]!r} is not the one predicting")
    try:
        cls = spec.load()
    except Exception as exc:
        raise HarnessError(f"could not load {predictor_id}: {one_line(exc)}") from None
    config = build_config(cls, parsed_overrides.get(predictor_id, {}))
    reason = cls.skip_reason(config)
    if reason:
        raise HarnessError(f"{predictor_id} cannot run here: {reason}")
    ds = open_dataset_by_name(dataset)
    workdir = workdir_for(spec.id, config_hash(config, roles=("fit",)), spec.plugin_version, cls.version, ds.fingerprint, seed)
    predictor = cls(config, seed=seed)
    try:
        fit_or_load(predictor, ds, workdir)
        prediction = predictor.predict([Item(id="cli", text=text, price=float("nan"))])[0]
    except Exception as exc:
        raise HarnessError(f"{predictor_id} failed: {one_line(exc)}") from None
    finally:
        predictor.close()
    price = parse_price(prediction.price) if prediction.price is not None else parse_price(prediction.raw)
    if as_json:
        _echo_json({"predictor": predictor_id, "price": price, "raw": prediction.raw, "error": prediction.error,
                    "cost_usd": prediction.cost_usd, "latency_s": prediction.latency_s})
        return
    if price is None:
        click.echo(f"no price in the answer: {prediction.error or prediction.raw!r}")
    else:
        click.echo(f"${price:,.2f}")
