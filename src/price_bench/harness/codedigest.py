"""A digest of a predictor's implementation, so that an edited predictor recomputes.

:func:`code_digest` hashes the source files of the package that holds the
predictor's class (every ``*.py`` under it, by relative path and content):
``price_bench_frontier.predictors.FrontierZeroShot`` -> all of
``price_bench_frontier``; a top-level module -> that file. Files are found
through the module's import spec, which points at the sources for an
editable install and at ``site-packages`` for a wheel alike; when no source
can be read (a zip import), the installed distribution's ``RECORD`` hashes
stand in. The digest is part of the prediction-cache key and the work-folder
name.

Escape hatch, for a change known not to matter (a docstring, a refactor)
when recomputing would cost money: ``price-bench run --keep-cache-on-code-change``
or ``PRICE_BENCH_KEEP_CACHE_ON_CODE_CHANGE=1`` reuses the answers and fits
made by an earlier version of the code (same id, config, versions, seed and
data) and adopts them under the new digest.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import importlib.util
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from price_bench.predictors.registry import PredictorRegistry

KEEP_ENV = "PRICE_BENCH_KEEP_CACHE_ON_CODE_CHANGE"
DIGEST_CHARS = 16


def keep_cache_on_code_change(flag: bool = False) -> bool:
    """True when the escape hatch is on (the flag, or the environment variable)."""
    return flag or os.environ.get(KEEP_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def _package_of(module_name: str) -> str:
    """The package holding ``module_name`` (the module itself when it is a package or top-level)."""
    module = sys.modules.get(module_name)
    if module is not None and hasattr(module, "__path__"):
        return module_name
    parent = module_name.rpartition(".")[0]
    return parent or module_name


def _source_files(package: str) -> list[tuple[str, Path]]:
    """(relative name, path) of the package's ``*.py`` files, sorted; a single module gives one file."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return []
    if spec is None:
        return []
    if spec.submodule_search_locations:
        files = []
        for root in spec.submodule_search_locations:
            base = Path(root)
            if base.is_dir():
                files += [(p.relative_to(base).as_posix(), p) for p in base.rglob("*.py") if "__pycache__" not in p.parts]
        return sorted(files)
    if spec.origin and spec.origin.endswith(".py") and Path(spec.origin).is_file():
        return [(Path(spec.origin).name, Path(spec.origin))]
    return []


def _record_hashes(package: str) -> list[str]:
    """RECORD lines of the distribution that ships ``package`` (fallback for unreadable sources)."""
    top = package.split(".")[0]
    for dist_name in importlib.metadata.packages_distributions().get(top, []):
        try:
            files = importlib.metadata.distribution(dist_name).files or []
        except importlib.metadata.PackageNotFoundError:
            continue
        return sorted(f"{f}:{f.hash.value if f.hash else ''}" for f in files if str(f).startswith(top + "/"))
    return []


@functools.cache
def package_digest(package: str) -> str:
    """sha256 (first :data:`DIGEST_CHARS` hex digits) of the package's sources ('' when none are found)."""
    sha = hashlib.sha256()
    files = _source_files(package)
    if files:
        for name, path in files:
            try:
                data = path.read_bytes()
            except OSError:
                continue
            sha.update(name.encode() + b"\0" + hashlib.sha256(data).digest())
    else:
        lines = _record_hashes(package)
        if not lines:
            return ""
        sha.update("\n".join(lines).encode())
    return sha.hexdigest()[:DIGEST_CHARS]


def code_digest(predictor_cls: type) -> str:
    """The digest of the implementation of ``predictor_cls`` (see the module docstring)."""
    return package_digest(_package_of(predictor_cls.__module__))


def stale_cache_keys(cache_path: Path, registry: PredictorRegistry | None = None) -> list[dict[str, Any]]:
    """Cache keys written by a version of a predictor's code other than the installed one.

    Returns one dict per stale key (the ``keys`` table's columns plus
    ``current_digest``); keys of predictors that are not installed, or whose
    class cannot be imported, are left out (nothing to compare with). For
    ``price-bench cache`` to show.
    """
    import sqlite3

    if registry is None:
        from price_bench.plugins.manager import get_registry

        registry = get_registry()
    if not Path(cache_path).exists():
        return []
    conn = sqlite3.connect(f"file:{Path(cache_path)}?mode=ro", uri=True)
    try:
        columns = [row[1] for row in conn.execute("PRAGMA table_info(keys)")]
        if "code_digest" not in columns:
            rows = [dict(zip(columns, r), code_digest="") for r in conn.execute("SELECT * FROM keys")]
        else:
            rows = [dict(zip(columns, r)) for r in conn.execute("SELECT * FROM keys")]
    finally:
        conn.close()
    stale = []
    for row in rows:
        if row["predictor_id"] not in registry:
            continue
        try:
            current = code_digest(registry.get(row["predictor_id"]).load())
        except Exception:
            continue
        if row.get("code_digest", "") != current:
            stale.append({**row, "current_digest": current})
    return stale
