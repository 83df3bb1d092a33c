"""``price-bench data build --engine ray``: the curation recipe as a Ray Data pipeline.

Stages, all Ray Data except the small seeded steps that must see every key
at once (so that the result equals the local engine's, item for item):

1. **read and curate** -- the same units as the local engine (byte ranges of
   JSON-lines files, read by the Ray workers themselves, so the files must be
   on a filesystem every node sees; other formats as row chunks read by the
   driver) flow through ``map_batches``, which decodes, parses prices,
   scrubs and filters with :func:`price_bench.data.curation.process_chunk`.
   Each unit gives its accepted rows plus one stats row (counts, problems).
2. **de-duplication, sampling and split** -- the accepted rows' 29-byte keys
   stream to the driver and go through the same numpy code as the local
   engine (first occurrence in input order wins; seeded sampling and split):
   sampling needs every survivor's key on the driver anyway, and a Ray
   shuffle per key only added fixed per-job costs.
3. **take back and leakage** -- the selected rows are filtered out of the
   materialised rows; the near-duplicate check runs as ``map_batches`` over
   an actor pool, each actor holding the test side's MinHash index once.
4. **parquet** -- the driver writes the split files and manifest with the
   same writer as the local engine, so the files and fingerprint are equal.

Failure handling, as in the local engine:

* ``strict``: a worker that meets a bad record lowers a shared "first bad
  unit" marker (a small Ray actor); units after it stop within 256 records
  and units not started yet are skipped unread, so the execution ends at
  once; units before it finish (one may hold an earlier bad record) and the
  first problem in input order is raised with its file and line.
* no task is retried and no actor restarted: a worker process that dies
  (killed, out of memory, its node lost) fails the build with one
  :class:`~price_bench.data.pipeline.CurationError` line before anything is
  written (the dataset folder is only renamed into place once complete).
"""

from __future__ import annotations

import logging
import pickle
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from price_bench.data.curation import Recipe
from price_bench.data.dataset import DatasetError
from price_bench.data.pipeline import Curated, CurationError, CurationRun, Progress, _leakage, dedup_indices, sample_and_split
from price_bench.data.sources import SourceFile
from price_bench.engines.ray_session import is_death, ray_session, task_cause

log = logging.getLogger(__name__)

_POS_BITS = 24  # order = unit sequence << 24 | row within the unit (a 4 MiB span has < 2**24 lines)
_ROW, _STATS = 0, 1
_STATS_POS = (1 << _POS_BITS) - 1  # the stats row sorts after its unit's rows and never equals one
_NO_STOP = 2**62
_POLL_S = 0.2  # a worker asks the strict marker at most this often (every 256 records at most)
#: Every task and actor of the pipeline: a process that dies fails the build, never a silent retry.
_NO_RETRY: dict[str, Any] = {"max_retries": 0}
_NO_RESTART: dict[str, Any] = {"max_restarts": 0, "max_task_retries": 0}


class _FirstBad:
    """``--strict``: the lowest unit sequence number with a bad record so far (a Ray actor every worker sees)."""

    def __init__(self) -> None:
        self.seq = _NO_STOP

    def lower(self, seq: int) -> None:
        self.seq = min(self.seq, seq)

    def value(self) -> int:
        return self.seq


class _StopPoll:
    """``should_stop`` for one unit: True once an earlier unit had a bad record (asks the marker every 0.2 s at most)."""

    def __init__(self, marker: Any, seq: int) -> None:
        self.marker, self.seq = marker, seq
        self.next_at = 0.0
        self.stop = False

    def __call__(self) -> bool:
        import ray

        now = time.monotonic()
        if not self.stop and now >= self.next_at:
            self.next_at = now + _POLL_S
            self.stop = int(ray.get(self.marker.value.remote())) < self.seq
        return self.stop


def _schema() -> Any:
    import pyarrow as pa

    return pa.schema([
        ("kind", pa.int8()), ("order", pa.int64()), ("source", pa.int32()),
        ("id", pa.string()), ("text", pa.string()), ("price", pa.float64()), ("category", pa.string()),
        ("title", pa.string()), ("details", pa.binary()), ("asin_hash", pa.int64()), ("text_hash", pa.int64()),
        ("stats", pa.binary()),
    ])


def _curate_units(batch: Any, contexts: bytes, strict: bool, marker: Any = None) -> Any:
    """map_batches: each input row is one pickled unit; out come its rows and one stats row.

    With ``marker`` (``--strict``) a unit after the first bad one is skipped
    unread (an empty stats row) or stops within 256 records.
    """
    import pyarrow as pa
    import ray

    from price_bench.data.workers import Spill, curate_unit, unit_stats

    ctxs = pickle.loads(contexts)
    tables = []
    for seq, blob in zip(batch["seq"].to_pylist(), batch["unit"].to_pylist()):
        unit = pickle.loads(blob)
        poll = _StopPoll(marker, seq) if marker is not None else None
        if poll is not None and poll():
            tables.append(_skipped(seq, unit.source_index))
            continue
        result, lines = curate_unit(seq, unit, ctxs, strict=strict, should_stop=poll)
        if marker is not None and result.problems:
            ray.get(marker.lower.remote(seq))
        rows = result.accepted
        n = len(rows)
        base = Spill.table(rows) if n else None
        stats = unit_stats(result, lines)
        columns = {
            "kind": pa.array([_ROW] * n + [_STATS], pa.int8()),
            "order": pa.array([(seq << _POS_BITS) | i for i in range(n)] + [(seq << _POS_BITS) | _STATS_POS], pa.int64()),
            "source": pa.array([result.source_index] * (n + 1), pa.int32()),
        }
        for name in ("id", "text", "price", "category", "title", "details"):
            column = base.column(name).combine_chunks() if base is not None else None
            typ = _schema().field(name).type
            columns[name] = pa.concat_arrays([column, pa.nulls(1, typ)]) if column is not None else pa.nulls(1, typ)
        columns["asin_hash"] = pa.array([r[6] for r in rows] + [0], pa.int64())
        columns["text_hash"] = pa.array([r[7] for r in rows] + [0], pa.int64())
        columns["stats"] = pa.array([None] * n + [pickle.dumps(stats)], pa.binary())
        tables.append(pa.table(columns, schema=_schema()))
    return pa.concat_tables(tables) if tables else _schema().empty_table()


def _skipped(seq: int, source_index: int) -> Any:
    """The stats row of a unit skipped unread (``--strict``, after the first bad unit)."""
    import pyarrow as pa

    from price_bench.data.workers import UnitResult

    columns: dict[str, Any] = {name: pa.nulls(1, field.type) for name, field in zip(_schema().names, _schema())}
    columns.update(kind=pa.array([_STATS], pa.int8()), order=pa.array([(seq << _POS_BITS) | _STATS_POS], pa.int64()),
                   source=pa.array([source_index], pa.int32()), asin_hash=pa.array([0], pa.int64()),
                   text_hash=pa.array([0], pa.int64()),
                   stats=pa.array([pickle.dumps(UnitResult(source_index, stopped=True))], pa.binary()))
    return pa.table(columns, schema=_schema())


def _kind(batch: Any, kind: int, columns: list[str]) -> Any:
    import pyarrow.compute as pc

    return batch.filter(pc.equal(batch["kind"], kind)).select(columns)


def _in_orders(batch: Any, orders_ref: list[Any]) -> Any:
    """Rows whose ``order`` is in the (sorted) array behind ``orders_ref``."""
    import pyarrow as pa
    import ray

    orders = ray.get(orders_ref[0])
    column = batch["order"].to_numpy()
    pos = np.minimum(np.searchsorted(orders, column), max(orders.size - 1, 0))
    mask = orders[pos] == column if orders.size else np.zeros(column.size, dtype=bool)
    return batch.filter(pa.array(mask))


class _LeakageActor:
    """Holds the test side's :class:`~price_bench.data.neardup.Matcher` once; matches reference batches."""

    def __init__(self, matcher_ref: list[Any]) -> None:
        import ray

        self.matcher = ray.get(matcher_ref[0])

    def __call__(self, batch: Any) -> Any:
        import pyarrow as pa

        texts = batch["text"].to_pylist()
        found = self.matcher.match(texts, 0, len(texts))
        index = batch["i"].to_numpy()
        local = np.fromiter(found.keys(), dtype=np.int64, count=len(found))
        return pa.table({"i": pa.array(index[local], pa.int64()),
                         "q": pa.array(np.fromiter(found.values(), dtype=np.int64, count=len(found)), pa.int64())})


def _cpus(ray: Any) -> int:
    return max(1, int(ray.cluster_resources().get("CPU", 1)))


def curate_on_ray(
    sources: list[SourceFile],
    recipe: Recipe,
    *,
    address: str | None = None,
    categories: list[str] | None = None,
    strict: bool = False,
    limit: int | None = None,
    on_problem: Callable[[str], None] | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    labels: dict[str, str] | None = None,
    timings: dict[str, float] | None = None,
) -> Curated:
    """:func:`price_bench.data.pipeline.curate` on a Ray cluster (same items, same stats).

    Raises :class:`~price_bench.data.pipeline.CurationError` (one line) as the
    local engine does: ``strict`` and a bad record, or a Ray worker that died.
    """
    import pyarrow as pa

    run = CurationRun(sources, recipe, categories=categories, strict=strict, labels=labels, on_problem=on_problem)
    started = last = time.perf_counter()
    stage = ["read, decode, curate (Ray Data map_batches)"]

    def lap(name: str) -> None:
        nonlocal last
        now = time.perf_counter()
        if timings is not None:
            timings[stage[0]] = now - last
        last = now
        stage[0] = name

    with _one_line_failures(stage), ray_session(address) as ray:
        units = [{"seq": seq, "unit": pickle.dumps(unit)} for seq, unit in enumerate(run.units(limit))]
        if not units:
            run.finish_reading(_key_arrays(None, run))
        marker = ray.remote(num_cpus=0, **_NO_RESTART)(_FirstBad).remote() if strict else None
        try:
            rows = (
                ray.data.from_items(units, override_num_blocks=min(len(units), 4 * _cpus(ray)))
                .map_batches(_curate_units, fn_kwargs={"contexts": pickle.dumps(run.contexts), "strict": strict, "marker": marker},
                             batch_size=1, batch_format="pyarrow", **_NO_RETRY)
                .materialize()
            )
        finally:
            if marker is not None:
                ray.kill(marker)
        _absorb_stats(run, rows, len(units))
        if on_progress is not None:
            for index, meta in enumerate(run.metas):
                if meta["records"]:
                    on_progress(Progress(meta["label"], run.sources[index].category, meta["records"], meta["accepted"],
                                         meta["records"] - meta["accepted"], time.perf_counter() - started, True))
        lap("de-duplicate, sample, split (driver)")
        keys = rows.map_batches(_kind, fn_args=(_ROW, ["order", "source", "price", "category", "asin_hash", "text_hash"]),
                                batch_format="pyarrow", **_NO_RETRY)
        arrays = run.finish_reading(_key_arrays(keys, run))
        orders = arrays.pop("_order")
        chosen, split_of = sample_and_split(arrays, dedup_indices(arrays, recipe, run.rejections), recipe, run.rejections)
        selected = orders[chosen]
        del arrays
        lap("take selected rows back")
        wanted = np.sort(selected)
        picked = rows.map_batches(_in_orders, fn_args=([ray.put(wanted)],), batch_format="pyarrow", **_NO_RETRY)
        tables = [t for t in ray.get(picked.to_arrow_refs()) if t.num_rows]
        table = pa.concat_tables(tables) if tables else _schema().empty_table()
        position = {order: n for n, order in enumerate(table.column("order").to_pylist())}
        table = table.take(pa.array([position[o] for o in selected.tolist()], pa.int64()))
        from price_bench.data.workers import Spill

        splits = run.splits(Spill.rows(table), split_of)
        del table, tables
        lap("leakage check (Ray actor pool)")
        _leakage(splits, recipe, run.rejections, lambda ref, q, t, k: _near_duplicates(ray, ref, q, t, k))
        lap("done")
    return run.curated(splits)


def _absorb_stats(run: CurationRun, rows: Any, units: int) -> None:
    """Every unit's stats row, in input order (``strict``: raises at the first bad record, after logging how far it got)."""
    stats = [pickle.loads(r["stats"]) for r in sorted(
        rows.map_batches(_kind, fn_args=(_STATS, ["order", "stats"]), batch_format="pyarrow", **_NO_RETRY).take_all(),
        key=lambda r: r["order"])]
    if run.strict and any(s.problems for s in stats):
        curated = sum(not s.stopped for s in stats)
        log.info("ray engine, --strict: stopped at the first bad record after %d records (%d of %d units ran without being stopped)",
                 sum(s.records for s in stats), curated, units)
    for result in stats:
        run.absorb(result)


@contextmanager
def _one_line_failures(stage: list[str]) -> Iterator[None]:
    """Ray's failures as the local engine's: one CurationError line, never a traceback or a silent retry."""
    try:
        yield
    except DatasetError:
        raise
    except Exception as exc:
        if is_death(exc):
            raise CurationError(f"a Ray worker process died (killed, out of memory or its node lost) during the stage "
                                f"'{stage[0]}'; nothing was written, rerun the build") from None
        cause = task_cause(exc)
        if isinstance(cause, DatasetError):  # e.g. a source file that cannot be read on a worker
            raise CurationError(str(cause)) from None
        raise


def _empty_arrays() -> dict[str, np.ndarray]:
    return {"_order": np.zeros(0, np.int64), "asin": np.zeros(0, np.int64), "text": np.zeros(0, np.int64),
            "price": np.zeros(0), "category": np.zeros(0, np.int32), "role": np.zeros(0, np.int8)}


def _key_arrays(keys: Any, run: CurationRun) -> dict[str, Any]:
    """Every accepted row's compact keys in input order, as the local engine's arrays."""
    parts = list(keys.iter_batches(batch_format="numpy", batch_size=None)) if keys is not None else []
    if not parts:
        empty: dict[str, Any] = {"_codes": {}, **_empty_arrays()}
        return empty
    order = np.concatenate([np.asarray(p["order"], dtype=np.int64) for p in parts])
    sort = np.argsort(order, kind="stable")
    source = np.concatenate([np.asarray(p["source"], dtype=np.int32) for p in parts])[sort]
    names = [c for p in parts for c in p["category"].tolist()]
    names = [names[i] for i in sort.tolist()]
    codes: dict[str | None, int] = {}
    category = np.fromiter((codes.setdefault(n, len(codes)) for n in names), dtype=np.int32, count=len(names))
    roles = np.array([run.role_code(i) for i in range(len(run.sources))], dtype=np.int8)
    return {
        "_codes": codes,
        "_order": order[sort],
        "asin": np.concatenate([np.asarray(p["asin_hash"], dtype=np.int64) for p in parts])[sort],
        "text": np.concatenate([np.asarray(p["text_hash"], dtype=np.int64) for p in parts])[sort],
        "price": np.concatenate([np.asarray(p["price"], dtype=np.float64) for p in parts])[sort],
        "category": category,
        "role": roles[source],
    }


def _near_duplicates(ray: Any, reference: list[str], queries: list[str], threshold: float, k: int) -> dict[int, int]:
    """:func:`price_bench.data.neardup.near_duplicates` with the reference side as Ray Data over actors."""
    import pyarrow as pa

    from price_bench.data.neardup import BLOCK, COMPILED_FROM, Matcher, compiled_loops_available

    if not reference or not queries:
        return {}
    compiled = len(reference) >= COMPILED_FROM and compiled_loops_available()
    matcher_ref = ray.put(Matcher(queries, threshold, k, compiled=compiled))
    table = pa.table({"i": pa.array(np.arange(len(reference)), pa.int64()), "text": pa.array(list(reference), pa.string())})
    blocks = max(1, min(64, -(-len(reference) // BLOCK)))
    step = -(-table.num_rows // blocks)
    found = (
        ray.data.from_arrow([table.slice(lo, step) for lo in range(0, table.num_rows, step)])  # one block each, no shuffle
        .map_batches(_LeakageActor, fn_constructor_args=([matcher_ref],), batch_size=BLOCK, batch_format="pyarrow",
                     concurrency=(1, max(1, min(blocks, _cpus(ray)))), **_NO_RESTART)
    )
    out: dict[int, int] = {}
    for batch in found.iter_batches(batch_format="numpy", batch_size=None):
        out.update(zip(batch["i"].tolist(), batch["q"].tolist()))
    return out
