"""Talking to OpenAI's files and fine-tuning endpoints: upload, create, poll, cancel.

Creation is the one call that is not safe to repeat (a second job is paid for
again), so it is sent once, without the client's automatic retries, and
carries a ``create_token`` in its metadata: when the answer is lost (timeout,
dropped connection, Ctrl-C) the job is found again by that token instead of
being created twice.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from rich.console import Console

if TYPE_CHECKING:
    import openai

TERMINAL = ("succeeded", "failed", "cancelled")
TOKEN_KEY = "price_bench_create_token"
_sleep = time.sleep  # the pause between polls (tests replace it)


class JobFailedError(RuntimeError):
    """The fine-tuning job ended failed or cancelled (one-line message)."""


def default_console() -> Console:
    """Progress and estimates go to stderr, leaving stdout to the harness.

    Markup and emoji codes are off: the messages carry API-supplied text (job
    ids, errors, event messages) that must print verbatim.
    """
    return Console(stderr=True, soft_wrap=True, markup=False, emoji=False)


def make_openai(base_url: str | None = None, api_key: str | None = None, timeout: float = 60.0, max_retries: int = 3) -> openai.OpenAI:
    """An ``openai.OpenAI`` client; the key is resolved like the frontier client does it."""
    import openai
    from price_bench_frontier.client import resolve_api_key

    key = resolve_api_key(base_url, api_key)
    if key is None:
        raise ValueError("no API key: set OPENAI_API_KEY or give a base_url")
    return openai.OpenAI(api_key=key, base_url=base_url, timeout=timeout, max_retries=max_retries)


def job_error(job: Any) -> str:
    """One line saying why ``job`` did not succeed."""
    if job.status == "cancelled":
        return f"fine-tuning job {job.id} was cancelled"
    error = getattr(job, "error", None)
    detail = f"{error.code}: {error.message}" if error is not None and getattr(error, "message", None) else "no reason given"
    return f"fine-tuning job {job.id} {job.status}: {detail}"


def format_event(event: Any) -> str:
    """``HH:MM:SS level message`` for one job event."""
    when = datetime.fromtimestamp(event.created_at, tz=timezone.utc).strftime("%H:%M:%S")
    return f"{when} {event.level:<5} {event.message}"


class FineTuneJobs:
    """The fine-tuning calls this plugin makes, over one ``openai.OpenAI`` client."""

    def __init__(
        self,
        client: openai.OpenAI,
        *,
        poll_interval_s: float = 30.0,
        console: Console | None = None,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self.client = client
        self.poll_interval_s = poll_interval_s
        self.console = console or default_console()
        self.sleep = sleep or _sleep

    # -- files and jobs ------------------------------------------------------------------------

    def upload(self, path: Path) -> str:
        """Upload a JSONL file with purpose ``fine-tune``; return its file id."""
        with open(path, "rb") as handle:
            uploaded = self.client.files.create(file=(path.name, handle), purpose="fine-tune")
        self.console.print(f"openai-ft: uploaded {path.name} as {uploaded.id} ({uploaded.bytes:,} bytes)")
        return uploaded.id

    def find_by_token(self, token: str) -> Any | None:
        """The job created with ``create_token`` ``token``, or None."""
        for job in self.client.fine_tuning.jobs.list(metadata={TOKEN_KEY: token}, limit=10).data:
            if (job.metadata or {}).get(TOKEN_KEY) == token:
                return job
        return None

    def create(self, token: str, **params: Any) -> Any:
        """Create a job tagged with ``token``, once; on a lost answer, look for it by token."""
        import openai

        metadata = {**(params.pop("metadata", None) or {}), TOKEN_KEY: token}
        try:
            return self.client.with_options(max_retries=0).fine_tuning.jobs.create(metadata=metadata, **params)
        except (openai.APIConnectionError, openai.InternalServerError):  # APITimeoutError is a connection error
            found = self.find_by_token(token)
            if found is not None:
                return found
            raise

    def retrieve(self, job_id: str) -> Any:
        return self.client.fine_tuning.jobs.retrieve(job_id)

    def events(self, job_id: str, limit: int = 50) -> list[Any]:
        """The job's most recent events, oldest first."""
        return list(reversed(self.client.fine_tuning.jobs.list_events(job_id, limit=limit).data))

    def new_events(self, job_id: str, seen: set[str], max_pages: int = 20) -> list[Any]:
        """Events not in ``seen`` (which is updated), oldest first, paging back until a seen one."""
        fresh: list[Any] = []
        page = self.client.fine_tuning.jobs.list_events(job_id, limit=100)
        for _ in range(max_pages):
            for event in page.data:  # newest first
                if event.id in seen:
                    break
                fresh.append(event)
            else:
                if page.has_more and page.data:
                    page = self.client.fine_tuning.jobs.list_events(job_id, limit=100, after=page.data[-1].id)
                    continue
            break
        seen.update(event.id for event in fresh)
        return list(reversed(fresh))

    def cancel(self, job_id: str) -> Any:
        return self.client.fine_tuning.jobs.cancel(job_id)

    # -- polling -----------------------------------------------------------------------------------

    def wait(self, job_id: str, on_status: Callable[[Any], None] = lambda job: None) -> Any:
        """Poll until the job is terminal, showing its status and new events; return the job.

        Message events are printed; metrics events (one per training step)
        drive the progress bar instead. ``on_status`` gets every retrieved job
        (the caller persists it). Ctrl-C leaves the job running and says how
        to resume or cancel it.
        """
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        seen: set[str] = set()
        columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        try:
            with Progress(*columns, console=self.console) as progress:
                task = progress.add_task(f"fine-tuning job {job_id}", total=None)
                latest = ""
                while True:
                    job = self.retrieve(job_id)
                    on_status(job)
                    for event in self.new_events(job_id, seen):
                        data = event.data if isinstance(event.data, dict) else {}
                        if event.type == "metrics" and "step" in data:
                            latest = f", {event.message}"
                            progress.update(task, completed=data["step"], total=data.get("total_steps"))
                        else:
                            progress.console.print(f"  {format_event(event)}", markup=False, highlight=False)
                    progress.update(task, description=f"fine-tuning job {job_id}: {job.status}{latest}")
                    if job.status in TERMINAL:
                        return job
                    self.sleep(self.poll_interval_s)
        except KeyboardInterrupt:
            self.console.print(
                f"openai-ft: interrupted; job {job_id} keeps running on the server. Rerun the same command to resume it, "
                f"or stop it with: price-bench openai-ft cancel {job_id}"
            )
            raise
