"""The local engine's process pool: curate units, keep track of accepted rows, run the leakage check.

A *unit* is a :class:`~price_bench.data.sources.Span` (a byte range the
worker reads itself) or a :class:`~price_bench.data.sources.Chunk` of rows
the main process read. :meth:`UnitPool.run` yields one :class:`UnitResult`
per unit in input order, whatever the number of processes, so every later
step sees the same sequence. Only the accepted rows' compact keys travel
back; the rows themselves are found again through :class:`Spill`: each
unit's accepted rows in an Arrow IPC file, until the run has spilled
``spill_rows`` of them; after that, for a span, only where their lines are
in the source file (:class:`SourceLines`: the selected ones are read and
curated again). Once a run holds a few times more accepted rows than it
samples, re-curating the few selected rows is cheaper than writing all of
them, and the spill folder stops growing with the input.

Failure handling:

* a worker process that dies (killed, out of memory) breaks the pool; the
  run fails with one :class:`~price_bench.data.pipeline.CurationError` line;
* with ``strict``, a worker that meets a bad record lowers a shared
  "first bad unit" marker; workers on later units stop within 256 records,
  earlier units finish (one of them may hold an earlier bad record), and the
  main process raises on the first problem in input order.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from price_bench.data.curation import AcceptedRow, ChunkContext, ChunkResult, process_chunk
from price_bench.data.sources import Chunk, SourceError, Span, read_span

if TYPE_CHECKING:
    import pyarrow as pa

    from price_bench.data.neardup import Matcher

_NO_STOP = 2**62
_LEAKAGE_BLOCK = 1024  # reference texts per pool task: small enough that the workers finish together


@dataclass
class UnitResult:
    """What one unit gave: counts, problems (lines relative to the unit when ``lines``), keys, spill file."""

    source_index: int
    records: int = 0
    lines: int = 0
    """Lines in a span (problem lines are relative to it); 0 for a chunk (its lines are absolute)."""
    accepted: int = 0
    keys: dict[str, np.ndarray] = field(default_factory=dict)
    categories: list[str | None] = field(default_factory=list)
    rejections: Counter[str] = field(default_factory=Counter)
    warnings: Counter[str] = field(default_factory=Counter)
    categories_seen: Counter[str | None] = field(default_factory=Counter)
    problems: list[tuple[int, str]] = field(default_factory=list)
    spill: str | None = None
    """The Arrow file of a chunk's accepted rows."""
    lines_at: SourceLines | None = None
    """Where a span's accepted rows are in its file (no spill file is written for a span)."""
    stopped: bool = False


# ----------------------------------------------------------------------------- worker side


@dataclass
class _WorkerState:
    contexts: list[ChunkContext]
    spill_dir: str
    strict: bool
    stop: Any = None  # multiprocessing.Value("q") in a pool, None inline


_STATE: _WorkerState | None = None
_LEAKAGE: tuple[Matcher, Sequence[str]] | None = None  # (matcher, reference), set before the leakage pool forks


def _ignore_sigint() -> None:
    """Ctrl-C reaches the whole process group: the parent stops the pool (exit 130); workers print nothing."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _init_worker(state: _WorkerState) -> None:
    global _STATE
    _ignore_sigint()
    _STATE = state
    import gc

    gc.disable()  # curation makes no reference cycles (see pipeline._gc_paused)


def curate_unit(seq: int, unit: Span | Chunk, contexts: list[ChunkContext], *, strict: bool = False,
                should_stop: Callable[[], bool] | None = None) -> tuple[ChunkResult, int]:
    """Read (for a span) and curate one unit; the line count is 0 for a chunk (its lines are absolute)."""
    result, lines, _ = _curate(unit, contexts, strict, should_stop)
    return result, lines


def _curate(unit: Span | Chunk, contexts: list[ChunkContext], strict: bool, should_stop: Callable[[], bool] | None,
            locate: bool = False) -> tuple[ChunkResult, int, SourceLines | None]:
    """:func:`curate_unit`; with ``locate``, also where a span's accepted rows are in its file."""
    if isinstance(unit, Span):
        chunk, lines = read_span(unit)
    else:
        chunk, lines = unit, 0
    result = process_chunk(chunk, contexts[chunk.source_index], strict=strict, should_stop=should_stop)
    at = None
    if locate and isinstance(unit, Span) and result.accepted:
        at = SourceLines.of(unit, chunk.lines or [], result.accepted_at)
    return result, lines, at


def run_unit(seq: int, unit: Span | Chunk, state: _WorkerState | None = None, spill: bool = True) -> UnitResult:
    """Curate one unit (in a pool worker, or inline); its rows are spilled, or (a span, ``spill`` False) located."""
    state = state or _STATE
    assert state is not None, "worker not initialised"
    stop = state.stop
    should_stop = (lambda: stop.value < seq) if stop is not None else None
    result, lines, at = _curate(unit, state.contexts, state.strict, should_stop, locate=not spill)
    if state.strict and result.problems and stop is not None:
        with stop.get_lock():
            if stop.value > seq:
                stop.value = seq
    return _pack(seq, result, lines, state.spill_dir, at)


def unit_stats(result: ChunkResult, lines: int) -> UnitResult:
    """A unit's counts and problems without its rows."""
    return UnitResult(
        result.source_index, result.records, lines, len(result.accepted), rejections=result.rejections,
        warnings=result.warnings, categories_seen=result.categories_seen, problems=result.problems, stopped=result.stopped,
    )


def _pack(seq: int, result: ChunkResult, lines: int, spill_dir: str, at: SourceLines | None = None) -> UnitResult:
    """The accepted rows' compact keys, and where the rows are: ``at`` (a span's) or this unit's spill file."""
    rows = result.accepted
    out = unit_stats(result, lines)
    if not rows:
        return out
    columns = list(zip(*rows))
    codes: dict[str | None, int] = {}
    out.keys = {
        "asin": np.array(columns[6], dtype=np.int64),
        "text": np.array(columns[7], dtype=np.int64),
        "price": np.array(columns[2], dtype=np.float64),
        "category": np.array([codes.setdefault(c, len(codes)) for c in columns[3]], dtype=np.int32),
    }
    out.categories = list(codes)
    if at is not None:
        at.keys = {name: out.keys[name] for name in ("asin", "text", "price")}
        out.lines_at = at
        return out
    out.spill = os.path.join(spill_dir, f"{seq:09d}.arrow")
    Spill.write(out.spill, rows, columns)
    return out


def _leakage_block(bounds: tuple[int, int]) -> dict[int, int]:
    assert _LEAKAGE is not None, "leakage state not set before the pool forked"
    matcher, reference = _LEAKAGE
    found: dict[int, int] = matcher.match(reference, *bounds)
    return found


# ----------------------------------------------------------------------------- spill


@dataclass
class SourceLines:
    """Where one span's accepted rows are in its file, and the keys they were accepted with.

    A selected row is taken back by reading its line again and curating it
    again (the same pure :func:`process_chunk`, so the same row): much less
    work than writing every accepted row to a spill file when, as usual, a
    small share of them is selected. A file whose size or modification time
    is not what it was when the span was read, or a line that no longer gives
    the keys it was accepted with, fails the build (the file changed).
    """

    source_index: int
    path: str
    starts: np.ndarray
    """Byte offset in the file of each accepted row's line (int64)."""
    lengths: np.ndarray
    """Length in bytes of each of those lines, without the newline (int64)."""
    stamp: tuple[int, int]
    """The file's size and modification time (ns) just after the span was read."""
    keys: dict[str, np.ndarray] = field(default_factory=dict)
    """The ``asin``, ``text`` and ``price`` keys each row was accepted with."""

    @classmethod
    def of(cls, span: Span, lines: list[bytes], accepted_at: list[int]) -> SourceLines:
        """The accepted lines (positions ``accepted_at`` among the span's ``lines``) of ``span``."""
        lengths = np.fromiter(map(len, lines), dtype=np.int64, count=len(lines))
        starts = np.empty_like(lengths)
        if lengths.size:
            starts[0] = 0
            np.cumsum(lengths[:-1] + 1, out=starts[1:])
        at = np.asarray(accepted_at, dtype=np.int64)
        return cls(span.source_index, span.path, starts[at] + span.start, lengths[at], _stamp(os.stat(span.path)))

    def rows(self, local: np.ndarray, ctx: ChunkContext) -> list[tuple[Any, ...]]:
        """Rows ``(id, text, price, category, title, details)`` of the accepted rows at positions ``local``, in that order."""
        import orjson

        from price_bench.data.pipeline import CurationError

        try:
            with open(self.path, "rb") as fh:
                fd = fh.fileno()
                stamp = _stamp(os.fstat(fd))
                lines = [os.pread(fd, n, at) for at, n in zip(self.starts[local].tolist(), self.lengths[local].tolist())]
        except OSError as exc:
            raise CurationError(f"{self.path}: cannot read it again to take the selected records back: {exc}") from None
        accepted = process_chunk(Chunk(self.source_index, 1, lines=lines), ctx).accepted if stamp == self.stamp else []
        got = [(r.asin_hash, r.text_hash, r.price) for r in accepted]
        keys = self.keys
        if got != list(zip(keys["asin"][local].tolist(), keys["text"][local].tolist(), keys["price"][local].tolist())):
            raise CurationError(f"{self.path} changed while the build read it (a selected record is no longer the one "
                                "curated); nothing was written, rerun the build")
        return [(r.id, r.text, r.price, r.category, r.title, orjson.loads(r.details_json) if r.details_json else {})
                for r in accepted]


def _stamp(info: os.stat_result) -> tuple[int, int]:
    return info.st_size, info.st_mtime_ns


class Spill:
    """Accepted rows of every unit, taken back by global index: from the source (spans) or an Arrow IPC file (chunks)."""

    SCHEMA_FIELDS = ("id", "text", "price", "category", "title", "details")

    def __init__(self, contexts: Sequence[ChunkContext] = ()) -> None:
        self.contexts = list(contexts)
        self.files: list[str | SourceLines] = []
        self.ends: list[int] = []

    @staticmethod
    def table(rows: list[AcceptedRow], columns: list[tuple[Any, ...]] | None = None) -> pa.Table:
        """Accepted rows as an Arrow table (``details``: each row's compact JSON bytes, as made); ``columns``: ``zip(*rows)`` if known."""
        import pyarrow as pa

        cols = columns if columns is not None else list(zip(*rows))
        if not cols:
            cols = [()] * len(AcceptedRow._fields)
        return pa.table({
            "id": pa.array(cols[0], pa.string()),
            "text": pa.array(cols[1], pa.string()),
            "price": pa.array(cols[2], pa.float64()),
            "category": pa.array(cols[3], pa.string()),
            "title": pa.array(cols[4], pa.string()),
            "details": pa.array(cols[5], pa.binary()),
        })

    @classmethod
    def write(cls, path: str, rows: list[AcceptedRow], columns: list[tuple[Any, ...]] | None = None) -> None:
        import pyarrow as pa

        table = cls.table(rows, columns)
        with pa.OSFile(path, "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table)

    @classmethod
    def rows(cls, table: pa.Table) -> list[tuple[Any, ...]]:
        """``(id, text, price, category, title, details)`` tuples of a table written by :meth:`table`."""
        import orjson

        cols = [table.column(name).to_pylist() for name in cls.SCHEMA_FIELDS]
        details = [orjson.loads(d) if d else {} for d in cols[5]]
        return list(zip(cols[0], cols[1], cols[2], cols[3], cols[4], details))

    def add(self, result: UnitResult) -> None:
        """Register the next unit's accepted rows (in input order)."""
        if result.accepted:
            self.files.append(result.lines_at or result.spill)  # type: ignore[arg-type]
            self.ends.append((self.ends[-1] if self.ends else 0) + result.accepted)

    def take(self, indices: np.ndarray, map_located: MapLocated | None = None) -> list[tuple[Any, ...]]:
        """Rows ``(id, text, price, category, title, details)`` at global ``indices``, in that order.

        ``map_located`` (e.g. a process pool's) curates the located units'
        selected lines again; by default this process does.
        """
        import pyarrow as pa

        if indices.size == 0:
            return []
        ends = np.asarray(self.ends, dtype=np.int64)
        unit = np.searchsorted(ends, indices, side="right")
        order = np.argsort(unit, kind="stable")
        units, first = np.unique(unit[order], return_index=True)
        bounds = np.append(first, order.size).tolist()
        out: list[tuple[Any, ...] | None] = [None] * indices.size
        pieces = []  # (unit, output positions served by its file (in output order), positions in the unit)
        for n, u in enumerate(units.tolist()):
            slots = order[bounds[n] : bounds[n + 1]]
            pieces.append((u, slots, indices[slots] - (ends[u - 1] if u else 0)))
        located = [(u, slots, local) for u, slots, local in pieces if isinstance(self.files[u], SourceLines)]
        # the located rows are curated again first (a pool does it while this process reads the spill files)
        again = (map_located or _map_here)(self, [(u, local) for u, _, local in located]) if located else iter(())
        for u, slots, local in pieces:
            where = self.files[u]
            if isinstance(where, SourceLines):
                continue
            with pa.memory_map(where) as source:
                rows = self.rows(pa.ipc.open_file(source).read_all().take(pa.array(local)))
            for slot, row in zip(slots.tolist(), rows):
                out[slot] = row  # one unit's rows at a time: no second full copy of the selection in Arrow
        for (_, slots, _), rows in zip(located, again, strict=True):
            for slot, row in zip(slots.tolist(), rows):
                out[slot] = row
        return out  # type: ignore[return-value]

    def reread(self, unit: int, local: np.ndarray) -> list[tuple[Any, ...]]:
        """The rows at positions ``local`` of located unit ``unit``, read and curated again."""
        where = self.files[unit]
        assert isinstance(where, SourceLines)
        return where.rows(local, self.contexts[where.source_index])


MapLocated = Callable[[Spill, list[tuple[int, np.ndarray]]], Iterable[list[tuple[Any, ...]]]]
"""How :meth:`Spill.take` has the located units' rows curated again: ``(spill, [(unit, positions)...]) -> rows per unit``."""


def _map_here(spill: Spill, tasks: list[tuple[int, np.ndarray]]) -> Iterator[list[tuple[Any, ...]]]:
    return (spill.reread(unit, local) for unit, local in tasks)


_TAKE: Spill | None = None  # set before the take-back pool forks
_TAKE_BACK_DIED = "a worker process died while taking the selected rows back; nothing was written, rerun the build"


def _reread_tasks(tasks: list[tuple[int, np.ndarray]]) -> list[list[tuple[Any, ...]]]:
    assert _TAKE is not None, "take-back state not set before the pool forked"
    return [_TAKE.reread(unit, local) for unit, local in tasks]


# ----------------------------------------------------------------------------- the pool


class UnitPool:
    """``workers`` processes (inline when 1) for curation units and the leakage check."""

    def __init__(self, workers: int, contexts: list[ChunkContext], spill_dir: str, *, strict: bool = False,
                 spill_rows: int | None = None) -> None:
        """``spill_rows``: accepted rows to write to spill files before spans' rows are only located (None: all)."""
        self.workers = max(1, int(workers))
        self.spill_rows = spill_rows
        self.state = _WorkerState(contexts, spill_dir, strict)
        self.spill = Spill(contexts)
        self._executor: ProcessPoolExecutor | None = None
        self._method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"

    def __enter__(self) -> UnitPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self._close(failed=exc[0] is not None)

    def _close(self, failed: bool) -> None:
        global _TAKE
        _TAKE = None
        executor, self._executor = self._executor, None
        if executor is None:
            return
        if failed:
            if self.state.stop is not None:
                self.state.stop.value = -1  # every running unit stops at its next poll
            for process in list(getattr(executor, "_processes", {}).values()):
                process.terminate()  # nothing a worker does is worth finishing once the run failed
            executor.shutdown(wait=True, cancel_futures=True)
        else:
            executor.shutdown(wait=True)

    def _pool(self, initializer: Callable[..., None] = _ignore_sigint, initargs: tuple[Any, ...] = ()) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(self.workers, mp_context=mp.get_context(self._method), initializer=initializer, initargs=initargs)

    def run(self, units: Iterable[Span | Chunk]) -> Iterator[UnitResult]:
        """Results of ``units`` in input order (at most 8 x workers units in flight).

        The window is wide so that one slow unit at its head does not leave the
        other workers idle (results are small: counts and key arrays).
        """
        from price_bench.data.pipeline import CurationError

        if self.workers == 1:
            for seq, unit in enumerate(units):
                try:
                    yield run_unit(seq, unit, self.state, self._spilling())
                except SourceError as exc:
                    raise CurationError(str(exc)) from None
            return
        ctx = mp.get_context(self._method)
        self.state.stop = ctx.Value("q", _NO_STOP)
        self._executor = self._pool(_init_worker, (self.state,))
        pending: list[tuple[Future[UnitResult], str]] = []
        window = 8 * self.workers
        for seq, unit in enumerate(units):
            pending.append((self._executor.submit(run_unit, seq, unit, None, self._spilling()), _describe(unit)))
            if len(pending) >= window:
                yield self._result(*pending.pop(0))
        while pending:
            yield self._result(*pending.pop(0))
        self._close(failed=False)

    def _spilling(self) -> bool:
        """Whether the next unit's rows go to a spill file: the rows registered so far are under ``spill_rows``.

        Registered means taken by the caller (:meth:`Spill.add`), so the units
        still in flight (at most 8 x workers) are spilled too: the bound is
        overshot by up to that many units, the same way for a given number of
        workers. The rows are the same either way.
        """
        return self.spill_rows is None or (self.spill.ends[-1] if self.spill.ends else 0) < self.spill_rows

    def _result(self, future: Future[UnitResult], where: str) -> UnitResult:
        from price_bench.data.pipeline import CurationError

        try:
            return future.result()
        except BrokenProcessPool:
            raise CurationError(
                f"a curation worker process died (killed or out of memory) while curating {where}; "
                "nothing was written, rerun the build"
            ) from None
        except SourceError as exc:
            raise CurationError(str(exc)) from None

    def take(self, indices: np.ndarray) -> list[tuple[Any, ...]]:
        """:meth:`Spill.take`, the located rows curated again across the pool."""
        return self.spill.take(indices, None if self.workers == 1 or self._method != "fork" else self._map_located)

    def _map_located(self, spill: Spill, tasks: list[tuple[int, np.ndarray]]) -> Iterator[list[tuple[Any, ...]]]:
        """Start curating ``tasks`` again across a new pool at once; their rows, unit by unit, as they are consumed."""
        from price_bench.data.pipeline import CurationError

        global _TAKE
        self._close(failed=False)
        _TAKE = spill  # inherited by the workers, forked at the first submit, never pickled
        try:
            self._executor = self._pool()
            futures = [self._executor.submit(_reread_tasks, tasks[i : i + 4]) for i in range(0, len(tasks), 4)]
        except BaseException as exc:
            self._close(failed=True)
            if isinstance(exc, BrokenProcessPool):
                raise CurationError(_TAKE_BACK_DIED) from None
            raise
        return self._located_rows(futures)

    def _located_rows(self, futures: list[Future[list[list[tuple[Any, ...]]]]]) -> Iterator[list[tuple[Any, ...]]]:
        from price_bench.data.pipeline import CurationError

        failed = True
        try:
            for future in futures:
                try:
                    yield from future.result()
                except BrokenProcessPool:
                    raise CurationError(_TAKE_BACK_DIED) from None
            failed = False
        finally:
            self._close(failed=failed)  # clears _TAKE too

    def near_duplicates(self, reference: Sequence[str], queries: Sequence[str], threshold: float, k: int) -> dict[int, int]:
        """:func:`price_bench.data.neardup.near_duplicates`, reference blocks spread over the pool."""
        from price_bench.data.neardup import near_duplicates

        if self.workers == 1 or len(reference) < 2 * 4096:
            return near_duplicates(reference, queries, threshold, k)
        return near_duplicates(reference, queries, threshold, k, map_blocks=self._map_leakage, block=_LEAKAGE_BLOCK)

    def _map_leakage(self, matcher: Matcher, reference: Sequence[str], blocks: list[tuple[int, int]]) -> list[dict[int, int]]:
        from price_bench.data.pipeline import CurationError

        global _LEAKAGE
        self._close(failed=False)
        _LEAKAGE = (matcher, reference)  # inherited by the forked workers, never pickled
        try:
            if self._method != "fork":
                return [matcher.match(reference, lo, hi) for lo, hi in blocks]
            self._executor = self._pool()
            try:
                return list(self._executor.map(_leakage_block, blocks))
            except BrokenProcessPool:
                raise CurationError("a worker process died during the leakage check; nothing was written, rerun the build") from None
            finally:
                self._close(failed=False)
        finally:
            _LEAKAGE = None


def _describe(unit: Span | Chunk) -> str:
    if isinstance(unit, Span):
        return f"{unit.path} (bytes {unit.start}-{unit.end})"
    return f"source #{unit.source_index} from line {unit.first_line}"
