"""``price-bench openai-ft``: see and cancel fine-tuning jobs.

* ``price-bench openai-ft status``: every job this machine has started
  (from the local ledger, no request);
* ``price-bench openai-ft status --workdir DIR`` or ``--job ID``: the job's
  live status and its recent events, from the API;
* ``price-bench openai-ft cancel JOB``: cancel a running job.

The endpoint is ``--base-url`` (or ``$OPENAI_BASE_URL``), else the one the
work folder's job was created on, else api.openai.com; the key is
``$OPENAI_API_KEY``.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import click

BASE_URL = click.option("--base-url", envvar="OPENAI_BASE_URL", default=None, help="OpenAI-compatible endpoint (default: api.openai.com).")


@click.group("openai-ft")
def openai_ft() -> None:
    """OpenAI fine-tuning jobs of the openai-ft predictor."""


@openai_ft.command("status")
@click.option("--workdir", type=click.Path(exists=True, file_okay=False, path_type=Path), help="A work folder of openai-ft.")
@click.option("--job", "job_id", help="A fine-tuning job id (ftjob-...).")
@click.option("--events", "n_events", type=click.IntRange(0, 100), default=10, show_default=True, help="Recent events to show.")
@BASE_URL
def status(workdir: Path | None, job_id: str | None, n_events: int, base_url: str | None) -> None:
    """Show a job's status and recent events (no option: list the jobs started here)."""
    from price_bench_openai_ft.state import JobState, StateError

    if workdir is None and job_id is None:
        _list_known()
        return
    if workdir is not None:
        try:
            state = JobState.load(workdir)
        except StateError as exc:
            raise click.ClickException(str(exc)) from None
        if state is None or not state.job_id:
            click.echo(f"{workdir}: no fine-tuning job started yet" + (f" (estimate: ${state.estimate['usd']:.2f})" if state and state.estimate else ""))
            return
        job_id = job_id or state.job_id
        base_url = base_url or state.base_url
    jobs = _jobs(base_url)
    job = _call(lambda: jobs.retrieve(job_id))
    _show_job(job)
    if n_events:
        from price_bench_openai_ft.jobs import format_event

        click.echo("recent events:")
        for event in _call(lambda: jobs.events(job_id, limit=n_events)):
            click.echo(f"  {format_event(event)}")


@openai_ft.command("cancel")
@click.argument("job_id")
@BASE_URL
def cancel(job_id: str, base_url: str | None) -> None:
    """Cancel the running fine-tuning job JOB_ID."""
    job = _call(lambda: _jobs(base_url).cancel(job_id))
    click.echo(f"{job.id}: {job.status}")


def _jobs(base_url: str | None) -> Any:
    from price_bench_openai_ft.jobs import FineTuneJobs, make_openai

    try:
        return FineTuneJobs(make_openai(base_url))
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None


def _call(fn: Any) -> Any:
    """Run an API call; its failure becomes a one-line CLI error."""
    import openai

    try:
        return fn()
    except openai.APIStatusError as exc:
        body = exc.body.get("error", exc.body) if isinstance(exc.body, dict) else None  # OpenAI's error envelope
        message = body.get("message") if isinstance(body, dict) else None
        raise click.ClickException(f"HTTP {exc.status_code}: {message or exc.message}") from None
    except openai.APIConnectionError as exc:
        raise click.ClickException(f"cannot reach the API: {exc}") from None


def _when(timestamp: int | None) -> str:
    if not timestamp:
        return "-"
    return datetime.fromtimestamp(timestamp, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _show_job(job: Any) -> None:
    from price_bench_openai_ft.jobs import job_error

    rows = [
        ("job", job.id),
        ("status", job.status),
        ("base model", job.model),
        ("fine-tuned model", job.fine_tuned_model or "-"),
        ("trained tokens", f"{job.trained_tokens:,}" if job.trained_tokens else "-"),
        ("created", _when(job.created_at)),
        ("finished", _when(job.finished_at)),
    ]
    if job.status in ("failed", "cancelled"):
        rows.append(("error", job_error(job)))
    for label, value in rows:
        click.echo(f"{label + ':':<18}{value}")


def _list_known() -> None:
    from price_bench_openai_ft.state import known_states, ledger_dir

    states = known_states()
    if not states:
        click.echo(f"no fine-tuning jobs recorded in {ledger_dir()}")
        return
    rows = [("job", "status", "base model", "fine-tuned model", "estimate", "updated (UTC)")]
    for _, state in states:
        estimate = f"${state.estimate['usd']:.2f}" if state.estimate else "-"
        updated = datetime.fromtimestamp(state.updated_at, tz=timezone.utc).strftime("%Y-%m-%d %H:%M")
        rows.append((state.job_id or "-", state.status or "-", state.base_model, state.fine_tuned_model or "-", estimate, updated))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    click.echo("(local record; `price-bench openai-ft status --job ID` asks the API)")
