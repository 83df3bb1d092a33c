"""``price-bench run --engine ray``: the test split predicted by Ray Data over an actor pool.

The predictor is fitted (or loaded) on the driver exactly as for a local run;
each actor then builds its own instance from the same class, config and seed
and ``load``\\ s the fitted artefact from the work folder once (so the work
folder must be on a filesystem every node sees). Items stream through
``map_batches``; every finished batch comes back to the driver, which commits
it to the same SQLite cache and progress bar as a local run
(``accept``), so an interrupted Ray run resumes from the cache and a Ray run
gives the same record and metrics as a local one.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from price_bench.items import Item
from price_bench.predictors.contract import Prediction, Predictor


class _PredictActor:
    """One fitted predictor per actor, loaded once from the work folder."""

    def __init__(self, cls: type[Predictor], config, seed: int, workdir: str):
        self.predictor = cls(config, seed=seed)
        if not self.predictor.load(Path(workdir)):
            raise RuntimeError(f"{cls.id}: load({workdir}) found no fitted artefact on this Ray node (is the data home shared?)")

    def __call__(self, batch):
        import orjson
        import pyarrow as pa

        cols = {name: batch.column(name).to_pylist() for name in ("id", "text", "price", "category", "title", "details")}
        items = [
            Item(id=i, text=t, price=p, category=c, title=ti, details=orjson.loads(d) if d else {})
            for i, t, p, c, ti, d in zip(cols["id"], cols["text"], cols["price"], cols["category"], cols["title"], cols["details"])
        ]
        started = time.perf_counter()
        predictions = list(self.predictor.predict(items))
        seconds = time.perf_counter() - started
        if len(predictions) != len(items):
            raise RuntimeError(f"predict returned {len(predictions)} predictions for {len(items)} items")
        for p in predictions:
            if p.latency_s is None:
                p.latency_s = seconds / len(items)
        encoded = [orjson.dumps(dataclasses.asdict(p), default=str) for p in predictions]
        return pa.table({"id": pa.array(cols["id"], pa.string()), "prediction": pa.array(encoded, pa.binary())})

    def __del__(self):
        from price_bench.harness.fitting import close_predictor

        close_predictor(self.predictor)


def predict_on_ray(
    predictor: Predictor,
    workdir: Path,
    missing: Sequence[Item],
    accept: Callable[[list[Item], tuple[list[Prediction], float]], None],
    *,
    address: str | None = None,
    actors: int | None = None,
) -> None:
    """Predict ``missing`` on Ray, calling ``accept(batch, (predictions, seconds))`` per finished batch."""
    import orjson
    import pyarrow as pa

    from price_bench.engines.ray_session import ray_session

    if not missing:
        return
    by_id = {item.id: item for item in missing}
    with ray_session(address) as ray:
        cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
        pool = max(1, min(actors or cpus, len(missing)))
        size = max(1, min(int(getattr(predictor, "batch_size", 64) or 64), -(-len(missing) // (2 * pool))))
        table = pa.table({
            "id": [i.id for i in missing], "text": [i.text for i in missing], "price": [float(i.price) for i in missing],
            "category": pa.array([i.category for i in missing], pa.string()),
            "title": pa.array([i.title for i in missing], pa.string()),
            "details": pa.array([orjson.dumps(i.details) if i.details else None for i in missing], pa.binary()),
        })
        slices = [table.slice(lo, size) for lo in range(0, table.num_rows, size)]  # one block per batch
        ds = ray.data.from_arrow(slices).map_batches(
            _PredictActor,
            fn_constructor_args=(type(predictor), predictor.config, predictor.seed, str(workdir)),
            batch_size=size, batch_format="pyarrow", concurrency=(1, pool),
        )
        batches = iter(ds.iter_batches(batch_size=None, batch_format="pyarrow"))  # a generator: close() stops it
        try:
            for batch in batches:
                ids = batch.column("id").to_pylist()
                predictions = [Prediction(**orjson.loads(b)) for b in batch.column("prediction").to_pylist()]
                seconds = sum(p.latency_s or 0.0 for p in predictions)
                accept([by_id[i] for i in ids], (predictions, seconds))
        finally:
            batches.close()  # an interrupted run releases its actors at once (a rerun must get the CPUs)
