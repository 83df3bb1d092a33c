"""Per-item drill-down of one run: its worst misses, titles from the dataset, export to CSV or Parquet.

The per-item sidecar holds ids, truth, guess and category but never product
text; a title comes from the dataset itself, and only when a local copy with
the run's exact fingerprint exists (never built, never fetched here).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from price_bench.results.schema import ItemPrediction, RunRecord
from price_bench.results.store import ResultError, read_predictions

TITLE_CHARS = 120
EXPORT_FORMATS = ("csv", "parquet")
COLUMNS = ("id", "category", "truth", "guess", "error", "parsed", "unparsed")


def item_rows(record_file: Path, record: RunRecord) -> list[dict[str, Any]]:
    """One dict per scored item: id, category, truth, guess, absolute error, parsed answer, unparsed flag."""
    predictions = read_predictions(record_file, record)
    if not predictions:
        raise ResultError(f"{record_file}: run {record.run_id} has no per-item predictions")
    return [_row(p) for p in predictions]


def _row(p: ItemPrediction) -> dict[str, Any]:
    return {"id": p.id, "category": p.category, "truth": p.truth, "guess": p.guess, "error": abs(p.guess - p.truth),
            "parsed": p.parsed, "unparsed": p.parsed is None}


def worst(rows: list[dict[str, Any]], n: int, category: str | None = None) -> list[dict[str, Any]]:
    """The ``n`` rows with the largest error (ties by id), optionally in one category."""
    pool = [r for r in rows if category is None or r["category"] == category]
    return sorted(pool, key=lambda r: (-r["error"], r["id"]))[:n]


def short_title(text: str | None) -> str | None:
    """A title on one line, at most :data:`TITLE_CHARS` characters."""
    if not text:
        return None
    line = " ".join(str(text).split())
    return line if len(line) <= TITLE_CHARS else line[: TITLE_CHARS - 1] + "…"


def titles(record: RunRecord, home: Path | None = None) -> tuple[dict[str, str] | None, str]:
    """Item titles of the run's test split from a local copy of its dataset, and a note saying why not when None.

    The copy must have the run's fingerprint: titles of another version could
    belong to other products.
    """
    from price_bench.data.dataset import DatasetError, datasets_dir, open_dataset

    folder = datasets_dir(home) / record.dataset.name
    if not (folder / "manifest.json").is_file():
        return None, f"no local copy of dataset {record.dataset.name!r}"
    try:
        dataset = open_dataset(folder)
        if dataset.fingerprint != record.dataset.fingerprint:
            return None, f"the local copy of {record.dataset.name!r} has another fingerprint than the run"
        items = dataset.items(record.dataset.split)
    except DatasetError as exc:
        return None, str(exc).splitlines()[0]
    return {item.id: short_title(item.title or item.text.split("\n", 1)[0]) or "" for item in items}, ""


def export_text(rows: list[dict[str, Any]], with_titles: dict[str, str] | None = None) -> str:
    """The rows as CSV text (a ``title`` column when titles are given)."""
    columns = list(COLUMNS) + (["title"] if with_titles is not None else [])
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        out = dict(row)
        if with_titles is not None:
            out["title"] = with_titles.get(row["id"], "")
        writer.writerow(out)
    return buf.getvalue()


def export(rows: list[dict[str, Any]], path: Path, fmt: str, with_titles: dict[str, str] | None = None) -> Path:
    """Write the rows to ``path`` as ``csv`` or ``parquet``; returns the path."""
    from price_bench.files import atomic_write_text

    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"unknown export format {fmt!r} (known: {', '.join(EXPORT_FORMATS)})")
    path = Path(path)
    if fmt == "csv":
        atomic_write_text(path, export_text(rows, with_titles))
        return path
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns = {name: [r[name] for r in rows] for name in COLUMNS}
    if with_titles is not None:
        columns["title"] = [with_titles.get(r["id"], "") for r in rows]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    pq.write_table(pa.table(columns), tmp)
    tmp.replace(path)
    return path
