"""The streaming curation run: sources -> curated train/validation/test items.

1. Work is cut into *units*: byte ranges (:class:`~price_bench.data.sources.Span`)
   of local JSON-lines files, which the workers read, decode and curate
   themselves, or chunks of rows that the main process reads (gzip,
   parquet, CSV, the ``datasets`` streaming path, ``--limit``). Units run in a
   pool of ``workers`` processes (:mod:`price_bench.data.workers`) and their
   results are taken in input order, so the output does not depend on the
   number of workers.
2. Each unit's accepted records go to its own Arrow spill file on disk,
   until :func:`spill_rows` of them are spilled; after that a span's are
   only located (file offsets), and the selected ones are read and curated
   again, so the spill stops growing with the input. The main process keeps
   only 29 bytes per accepted record (two 64-bit key hashes, the price,
   category and role) and the offsets, so reading millions of raw records
   stays far below 1 GB. What is held in full is the selected items (at most
   the recipe's ``max_items``, 100,000 by default).
3. De-duplication (first occurrence wins: by ``parent_asin``, then by
   normalised text), price-balanced weighted sampling (seeded) and the split
   (seeded) run on those arrays; the selected rows are taken back from the
   spill files, and the leakage check (train/validation items that nearly
   duplicate a test item are dropped) runs in the same pool.

Sources with role ``test`` are read first, so a record that appears both in
a user's test file and in the training data stays in the test split. A
worker that dies fails the run (:class:`CurationError`, one line) before
anything is written; with ``strict`` the first bad record in input order
stops every worker.
"""

from __future__ import annotations

import gc
import os
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NotRequired, TypedDict

import numpy as np

from price_bench.data.curation import ChunkContext, Recipe
from price_bench.data.dataset import SPLITS, DatasetError
from price_bench.data.sources import CHUNK_LINES, Chunk, SourceFile, Span, plan_spans, read_chunks, sniff_format
from price_bench.items import Item

if TYPE_CHECKING:
    from price_bench.data.sources import BackgroundHashes
    from price_bench.data.workers import UnitResult

ROLE_CODES = {"any": 0, "train": 1, "test": 2}
NEAR_DUP_REASON = "near-duplicate of a test item"


class CurationError(DatasetError):
    """Curation stopped (``--strict`` bad input, a dead worker, or nothing usable); one line."""


@dataclass
class Curated:
    """The outcome of a curation run."""

    splits: dict[str, list[Item]]
    stats: CurationStats
    sources: list[SourceMeta]


class SourceMeta(TypedDict):
    """One source file's entry in the manifest's ``sources`` (``empty`` and ``_lines`` are dropped first)."""

    label: str
    format: str | None
    role: str
    sha256: str | None
    records: int
    accepted: int
    skipped: bool
    empty: NotRequired[bool]
    _lines: NotRequired[int]


class CurationStats(TypedDict):
    """The manifest's ``counts``: what was read, rejected and kept (per split)."""

    read: int
    accepted_records: int
    rejections: dict[str, int]
    warnings: dict[str, int]
    problems_shown: list[str]
    problems_total: int
    categories: dict[str, dict[str, int]]
    price_bands: dict[str, dict[str, int]]


NearDuplicates = Callable[[list[str], list[str], float, int], dict[int, int]]
"""``find(reference, queries, threshold, k)``: reference indices that nearly duplicate a query."""


@dataclass
class Progress:
    """Counts of one source file so far, for a progress line (``on_progress``)."""

    label: str
    category: str | None
    read: int
    accepted: int
    rejected: int
    seconds: float
    done: bool


@dataclass
class _Accumulator:
    """Compact per-record columns of accepted records (29 bytes each), in input order."""

    parts: dict[str, list[np.ndarray]] = field(default_factory=lambda: {k: [] for k in ("asin", "text", "price", "category", "role")})
    category_codes: dict[str | None, int] = field(default_factory=dict)
    size: int = 0

    def add(self, keys: dict[str, np.ndarray], categories: list[str | None], role: int) -> None:
        """Append one unit's key columns; its local category codes become global ones."""
        codes = self.category_codes
        table = np.array([codes.setdefault(c, len(codes)) for c in categories], dtype=np.int32)
        n = keys["price"].size
        self.parts["asin"].append(keys["asin"])
        self.parts["text"].append(keys["text"])
        self.parts["price"].append(keys["price"])
        self.parts["category"].append(table[keys["category"]] if n else np.zeros(0, np.int32))
        self.parts["role"].append(np.full(n, role, dtype=np.int8))
        self.size += n

    def arrays(self) -> dict[str, np.ndarray]:
        dtypes = {"asin": np.int64, "text": np.int64, "price": np.float64, "category": np.int32, "role": np.int8}
        return {k: np.concatenate(v) if v else np.zeros(0, dtypes[k]) for k, v in self.parts.items()}


def default_workers() -> int:
    """All the cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Curation makes no reference cycles; the collector only rescans its millions of live objects."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def curate(
    sources: list[SourceFile],
    recipe: Recipe,
    *,
    categories: list[str] | None = None,
    strict: bool = False,
    limit: int | None = None,
    workers: int = 1,
    on_problem: Callable[[str], None] | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    labels: dict[str, str] | None = None,
    timings: dict[str, float] | None = None,
    workspace: str | os.PathLike[str] | None = None,
) -> Curated:
    """Curate ``sources`` with ``recipe`` into train/validation/test items.

    ``limit`` caps the raw records read per source file; ``workers`` > 1
    curates in that many processes (0: one per core); the result does not
    depend on it. Bad input is reported through ``on_problem`` as
    ``"file:line: reason"``; with ``strict`` the first one (in input order)
    raises :class:`CurationError` and stops every worker. ``on_progress``
    gets a :class:`Progress` per source file every few seconds and when the
    file is done. ``labels`` maps a location to the name the manifest shows
    (e.g. for generated files). ``timings``, when given, receives the wall
    seconds of each stage (read+curate, select, take, leakage). The spill
    files live in a hidden ``.curate-<pid>-*`` folder under ``workspace``
    (the data home's datasets folder for ``data build``; the system temp
    folder when None), so a killed build's leftovers are found and removed
    by the next one.
    """
    from price_bench.data.folders import clean_legacy_spills
    from price_bench.data.workers import UnitPool

    workers = workers or default_workers()
    # with a pool, the main process hashes the sources for the manifest while the workers curate them
    run = CurationRun(sources, recipe, categories=categories, strict=strict, labels=labels, on_problem=on_problem,
                      hash_later=workers > 1)
    clock = _Stopwatch(timings)
    clean_legacy_spills()
    prefix = f".curate-{os.getpid()}-" if workspace is not None else f"price-bench-curate-{os.getpid()}-"
    with tempfile.TemporaryDirectory(prefix=prefix, dir=workspace) as tmp, _gc_paused(), run.hashing() as hashes:
        with UnitPool(workers, run.contexts, tmp, strict=strict, spill_rows=spill_rows(recipe)) as pool:
            tracker = _ProgressTracker(run.metas, run.sources, on_progress)
            for result in pool.run(run.units(limit)):
                hashes.start()  # after the first result: the pool has forked its workers
                run.absorb(result)
                pool.spill.add(result)
                tracker.update(result.source_index)
            tracker.finish()
            run.take_hashes(hashes)  # before the leakage check forks the workers again
            clock.lap("read, decode, curate")
            arrays = run.finish_reading()
            selected, split_of = _select(arrays, recipe, run.rejections)
            del arrays
            clock.lap("de-duplicate, sample, split")
            rows = pool.take(selected)
            splits = run.splits(rows, split_of)
            del rows
            clock.lap("take selected rows back")
            _leakage(splits, recipe, run.rejections, pool.near_duplicates)
            clock.lap("leakage check")
    return run.curated(splits)


#: Accepted rows spilled per sampled item before spans' rows are only located (see :mod:`price_bench.data.workers`).
#: Re-curating a selected row costs several times writing one, so locating pays only past a few accepted rows per
#: sampled item (at 1M records and 3 per item: even with the session-9 spill; at 4M: 0.92-0.94 of its time).
SPILL_ROWS_PER_ITEM = 3


def spill_rows(recipe: Recipe) -> int | None:
    """Accepted rows to spill before spans' rows are only located; None (spill all) when the recipe keeps every item."""
    return None if recipe.max_items is None else SPILL_ROWS_PER_ITEM * recipe.max_items


class _Stopwatch:
    def __init__(self, timings: dict[str, float] | None) -> None:
        self.timings = timings
        self.last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        if self.timings is not None:
            self.timings[name] = self.timings.get(name, 0.0) + now - self.last
        self.last = now


class CurationRun:
    """The bookkeeping of one curation run that every engine shares.

    Orders the sources (test sources first), sniffs formats, takes each
    unit's :class:`~price_bench.data.workers.UnitResult` in input order
    (counts, problems with absolute lines, compact keys), and turns the
    selected rows into splits and the final stats, so that the local and
    the Ray engine give the same manifest.
    """

    def __init__(self, sources: list[SourceFile], recipe: Recipe, *, categories: list[str] | None = None,
                 strict: bool = False, labels: dict[str, str] | None = None,
                 on_problem: Callable[[str], None] | None = None, hash_later: bool = False) -> None:
        """``hash_later``: leave the sources' sha256 to :meth:`hashing` (the manifest needs them by :meth:`curated`)."""
        if not sources:
            raise CurationError("no sources given")
        order = sorted(range(len(sources)), key=lambda i: 0 if sources[i].role == "test" else 1)
        self.sources = [sources[i] for i in order]
        self.recipe = recipe
        self.categories = categories
        self.strict = strict
        self.on_problem = on_problem
        wanted = frozenset(categories) if categories else None
        self.contexts, self.metas = _prepare(self.sources, recipe, wanted, labels or {}, hash_later)
        self._unhashed = [n for n, meta in enumerate(self.metas) if meta["sha256"] is _LATER]
        self.totals: Counter[str] = Counter()
        self.rejections: Counter[str] = Counter()
        self.warnings: Counter[str] = Counter()
        self.seen_categories: Counter[str | None] = Counter()
        self.problems: list[str] = []
        self.problem_count = 0
        self.acc = _Accumulator()
        for meta in self.metas:
            if meta["format"] is None:
                reason = "empty file" if meta.get("empty") else "no record in a known format (raw2023, raw2018, items)"
                self.rejections[reason] += 1
                self.report(f"{meta['label']}: {reason}")

    def report(self, message: str) -> None:
        """One problem line: counted, shown, or (strict) the end of the run."""
        self.problem_count += 1
        if self.strict:
            raise CurationError(message)
        if len(self.problems) < 100:
            self.problems.append(message)
        if self.on_problem is not None:
            self.on_problem(message)

    @contextmanager
    def hashing(self) -> Iterator[BackgroundHashes]:
        """The sources' sha256 left for later (``hash_later``), computed in a thread once it is started.

        A failed run stops the thread at its next block.
        """
        from price_bench.data.sources import BackgroundHashes

        hashing = BackgroundHashes([self.sources[n].location for n in self._unhashed])
        try:
            yield hashing
        finally:
            hashing.cancel()

    def take_hashes(self, hashing: BackgroundHashes) -> None:
        """Wait for :meth:`hashing`'s digests and put them in the source metas."""
        from price_bench.data.sources import SourceError

        try:
            digests = hashing.result()
        except SourceError as exc:
            raise CurationError(str(exc)) from None
        for n, digest in zip(self._unhashed, digests):
            self.metas[n]["sha256"] = digest
        self._unhashed = []

    def units(self, limit: int | None = None) -> Iterator[Span | Chunk]:
        """Every unit of work, in input order."""
        return _units(self.sources, self.metas, limit)

    def role_code(self, source_index: int) -> int:
        return ROLE_CODES[self.sources[source_index].role]

    def absorb(self, result: UnitResult) -> None:
        """Take the next unit's result (in input order)."""
        meta = self.metas[result.source_index]
        first_line = meta.setdefault("_lines", 0)
        meta["_lines"] = first_line + result.lines
        meta["records"] += result.records
        meta["accepted"] += result.accepted
        self.totals["read"] += result.records
        self.rejections.update(result.rejections)
        self.warnings.update(result.warnings)
        self.seen_categories.update(result.categories_seen)
        for line, reason in result.problems:
            self.report(f"{meta['label']}:{first_line + line}: {reason}")
        if result.accepted and result.keys:
            self.acc.add(result.keys, result.categories, self.role_code(result.source_index))

    def finish_reading(self, arrays: dict[str, Any] | None = None) -> dict[str, np.ndarray]:
        """Check categories and that something was accepted; the key arrays (with category weights).

        An engine that gathered the key arrays itself passes them, with its
        category codes (``{category: code}``) under ``"_codes"``.
        """
        _check_categories(self.categories, self.seen_categories)
        codes: dict[str | None, int]
        if arrays is None:
            arrays = self.acc.arrays()
            codes = self.acc.category_codes
        else:
            codes = arrays.pop("_codes")
        self.totals["accepted"] = sum(m["accepted"] for m in self.metas)
        if self.totals["accepted"] == 0:
            raise CurationError(
                f"no usable records in {len(self.sources)} source file(s) "
                f"(read {self.totals['read']}; rejected: {_top(self.rejections)})"
            )
        if self.recipe.category_weights:
            by_code = sorted(codes.items(), key=lambda kv: kv[1])
            table = np.array([self.recipe.category_weights.get(name or "", 1.0) for name, _ in by_code], dtype=np.float64)
            arrays["category_weight"] = table[arrays["category"]]
        return arrays

    @staticmethod
    def splits(rows: Sequence[tuple[Any, ...]], split_of: list[str]) -> dict[str, list[Item]]:
        """Selected ``(id, text, price, category, title, details)`` rows as items per split."""
        splits: dict[str, list[Item]] = {s: [] for s in SPLITS}
        for row, split in zip(rows, split_of):
            splits[split].append(Item(id=row[0], text=row[1], price=row[2], category=row[3], title=row[4], details=row[5]))
        return splits

    def curated(self, splits: dict[str, list[Item]]) -> Curated:
        """The outcome, with the stats every engine writes into the manifest."""
        assert not self._unhashed, "take_hashes() was not called: the sources' sha256 are missing"
        for meta in self.metas:
            meta.pop("empty", None)
            meta.pop("_lines", None)
        recipe = self.recipe
        stats: CurationStats = {
            "read": self.totals["read"],
            "accepted_records": self.totals["accepted"],
            "rejections": dict(sorted(self.rejections.items())),
            "warnings": dict(sorted(self.warnings.items())),
            "problems_shown": self.problems[:20],
            "problems_total": self.problem_count,
            "categories": {split: _count(i.category or "(none)" for i in splits[split]) for split in SPLITS},
            "price_bands": {split: _bands(splits[split], recipe) for split in SPLITS},
        }
        return Curated(splits=splits, stats=stats, sources=self.metas)


class _ProgressTracker:
    """Calls ``on_progress`` per source file: every few seconds while it is read, and once when done."""

    EVERY_S = 5.0

    def __init__(self, metas: list[SourceMeta], sources: list[SourceFile],
                 callback: Callable[[Progress], None] | None) -> None:
        self.metas, self.sources, self.callback = metas, sources, callback
        self.current: int | None = None
        self.started = self.last = time.perf_counter()

    def _emit(self, index: int, done: bool) -> None:
        if self.callback is None:
            return
        meta = self.metas[index]
        self.callback(Progress(meta["label"], self.sources[index].category, meta["records"], meta["accepted"],
                               meta["records"] - meta["accepted"], time.perf_counter() - self.started, done))

    def update(self, index: int) -> None:
        if self.callback is None:
            return
        if index != self.current:
            if self.current is not None:  # the next file starts where the previous one ended
                self._emit(self.current, True)
                self.started = time.perf_counter()
            self.current = index
        now = time.perf_counter()
        if now - self.last >= self.EVERY_S:
            self.last = now
            self._emit(index, False)

    def finish(self) -> None:
        if self.callback is not None and self.current is not None:
            self._emit(self.current, True)


def _top(counter: Counter[str]) -> str:
    return ", ".join(f"{reason} {n}" for reason, n in counter.most_common(4)) or "nothing"


def _count(values: Iterable[str]) -> dict[str, int]:
    return dict(sorted(Counter(values).items()))


def _bands(items: list[Item], recipe: Recipe) -> dict[str, int]:
    counts = Counter(recipe.band_of(i.price) for i in items)
    return {recipe.band_label(b): counts.get(b, 0) for b in range(len(recipe.price_bands) - 1)}


_LATER = "(hashed later)"
"""The sha256 placeholder of a source that :meth:`CurationRun.hashing` hashes."""


def _prepare(sources: list[SourceFile], recipe: Recipe, wanted: frozenset[str] | None,
             labels: dict[str, str], hash_later: bool = False) -> tuple[list[ChunkContext], list[SourceMeta]]:
    from price_bench.data.sources import file_sha256

    contexts: list[ChunkContext] = []
    metas: list[SourceMeta] = []
    for source in sources:
        fmt = sniff_format(source)
        empty = not source.is_hub and os.path.getsize(source.location) == 0
        # a whole file of a category that was not asked for is skipped unread
        skipped = wanted is not None and source.category is not None and source.category not in wanted
        contexts.append(ChunkContext(fmt=fmt or "raw2023", category=source.category, categories=wanted, recipe=recipe))
        metas.append({
            "label": labels.get(source.location, source.location),
            "format": fmt,
            "role": source.role,
            "sha256": None if source.location in labels else _LATER if hash_later else file_sha256(source.location),
            "records": 0,
            "accepted": 0,
            "skipped": skipped,
            "empty": empty,
        })
    return contexts, metas


def _units(sources: list[SourceFile], metas: list[SourceMeta], limit: int | None) -> Iterator[Span | Chunk]:
    """Every unit of work in input order: spans of local JSON-lines files, else row chunks."""
    from price_bench.data.sources import SourceError

    for index, source in enumerate(sources):
        if metas[index]["format"] is None or metas[index]["skipped"]:
            continue
        if source.splittable and limit is None:
            yield from plan_spans(index, source.location)
        else:
            try:
                yield from _limited(read_chunks(index, source, CHUNK_LINES), limit)
            except SourceError as exc:
                raise CurationError(str(exc)) from None


def _limited(chunks: Iterator[Chunk], limit: int | None) -> Iterator[Chunk]:
    if limit is None:
        yield from chunks
        return
    left = limit
    for chunk in chunks:
        if left <= 0:
            return
        if len(chunk) > left:
            if chunk.lines is not None:
                chunk.lines = chunk.lines[:left]
            elif chunk.rows is not None:  # len(chunk) > 0, so a chunk without lines has rows
                chunk.rows = chunk.rows[:left]
        left -= len(chunk)
        yield chunk


def _check_categories(categories: list[str] | None, seen: Counter[str | None]) -> None:
    if not categories:
        return
    missing = [c for c in categories if seen.get(c, 0) == 0]
    if missing:
        shown = ", ".join(sorted(str(c) for c in seen if c)[:12]) or "none"
        raise CurationError(f"unknown category {missing[0]!r}: no record in the sources has it (categories seen: {shown})")


# ----------------------------------------------------------------------------- selection


def _first_occurrence(keys: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """Boolean mask over ``candidates`` (indices) keeping the first of each key (0 = no key, always kept)."""
    sub = keys[candidates]
    _, first = np.unique(sub, return_index=True)
    keep = np.zeros(candidates.size, dtype=bool)
    keep[first] = True
    keep |= sub == 0
    return keep


def _select(arrays: dict[str, np.ndarray], recipe: Recipe, rejections: Counter[str]) -> tuple[np.ndarray, list[str]]:
    """Global indices of the chosen records and their split, in output order."""
    return sample_and_split(arrays, dedup_indices(arrays, recipe, rejections), recipe, rejections)


def dedup_indices(arrays: dict[str, np.ndarray], recipe: Recipe, rejections: Counter[str]) -> np.ndarray:
    """Indices of the records left after de-duplication (first occurrence wins), in input order."""
    idx = np.arange(arrays["price"].size)
    if "parent_asin" in recipe.dedup_on:
        keep = _first_occurrence(arrays["asin"], idx)
        rejections["duplicate parent_asin"] += int((~keep).sum())
        idx = idx[keep]
    if "text" in recipe.dedup_on:
        keep = _first_occurrence(arrays["text"], idx)
        rejections["duplicate text"] += int((~keep).sum())
        idx = idx[keep]
    return idx


def sample_and_split(arrays: dict[str, np.ndarray], idx: np.ndarray, recipe: Recipe, rejections: Counter[str]) -> tuple[np.ndarray, list[str]]:
    """Seeded price-balanced sample of ``idx`` and its split: indices in output order, split per index."""
    rng = np.random.default_rng(recipe.seed)
    roles = arrays["role"][idx]
    if (roles == ROLE_CODES["test"]).any():
        test_pool = idx[roles == ROLE_CODES["test"]]
        train_pool = _sample(idx[roles != ROLE_CODES["test"]], arrays, recipe, rng, rejections, recipe.max_items)
        test = rng.permutation(test_pool)
        train_pool = rng.permutation(train_pool)
        n_val = int(round(train_pool.size * recipe.validation_fraction))
        validation, train = train_pool[:n_val], train_pool[n_val:]
    else:
        pool = rng.permutation(_sample(idx, arrays, recipe, rng, rejections, recipe.max_items))
        n_test = max(1, int(round(pool.size * recipe.test_fraction)))
        n_val = int(round(pool.size * recipe.validation_fraction))
        test, validation, train = pool[:n_test], pool[n_test : n_test + n_val], pool[n_test + n_val :]
    chosen = np.concatenate([train, validation, test])
    split_of = ["train"] * train.size + ["validation"] * validation.size + ["test"] * test.size
    return chosen, split_of


def _sample(pool: np.ndarray, arrays: dict[str, np.ndarray], recipe: Recipe, rng: np.random.Generator,
            rejections: Counter[str], size: int | None) -> np.ndarray:
    """Weighted sample without replacement (Efraimidis-Spirakis), in pool order."""
    draws = rng.random(pool.size)  # always drawn, so the split does not depend on whether we sampled
    if size is None or pool.size <= size:
        return pool
    prices = arrays["price"][pool]
    bands = np.searchsorted(np.asarray(recipe.price_bands[1:-1]), prices, side="right")
    counts = np.bincount(bands, minlength=len(recipe.price_bands))
    weights = (1.0 / counts[bands]) ** recipe.price_balance
    if "category_weight" in arrays:
        weights = weights * arrays["category_weight"][pool]
    keys = np.log(np.maximum(draws, 1e-300)) / np.maximum(weights, 1e-300)
    chosen = np.sort(np.argpartition(-keys, size - 1)[:size])
    rejections["not sampled"] += int(pool.size - size)
    return pool[chosen]


def _leakage(splits: dict[str, list[Item]], recipe: Recipe, rejections: Counter[str],
             find: NearDuplicates | None = None) -> None:
    """Drop train/validation items whose text nearly duplicates a test item's.

    ``find(reference, queries, threshold, k)`` is the near-duplicate search
    (default :func:`price_bench.data.neardup.near_duplicates`; the engines
    pass versions that spread the reference blocks over their workers).
    """
    if find is None:
        from price_bench.data.neardup import near_duplicates

        find = near_duplicates
    seen = [(split, n) for split in ("train", "validation") for n in range(len(splits[split]))]
    texts = [splits[split][n].text for split, n in seen]
    found = find(texts, [i.text for i in splits["test"]], recipe.near_dup_jaccard, recipe.near_dup_shingle)
    if not found:
        return
    drop = {seen[index] for index in found}
    for split in ("train", "validation"):
        splits[split] = [item for n, item in enumerate(splits[split]) if (split, n) not in drop]
    rejections[NEAR_DUP_REASON] += len(found)
