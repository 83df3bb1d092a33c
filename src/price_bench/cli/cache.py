"""``price-bench cache``: inspect, check and clear the prediction cache.

* ``cache info [--predictor ID] [--json]``: where the file is, its size, the
  cached predictions per predictor, and any corrupt copies moved aside;
* ``cache check``: SQLite's integrity check; exit 1 with one line when the
  file is damaged;
* ``cache clear [--predictor ID]``: forget the predictions of one predictor
  (or all of them).

A damaged file is never deleted: ``info`` and ``clear`` (like ``run``) move it
aside to ``predictions.sqlite.corrupt-<UTC time>`` with a one-line warning and
go on with an empty cache. Nothing heavy is imported at module level.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from price_bench.names import printable

if TYPE_CHECKING:  # the cache module is imported when a command runs
    from price_bench.harness.cache import PredictionCache

predictor_option = click.option("--predictor", "predictor_id", default=None, metavar="ID", help="Only this predictor id.")


def _path() -> Path:
    from price_bench.harness.cache import default_cache_path

    return default_cache_path()


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in (path, path.with_name(path.name + "-wal")) if p.exists())


def _open(path: Path) -> PredictionCache:
    from price_bench.harness.cache import PredictionCache

    try:
        return PredictionCache(path)
    except (sqlite3.Error, OSError) as exc:
        raise click.ClickException(f"cannot open the prediction cache {path}: {type(exc).__name__}: {exc}") from None


@click.group("cache")
def cache_group() -> None:
    """Inspect, check and clear the prediction cache (<data home>/cache/predictions.sqlite)."""


@cache_group.command("info")
@predictor_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable JSON output.")
def info_cmd(predictor_id: str | None, as_json: bool) -> None:
    """Cached predictions per predictor, file size, and corrupt copies moved aside."""
    from price_bench.harness.cache import aside_files

    path = _path()
    rows: list[dict[str, Any]] = []
    if path.exists():
        with _open(path) as cache:
            rows = [r for r in cache.summary() if predictor_id is None or r["predictor"] == predictor_id]
    aside = [{"path": str(p), "bytes": p.stat().st_size} for p in aside_files(path)]
    stale = _stale_counts(path)
    for r in rows:
        r["stale_keys"] = stale.get(r["predictor"], 0)
    if as_json:
        click.echo(json.dumps({"path": str(path), "exists": path.exists(), "bytes": _size(path) if path.exists() else 0,
                               "predictors": rows, "moved_aside": aside}, indent=2))
        return
    if not path.exists():
        click.echo(f"no prediction cache yet at {path}")
    else:
        total = sum(r["predictions"] for r in rows)
        click.echo(f"{path}: {_size(path):,} bytes, {total:,} cached predictions")
        for r in rows:
            note = f"  ({r['stale_keys']} stale: written by other code of the predictor)" if r["stale_keys"] else ""
            click.echo(printable(f"  {r['predictor']:<24} {r['predictions']:>10,} predictions  {r['keys']:>4} run key(s){note}"))
        if predictor_id is not None and not rows:
            click.echo(f"  nothing cached for {predictor_id!r}")
    for entry in aside:
        click.echo(f"moved aside (corrupt, bytes kept): {entry['path']} ({entry['bytes']:,} bytes)")


def _stale_counts(path: Path) -> dict[str, int]:
    """Per predictor id: how many cache keys were written by code other than the installed one."""
    from price_bench.harness.codedigest import stale_cache_keys

    try:
        stale = stale_cache_keys(path)
    except Exception:  # a damaged file or a broken plugin: info still shows the rest
        return {}
    counts: dict[str, int] = {}
    for row in stale:
        counts[row["predictor_id"]] = counts.get(row["predictor_id"], 0) + 1
    return counts


@cache_group.command("check")
def check_cmd() -> None:
    """Run SQLite's integrity check on the cache; exit 1 with one line when it is damaged."""
    path = _path()
    if not path.exists():
        click.echo(f"no prediction cache yet at {path}")
        return
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
        try:
            result = [row[0] for row in conn.execute("PRAGMA integrity_check").fetchall()]
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        result = [str(exc).splitlines()[0] if str(exc) else type(exc).__name__]
    if result == ["ok"]:
        click.echo(f"{path}: ok")
        return
    raise click.ClickException(
        f"{path}: damaged ({result[0]}); the next run (or `price-bench cache clear`) moves it aside, keeping its bytes"
    )


@cache_group.command("clear")
@predictor_option
def clear_cmd(predictor_id: str | None) -> None:
    """Forget the cached predictions of one predictor (--predictor) or of every predictor."""
    path = _path()
    if not path.exists():
        click.echo(f"no prediction cache yet at {path}")
        return
    with _open(path) as cache:
        n = cache.clear_predictor(predictor_id)
    who = f"of {predictor_id}" if predictor_id else "of every predictor"
    click.echo(f"removed {n:,} cached predictions {who} from {path}")


def register(cli: click.Group) -> None:
    """Add ``cache`` to ``cli``."""
    cli.add_command(cache_group)
