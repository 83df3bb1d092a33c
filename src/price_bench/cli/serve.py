"""`price-bench` commands for production: bundle, serve, monitor.

``bundle`` and ``monitor`` need only the core; ``serve`` needs the ``serve``
extra (FastAPI, uvicorn, prometheus-client) and says so in one line when it
is missing. Nothing heavy is imported at module level.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from price_bench.cli.harness import _console, _echo_json, _fmt, _user_errors, json_option, results_option

if TYPE_CHECKING:
    from price_bench.serve.app import ServeSettings
    from price_bench.serve.bundle import Bundle, CodeCheck


def register(cli: click.Group) -> None:
    """Add this module's commands to ``cli``."""
    for command in (bundle_cmd, serve_cmd, monitor_cmd):
        cli.add_command(command)


def _results(value: str | None) -> Path | None:
    return Path(value) if value else None


# -- bundle ------------------------------------------------------------------------------------------


@click.command("bundle")
@click.argument("run")
@click.option("--out", "out", required=True, metavar="DIR", help="Folder to write the bundle into (must be empty or absent).")
@click.option("--force", is_flag=True, help="Replace a non-empty --out folder.")
@results_option
@json_option
@_user_errors
def bundle_cmd(run: str, out: str, force: bool, results: str | None, as_json: bool) -> None:
    """Bundle a complete run's fitted predictor (RUN: run id, id prefix or record path) with a checksummed manifest."""
    from price_bench.serve.bundle import build_bundle

    bundle = build_bundle(run, Path(out), results_dir=_results(results), force=force)
    m = bundle.manifest
    size = sum(entry.size for entry in m.files.values())
    if as_json:
        _echo_json({"path": str(bundle.path), "digest": bundle.digest, "files": len(m.files), "bytes": size, "run_id": m.run.run_id, "predictor": m.predictor.id})
        return
    click.echo(f"bundled {m.predictor.id} (run {m.run.run_id}) into {bundle.path}: {len(m.files)} files, {size / 1e6:.1f} MB")
    click.echo(f"digest {bundle.digest}  (pin it with `price-bench serve {bundle.path} --expect-digest {bundle.digest}`)")
    if m.run.limit:
        click.echo(f"note: the run used --limit {m.run.limit}: its offline metrics cover {m.run.n_items} of {m.run.n_total} test items")


# -- serve -------------------------------------------------------------------------------------------


@click.command("serve")
@click.argument("target", metavar="DIR|RUN")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True)
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True, help="uvicorn worker processes.")
@click.option("--token-env", default=None, metavar="NAME", help="Require `Authorization: Bearer $NAME` on /v1/* and /metrics.")
@click.option("--max-batch", type=click.IntRange(1, 100_000), default=1000, show_default=True, help="Most items in one request.")
@click.option("--max-body-bytes", type=click.IntRange(1024), default=4 * 1024 * 1024, show_default=True, help="Largest request body.")
@click.option("--log-dir", default=None, metavar="DIR", help="Prediction/feedback log folder (default: $PRICE_BENCH_HOME/serve-logs/<run id>).")
@click.option("--log-max-bytes", type=click.IntRange(1024), default=50 * 1024 * 1024, show_default=True, help="Rotate the log at this size.")
@click.option("--log-backups", type=click.IntRange(1, 1000), default=5, show_default=True, help="Rotated log files kept.")
@click.option("--expect-digest", default=None, metavar="SHA256", help="Refuse a bundle whose manifest digest differs.")
@click.option("--allow-code-mismatch", is_flag=True,
              help="Serve even when the installed predictor code's digest differs from the one that fitted the bundle (said on /healthz and /v1/model).")
@click.option("--predict-lanes", type=click.IntRange(1, 256), default=1, show_default=True,
              help="Predict calls in flight per worker; concurrent requests are batched into them (raise for LLM endpoints).")
@click.option("--inline-budget-ms", type=click.FloatRange(0), default=20.0, show_default=True,
              help="A predict call expected to take at most this long runs on the event loop instead of a thread (0: always a thread).")
@click.option("--metrics-window", type=click.IntRange(1), default=1000, show_default=True, help="Rolling window of the live figures on /metrics.")
@click.option("--metrics-ttl", type=click.FloatRange(0), default=10.0, show_default=True, help="Seconds the live figures on /metrics are cached.")
@click.option("--graceful-timeout", type=click.IntRange(0), default=30, show_default=True, help="Seconds to finish requests in flight on shutdown.")
@click.option("--access-log/--no-access-log", default=True, show_default=True, help="uvicorn's per-request access log.")
@results_option
@_user_errors
def serve_cmd(target: str, host: str, port: int, workers: int, token_env: str | None, max_batch: int, max_body_bytes: int,
              log_dir: str | None, log_max_bytes: int, log_backups: int, expect_digest: str | None, allow_code_mismatch: bool,
              predict_lanes: int, inline_budget_ms: float, metrics_window: int, metrics_ttl: float, graceful_timeout: int,
              access_log: bool, results: str | None) -> None:
    """Serve a bundle (DIR) or a complete run's fitted predictor (RUN) over HTTP."""
    from price_bench.serve import ServeError, require_serve_extra

    require_serve_extra()
    bundle = _resolve_bundle(target, results, expect_digest)
    if token_env and not os.environ.get(token_env):
        raise ServeError(f"--token-env {token_env}: the environment variable is not set or empty")
    if not token_env and not _is_loopback(host):
        click.echo(f"warning: serving on {host} without --token-env: anyone who can reach it can use it", err=True)
    from price_bench.data.dataset import data_home
    from price_bench.serve.app import SETTINGS_ENV, ServeSettings

    settings = ServeSettings(
        bundle=str(bundle.path.resolve()),
        log_dir=str(Path(log_dir) if log_dir else data_home() / "serve-logs" / bundle.manifest.run.run_id),
        max_batch=max_batch,
        max_body_bytes=max_body_bytes,
        token_env=token_env,
        expect_digest=bundle.digest,  # the workers load exactly the bundle verified here
        log_max_bytes=log_max_bytes,
        log_backups=log_backups,
        predict_lanes=predict_lanes,
        inline_budget_ms=inline_budget_ms,
        allow_code_mismatch=allow_code_mismatch,
        monitor_window=metrics_window,
        metrics_ttl_s=metrics_ttl,
    )
    _check_log_dir(Path(settings.log_dir))
    from price_bench.serve.bundle import check_loadable

    # installed, same versions and code, runnable here: one line before any worker starts
    _warn_code(check_loadable(bundle, allow_code_mismatch=allow_code_mismatch)[2])
    m = bundle.manifest
    click.echo(f"serving {m.predictor.id} (run {m.run.run_id}, digest {bundle.digest[:12]}) on http://{host}:{port} "
               f"with {workers} worker{'s' if workers > 1 else ''}; log {settings.log_dir}", err=True)
    if m.run.limit:
        click.echo(f"note: the bundled run used --limit {m.run.limit}: its offline figures cover {m.run.n_items} of {m.run.n_total} test items", err=True)
    _run_uvicorn(settings, SETTINGS_ENV, host=host, port=port, workers=workers, graceful_timeout=graceful_timeout, access_log=access_log)


def _resolve_bundle(target: str, results: str | None, expect_digest: str | None) -> Bundle:
    from price_bench.serve.bundle import MANIFEST, BundleError, bundle_for_run, verify_bundle

    path = Path(target)
    if path.is_dir():
        if not (path / MANIFEST).is_file():
            raise BundleError(f"{path}: not a bundle (no {MANIFEST}); make one with `price-bench bundle RUN --out DIR`")
        return verify_bundle(path, expect_digest=expect_digest)
    bundle = bundle_for_run(target, results_dir=_results(results))
    if expect_digest and bundle.digest != expect_digest.strip().lower():
        raise BundleError(f"{bundle.path}: digest {bundle.digest[:16]}… is not the expected {expect_digest[:16]}…")
    return bundle


def _check_log_dir(folder: Path) -> None:
    """Make sure the prediction log can be written before any worker starts (one line if not)."""
    from price_bench.serve import ServeError
    from price_bench.serve.log import EVENTS

    try:
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / EVENTS, "a", encoding="utf-8"):
            pass
    except OSError as exc:
        raise ServeError(f"--log-dir {folder}: cannot write the prediction log: {exc.strerror or exc}") from None


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _run_uvicorn(settings: ServeSettings, settings_env: str, *, host: str, port: int, workers: int, graceful_timeout: int, access_log: bool) -> None:
    """One in-process server (the app built here, so a load error is one line), or ``workers`` uvicorn processes."""
    import uvicorn

    os.environ[settings_env] = settings.to_env()
    common: dict[str, Any] = {
        "host": host, "port": port, "timeout_graceful_shutdown": graceful_timeout, "access_log": access_log,
        "log_level": "info", "server_header": False,
    }
    if workers == 1:
        from price_bench.serve.app import create_app

        uvicorn.run(create_app(settings), **common)
        return
    metrics_dir = tempfile.mkdtemp(prefix="price-bench-serve-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir  # counters summed across workers
    try:
        uvicorn.run("price_bench.serve.app:app_from_env", factory=True, workers=workers, **common)
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)


def _warn_code(code: CodeCheck) -> None:
    warning = code.warning()
    if warning:
        click.echo(f"warning: {warning}", err=True)


# -- monitor -----------------------------------------------------------------------------------------


@click.command("monitor")
@click.argument("log", metavar="LOG")
@click.option("--window", type=click.IntRange(1), default=1000, show_default=True, help="Rolling window: the last N joined predictions.")
@click.option("--bundle", "bundle_dir", default=None, metavar="DIR", help="Offline figures from this bundle (default: the copy in the log folder).")
@click.option("--fail-on-drift", is_flag=True, help="Exit 2 when a drift check fires.")
@json_option
@_user_errors
def monitor_cmd(log: str, window: int, bundle_dir: str | None, fail_on_drift: bool, as_json: bool) -> None:
    """Live Error, RMSLE, Hits and % error of a serving LOG (folder or events file) against the offline figures, with drift flags."""
    from price_bench.serve import ServeError
    from price_bench.serve.monitor import summarise

    path = Path(log)
    if not path.exists():
        raise ServeError(f"{path}: no such log folder or file")
    manifest: dict[str, Any] | None = None
    digest: str | None = None
    if bundle_dir:
        from price_bench.serve.bundle import verify_bundle

        bundle = verify_bundle(Path(bundle_dir))
        manifest, digest = bundle.manifest.model_dump(mode="json"), bundle.digest
    report = summarise(path, window=window, manifest=manifest, digest=digest)
    if as_json:
        _echo_json(report)
    else:
        _print_report(report)
    if fail_on_drift and any(check["flag"] for check in report["drift"]):
        raise SystemExit(2)


def _print_report(report: dict[str, Any]) -> None:
    from rich.markup import escape
    from rich.table import Table

    console = _console()
    model, counts = report["model"], report["counts"]
    if model:
        console.print(f"[bold]{escape(str(model['predictor']))}[/] run {escape(str(model['run_id']))} on {escape(str(model['dataset']))}")
    else:
        console.print("[yellow]no bundle manifest next to the log: offline figures and drift references are unavailable (use --bundle)[/]")
    console.print(
        f"{counts['predictions']:,} predictions, {counts['feedback']:,} feedback, {counts['joined']:,} joined "
        f"({counts['unmatched_feedback']:,} feedback without a prediction); window: last {counts['window_joined']:,} of {report['window']:,}"
    )
    table = Table(title="live (rolling window) vs offline (95% CI)")
    for column in ("slice", "n live", "Error live", "Error offline", "RMSLE live", "RMSLE offline", "Hits live", "Hits offline", "% err live", "% err offline"):
        table.add_column(column, justify="left" if column == "slice" else "right")
    overall = report["overall"]
    table.add_row("all", *_cells(overall["live"], overall["offline"], with_ci=True))
    for label, row in report["categories"].items():
        table.add_row(escape(label), *_cells(row["live"], row["offline"] or {}, with_ci=False))
    console.print(table)
    drift = Table(title="drift checks")
    for column in ("check", "flag", "detail"):
        drift.add_column(column)
    for check in report["drift"]:
        flag = {True: "[bold red]DRIFT[/]", False: "[green]ok[/]", None: "[dim]-[/]"}[check["flag"]]
        drift.add_row(check["check"], flag, escape(check["detail"]))
    console.print(drift)
    for warning in report["warnings"]:
        console.print(f"[yellow]warning:[/] {escape(warning)}")


def _cells(live: dict[str, Any], offline: dict[str, Any], *, with_ci: bool) -> list[str]:
    def off(name: str, unit: str, digits: int = 2) -> str:
        value = offline.get(name)
        if isinstance(value, dict):  # overall: a MetricValue with its CI
            text = _fmt(value.get("value"), unit, digits)
            if with_ci and value.get("ci_low") is not None:
                text += f" ({_fmt(value['ci_low'], unit, digits)}–{_fmt(value['ci_high'], unit, digits)})"
            return text
        return _fmt(value, unit, digits) if value is not None else "-"

    return [
        f"{live['n']:,}",
        _fmt(live["error"], "$"), off("error", "$"),
        _fmt(live["rmsle"], digits=3), off("rmsle", "", 3),
        _fmt(live["hits"], "%"), off("hits", "%"),
        _fmt(live["mean_pct_error"], "%"), off("mean_pct_error", "%"),
    ]
