"""A predictor's life in a run: fitted, or restored from the fit its work folder keeps; then closed."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path

from price_bench.data.dataset import Dataset
from price_bench.harness.errors import one_line
from price_bench.harness.workdir import MARKER, clear_marker, read_marker, verify_marker, write_marker
from price_bench.predictors.contract import Predictor

log = logging.getLogger(__name__)


def fit_or_load(
    predictor: Predictor,
    dataset: Dataset,
    workdir: Path,
    *,
    refit: bool = False,
    note: Callable[[str], None] | None = None,
) -> tuple[float | None, bool]:
    """Restore the predictor from ``workdir`` or fit it on ``dataset``; returns (fit seconds, reused).

    ``load`` only ever sees a folder whose files still match the digests the
    fit marker recorded after the last fit (artefacts may be pickles). A
    folder that does not match, or a ``load`` that raises, is refitted with
    a one-line note (``note``, default stderr) instead of failing.
    """
    note = note or print_note
    workdir.mkdir(parents=True, exist_ok=True)
    marker = None if refit else read_marker(workdir)
    if marker is not None:
        problem = verify_marker(workdir, marker)
        if problem is None:
            try:
                if predictor.load(workdir):
                    return marker.fit_seconds, True
            except Exception as exc:  # a corrupt artefact: refit rather than fail
                problem = f"load raised {one_line(exc, 120)}"
        if problem is not None:
            note(f"{predictor.id}: work folder {workdir} does not match its fit record ({problem}); refitting")
    elif not refit and (workdir / MARKER).exists():
        note(f"{predictor.id}: fit record {workdir / MARKER} is unreadable or has no file digests; refitting")
    clear_marker(workdir)
    started = time.perf_counter()
    predictor.fit(dataset.train, dataset.validation, workdir)
    seconds = time.perf_counter() - started
    write_marker(workdir, seconds)
    return seconds, False


def close_predictor(predictor: Predictor, redact: Callable[[str | None], str | None] = lambda text: text) -> None:
    """``predictor.close()``; a failure is logged as a warning (secrets scrubbed), never raised: the run's answers stand."""
    try:
        predictor.close()
    except Exception as exc:
        log.warning("%s", redact(f"{predictor.id or type(predictor).__name__}: close() raised {one_line(exc)}"))


def print_note(message: str) -> None:
    """One ``note:`` line on stderr (control characters made visible)."""
    from price_bench.names import printable

    print(f"note: {printable(message)}", file=sys.stderr, flush=True)
