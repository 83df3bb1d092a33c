"""The streaming curation run: sources -> curated train/validation/test items.

1. Every source file is read in chunks; each chunk is decoded and curated by
   :func:`price_bench.data.curation.process_chunk`, inline or in a process
   pool (results come back in input order, so the output does not depend on
   the number of workers).
2. Accepted records go to a spill file on disk; memory keeps only 29 bytes
   per accepted record (two 64-bit key hashes, the price, category and role),
   so reading millions of raw records stays far below 1 GB. What is held in
   full is the selected items (at most the recipe's ``max_items``, 100,000 by
   default: about 0.5 GB peak with writing, measured by
   ``bench/curation_throughput.py``).
3. De-duplication (first occurrence wins: by ``parent_asin``, then by
   normalised text), price-balanced weighted sampling (seeded), the split
   (seeded) and the leakage check (train/validation items that nearly
   duplicate a test item are dropped) run on those arrays; then the selected
   items are read back from the spill.

Sources with role ``test`` are read first, so a record that appears both in
a user's test file and in the training data stays in the test split.
"""

from __future__ import annotations

import os
import pickle
from array import array
import tempfile
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Callable, Iterator

import numpy as np

from price_bench.data.curation import ChunkContext, ChunkResult, Recipe, process_chunk
from price_bench.data.dataset import SPLITS, DatasetError
from price_bench.data.sources import CHUNK_LINES, SourceFile, read_chunks, sniff_format
from price_bench.items import Item

ROLE_CODES = {"any": 0, "train": 1, "test": 2}
NEAR_DUP_REASON = "near-duplicate of a test item"


class CurationError(DatasetError):
    """Curation stopped (``--strict`` bad input, or nothing usable); one line."""


@dataclass
class Curated:
    """The outcome of a curation run."""

    splits: dict[str, list[Item]]
    stats: dict
    sources: list[dict]


@dataclass
class _Accumulator:
    """Compact per-record columns of accepted records (29 bytes each)."""

    asin: array = field(default_factory=lambda: array("q"))
    text: array = field(default_factory=lambda: array("q"))
    price: array = field(default_factory=lambda: array("d"))
    category: array = field(default_factory=lambda: array("i"))
    role: array = field(default_factory=lambda: array("b"))
    category_codes: dict[str | None, int] = field(default_factory=dict)

    def add(self, keys: list[tuple], role: int) -> None:
        """Append (asin_hash, text_hash, price, category) rows from one chunk."""
        codes = self.category_codes
        for asin_hash, text_hash, price, category in keys:
            self.asin.append(asin_hash)
            self.text.append(text_hash)
            self.price.append(price)
            self.category.append(codes.setdefault(category, len(codes)))
        self.role.extend([role] * len(keys))

    def arrays(self) -> dict[str, np.ndarray]:
        return {
            "asin": np.frombuffer(self.asin, dtype=np.int64) if self.asin else np.zeros(0, np.int64),
            "text": np.frombuffer(self.text, dtype=np.int64) if self.text else np.zeros(0, np.int64),
            "price": np.frombuffer(self.price, dtype=np.float64) if self.price else np.zeros(0),
            "category": np.frombuffer(self.category, dtype=np.int32) if self.category else np.zeros(0, np.int32),
            "role": np.frombuffer(self.role, dtype=np.int8) if self.role else np.zeros(0, np.int8),
        }


_WORKER_CONTEXTS: list[ChunkContext] = []


def _init_worker(contexts: list[ChunkContext]) -> None:
    global _WORKER_CONTEXTS
    import signal

    # Ctrl-C reaches the whole process group: the parent stops the pool (exit 130); workers print nothing.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _WORKER_CONTEXTS = contexts


def _pack(result: ChunkResult) -> ChunkResult:
    """Move accepted rows into a pickled blob (for the spill) plus their compact keys.

    Done where the chunk was processed, so in a pool the main process only
    copies bytes to the spill instead of unpickling and re-pickling rows.
    """
    rows = result.accepted
    result.blob = pickle.dumps([row[:6] for row in rows], protocol=pickle.HIGHEST_PROTOCOL) if rows else b""
    result.keys = [(row[6], row[7], row[2], row[3]) for row in rows]
    result.accepted = []
    return result


def _work(chunk) -> ChunkResult:
    return _pack(process_chunk(chunk, _WORKER_CONTEXTS[chunk.source_index]))


def _limited(chunks: Iterator, limit: int | None) -> Iterator:
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
            else:
                chunk.rows = chunk.rows[:left]
        left -= len(chunk)
        yield chunk


def curate(
    sources: list[SourceFile],
    recipe: Recipe,
    *,
    categories: list[str] | None = None,
    strict: bool = False,
    limit: int | None = None,
    workers: int = 1,
    on_problem: Callable[[str], None] | None = None,
    labels: dict[str, str] | None = None,
    workspace: str | os.PathLike | None = None,
) -> Curated:
    """Curate ``sources`` with ``recipe`` into train/validation/test items.

    ``limit`` caps the raw records read per source file; ``workers`` > 1
    decodes in that many processes (0: one per CPU); the result does not
    depend on it. Bad input is reported through
    ``on_problem`` as ``"file:line: reason"``; with ``strict`` the first one
    raises :class:`CurationError`. ``labels`` maps a location to the name the
    manifest shows (e.g. for generated files). The spill file lives in a
    hidden ``.curate-<pid>-*`` folder under ``workspace`` (the data home's
    datasets folder for ``data build``; the system temp folder when None),
    so a killed build's leftovers are found and removed by the next one.
    """
    if not sources:
        raise CurationError("no sources given")
    workers = workers or os.cpu_count() or 1
    order = sorted(range(len(sources)), key=lambda i: 0 if sources[i].role == "test" else 1)
    sources = [sources[i] for i in order]
    labels = labels or {}
    wanted = frozenset(categories) if categories else None
    contexts, source_meta = _prepare(sources, recipe, wanted, labels)
    totals = Counter()
    rejections: Counter = Counter()
    warnings: Counter = Counter()
    seen_categories: Counter = Counter()
    problems: list[str] = []
    problem_count = 0
    acc = _Accumulator()

    def report(message: str) -> None:
        nonlocal problem_count
        problem_count += 1
        if strict:
            raise CurationError(message)
        if len(problems) < 100:
            problems.append(message)
        if on_problem is not None:
            on_problem(message)

    for index, meta in enumerate(source_meta):
        if meta["format"] is None:
            reason = "empty file" if meta.get("empty") else "no record in a known format (raw2023, raw2018, items)"
            rejections[reason] += 1
            report(f"{meta['label']}: {reason}")

    from price_bench.data.folders import clean_legacy_spills

    clean_legacy_spills()
    prefix = f".curate-{os.getpid()}-" if workspace is not None else f"price-bench-curate-{os.getpid()}-"
    with tempfile.TemporaryDirectory(prefix=prefix, dir=workspace) as tmp:
        spill_path = os.path.join(tmp, "accepted.pkl")
        with open(spill_path, "wb") as spill:
            for result in _results(sources, contexts, source_meta, limit, workers):
                meta = source_meta[result.source_index]
                meta["records"] += result.records
                meta["accepted"] += len(result.keys)
                totals["read"] += result.records
                rejections.update(result.rejections)
                warnings.update(result.warnings)
                seen_categories.update(result.categories_seen)
                for line, reason in result.problems:
                    report(f"{meta['label']}:{line}: {reason}")
                if result.keys:
                    acc.add(result.keys, ROLE_CODES[sources[result.source_index].role])
                    spill.write(result.blob)
        _check_categories(categories, seen_categories)
        arrays = acc.arrays()
        totals["accepted"] = int(arrays["price"].size)
        if totals["accepted"] == 0:
            raise CurationError(
                f"no usable records in {len(sources)} source file(s) "
                f"(read {totals['read']}; rejected: {_top(rejections)})"
            )
        if recipe.category_weights:
            by_code = sorted(acc.category_codes.items(), key=lambda kv: kv[1])
            table = np.array([recipe.category_weights.get(name or "", 1.0) for name, _ in by_code], dtype=np.float64)
            arrays["category_weight"] = table[arrays["category"]]
        selected, split_of = _select(arrays, recipe, rejections)
        items = _read_back(spill_path, selected)
        del arrays
    splits: dict[str, list[Item]] = {s: [] for s in SPLITS}
    for index, split in zip(selected.tolist(), split_of):
        row = items.pop(index)
        splits[split].append(Item(id=row[0], text=row[1], price=row[2], category=row[3], title=row[4], details=row[5]))
    del items
    _leakage(splits, recipe, rejections)
    for meta in source_meta:
        meta.pop("empty", None)
    stats = {
        "read": totals["read"],
        "accepted_records": totals["accepted"],
        "rejections": dict(sorted(rejections.items())),
        "warnings": dict(sorted(warnings.items())),
        "problems_shown": problems[:20],
        "problems_total": problem_count,
        "categories": {split: _count(i.category or "(none)" for i in splits[split]) for split in SPLITS},
        "price_bands": {split: _bands(splits[split], recipe) for split in SPLITS},
    }
    return Curated(splits=splits, stats=stats, sources=source_meta)


def _top(counter: Counter) -> str:
    return ", ".join(f"{reason} {n}" for reason, n in counter.most_common(4)) or "nothing"


def _count(values) -> dict[str, int]:
    return dict(sorted(Counter(values).items()))


def _bands(items: list[Item], recipe: Recipe) -> dict[str, int]:
    counts = Counter(recipe.band_of(i.price) for i in items)
    return {recipe.band_label(b): counts.get(b, 0) for b in range(len(recipe.price_bands) - 1)}


def _prepare(sources: list[SourceFile], recipe: Recipe, wanted, labels) -> tuple[list[ChunkContext], list[dict]]:
    from price_bench.data.sources import file_sha256

    contexts, metas = [], []
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
            "sha256": None if source.location in labels else file_sha256(source.location),
            "records": 0,
            "accepted": 0,
            "skipped": skipped,
            "empty": empty,
        })
    return contexts, metas


def _results(sources, contexts, metas, limit, workers) -> Iterator[ChunkResult]:
    def chunks():
        for index, source in enumerate(sources):
            if metas[index]["format"] is None or metas[index]["skipped"]:
                continue
            yield from _limited(read_chunks(index, source, CHUNK_LINES), limit)

    if workers <= 1:
        for chunk in chunks():
            yield _pack(process_chunk(chunk, contexts[chunk.source_index]))
        return
    import multiprocessing as mp

    method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
    window = 2 * workers  # chunks in flight: reading never runs ahead of the workers (bounded memory)
    with mp.get_context(method).Pool(workers, initializer=_init_worker, initargs=(contexts,)) as pool:
        pending: deque = deque()
        for chunk in chunks():
            pending.append(pool.apply_async(_work, (chunk,)))
            if len(pending) >= window:
                yield pending.popleft().get()
        while pending:
            yield pending.popleft().get()


def _check_categories(categories: list[str] | None, seen: Counter) -> None:
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


def _select(arrays: dict[str, np.ndarray], recipe: Recipe, rejections: Counter) -> tuple[np.ndarray, list[str]]:
    """Global indices of the chosen records and their split, in output order."""
    idx = np.arange(arrays["price"].size)
    if "parent_asin" in recipe.dedup_on:
        keep = _first_occurrence(arrays["asin"], idx)
        rejections["duplicate parent_asin"] += int((~keep).sum())
        idx = idx[keep]
    if "text" in recipe.dedup_on:
        keep = _first_occurrence(arrays["text"], idx)
        rejections["duplicate text"] += int((~keep).sum())
        idx = idx[keep]
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


def _sample(pool: np.ndarray, arrays, recipe: Recipe, rng: np.random.Generator, rejections: Counter, size: int | None) -> np.ndarray:
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


def _read_back(spill_path: str, selected: np.ndarray) -> dict[int, tuple]:
    wanted = set(selected.tolist())
    out: dict[int, tuple] = {}
    position = 0
    with open(spill_path, "rb") as fh:
        while True:
            try:
                rows = pickle.load(fh)
            except EOFError:
                break
            for offset, row in enumerate(rows):
                if position + offset in wanted:
                    out[position + offset] = row
            position += len(rows)
    return out


def _leakage(splits: dict[str, list[Item]], recipe: Recipe, rejections: Counter) -> None:
    """Drop train/validation items whose text nearly duplicates a test item's."""
    from price_bench.data.neardup import near_duplicates

    seen = [(split, n) for split in ("train", "validation") for n in range(len(splits[split]))]
    texts = [splits[split][n].text for split, n in seen]
    found = near_duplicates(texts, [i.text for i in splits["test"]], recipe.near_dup_jaccard, recipe.near_dup_shingle)
    if not found:
        return
    drop = {seen[index] for index in found}
    for split in ("train", "validation"):
        splits[split] = [item for n, item in enumerate(splits[split]) if (split, n) not in drop]
    rejections[NEAR_DUP_REASON] += len(found)
