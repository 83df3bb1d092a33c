"""``price-bench data``: build, list, inspect and show curated datasets.

Errors are one line on stderr and a non-zero exit code, never a traceback.
rich and pyarrow are imported inside the commands, so ``--help`` stays fast.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from rich.console import Console

    from price_bench.data.dataset import Dataset
    from price_bench.data.pipeline import Progress


def _fail(message: str) -> None:
    """One line, ``Error: ...``, exit 1: the error style of every price-bench command (:func:`price_bench.cli.errors.fail`)."""
    from price_bench.cli.errors import fail

    fail(message)


def _os_error(exc: OSError) -> str:
    """``<file>: <reason>`` for an OSError, one line."""
    where = f"{exc.filename}: " if exc.filename else ""
    return f"{where}{exc.strerror or exc}"


@contextmanager
def _one_line_errors() -> Iterator[None]:
    """A DatasetError or OSError inside becomes :func:`_fail`'s one line (never a traceback)."""
    from price_bench.data.dataset import DatasetError

    try:
        yield
    except DatasetError as exc:
        _fail(str(exc))
    except OSError as exc:
        _fail(_os_error(exc))


def _console() -> Console:
    from rich.console import Console

    # emoji=False: ":x:" in product text stays ":x:".
    return Console(highlight=False, soft_wrap=False, emoji=False, width=max(100, int(os.environ.get("COLUMNS", "100") or 100)))


def _safe(value: object) -> str:
    """Dataset-supplied text (names, product text, categories, manifest fields) escaped for Rich markup."""
    from price_bench.cli.harness import _safe as safe  # markup escaped, control characters shown as \\x1b

    return safe(value)


def _split_csv(values: tuple[str, ...]) -> list[str]:
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


@click.group("data")
def data_group() -> None:
    """Build, list, inspect and show curated datasets."""


@data_group.command("build")
@click.argument("name")
@click.option("--source", "sources", multiple=True, help="File, folder, hf (with --categories) or hf://... URL; repeatable.")
@click.option("--categories", multiple=True, help="Category names (comma-separated or repeated), e.g. Appliances.")
@click.option("--train-source", "train_sources", multiple=True, help="Source for train/validation only (needs --test-source).")
@click.option("--test-source", "test_sources", multiple=True, help="Source whose items are the whole test split.")
@click.option("--recipe", default="reference-2023@1", show_default=True, help="Curation recipe id.")
@click.option("--strict", is_flag=True, help="Fail at the first bad input line.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Read at most N raw records per source file.")
@click.option("--workers", type=click.IntRange(min=0), default=0, help="Curate in N processes (default 0: all cores).")
@click.option("--engine", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="local: processes on this machine; ray: a Ray Data pipeline (pip install price-bench[ray]).")
@click.option("--address", default=None, help="Ray cluster address for --engine ray (default: RAY_ADDRESS, else a local Ray).")
@click.option("--progress/--no-progress", default=True, show_default=True, help="Per-source progress lines on stderr.")
@click.option("--force", is_flag=True, help="Replace dataset NAME when it already exists.")
def build_cmd(name: str, sources: tuple[str, ...], categories: tuple[str, ...], train_sources: tuple[str, ...],
              test_sources: tuple[str, ...], recipe: str, strict: bool, limit: int | None, workers: int, engine: str,
              address: str | None, progress: bool, force: bool) -> None:
    """Curate sources into dataset NAME (demo: generate the synthetic catalog).

    NAME: 1-64 letters, digits, '.', '_' or '-', starting with a letter or
    digit (the same rule as `run --dataset` and `leaderboard --dataset`). An
    existing NAME is only replaced with --force.

    --source hf --categories all streams every category of the Hub
    repository (PRICE_BENCH_HF_MIRROR: a local folder laid out like it).
    """
    from price_bench.data.catalog import DEMO, build_dataset, build_demo
    from price_bench.data.dataset import check_dataset_name, datasets_dir

    shown = 0

    def on_problem(message: str) -> None:
        nonlocal shown
        shown += 1
        if shown <= 20:
            click.echo(f"warning: {message}", err=True)

    with _one_line_errors():
        check_dataset_name(name)
        if not force and (datasets_dir() / name).exists():
            _fail(f"dataset {name!r} already exists at {datasets_dir() / name}; pass --force to replace it")
        if name == DEMO and not (sources or train_sources or test_sources):
            dataset = build_demo(overwrite=force)
        else:
            if not (sources or train_sources):
                _fail("give at least one --source (or --train-source with --test-source)")
            dataset = build_dataset(
                name,
                *sources,
                categories=_split_csv(categories) or None,
                train_source=list(train_sources) or None,
                test_source=list(test_sources) or None,
                recipe=recipe,
                strict=strict,
                limit=limit,
                workers=workers,
                on_problem=on_problem,
                on_progress=_print_progress if progress else None,
                engine=engine,
                address=address,
                overwrite=force,
            )
    if shown > 20:
        click.echo(f"warning: ... and {shown - 20} more problems (counted in the manifest)", err=True)
    sizes = dataset.manifest["sizes"]
    tag = " [synthetic]" if dataset.synthetic else ""
    click.echo(
        f"built {dataset.name}{tag}: train {sizes['train']}, validation {sizes['validation']}, test {sizes['test']} "
        f"({dataset.fingerprint[:19]}) at {dataset.path}"
    )


def _print_progress(p: Progress) -> None:
    """``progress: <category>: N read, N accepted, N rejected (N read/s, ...)`` on stderr."""
    from price_bench.names import printable

    seconds = max(p.seconds, 1e-9)
    name = printable(p.category or os.path.basename(p.label))
    state = "done" if p.done else "reading"
    click.echo(
        f"progress: {name}: {p.read:,} read, {p.accepted:,} accepted, {p.rejected:,} rejected "
        f"({p.read / seconds:,.0f} read/s, {p.accepted / seconds:,.0f} accepted/s, {p.rejected / seconds:,.0f} rejected/s) {state}",
        err=True,
    )


_json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable JSON output.")


def _echo_json(data: object) -> None:
    import json

    click.echo(json.dumps(data, indent=2, default=str))


@data_group.command("list")
@_json_option
def list_cmd(as_json: bool = False) -> None:
    """List the datasets built under the data home."""
    from rich.table import Table

    from price_bench.data.dataset import list_datasets

    problems: list[str] = []
    with _one_line_errors():
        datasets = list_datasets(problems=problems)
    for problem in problems:
        click.echo(f"warning: skipped {problem}", err=True)
    if as_json:
        _echo_json([{"name": ds.name, "path": str(ds.path), "fingerprint": ds.fingerprint, "synthetic": ds.synthetic,
                     "sizes": ds.manifest.get("sizes", {}), "recipe": ds.manifest.get("recipe", {}).get("id")} for ds in datasets])
        if problems:
            sys.exit(1)
        return
    if not datasets and not problems:
        click.echo("no datasets yet; `price-bench data build demo` makes the synthetic demo")
        return
    table = Table(title="Datasets")
    for column in ("name", "train", "validation", "test", "recipe", "synthetic", "fingerprint"):
        table.add_column(column)
    for ds in datasets:
        sizes = ds.manifest.get("sizes", {})
        table.add_row(*(_safe(cell) for cell in (
            ds.name, sizes.get("train", "?"), sizes.get("validation", "?"), sizes.get("test", "?"),
            ds.manifest.get("recipe", {}).get("id", "?"), "yes" if ds.synthetic else "no", ds.fingerprint[:19],
        )))
    _console().print(table)

    if problems:  # the readable ones are listed; the unreadable ones were named above
        sys.exit(1)


def _open(name: str) -> Dataset:
    from price_bench.data.catalog import get_dataset
    from price_bench.data.dataset import DatasetError

    try:
        ds = get_dataset(name)
    except DatasetError as exc:
        _fail(str(exc))
    except OSError as exc:
        _fail(_os_error(exc))
    if ds.source == "path":
        click.echo(f"note: dataset {ds.name} read from the folder {ds.path} (an explicit path)", err=True)
    return ds


@data_group.command("info")
@click.argument("name")
@_json_option
def info_cmd(name: str, as_json: bool = False) -> None:
    """Counts, rejections, price histogram and categories of dataset NAME."""
    from rich.table import Table

    from price_bench.data.dataset import SPLITS

    ds = _open(name)
    manifest = ds.manifest
    if as_json:
        _echo_json({"name": ds.name, "path": str(ds.path), "fingerprint": ds.fingerprint, "synthetic": ds.synthetic,
                    "manifest": manifest})
        return
    counts = manifest.get("counts", {})
    console = _console()
    synthetic = " — SYNTHETIC (generated demo data)" if ds.synthetic else ""
    console.print(f"[bold]{_safe(ds.name)}[/bold]{synthetic}\n"
                  + _safe(f"recipe {manifest.get('recipe', {}).get('id')}  fingerprint {ds.fingerprint}\n{ds.path}"))

    sizes = Table(title="Splits")
    for column in ("split", "items"):
        sizes.add_column(column)
    for split in SPLITS:
        sizes.add_row(split, _safe(manifest.get("sizes", {}).get(split, 0)))
    console.print(sizes)

    rejected = Table(title=_safe(f"Raw records: {counts.get('read', 0)} read, {counts.get('accepted_records', 0)} accepted"))
    rejected.add_column("rejected because")
    rejected.add_column("records", justify="right")
    for reason, n in counts.get("rejections", {}).items():
        if n:
            rejected.add_row(_safe(reason), _safe(n))
    for reason, n in counts.get("warnings", {}).items():
        rejected.add_row(_safe(f"(warning) {reason}"), _safe(n))
    console.print(rejected)

    raw_bands = counts.get("price_bands", {})
    bands = {split: raw_bands[split] for split in SPLITS if split in raw_bands}
    histogram = Table(title="Price histogram")
    histogram.add_column("band")
    for split in bands:
        histogram.add_column(_safe(split), justify="right")
    histogram.add_column("test share")
    edges = manifest.get("recipe", {}).get("price_bands") or []
    labels = [f"${low:g}-{high:g}" for low, high in zip(edges, edges[1:])] or list(next(iter(bands.values()), {}).keys())
    test_total = max(1, sum(bands.get("test", {}).values()))
    for label in labels:
        test_n = bands.get("test", {}).get(label, 0)
        histogram.add_row(_safe(label), *(_safe(bands[s].get(label, 0)) for s in bands), "#" * round(40 * test_n / test_total))
    console.print(histogram)

    categories = {split: counts.get("categories", {}).get(split, {}) for split in SPLITS}
    cats = Table(title="Categories")
    cats.add_column("category")
    for split in categories:
        cats.add_column(split, justify="right")
    names = sorted({c for per in categories.values() for c in per})
    for cat in names:
        cats.add_row(_safe(cat), *(_safe(categories[s].get(cat, 0)) for s in categories))
    console.print(cats)

    sources = Table(title="Sources")
    for column in ("source", "format", "role", "records", "accepted", "sha256"):
        sources.add_column(column)
    for src in manifest.get("sources", []):
        sources.add_row(*(_safe(cell) for cell in (src["label"], src.get("format"), src.get("role", "any"), src.get("records"),
                                                    src.get("accepted"), (src.get("sha256") or "-")[:19])))
    console.print(sources)


@data_group.command("show")
@click.argument("name")
@click.option("--split", type=click.Choice(["train", "validation", "test"]), default="test", show_default=True)
@click.option("-n", "count", type=click.IntRange(min=1), default=5, show_default=True)
@_json_option
def show_cmd(name: str, split: str, count: int, as_json: bool = False) -> None:
    """Print the first N items of a split."""
    from rich.table import Table

    from price_bench.data.dataset import DatasetError

    ds = _open(name)
    try:
        items = ds.items(split)[:count]
    except DatasetError as exc:
        _fail(str(exc))
        return
    if as_json:
        _echo_json([{"id": i.id, "price": i.price, "category": i.category, "title": i.title, "text": i.text} for i in items])
        return
    title = f"{ds.name} / {split} (first {len(items)})" + (" — SYNTHETIC" if ds.synthetic else "")
    table = Table(title=_safe(title), show_lines=True)
    table.add_column("id")
    table.add_column("price", justify="right")
    table.add_column("category")
    table.add_column("text")
    for item in items:
        text = item.text if len(item.text) <= 300 else item.text[:297] + "..."
        table.add_row(_safe(item.id), f"${item.price:,.2f}", _safe(item.category or "-"), _safe(text))
    _console().print(table)


def register(cli: click.Group) -> None:
    """Add this module's commands to ``cli``."""
    cli.add_command(data_group)
