"""Datasets by name: build them from sources, open them, build ``demo`` on first use."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from price_bench.data.curation import Recipe, get_recipe
from price_bench.data.dataset import (
    MANIFEST,
    Dataset,
    DatasetError,
    check_dataset_name,
    datasets_dir,
    open_dataset,
    write_dataset,
)
from price_bench.data.folders import clean_stale_temp, ensure_writable
from price_bench.data.sources import SourceFile, check_categories, resolve

if TYPE_CHECKING:
    from price_bench.data.pipeline import Progress

DEMO = "demo"
ALL = "all"  # ``--categories all``
MANIFEST_VERSION = 1


def get_dataset(name: str, home: Path | None = None) -> Dataset:
    """Open a dataset by name (under the data home) or explicit folder path.

    ``demo`` is generated and curated on first use (a few seconds); an
    existing but unreadable ``demo`` is reported, never silently rebuilt.
    """
    if name == DEMO and not (datasets_dir(home) / DEMO / MANIFEST).exists():
        return build_demo(home=home)
    return open_dataset(name, home=home)


def load_dataset(name_or_path: str | Path, *, home: Path | None = None) -> Dataset:
    """A curated dataset by name (under the data home) or by folder path.

    ``demo`` is built on first use. The splits load lazily::

        ds = price_bench.load_dataset("demo")
        ds.test[0].text, ds.to_pandas("train").price.median()

    Raises :class:`~price_bench.data.dataset.DatasetError` (one-line message)
    when there is no such dataset or its manifest is unreadable.
    """
    return get_dataset(str(name_or_path), home=home)


def build_demo(home: Path | None = None, *, n: int | None = None, seed: int | None = None, overwrite: bool = True) -> Dataset:
    """Generate the synthetic demo catalog in the raw 2023 format and curate it as ``demo``."""
    from price_bench.data import demo

    n = demo.DEFAULT_COUNT if n is None else n
    seed = demo.DEFAULT_SEED if seed is None else seed
    with tempfile.TemporaryDirectory(prefix="price-bench-demo-") as tmp:
        path = Path(tmp) / "demo.jsonl"
        demo.write_raw(path, n=n, seed=seed)
        label = f"generated:{demo.GENERATOR_ID}(n={n},seed={seed})"
        return build_dataset(
            DEMO,
            str(path),
            recipe="demo@1",
            home=home,
            synthetic=True,
            labels={str(path): label},
            overwrite=overwrite,
        )


def build_dataset(
    name: str,
    *sources: str | Path,
    categories: list[str] | None = None,
    train_source: str | Path | Iterable[str | Path] | None = None,
    test_source: str | Path | Iterable[str | Path] | None = None,
    recipe: str | Recipe | None = None,
    strict: bool = False,
    limit: int | None = None,
    workers: int = 1,
    home: Path | None = None,
    on_problem: Callable[[str], None] | None = None,
    synthetic: bool = False,
    labels: dict[str, str] | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    engine: str = "local",
    address: str | None = None,
    timings: dict[str, float] | None = None,
    overwrite: bool = True,
) -> Dataset:
    """Curate sources into a dataset folder named ``name`` (written atomically).

    ``sources`` are split by the recipe. With ``test_source`` the test split
    is exactly that source's items and every other source (``sources`` and
    ``train_source``) feeds train/validation. Raises :class:`DatasetError`
    (one-line message) on unreadable sources, unknown categories, nothing
    usable, or with ``strict`` on the first bad record; with ``overwrite``
    False also when ``name`` exists (checked before any work, like the
    name and a writable data home).

    ``categories=["all"]`` reads every category (``--source hf``: every
    category file of the Hub repository) without filtering. ``engine`` is
    ``local`` (``workers`` processes, spilling under the data home's
    datasets folder) or ``ray`` (a Ray Data pipeline on the cluster at
    ``address``; same split files and fingerprint). ``on_progress`` gets
    :class:`~price_bench.data.pipeline.Progress` per source file;
    ``timings`` receives the wall seconds of each stage.
    """
    from price_bench.data.pipeline import curate

    check_dataset_name(name)
    root = datasets_dir(home)
    if not overwrite and (root / name).exists():
        raise DatasetError(f"dataset {name!r} already exists at {root / name} (pass --force to replace it)")
    ensure_writable(root, "data home")
    clean_stale_temp(root)
    recipe_obj = get_recipe(recipe)
    categories = list(categories) if categories else None
    if categories == [ALL]:
        categories = None
        hub_categories: list[str] | None = [ALL]
    else:
        check_categories(categories)
        hub_categories = categories
    if train_source is not None and test_source is None:
        raise DatasetError("--train-source needs --test-source (otherwise use --source)")
    train_role = "train" if test_source is not None else "any"
    files: list[SourceFile] = []
    for spec in [*sources, *_as_list(train_source)]:
        files += resolve(spec, hub_categories, role=train_role)
    for spec in _as_list(test_source):
        files += resolve(spec, hub_categories, role="test")
    if not files or all(f.role == "test" for f in files):
        raise DatasetError("no training source given (--source or --train-source)")
    if engine == "ray":
        from price_bench.engines.ray_data import curate_on_ray

        curated = curate_on_ray(
            files, recipe_obj, address=address, categories=categories, strict=strict, limit=limit,
            on_problem=on_problem, on_progress=on_progress, labels=labels, timings=timings,
        )
    elif engine == "local":
        curated = curate(
            files, recipe_obj, workers=workers, workspace=root, categories=categories, strict=strict, limit=limit,
            on_problem=on_problem, on_progress=on_progress, labels=labels, timings=timings,
        )
    else:
        raise DatasetError(f"unknown engine {engine!r} (expected local or ray)")
    if not curated.splits["test"]:
        raise DatasetError("the test split is empty (too few usable records)")
    manifest = {
        "manifest_version": MANIFEST_VERSION,
        "synthetic": synthetic,
        "recipe": {"id": recipe_obj.id, **recipe_obj.model_dump(mode="json")},
        "categories_requested": categories,
        "limit": limit,
        "sources": curated.sources,
        "counts": curated.stats,
    }
    started = time.perf_counter()
    dataset = write_dataset(name, curated.splits, manifest, home=home, overwrite=overwrite)
    if timings is not None:
        timings["fingerprint, parquet"] = time.perf_counter() - started
    return dataset


def _as_list(value: str | Path | Iterable[str | Path] | None) -> list[str | Path]:
    if value is None:
        return []
    if isinstance(value, (str, Path)):
        return [value]
    return list(value)


