"""Reading and writing result records on disk.

Layout: ``<results>/<dataset>/<predictor_id>/<run_id>.json`` plus the sidecar
``<run_id>.predictions.jsonl``. Every file is written to a temporary name and
renamed, so a reader never sees half a record.

A results folder may come from someone else, so reading is defensive: only
regular files inside the folder are read (links are skipped), a record whose
dataset name, predictor id, run id or sidecar name is not a plain valid name
is refused, and :func:`load_records` skips an unreadable or foreign ``*.json``
with a one-line warning naming it instead of failing every command. Writing
builds paths only from validated names (:mod:`price_bench.names`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from price_bench.errors import PriceBenchError
from price_bench.files import atomic_write_text
from price_bench.names import name_problem, printable
from price_bench.results.schema import ItemPrediction, RunRecord

PREDICTIONS_SUFFIX = ".predictions.jsonl"
#: A record file larger than this is not a record (records are a few kB).
RECORD_MAX_BYTES = 8 * 1024 * 1024


class ResultError(PriceBenchError):
    """A result record is unreadable (message names the file)."""


def default_results_dir() -> Path:
    """``PRICE_BENCH_RESULTS`` when set, else ``./results``."""
    return Path(os.environ.get("PRICE_BENCH_RESULTS", "results"))


def record_problem(record: RunRecord) -> str | None:
    """Why ``record``'s names cannot name its files (None when they can)."""
    for what, value in (
        ("dataset name", record.dataset.name),
        ("predictor id", record.predictor.id),
        ("run id", record.run_id),
    ):
        problem = name_problem(value, what)
        if problem:
            return problem
    sidecar = record.predictions_file
    if sidecar is not None and (name_problem(sidecar.removesuffix(PREDICTIONS_SUFFIX)) or not sidecar.endswith(PREDICTIONS_SUFFIX)):
        return f"predictions_file {sidecar[:60]!r} is not '<run id>{PREDICTIONS_SUFFIX}'"
    return None


def record_path(results_dir: Path, record: RunRecord) -> Path:
    """Where ``record`` lives under ``results_dir`` (ResultError when its names are not valid)."""
    problem = record_problem(record)
    if problem:
        raise ResultError(f"cannot write the record under {results_dir}: {problem}")
    dataset_dir = results_dir / record.dataset.name
    for folder in (dataset_dir, dataset_dir / record.predictor.id):
        if folder.is_symlink() or (folder.exists() and not folder.is_dir()):  # a shared folder's planted link
            raise ResultError(f"cannot write the record: {folder} is a link or not a folder (links are not followed)")
    return dataset_dir / record.predictor.id / f"{record.run_id}.json"


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
    """Load one record, raising :class:`ResultError` with the file name on bad content.

    Links and non-regular files are refused (never followed), as are records
    whose names could not have been written by :func:`write_record`.
    """
    path = Path(path)
    try:
        if path.is_symlink():
            raise ResultError(f"{path}: a link (links are not followed)")
        if not path.is_file():
            raise ResultError(f"{path}: not a regular file")
        if path.stat().st_size > RECORD_MAX_BYTES:
            raise ResultError(f"{path}: larger than {RECORD_MAX_BYTES // 2**20} MB; not a result record")
        record = RunRecord.model_validate_json(path.read_text(encoding="utf-8"))
    except ResultError:
        raise
    except (OSError, ValueError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ResultError(f"{path}: not a valid result record: {first}") from None
    problem = record_problem(record)
    if problem:
        raise ResultError(f"{path}: not a valid result record: {problem}")
    return record


def iter_record_paths(results_dir: Path) -> Iterator[Path]:
    """Every record file under ``results_dir``, sorted (sidecars and hidden files excluded).

    Links are listed (and then refused by :func:`read_record`, so a reader
    says which file it skipped); linked folders are not entered.
    """
    if not results_dir.exists():
        return iter(())
    return iter(sorted(p for p in results_dir.rglob("*.json") if not p.name.startswith(".")))


def warn(message: str) -> None:
    """The default ``on_skip``: one ``warning:`` line on stderr."""
    import sys

    print(f"warning: {printable(message)}", file=sys.stderr, flush=True)


def load_records(results_dir: Path, on_skip: Callable[[str], None] | None = warn) -> list[tuple[Path, RunRecord]]:
    """Every readable record under ``results_dir`` with its path, sorted by path.

    A corrupt or foreign ``*.json`` never hides the others: it is skipped and
    ``on_skip`` gets one line naming it (``on_skip=None`` raises
    :class:`ResultError` instead).
    """
    out = []
    for path in iter_record_paths(results_dir):
        try:
            out.append((path, read_record(path)))
        except ResultError as exc:
            if on_skip is None:
                raise
            on_skip(f"skipped {exc}")
    return out


def select_records(
    results_dir: Path, *, dataset: str | None = None, predictor: str | None = None, on_skip: Callable[[str], None] | None = warn
) -> list[tuple[Path, RunRecord]]:
    """:func:`load_records`, only those of ``dataset`` and ``predictor`` (id) when given."""
    return [
        (path, record)
        for path, record in load_records(results_dir, on_skip)
        if (dataset is None or record.dataset.name == dataset) and (predictor is None or record.predictor.id == predictor)
    ]


def read_predictions(record_file: Path, record: RunRecord | None = None) -> list[ItemPrediction]:
    """The per-item sidecar of the record at ``record_file`` (empty when it has none)."""
    record = record or read_record(record_file)
    if not record.predictions_file:
        return []
    problem = record_problem(record)
    if problem:
        raise ResultError(f"{record_file}: {problem}")
    sidecar = Path(record_file).with_name(record.predictions_file)
    if sidecar.is_symlink():
        raise ResultError(f"{sidecar}: per-item predictions file is a link (not followed)")
    if not sidecar.is_file():
        raise ResultError(f"{sidecar}: per-item predictions file of run {record.run_id} is missing")
    rows = []
    try:
        with open(sidecar, encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, 1):
                if line.strip():
                    try:
                        rows.append(ItemPrediction.model_validate_json(line))
                    except ValueError as exc:
                        raise ResultError(f"{sidecar}:{lineno}: bad prediction row: {str(exc).splitlines()[0]}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ResultError(f"{sidecar}: unreadable per-item predictions file: {exc}") from None
    return rows


def find_run(run: str | Path, results_dir: Path) -> tuple[Path, RunRecord]:
    """``(path, record)`` for a run id, a unique run-id prefix or a record path.

    Raises :class:`ResultError` when nothing or more than one run matches.
    """
    path = Path(run)
    if path.suffix == ".json" and path.is_file():
        return path, read_record(path)
    run = str(run)
    matches = [p for p in iter_record_paths(results_dir) if p.stem == run]
    if not matches:
        matches = [p for p in iter_record_paths(results_dir) if p.stem.startswith(run)]
    if not matches:
        raise ResultError(f"no run {run!r} in {results_dir} (see `price-bench results`)")
    if len(matches) > 1:
        raise ResultError(f"run {run!r} is ambiguous: {', '.join(p.stem for p in matches[:4])}")
    return matches[0], read_record(matches[0])


def find_complete_record(results_dir: Path, like: RunRecord) -> tuple[Path, RunRecord] | None:
    """The newest complete record matching ``like``'s predictor, config, versions, code, seed, dataset and limit."""
    folder = results_dir / like.dataset.name / like.predictor.id
    if not folder.is_dir():
        return None
    for path in sorted(folder.glob("*.json"), reverse=True):
        try:
            record = read_record(path)
        except ResultError:
            continue
        if record.status == "complete" and same_run(record, like):
            return path, record
    return None


def same_run(record: RunRecord, like: RunRecord) -> bool:
    """True when both records ran the same predictor config, versions, code, seed, dataset and limit.

    A record without a code digest (written before digests) matches any code.
    """
    p, q = record.predictor, like.predictor
    return (
        (p.config_hash, p.plugin_version, p.predictor_version) == (q.config_hash, q.plugin_version, q.predictor_version)
        and record.dataset.fingerprint == like.dataset.fingerprint
        and (p.code_digest is None or q.code_digest is None or p.code_digest == q.code_digest)
        and record.limit == like.limit
        and record.seed == like.seed
    )


def new_run_id(config_hash: str) -> str:
    """``20261128T130212Z-<hash6>-<4 hex>``: sortable by time, unique."""
    import secrets
    from datetime import UTC, datetime

    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{config_hash[:6]}-{secrets.token_hex(2)}"


def resolve_run(name: str, results_dir: Path, dataset: str | None = None) -> tuple[Path, RunRecord]:
    """``(path, record)`` for a run id, id prefix or record path; else a predictor id or leaderboard label.

    A predictor name means its latest complete, leaderboard-eligible run (on
    ``dataset`` when given); a name found on several datasets must be
    narrowed with ``dataset``. ResultError (one line) when nothing matches.
    """
    try:
        return find_run(name, results_dir)
    except ResultError:
        from price_bench.leaderboard.labels import board_labels
        from price_bench.leaderboard.select import parse_time

        records = [(p, r) for p, r in load_records(results_dir) if r.is_leaderboard_eligible
                   and (dataset is None or r.dataset.name == dataset)]
        labels = board_labels(r for _, r in records)
        named = [(p, r) for p, r in records
                 if name in (r.predictor.id, labels.get((r.predictor.id, r.predictor.config_hash)))]
        if not named:
            raise ResultError(f"no run {name!r} in {results_dir}, and no predictor or label of that name with a complete "
                              "run" + (f" on dataset {dataset!r}" if dataset else "") + " (see `price-bench results`)") from None
        datasets = sorted({r.dataset.name for _, r in named})
        if len(datasets) > 1:
            raise ResultError(f"{name!r} has runs on several datasets ({', '.join(datasets)}): add --dataset") from None
        return max(named, key=lambda pr: (parse_time(pr[1].finished_at), pr[1].run_id))
