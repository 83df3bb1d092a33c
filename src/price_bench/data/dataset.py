"""A curated dataset on disk: one parquet file per split plus ``manifest.json``.

Layout of ``<data home>/datasets/<name>/``::

    manifest.json      recipe, sources (with sha256), counts, fingerprint
    train.parquet      columns: id, text, price, category, title, details (JSON text)
    validation.parquet
    test.parquet

The fingerprint is a sha256 over the canonical content of every split, so
the same items in the same order always give the same fingerprint; results
cite it. Folders are written to a temporary sibling and renamed into place,
so a half-written dataset never exists.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from price_bench.items import Item

SPLITS = ("train", "validation", "test")
MANIFEST = "manifest.json"


class DatasetError(Exception):
    """A dataset is missing, unreadable or inconsistent (message is one line)."""


def data_home() -> Path:
    """Root folder for datasets, work folders and caches.

    ``PRICE_BENCH_HOME`` when set, else ``$XDG_CACHE_HOME/price-bench`` (or
    ``~/.cache/price-bench``).
    """
    env = os.environ.get("PRICE_BENCH_HOME")
    if env:
        return Path(env).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "price-bench"


def datasets_dir(home: Path | None = None) -> Path:
    """Where named datasets live."""
    return (home or data_home()) / "datasets"


def fingerprint_items(splits: Mapping[str, Iterable[Item]]) -> str:
    """sha256 over the canonical JSON of every item of every split, in order."""
    digest = hashlib.sha256()
    for split in SPLITS:
        digest.update(f"[{split}]\n".encode())
        for item in splits.get(split, ()):
            row = [item.id, item.text, round(float(item.price), 2), item.category]
            digest.update(json.dumps(row, ensure_ascii=False, separators=(",", ":")).encode())
            digest.update(b"\n")
    return "sha256:" + digest.hexdigest()


@dataclass(repr=False)
class Dataset:
    """A curated dataset folder, read lazily split by split.

    ``train``, ``validation`` and ``test`` are lists of :class:`~price_bench.Item`;
    :meth:`to_pandas` gives one split as a DataFrame. Open one with
    :func:`price_bench.load_dataset`.
    """

    name: str
    path: Path
    manifest: dict[str, Any]
    _cache: dict[str, list[Item]] = field(default_factory=dict, repr=False)

    @property
    def fingerprint(self) -> str:
        """Content fingerprint from the manifest (``sha256:...``)."""
        return self.manifest["fingerprint"]

    @property
    def synthetic(self) -> bool:
        """True for generated data (the ``demo`` catalog)."""
        return bool(self.manifest.get("synthetic", False))

    def items(self, split: str) -> list[Item]:
        """All items of ``split`` ("train", "validation" or "test"), in stored order."""
        if split not in SPLITS:
            raise DatasetError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
        if split not in self._cache:
            self._cache[split] = read_split(self.path / f"{split}.parquet")
        return self._cache[split]

    @property
    def train(self) -> list[Item]:
        """The items predictors learn from."""
        return self.items("train")

    @property
    def validation(self) -> list[Item]:
        """Held-out items for a predictor's own model selection (never the test split)."""
        return self.items("validation")

    @property
    def test(self) -> list[Item]:
        """The items every run is scored on."""
        return self.items("test")

    def to_pandas(self, split: str = "test"):
        """One split as a ``pandas.DataFrame``: id, text, price, category, title, details (a dict per row)."""
        import pandas as pd

        columns = ["id", "text", "price", "category", "title", "details"]
        rows = [(i.id, i.text, i.price, i.category, i.title, i.details) for i in self.items(split)]
        return pd.DataFrame.from_records(rows, columns=columns)

    def __repr__(self) -> str:
        sizes = self.manifest.get("sizes")
        sizes = sizes if isinstance(sizes, dict) else {}
        counts = ", ".join(f"{split}={sizes[split]:,}" for split in SPLITS if isinstance(sizes.get(split), int))
        kind = "synthetic" if self.synthetic else "real"
        fingerprint = str(self.manifest.get("fingerprint", "?"))
        short = fingerprint.split(":", 1)[-1][:12]
        return f"Dataset({self.name!r}, {kind}, {counts or 'sizes unknown'}, fingerprint {short}, path {str(self.path)!r})"


def read_split(path: Path) -> list[Item]:
    """Read one split parquet file into items."""
    import pyarrow.parquet as pq

    if not path.exists():
        raise DatasetError(f"{path}: split file is missing")
    table = pq.read_table(path)
    cols = table.to_pydict()
    details = cols.get("details") or [None] * table.num_rows
    titles = cols.get("title") or [None] * table.num_rows
    return [
        Item(
            id=i,
            text=t,
            price=float(p),
            category=c,
            title=ti,
            details=json.loads(d) if d else {},
        )
        for i, t, p, c, ti, d in zip(cols["id"], cols["text"], cols["price"], cols["category"], titles, details)
    ]


def write_split(path: Path, items: Iterable[Item]) -> None:
    """Write items as parquet with a fixed schema (deterministic bytes)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    items = list(items)
    schema = pa.schema(
        [
            ("id", pa.string()),
            ("text", pa.string()),
            ("price", pa.float64()),
            ("category", pa.string()),
            ("title", pa.string()),
            ("details", pa.string()),
        ]
    )
    table = pa.table(
        {
            "id": [i.id for i in items],
            "text": [i.text for i in items],
            "price": [float(i.price) for i in items],
            "category": [i.category for i in items],
            "title": [i.title for i in items],
            "details": [json.dumps(i.details, ensure_ascii=False, sort_keys=True) if i.details else None for i in items],
        },
        schema=schema,
    )
    pq.write_table(table, path, compression="zstd")


def write_dataset(
    name: str,
    splits: Mapping[str, Iterable[Item]],
    manifest: Mapping[str, Any],
    *,
    home: Path | None = None,
    overwrite: bool = True,
) -> Dataset:
    """Atomically write a dataset folder and return it.

    ``manifest`` holds the recipe, sources and counts; this function adds
    ``name``, ``fingerprint`` and per-split sizes. Written into a temporary
    folder next to the target, then renamed.
    """
    target = datasets_dir(home) / name
    if target.exists() and not overwrite:
        raise DatasetError(f"dataset {name!r} already exists at {target}")
    materialised = {split: list(splits.get(split, ())) for split in SPLITS}
    full_manifest = dict(manifest)
    full_manifest["name"] = name
    full_manifest["sizes"] = {split: len(materialised[split]) for split in SPLITS}
    full_manifest["fingerprint"] = fingerprint_items(materialised)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=target.parent))
    try:
        for split, items in materialised.items():
            write_split(tmp / f"{split}.parquet", items)
        (tmp / MANIFEST).write_text(json.dumps(full_manifest, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
        if target.exists():
            old = target.with_name(f".{name}.old-{os.getpid()}")
            target.rename(old)
            tmp.rename(target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return Dataset(name, target, full_manifest)


def open_dataset(name_or_path: str | Path, *, home: Path | None = None) -> Dataset:
    """Open a dataset by name (under the data home) or by folder path.

    Does not build anything; see :func:`price_bench.data.catalog.get_dataset`
    for the version that builds ``demo`` on first use.
    """
    candidate = Path(name_or_path)
    path = candidate if (candidate / MANIFEST).exists() else datasets_dir(home) / str(name_or_path)
    manifest_path = path / MANIFEST
    if not manifest_path.exists():
        raise DatasetError(f"no dataset named {str(name_or_path)!r} (looked in {path}); build it with `price-bench data build`")
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise DatasetError(f"{manifest_path}: unreadable manifest: {exc}") from None
    return Dataset(manifest.get("name", path.name), path, manifest)


def list_datasets(home: Path | None = None) -> list[Dataset]:
    """Every built dataset under the data home, by name."""
    root = datasets_dir(home)
    if not root.exists():
        return []
    return [open_dataset(p) for p in sorted(root.iterdir()) if (p / MANIFEST).exists() and not p.name.startswith(".")]
