"""``price-bench data build --engine ray``: the curation recipe as a Ray Data pipeline.

Stages, all Ray Data except the small seeded steps that must see every key
at once (so that the result equals the local engine's, item for item):

1. **read and curate** -- the same units as the local engine (byte ranges of
   JSON-lines files, read by the Ray workers themselves, so the files must be
   on a filesystem every node sees; other formats as row chunks read by the
   driver) flow through ``map_batches``, which decodes, parses prices,
   scrubs and filters with :func:`price_bench.data.curation.process_chunk`.
   Each unit gives its accepted rows plus one stats row (counts, problems).
2. **de-duplication** -- a shuffle: ``groupby(key).min(order)`` on
   ``parent_asin`` then on the normalised-text hash, first occurrence in input
   order wins (exactly the local rule).
3. **sampling and split** -- the survivors' 29-byte keys go to the driver and
   through the same seeded numpy code as the local engine.
4. **take back and leakage** -- the selected rows are filtered out of the
   materialised rows; the near-duplicate check runs as ``map_batches`` over
   an actor pool, each actor holding the test side's MinHash index once.
5. **parquet** -- the driver writes the split files and manifest with the
   same writer as the local engine, so the files and fingerprint are equal.
"""

from __future__ import annotations

import pickle
import time
from collections.abc import Callable

import numpy as np

from price_bench.data.curation import Recipe
from price_bench.data.pipeline import Curated, CurationRun, Progress, _leakage, sample_and_split
from price_bench.data.sources import SourceFile
from price_bench.engines.ray_session import ray_session

_POS_BITS = 24  # order = unit sequence << 24 | row within the unit (a 4 MiB span has < 2**24 lines)
_ROW, _STATS = 0, 1
_STATS_POS = (1 << _POS_BITS) - 1  # the stats row sorts after its unit's rows and never equals one


def _schema():
    import pyarrow as pa

    return pa.schema([
        ("kind", pa.int8()), ("order", pa.int64()), ("source", pa.int32()),
        ("id", pa.string()), ("text", pa.string()), ("price", pa.float64()), ("category", pa.string()),
        ("title", pa.string()), ("details", pa.binary()), ("asin_hash", pa.int64()), ("text_hash", pa.int64()),
        ("stats", pa.binary()),
    ])


def _curate_units(batch, contexts: bytes, strict: bool):
    """map_batches: each input row is one pickled unit; out come its rows and one stats row."""
    import pyarrow as pa

    from price_bench.data.workers import Spill, curate_unit, unit_stats

    ctxs = pickle.loads(contexts)
    tables = []
    for seq, blob in zip(batch["seq"].to_pylist(), batch["unit"].to_pylist()):
        result, lines = curate_unit(seq, pickle.loads(blob), ctxs, strict=strict)
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


def _kind(batch, kind: int, columns: list[str]):
    import pyarrow.compute as pc

    return batch.filter(pc.equal(batch["kind"], kind)).select(columns)


def _in_orders(batch, orders_ref):
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

    def __init__(self, matcher_ref):
        import ray

        self.matcher = ray.get(matcher_ref[0])

    def __call__(self, batch):
        import pyarrow as pa

        texts = batch["text"].to_pylist()
        found = self.matcher.match(texts, 0, len(texts))
        index = batch["i"].to_numpy()
        local = np.fromiter(found.keys(), dtype=np.int64, count=len(found))
        return pa.table({"i": pa.array(index[local], pa.int64()),
                         "q": pa.array(np.fromiter(found.values(), dtype=np.int64, count=len(found)), pa.int64())})


def _cpus(ray) -> int:
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
    """:func:`price_bench.data.pipeline.curate` on a Ray cluster (same items, same stats)."""
    import pyarrow as pa

    run = CurationRun(sources, recipe, categories=categories, strict=strict, labels=labels, on_problem=on_problem)
    started = last = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal last
        now = time.perf_counter()
        if timings is not None:
            timings[name] = now - last
        last = now

    with ray_session(address) as ray:
        units = [{"seq": seq, "unit": pickle.dumps(unit)} for seq, unit in enumerate(run.units(limit))]
        if not units:
            run.finish_reading({"_codes": {}, **_empty_arrays()})
        cpus = _cpus(ray)
        rows = (
            ray.data.from_items(units, override_num_blocks=min(len(units), 4 * cpus))
            .map_batches(_curate_units, fn_kwargs={"contexts": pickle.dumps(run.contexts), "strict": strict},
                         batch_size=1, batch_format="pyarrow")
            .materialize()
        )
        for stats in sorted(rows.map_batches(_kind, fn_args=(_STATS, ["order", "stats"]), batch_format="pyarrow").take_all(),
                            key=lambda r: r["order"]):
            run.absorb(pickle.loads(stats["stats"]))
        if on_progress is not None:
            for index, meta in enumerate(run.metas):
                if meta["records"]:
                    on_progress(Progress(meta["label"], run.sources[index].category, meta["records"], meta["accepted"],
                                         meta["records"] - meta["accepted"], time.perf_counter() - started, True))
        lap("read, decode, curate (Ray Data map_batches)")
        keys = rows.map_batches(_kind, fn_args=(_ROW, ["order", "source", "price", "category", "asin_hash", "text_hash"]),
                                batch_format="pyarrow").materialize()
        survivors = _dedup(ray, keys, recipe, run)
        arrays = _survivor_arrays(survivors, run)
        arrays = run.finish_reading(arrays)
        orders = arrays.pop("_order")
        chosen, split_of = sample_and_split(arrays, np.arange(orders.size), recipe, run.rejections)
        selected = orders[chosen]
        lap("de-duplicate (Ray shuffle), sample, split")
        wanted = np.sort(selected)
        picked = rows.map_batches(_in_orders, fn_args=([ray.put(wanted)],), batch_format="pyarrow")
        tables = [t for t in ray.get(picked.to_arrow_refs()) if t.num_rows]
        table = pa.concat_tables(tables) if tables else _schema().empty_table()
        position = {order: n for n, order in enumerate(table.column("order").to_pylist())}
        table = table.take(pa.array([position[o] for o in selected.tolist()], pa.int64()))
        from price_bench.data.workers import Spill

        splits = run.splits(Spill.rows(table), split_of)
        del table, tables
        lap("take selected rows back")
        _leakage(splits, recipe, run.rejections, lambda ref, q, t, k: _near_duplicates(ray, ref, q, t, k))
        lap("leakage check (Ray actor pool)")
    return run.curated(splits)


def _empty_arrays() -> dict[str, np.ndarray]:
    return {"_order": np.zeros(0, np.int64), "asin": np.zeros(0, np.int64), "text": np.zeros(0, np.int64),
            "price": np.zeros(0), "category": np.zeros(0, np.int32), "role": np.zeros(0, np.int8)}


def _dedup(ray, keys, recipe: Recipe, run: CurationRun):
    """First occurrence (lowest ``order``) per key, as Ray shuffles; counts the duplicates dropped."""
    import pyarrow.compute as pc

    total = keys.count()
    current = keys
    for field, column, reason in (("parent_asin", "asin_hash", "duplicate parent_asin"), ("text", "text_hash", "duplicate text")):
        if field not in recipe.dedup_on:
            continue
        firsts = current.groupby(column).min("order")
        winners = np.sort(np.concatenate([
            np.asarray(b["min(order)"]) for b in firsts.iter_batches(batch_format="numpy", batch_size=None)
        ] or [np.zeros(0, np.int64)]).astype(np.int64))
        keyless = current.map_batches(lambda b, c=column: b.filter(pc.equal(b[c], 0)), batch_format="pyarrow")
        kept = current.map_batches(_in_orders, fn_args=([ray.put(winners)],), batch_format="pyarrow")
        if field == "parent_asin":
            kept = kept.map_batches(lambda b: b.filter(pc.not_equal(b["asin_hash"], 0)), batch_format="pyarrow").union(keyless)
        kept = kept.materialize()
        before, after = current.count(), kept.count()
        run.rejections[reason] += int(before - after)
        current = kept
    del total
    return current


def _survivor_arrays(survivors, run: CurationRun) -> dict:
    """The survivors' compact keys in input order, as the local engine's arrays."""
    parts = [b for b in survivors.iter_batches(batch_format="numpy", batch_size=None)]
    if not parts:
        return {"_codes": {}, **_empty_arrays()}
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


def _near_duplicates(ray, reference, queries, threshold: float, k: int) -> dict[int, int]:
    """:func:`price_bench.data.neardup.near_duplicates` with the reference side as Ray Data over actors."""
    import pyarrow as pa

    from price_bench.data.neardup import BLOCK, Matcher

    if not reference or not queries:
        return {}
    matcher_ref = ray.put(Matcher(queries, threshold, k))
    table = pa.table({"i": pa.array(np.arange(len(reference)), pa.int64()), "text": pa.array(list(reference), pa.string())})
    blocks = max(1, min(64, -(-len(reference) // BLOCK)))
    found = (
        ray.data.from_arrow(table)
        .repartition(blocks)
        .map_batches(_LeakageActor, fn_constructor_args=([matcher_ref],), batch_size=BLOCK, batch_format="pyarrow",
                     concurrency=(1, max(1, min(blocks, _cpus(ray)))))
    )
    out: dict[int, int] = {}
    for batch in found.iter_batches(batch_format="numpy", batch_size=None):
        out.update(zip(batch["i"].tolist(), batch["q"].tolist()))
    return out
