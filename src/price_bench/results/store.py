"""Reading and writing result records on disk.

Layout: ``<results>/<dataset>/<predictor_id>/<run_id>.json`` plus the sidecar
``<run_id>.predictions.jsonl``. Every file is written to a temporary name and
renamed, so a reader never sees half a record.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterable, Iterator

from price_bench.results.schema import ItemPrediction, RunRecord

PREDICTIONS_SUFFIX = ".predictions.jsonl"


class ResultError(Exception):
    """A result record is unreadable (message names the file)."""


def default_results_dir() -> Path:
    """``PRICE_BENCH_RESULTS`` when set, else ``./results``."""
    return Path(os.environ.get("PRICE_BENCH_RESULTS", "results"))


_UMASK: list[int] = []


def file_mode() -> int:
    """The mode a plain ``open()`` would give a new file (0o666 less the umask): 0o644 under the usual umask."""
    if not _UMASK:
        current = os.umask(0o022)
        os.umask(current)
        _UMASK.append(current)
    return 0o666 & ~_UMASK[0]


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file and an atomic rename.

    The file gets the mode of any other output (``mkstemp`` alone would leave it 0600).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
        os.chmod(tmp, file_mode())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def record_path(results_dir: Path, record: RunRecord) -> Path:
    """Where ``record`` lives under ``results_dir``."""
    return results_dir / record.dataset.name / record.predictor.id / f"{record.run_id}.json"


def write_record(
    results_dir: Path, record: RunRecord, predictions: Iterable[ItemPrediction | dict[str, Any]] = ()
) -> Path:
    """Write the sidecar (when there are predictions) then the record; return the record path.

    ``predictions`` are :class:`ItemPrediction` objects or plain dicts with
    exactly its fields, ``id`` first (the fast path the runner uses for
    100,000-item runs: no model object per row).
    """
    path = record_path(results_dir, record)
    rows = list(predictions)
    if rows:
        sidecar = path.with_name(record.run_id + PREDICTIONS_SUFFIX)
        atomic_write_text(sidecar, predictions_jsonl(rows))
        record = record.model_copy(update={"predictions_file": sidecar.name})
    atomic_write_text(path, record.model_dump_json(indent=2) + "\n")
    return path


_ROW_BOUNDARY = '},{"id":'


def predictions_jsonl(rows: list[ItemPrediction | dict[str, Any]]) -> str:
    """Sidecar text: one JSON object per line.

    Dict rows are encoded in one ``json.dumps`` call and split into lines at
    ``},{"id":``. That split is exact: rows are flat objects whose first key
    is ``id``, and inside a JSON string a quote is always escaped (``\\"``),
    so the sequence can only occur between two rows.
    """
    if all(isinstance(row, dict) for row in rows):
        for row in rows:
            if next(iter(row)) != "id":
                raise ValueError("prediction rows must have 'id' as their first key")
        text = json.dumps(rows, separators=(",", ":"), allow_nan=False)
        return text[1:-1].replace(_ROW_BOUNDARY, '}\n{"id":') + "\n"
    return "".join(
        (row.model_dump_json() if isinstance(row, ItemPrediction) else ItemPrediction(**row).model_dump_json()) + "\n"
        for row in rows
    )


def read_record(path: Path) -> RunRecord:
    """Load one record, raising :class:`ResultError` with the file name on bad content."""
    try:
        return RunRecord.model_validate_json(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ResultError(f"{path}: not a valid result record: {first}") from None


def iter_record_paths(results_dir: Path) -> Iterator[Path]:
    """Every record file under ``results_dir``, sorted (sidecars excluded)."""
    if not results_dir.exists():
        return iter(())
    return iter(
        sorted(p for p in results_dir.rglob("*.json") if not p.name.startswith("."))
    )


def load_records(results_dir: Path) -> list[tuple[Path, RunRecord]]:
    """Every record under ``results_dir`` with its path, sorted by path."""
    return [(path, read_record(path)) for path in iter_record_paths(results_dir)]


def read_predictions(record_file: Path, record: RunRecord | None = None) -> list[ItemPrediction]:
    """The per-item sidecar of the record at ``record_file`` (empty when it has none)."""
    record = record or read_record(record_file)
    if not record.predictions_file:
        return []
    sidecar = Path(record_file).with_name(record.predictions_file)
    rows = []
    with open(sidecar, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if line.strip():
                try:
                    rows.append(ItemPrediction.model_validate_json(line))
                except ValueError as exc:
                    raise ResultError(f"{sidecar}:{lineno}: bad prediction row: {str(exc).splitlines()[0]}") from None
    return rows
