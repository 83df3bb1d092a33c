"""Where raw product records come from, with (file, line) provenance.

A *source spec* is what a user types after ``--source``:

* ``hf`` or ``hf://datasets/McAuley-Lab/Amazon-Reviews-2023/...``: the
  Hugging Face Hub metadata files ``raw/meta_categories/meta_<Category>.jsonl``
  (``hf`` needs ``categories``), streamed through ``datasets``;
* a local file: ``.jsonl``, ``.jsonl.gz``, ``.json``, ``.json.gz``,
  ``.parquet`` or ``.csv``;
* a local folder: every such file in it, sorted by name.

Each file is one of three formats, detected from its first record:
``raw2023`` (Amazon Reviews 2023 ``meta_*``), ``raw2018`` (the older metadata
with ``asin``/``main_cat``/``feature`` and ``"$12.34"`` prices) or ``items``
(already-curated ``text`` + ``price`` rows, optional ``id``/``category``).

Readers yield :class:`Chunk` objects: a run of consecutive raw lines (bytes)
or rows (dicts) of one file with the line number of the first one, so that
decoding can happen in worker processes and every problem can still name its
file and line.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import os
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

from price_bench.data.dataset import DatasetError

HF_REPO = "McAuley-Lab/Amazon-Reviews-2023"
HF_META_PATH = "raw/meta_categories/meta_{category}.jsonl"
#: A local folder laid out like the Hub repository (``raw/meta_categories/meta_<Category>.jsonl``):
#: ``--source hf`` then streams those files through the same ``datasets`` code path.
HF_MIRROR_ENV = "PRICE_BENCH_HF_MIRROR"

#: The categories of Amazon Reviews 2023 (names as in its ``meta_<Category>`` files).
AMAZON_2023_CATEGORIES = (
    "All_Beauty", "Amazon_Fashion", "Appliances", "Arts_Crafts_and_Sewing", "Automotive",
    "Baby_Products", "Beauty_and_Personal_Care", "Books", "CDs_and_Vinyl",
    "Cell_Phones_and_Accessories", "Clothing_Shoes_and_Jewelry", "Digital_Music", "Electronics",
    "Gift_Cards", "Grocery_and_Gourmet_Food", "Handmade_Products", "Health_and_Household",
    "Health_and_Personal_Care", "Home_and_Kitchen", "Industrial_and_Scientific", "Kindle_Store",
    "Magazine_Subscriptions", "Movies_and_TV", "Musical_Instruments", "Office_Products",
    "Patio_Lawn_and_Garden", "Pet_Supplies", "Software", "Sports_and_Outdoors",
    "Subscription_Boxes", "Tools_and_Home_Improvement", "Toys_and_Games", "Video_Games", "Unknown",
)

DATA_SUFFIXES = (".jsonl", ".jsonl.gz", ".json", ".json.gz", ".parquet", ".csv")
FORMATS = ("raw2023", "raw2018", "items")
CHUNK_LINES = 2000
SPAN_BYTES = 4 << 20


class SourceError(DatasetError):
    """A source cannot be read at all (message is one line naming it)."""


@dataclass(frozen=True)
class SourceFile:
    """One readable file (or Hub URL) and what we know about it before reading."""

    location: str
    """Local path or ``hf://`` URL."""
    category: str | None = None
    """Category implied by the file name (``meta_Appliances.jsonl`` -> ``Appliances``)."""
    role: str = "any"
    """``any`` (split by the recipe), ``train`` (train/validation only) or ``test``."""
    hub: bool = False
    """Read through ``datasets`` like a Hub file even when ``location`` is local (a mirror of the Hub layout)."""

    @property
    def is_hub(self) -> bool:
        return self.hub or self.location.startswith("hf://")

    @property
    def splittable(self) -> bool:
        """A local uncompressed JSON-lines file: workers can read byte ranges of it themselves."""
        return not self.is_hub and self.location.endswith((".jsonl", ".json"))


@dataclass(frozen=True)
class Span:
    """A byte range of a local JSON-lines file, cut at line ends; a worker reads it itself."""

    source_index: int
    path: str
    start: int
    end: int


def plan_spans(source_index: int, path: str, span_bytes: int | None = None) -> list[Span]:
    """Cut a file into spans of about ``span_bytes`` (default :data:`SPAN_BYTES`) that end just after a newline."""
    span_bytes = span_bytes or SPAN_BYTES
    spans: list[Span] = []
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as fh:
            start = 0
            while start < size:
                fh.seek(min(start + span_bytes, size))
                fh.readline()
                end = min(fh.tell(), size)
                spans.append(Span(source_index, path, start, end))
                start = end
    except OSError as exc:
        raise SourceError(f"{path}: cannot read: {exc}") from None
    return spans


def read_span(span: Span) -> tuple[Chunk, int]:
    """The lines of a span (numbered from 1 within it) and how many lines it holds."""
    try:
        with open(span.path, "rb") as fh:
            fh.seek(span.start)
            data = fh.read(span.end - span.start)
    except OSError as exc:
        raise SourceError(f"{span.path}: cannot read: {exc}") from None
    lines = data.split(b"\n")
    if lines and not lines[-1]:
        lines.pop()
    return Chunk(span.source_index, 1, lines=lines), len(lines)


@dataclass
class Chunk:
    """Consecutive records of one file: raw JSON lines (bytes) or already-decoded rows."""

    source_index: int
    first_line: int
    lines: list[bytes] | None = None
    rows: list[Any] | None = None
    line_numbers: list[int] | None = None
    """Per-row starting line, where rows do not sit one per line (CSV with quoted line breaks)."""

    def line_of(self, offset: int) -> int:
        """The file line where record ``offset`` of this chunk starts."""
        return self.line_numbers[offset] if self.line_numbers is not None else self.first_line + offset

    def __len__(self) -> int:
        return len(self.lines if self.lines is not None else self.rows or ())


def category_from_filename(path: str) -> str | None:
    """The category a file's name announces, if it is a known Amazon 2023 category."""
    stem = os.path.basename(path)
    for suffix in DATA_SUFFIXES:
        if stem.endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    for prefix in ("meta_", "raw_meta_"):
        if stem.startswith(prefix):
            stem = stem[len(prefix):]
    return stem if stem in AMAZON_2023_CATEGORIES else None


def check_categories(categories: list[str] | None) -> list[str] | None:
    """Validate category names against Amazon 2023 (raises SourceError, one line)."""
    if not categories:
        return None
    unknown = [c for c in categories if c not in AMAZON_2023_CATEGORIES]
    if unknown:
        raise SourceError(
            f"unknown category {unknown[0]!r}; known Amazon 2023 categories: {', '.join(AMAZON_2023_CATEGORIES)}"
        )
    return list(categories)


def _mirror_path(mirror: str, category: str) -> str:
    return os.path.join(os.path.expanduser(mirror), *HF_META_PATH.format(category=category).split("/"))


def hub_url(category: str, repo: str = HF_REPO) -> str:
    """``hf://`` URL of one category's metadata file on the Hub."""
    return f"hf://datasets/{repo}/{HF_META_PATH.format(category=category)}"


def resolve(spec: str | Path, categories: list[str] | None = None, role: str = "any") -> list[SourceFile]:
    """Turn one ``--source`` value into the files it names (raises SourceError)."""
    text = str(spec)
    if text == "hf" or text.startswith("hf:") and not text.startswith("hf://"):
        repo = text[3:] or HF_REPO
        if not categories:
            raise SourceError(f"source {text!r}: the Hub needs --categories (e.g. Appliances, or all)")
        mirror = os.environ.get(HF_MIRROR_ENV)
        if categories == ["all"]:
            categories = list(AMAZON_2023_CATEGORIES)
            if mirror:  # a partial local copy: the categories it holds
                categories = [c for c in categories if os.path.isfile(_mirror_path(mirror, c))]
                if not categories:
                    raise SourceError(f"{HF_MIRROR_ENV}={mirror}: no {HF_META_PATH.format(category='<Category>')} file in it")
        check_categories(categories)
        if mirror:
            return [SourceFile(_mirror_path(mirror, c), c, role, hub=True) for c in categories]
        return [SourceFile(hub_url(c, repo), c, role) for c in categories]
    if text.startswith("hf://"):
        return [SourceFile(text, category_from_filename(text), role)]
    path = Path(text).expanduser()
    if not path.exists():
        raise SourceError(f"{path}: no such file or folder")
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and p.name.endswith(DATA_SUFFIXES))
        if not files:
            raise SourceError(f"{path}: folder has no data files ({', '.join(DATA_SUFFIXES)})")
    else:
        if not path.name.endswith(DATA_SUFFIXES):
            raise SourceError(f"{path}: unsupported file type (expected one of {', '.join(DATA_SUFFIXES)})")
        files = [path]
    return [SourceFile(str(p), category_from_filename(p.name), role) for p in files]


def file_sha256(location: str, cancelled: threading.Event | None = None) -> str | None:
    """sha256 of a local file (None for Hub URLs, and when ``cancelled`` is set before the end)."""
    if location.startswith("hf://"):
        return None
    digest = hashlib.sha256()
    with open(location, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            if cancelled is not None and cancelled.is_set():
                return None
            digest.update(block)  # releases the GIL: a thread can hash while the process curates
    return "sha256:" + digest.hexdigest()


class BackgroundHashes:
    """:func:`file_sha256` of several files in one thread, while the caller does other work.

    The local engine hashes its sources this way while its worker processes
    curate them (the main process is otherwise waiting). Start it only after
    the pool has forked its workers, and take :meth:`result` before forking
    again: a fork never copies a process whose thread is mid-read.
    """

    def __init__(self, locations: list[str]) -> None:
        self.locations = locations
        self.cancelled = threading.Event()
        self._digests: list[str | None] = [None] * len(locations)
        self._error: OSError | None = None
        self._thread = threading.Thread(target=self._run, name="price-bench-sha256", daemon=True)

    def start(self) -> None:
        """Start the thread (again, or with no files: nothing)."""
        if self.locations and self._thread.ident is None:
            self._thread.start()

    def _run(self) -> None:
        try:
            for n, location in enumerate(self.locations):
                self._digests[n] = file_sha256(location, self.cancelled)
        except OSError as exc:
            self._error = exc

    def result(self) -> list[str | None]:
        """The digests in the order given, once the thread is done (started here if it was not).

        A read error comes back as :class:`SourceError`.
        """
        self.start()
        if self._thread.ident is not None:
            self._thread.join()
        if self._error is not None:
            raise SourceError(f"{self._error.filename}: cannot read: {self._error.strerror}") from None
        return self._digests

    def cancel(self) -> None:
        """Stop at the next block and wait for the thread (the run failed, or is over)."""
        self.cancelled.set()
        if self._thread.ident is not None:
            self._thread.join()


def detect_format(record: Any) -> str | None:
    """Which format a decoded record is in, from its keys (None if unknown)."""
    if not isinstance(record, dict):
        return None
    if "text" in record and "price" in record:
        return "items"
    if "parent_asin" in record or "main_category" in record or "features" in record:
        return "raw2023"
    if "asin" in record or "main_cat" in record or "feature" in record:
        return "raw2018"
    return None


# --------------------------------------------------------------------------- readers


def _open_binary(path: str) -> io.BufferedIOBase:
    if path.endswith(".gz"):
        return gzip.open(path, "rb")
    return open(path, "rb")


def _chunked(source_index: int, records: Iterable[Any], chunk_lines: int, *, raw: bool) -> Iterator[Chunk]:
    """Records that sit one per line (numbered from 1), ``chunk_lines`` at a time: raw lines or decoded rows."""
    stream = iter(records)
    first = 1
    while batch := list(islice(stream, chunk_lines)):
        yield Chunk(source_index, first, lines=batch) if raw else Chunk(source_index, first, rows=batch)
        first += len(batch)


def _json_lines(source_index: int, path: str, chunk_lines: int) -> Iterator[Chunk]:
    try:
        with _open_binary(path) as fh:
            yield from _chunked(source_index, fh, chunk_lines, raw=True)
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise SourceError(f"{path}: cannot read: {exc}") from None


def _parquet_rows(source_index: int, path: str, chunk_lines: int) -> Iterator[Chunk]:
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
        first = 1
        for batch in pf.iter_batches(batch_size=chunk_lines):
            rows = batch.to_pylist()
            yield Chunk(source_index, first, rows=rows)
            first += len(rows)
    except (OSError, ValueError) as exc:  # pyarrow errors derive from these
        raise SourceError(f"{path}: cannot read parquet: {exc}") from None


CSV_REQUIRED = ("text", "price")
#: Longest CSV field read (the csv module's default, 128 kB, would stop a whole build on one long
#: text; curation cuts texts to the recipe's ``max_chars`` anyway).
CSV_FIELD_LIMIT = 64 * 1024 * 1024


def _allow_long_fields() -> None:
    if csv.field_size_limit() < CSV_FIELD_LIMIT:
        csv.field_size_limit(CSV_FIELD_LIMIT)


def _csv_header(path: str) -> list[str]:
    """The header row of a CSV source; SourceError (one line) when it lacks a required column."""
    _allow_long_fields()
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            header = next(csv.reader(fh), None)
    except UnicodeDecodeError as exc:
        raise SourceError(f"{path}: not UTF-8 ({exc.reason} at byte {exc.start})") from None
    except (OSError, csv.Error) as exc:
        raise SourceError(f"{path}: cannot read CSV: {exc}") from None
    if header is None:
        return []
    header = [name.strip() for name in header]
    missing = [name for name in CSV_REQUIRED if name not in header]
    if missing:
        shown = ", ".join(header[:8]) + (", ..." if len(header) > 8 else "")
        raise SourceError(f"{path}:1: CSV has no {missing[0]!r} column (header: {shown or 'empty'})")
    return header


def _csv_rows(source_index: int, path: str, chunk_lines: int) -> Iterator[Chunk]:
    """Rows of a CSV file as dicts, each with the line it starts on (quoted fields may span lines)."""
    _allow_long_fields()
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            if header is None:
                return
            header = [name.strip() for name in header]
            width = len(header)
            rows: list[Any] = []
            starts: list[int] = []
            while True:
                start = reader.line_num + 1
                values = next(reader, None)
                if values is None:
                    break
                if not values:
                    continue  # a blank line
                row: dict[Any, Any] = dict(zip(header, values))
                if len(values) > width:
                    row[None] = values[width:]
                elif len(values) < width:
                    row.update({name: None for name in header[len(values):]})
                rows.append(row)
                starts.append(start)
                if len(rows) >= chunk_lines:
                    yield Chunk(source_index, starts[0], rows=rows, line_numbers=starts)
                    rows, starts = [], []
            if rows:
                yield Chunk(source_index, starts[0], rows=rows, line_numbers=starts)
    except UnicodeDecodeError as exc:
        raise SourceError(f"{path}: not UTF-8 ({exc.reason} at byte {exc.start})") from None
    except (OSError, csv.Error) as exc:
        raise SourceError(f"{path}: cannot read CSV: {exc}") from None


def hub_rows(url: str, chunk_lines: int = CHUNK_LINES, source_index: int = 0) -> Iterator[Chunk]:
    """Stream a JSON-lines file through ``datasets`` (the Hub path), as row chunks.

    ``datasets.load_dataset("json", data_files=url, streaming=True)`` reads the
    file lazily, so nothing is materialised. The JSON builder infers an Arrow
    schema per block, so a key missing from one record comes back as ``None``
    (dropped later) and a ``details`` dict comes back as a dict. Records keep
    their order, so row ``n`` is line ``n`` of the file. Works the same on a
    local path, which is how it is tested.
    """
    try:
        from datasets import load_dataset
    except ImportError:  # pragma: no cover - depends on the environment
        raise SourceError(f"{url}: reading from the Hub needs `pip install price-bench[hub]` (datasets)") from None
    try:
        stream = load_dataset("json", data_files=url, split="train", streaming=True)
        yield from _chunked(source_index, stream, chunk_lines, raw=False)
    except SourceError:
        raise
    except Exception as exc:  # datasets/fsspec/pyarrow raise many unrelated types
        message = " ".join(str(exc).split())[:300]
        raise SourceError(f"{url}: cannot stream through datasets: {type(exc).__name__}: {message}") from None


def read_chunks(source_index: int, source: SourceFile, chunk_lines: int = CHUNK_LINES) -> Iterator[Chunk]:
    """Chunks of one source file, in file order."""
    location = source.location
    if source.is_hub:
        yield from hub_rows(location, chunk_lines, source_index)
    elif location.endswith(".parquet"):
        yield from _parquet_rows(source_index, location, chunk_lines)
    elif location.endswith(".csv"):
        yield from _csv_rows(source_index, location, chunk_lines)
    else:
        yield from _json_lines(source_index, location, chunk_lines)


def sniff_format(source: SourceFile) -> str | None:
    """Format of a local file from its first decodable record (None if none found)."""
    if source.is_hub:
        return "raw2023"
    location = source.location
    if location.endswith(".csv"):
        return "items" if _csv_header(location) else None
    if location.endswith(".parquet"):
        import pyarrow.parquet as pq

        try:
            names = pq.read_schema(location).names
        except (OSError, ValueError) as exc:
            raise SourceError(f"{location}: cannot read parquet: {exc}") from None
        return detect_format({name: None for name in names})
    for chunk in _json_lines(0, location, 200):
        for line in chunk.lines or ():
            try:
                found = detect_format(json.loads(line))
            except ValueError:
                continue
            if found:
                return found
    return None
