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

A dataset folder is untrusted input (users share them). :func:`open_dataset`
resolves a *name* only under the data home (never the current folder) and a
folder only when given an explicit path (``./demo``, ``/data/x``, ``~/x``);
it checks the manifest's name and fingerprint format with
:mod:`price_bench.names`, reads only regular files inside the folder, and
:meth:`Dataset.verify` recomputes the fingerprint from the splits before
anything is keyed on it.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from price_bench.errors import PriceBenchError
from price_bench.items import Item
from price_bench.names import fingerprint_problem, name_problem
from price_bench.parsing import MAX_PRICE

if TYPE_CHECKING:
    import pandas as pd

SPLITS = ("train", "validation", "test")
MANIFEST = "manifest.json"
MANIFEST_MAX_BYTES = 16 * 1024 * 1024


class DatasetError(PriceBenchError):
    """A dataset is missing, unreadable or inconsistent (message is one line)."""


def check_dataset_name(name: object) -> str:
    """``name`` when it is a valid dataset name (:mod:`price_bench.names`), else DatasetError."""
    problem = name_problem(name, "dataset name")
    if problem:
        raise DatasetError(problem)
    return name  # type: ignore[return-value]


def is_explicit_path(value: str | Path) -> bool:
    """True when ``--dataset VALUE`` names a folder rather than a dataset in the data home.

    A :class:`~pathlib.Path`, or text with a path separator or starting with
    ``~`` or ``.`` (``./demo``, ``../x``, ``/data/x``, ``~/x``). A bare
    ``demo`` is always the data home's ``demo``, even when ``./demo`` exists.
    """
    if isinstance(value, Path):
        return True
    text = str(value)
    return "/" in text or os.sep in text or (os.altsep or "/") in text or text.startswith(("~", "."))


def inside(folder: Path, path: Path) -> bool:
    """True when ``path`` (links resolved) is ``folder`` or lies under it."""
    try:
        path.resolve().relative_to(folder.resolve())
    except (ValueError, OSError, RuntimeError):
        return False
    return True


def _own_file(folder: Path, name: str) -> Path:
    """``folder/name`` when it is a regular file inside ``folder`` (a link out is refused)."""
    path = folder / name
    if not path.exists():
        raise DatasetError(f"{path}: file is missing")
    if path.is_symlink() or not path.is_file() or not inside(folder, path):
        raise DatasetError(f"{path}: not a regular file inside the dataset folder (links are not followed)")
    return path


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
    #: ``home`` (resolved by name under the data home) or ``path`` (an explicit folder).
    source: str = "home"
    _verified: bool = field(default=False, repr=False)

    @property
    def fingerprint(self) -> str:
        """Content fingerprint from the manifest (``sha256:...``)."""
        fingerprint: str = self.manifest["fingerprint"]  # checked when the dataset was opened
        return fingerprint

    def verify(self) -> str:
        """Recompute the fingerprint from the splits; DatasetError when it differs from the manifest's.

        Reads every split (they are kept for later use). Returns the fingerprint.
        A successful check is remembered in the data home (``cache/verified-datasets.json``)
        against each file's device, inode, size, mtime and ctime; a ctime cannot be
        set back by an ordinary user, so any later change to a file forces a new check.
        """
        if self._verified:
            return self.fingerprint
        stamp = self._stamp()
        if stamp is not None and _read_memo().get(str(self.path.resolve())) == {"fingerprint": self.fingerprint, "files": stamp}:
            self._verified = True
            return self.fingerprint
        actual = fingerprint_items({split: self.items(split) for split in SPLITS})
        if actual != self.fingerprint:
            raise DatasetError(
                f"{self.path / MANIFEST}: fingerprint {self.fingerprint[:19]}… does not match the items "
                f"({actual[:19]}…); the folder was changed after it was built: rebuild it"
            )
        self._verified = True
        if stamp is not None and stamp == self._stamp():
            self._remember(stamp)
        return self.fingerprint

    def _remember(self, stamp: list[list[str | int]] | None = None) -> None:
        """Record in the data home that this folder, as it is now, holds its fingerprint's items."""
        stamp = stamp or self._stamp()
        if stamp is not None:
            memo = _read_memo()
            memo.pop(str(self.path.resolve()), None)
            memo[str(self.path.resolve())] = {"fingerprint": self.fingerprint, "files": stamp}
            _write_memo(memo)

    def _stamp(self) -> list[list[str | int]] | None:
        """(name, device, inode, size, mtime, ctime) of the manifest and every split; None if one is missing."""
        out: list[list[str | int]] = []
        for name in (MANIFEST, *(f"{split}.parquet" for split in SPLITS)):
            try:
                st = os.lstat(self.path / name)
            except OSError:
                return None
            out.append([name, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns])
        return out

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

    def train_median(self) -> float:
        """Median train price: what an unparseable answer is scored with.

        Reads only the price column when the train split is not loaded yet;
        DatasetError when the train split is empty.
        """
        import numpy as np

        if "train" in self._cache:
            prices = np.array([item.price for item in self._cache["train"]], dtype=np.float64)
        else:
            import pyarrow.parquet as pq

            prices = pq.read_table(self.path / "train.parquet", columns=["price"]).column("price").to_numpy()
        if prices.size == 0:
            raise DatasetError(f"dataset {self.name!r} has no train items: no fallback price for unparseable answers")
        return float(np.median(prices))

    def to_pandas(self, split: str = "test") -> pd.DataFrame:
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


#: At most this many remembered dataset checks (oldest dropped first).
MEMO_MAX = 256


def _memo_path() -> Path:
    return data_home() / "cache" / "verified-datasets.json"


def _read_memo() -> dict[str, Any]:
    try:
        memo = json.loads(_memo_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return memo if isinstance(memo, dict) else {}


def _write_memo(memo: dict[str, Any]) -> None:
    """Best effort: a data home that cannot be written only costs a re-check next time."""
    from price_bench.files import atomic_write_text

    keep = dict(list(memo.items())[-MEMO_MAX:])
    try:
        atomic_write_text(_memo_path(), json.dumps(keep, sort_keys=False) + "\n")
    except OSError:
        pass


def read_split(path: Path) -> list[Item]:
    """Read one split parquet file into items."""
    import pyarrow.parquet as pq

    if not path.exists():
        raise DatasetError(f"{path}: split file is missing")
    if path.is_symlink() or not path.is_file() or not inside(path.parent, path):
        raise DatasetError(f"{path}: not a regular file inside the dataset folder (links are not followed)")
    try:
        table = pq.read_table(path)
        cols = table.to_pydict()
        details = cols.get("details") or [None] * table.num_rows
        titles = cols.get("title") or [None] * table.num_rows
        items = [
            Item(
                id=str(i),
                text=str(t),
                price=float(p),
                category=c,
                title=ti,
                details=_details(d),
            )
            for i, t, p, c, ti, d in zip(cols["id"], cols["text"], cols["price"], cols["category"], titles, details)
        ]
    except Exception as exc:  # pyarrow raises ArrowInvalid/OSError/...; a missing column is a KeyError
        message = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise DatasetError(f"{path}: unreadable split file ({type(exc).__name__}: {message}); rebuild the dataset") from None
    for row, item in enumerate(items):
        if not (math.isfinite(item.price) and 0 <= item.price <= MAX_PRICE):  # the rule for guesses holds for truths too
            raise DatasetError(f"{path}: row {row} (id {item.id[:40]!r}): price {item.price!r} is not a price "
                               f"(finite, 0 to {MAX_PRICE:,.0f}); rebuild the dataset")
    return items


def _details(value: Any) -> dict[str, Any]:
    details = json.loads(value) if value else {}
    if not isinstance(details, dict):
        raise ValueError(f"details is not a JSON object: {str(value)[:40]!r}")
    return details


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
    ``name``, ``fingerprint`` and per-split sizes. Written into a hidden
    temporary folder next to the target (``.<name>.tmp-<pid>-*``), then
    renamed; stale ones a killed build left behind are removed first.
    """
    check_dataset_name(name)
    target = datasets_dir(home) / name
    if target.exists() and not overwrite:
        raise DatasetError(f"dataset {name!r} already exists at {target} (pass --force to replace it)")
    materialised = {split: list(splits.get(split, ())) for split in SPLITS}
    full_manifest = dict(manifest)
    full_manifest["name"] = name
    full_manifest["sizes"] = {split: len(materialised[split]) for split in SPLITS}
    full_manifest["fingerprint"] = fingerprint_items(materialised)
    from price_bench.data.folders import clean_stale_temp, ensure_writable

    ensure_writable(target.parent, "data home")
    clean_stale_temp(target.parent)
    from price_bench.files import atomic_folder

    with atomic_folder(target, prefix=f".{name}.tmp-{os.getpid()}-") as tmp:
        for split, items in materialised.items():
            write_split(tmp / f"{split}.parquet", items)
        (tmp / MANIFEST).write_text(json.dumps(full_manifest, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
    dataset = Dataset(name, target, full_manifest, _verified=True)
    dataset._remember()
    return dataset


def open_dataset(name_or_path: str | Path, *, home: Path | None = None) -> Dataset:
    """Open a dataset by name (under the data home only) or by explicit folder path.

    A bare name (``demo``) is looked up in the data home and never in the
    current folder; a folder is opened only when the value is an explicit
    path (see :func:`is_explicit_path`). :attr:`Dataset.source` says which.
    Does not build anything; see :func:`price_bench.data.catalog.get_dataset`
    for the version that builds ``demo`` on first use.
    """
    if is_explicit_path(name_or_path):
        path = Path(name_or_path).expanduser().absolute()
        if not (path / MANIFEST).exists():
            raise DatasetError(f"{path}: not a dataset folder (no {MANIFEST})")
        return open_folder(path, source="path")
    name = check_dataset_name(str(name_or_path))
    path = datasets_dir(home) / name
    if not (path / MANIFEST).exists():
        raise DatasetError(f"no dataset named {name!r} (looked in {path}); build it with `price-bench data build`")
    return open_folder(path, source="home")


def open_folder(path: Path, *, source: str = "home") -> Dataset:
    """Open the dataset folder ``path``, checking its manifest (DatasetError naming the file and field).

    ``source`` ``home``: the folder's own name is the dataset name; ``path``:
    the manifest's ``name`` (checked like any dataset name).
    """
    manifest_path = _own_file(path, MANIFEST)
    try:
        if manifest_path.stat().st_size > MANIFEST_MAX_BYTES:
            raise DatasetError(f"{manifest_path}: larger than {MANIFEST_MAX_BYTES // 2**20} MB; not a manifest")
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as exc:  # ValueError: bad JSON, a 5,000-digit number; RecursionError: nesting
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DatasetError(f"{manifest_path}: unreadable manifest: {first[:200]}") from None
    if not isinstance(manifest, dict):
        raise DatasetError(f"{manifest_path}: unreadable manifest: not a JSON object")
    problem = fingerprint_problem(manifest.get("fingerprint")) if "fingerprint" in manifest else "no 'fingerprint' field"
    if problem:
        raise DatasetError(f"{manifest_path}: {problem}")
    problem = _shape_problem(manifest)
    if problem:
        raise DatasetError(f"{manifest_path}: {problem}")
    if source == "home":
        name = path.name
    else:
        name = manifest.get("name", path.name)
        problem = name_problem(name, "dataset name")
        if problem:
            raise DatasetError(f"{manifest_path}: field 'name': {problem}")
    return Dataset(name, path, manifest, source=source)


#: The manifest fields the commands read, and the JSON type each must have when present.
_SHAPE: dict[str, type] = {"sizes": dict, "recipe": dict, "counts": dict, "synthetic": bool, "sources": list}
_COUNTS_SHAPE: dict[str, type] = {"rejections": dict, "warnings": dict, "price_bands": dict, "categories": dict}


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _shape_problem(manifest: dict[str, Any]) -> str | None:
    """Why a manifest's fields do not have the types the commands read (None when they do)."""
    kinds = {dict: "object", list: "array", bool: "true/false"}
    for key, kind in _SHAPE.items():
        if key in manifest and not isinstance(manifest[key], kind):
            return f"field {key!r} is not a JSON {kinds[kind]}"
    for key, kind in _COUNTS_SHAPE.items():
        value = manifest.get("counts", {}).get(key)
        if value is not None and not isinstance(value, kind):
            return f"field 'counts.{key}' is not a JSON {kinds[kind]}"
        if key in ("rejections", "warnings") and isinstance(value, dict) and not all(_is_count(v) for v in value.values()):
            return f"field 'counts.{key}' does not hold a count per reason"
        if key in ("price_bands", "categories") and isinstance(value, dict):
            if not all(isinstance(v, dict) and all(_is_count(n) for n in v.values()) for v in value.values()):
                return f"field 'counts.{key}' does not hold an object of counts per split"
    bands = manifest.get("recipe", {}).get("price_bands")
    if bands is not None and not (isinstance(bands, list) and all(isinstance(b, (int, float)) and not isinstance(b, bool) for b in bands)):
        return "field 'recipe.price_bands' is not a list of numbers"
    for n, source in enumerate(manifest.get("sources", [])):
        if not isinstance(source, dict) or not isinstance(source.get("label"), str):
            return f"field 'sources[{n}]' is not an object with a 'label'"
    return None


def list_datasets(home: Path | None = None, problems: list[str] | None = None) -> list[Dataset]:
    """Every readable dataset under the data home, by name.

    An unreadable one never hides the others: its one-line problem goes to
    ``problems`` (when given) and it is left out.
    """
    root = datasets_dir(home)
    if not root.exists():
        return []
    out = []
    for p in sorted(root.iterdir()):
        if p.name.startswith(".") or not (p / MANIFEST).exists():
            continue
        try:
            check_dataset_name(p.name)
            out.append(open_folder(p, source="home"))
        except DatasetError as exc:
            if problems is not None:
                problems.append(str(exc))
    return out
