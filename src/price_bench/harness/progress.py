"""Live progress for ``price-bench run``: items/s, ETA and the running Error.

Uses rich when stderr is a terminal; otherwise every call is a no-op (logs
and CI output stay clean).
"""

from __future__ import annotations

import sys
from typing import Any


class RunProgress:
    """One progress bar per predictor. Use as a context manager."""

    def __init__(self, enabled: bool | None = None) -> None:
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self._progress: Any = None
        self._task: Any = None

    def __enter__(self) -> RunProgress:
        if self.enabled:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[rate]}"),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                TimeElapsedColumn(),
                TextColumn("Error {task.fields[error]}"),
                TextColumn("{task.fields[note]}"),
                console=Console(stderr=True, emoji=False),
                transient=False,
            )
            self._progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.__exit__(*exc)
            self._progress = None

    def start(self, predictor_id: str, total: int, done: int = 0) -> None:
        """Begin a bar for ``predictor_id``; ``done`` items are already cached."""
        if self._progress is not None:
            from rich.markup import escape

            # The description goes into a markup template: a plugin's id is escaped first.
            self._task = self._progress.add_task(escape(predictor_id), total=total, completed=done, rate="", error="-", note="")

    def phase(self, name: str) -> None:
        """Show what the current predictor is doing ("fitting", "predicting"); the elapsed time keeps running."""
        if self._progress is not None and self._task is not None:
            task = self._progress.tasks[-1]
            base = task.description.split(" · ", 1)[0]
            self._progress.update(self._task, description=f"{base} · {name}" if name else base)

    def advance(self, n: int, running_error: float | None, note: str = "") -> None:
        """``n`` more items are predicted; show the Error so far and the predictor's ``note``."""
        if self._progress is not None and self._task is not None:
            from rich.markup import escape

            task = self._progress.tasks[-1]
            speed = task.speed
            rate = f"{speed:,.0f} items/s" if speed else ""
            error = f"${running_error:,.2f}" if running_error is not None else "-"
            self._progress.update(self._task, advance=n, rate=rate, error=error, note=escape(note))

    def finish(self) -> None:
        """Close the current bar."""
        if self._progress is not None and self._task is not None:
            self._progress.stop_task(self._task)
            self._task = None
