"""`price-bench data build` on awkward input and leftover state."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import price_bench_faults_data_kit as kit  # loaded by tests/faults/conftest.py


def _text(i: int, extra: str = "") -> str:
    return f"Sturdy kitchen gadget number {i} made of steel, dishwasher safe, five year warranty, ships fast {extra}".strip()


def _write_csv(path: Path, rows: list[dict], header: list[str] | None = None) -> Path:
    header = header or ["id", "text", "price", "category"]
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=header, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def _rows(n: int = 60) -> list[dict]:
    return [{"id": f"p{i}", "text": _text(i), "price": f"{5 + i * 3}.99", "category": "Kitchen"} for i in range(n)]


def faults_data_dead_pid() -> int:
    """A pid that is certainly not running (a child that has exited and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_csv_warnings_name_the_right_line_after_multiline_fields(tmp_path):
    """Case: CSV whose earlier rows hold line breaks inside quoted fields. Outcome: each warning names the file line where the bad row starts."""
    rows = _rows(40)
    for i in (3, 7):
        rows[i]["text"] = _text(i, "\nwith a second line\nand a third")
    rows[20]["price"] = "about ten dollars"
    rows[30]["text"] = ""
    path = _write_csv(tmp_path / "items.csv", rows)
    physical = path.read_text().split("\n")
    line_of = {row.split(",", 1)[0]: n for n, row in enumerate(physical, 1) if row.startswith("p")}

    built = kit.invoke("data", "build", "csvlines", "--source", str(path), "--recipe", "demo@1")

    assert built.exit_code == 0, built.output
    warnings = [line for line in kit.lines(built.stderr) if line.startswith("warning:")]
    assert f"warning: {path}:{line_of['p20']}: unparseable price ('about ten dollars')" in warnings, warnings
    assert f"warning: {path}:{line_of['p30']}: missing text" in warnings, warnings
    assert line_of["p20"] == 20 + 2 + 4  # header, 0-based ids, and 2 x 2 extra physical lines


def test_csv_without_a_price_column_is_one_line(tmp_path):
    """Case: CSV without a price column. Outcome: one line saying the column is missing (with the header), exit 1, instead of a warning per row; nothing written to the data home."""
    path = _write_csv(tmp_path / "noprice.csv", _rows(200), header=["id", "text", "category"])

    built = kit.invoke("data", "build", "noprice", "--source", str(path))

    kit.assert_one_line_error(built, str(path), "no 'price' column", "header: id, text, category")
    assert not [line for line in kit.lines(built.stderr) if line.startswith("warning:")]


def test_build_over_an_existing_name_needs_force(tmp_path, price_bench_home):
    """Case: `data build NAME` when NAME exists. Outcome: refused with one line pointing at --force (the old dataset untouched); with --force it is replaced."""
    path = _write_csv(tmp_path / "items.csv", _rows())
    first = kit.invoke("data", "build", "kitchen", "--source", str(path), "--recipe", "demo@1")
    assert first.exit_code == 0, first.output
    manifest = price_bench_home / "datasets" / "kitchen" / "manifest.json"
    before = manifest.read_bytes()

    again = kit.invoke("data", "build", "kitchen", "--source", str(path), "--recipe", "demo@1")
    kit.assert_one_line_error(again, "already exists", "--force")
    assert manifest.read_bytes() == before

    forced = kit.invoke("data", "build", "kitchen", "--source", str(path), "--recipe", "demo@1", "--force")
    assert forced.exit_code == 0, forced.output
    assert manifest.exists()


def test_stale_temporary_folders_are_cleaned_on_the_next_build(tmp_path, price_bench_home):
    """Case: a killed build left hidden .NAME.tmp-PID-* / .curate-PID-* folders (with an accepted.pkl) in the data home and a price-bench-curate-* folder in the system temp folder. Outcome: the next build removes the stale ones (their pid is gone) and keeps a live build's."""
    datasets = price_bench_home / "datasets"
    dead, live = faults_data_dead_pid(), os.getpid()
    stale = [datasets / f".kitchen.tmp-{dead}-abcd1234", datasets / f".curate-{dead}-zz9xk2"]
    kept = datasets / f".kitchen.tmp-{live}-efgh5678"
    for folder in (*stale, kept):
        folder.mkdir(parents=True)
        (folder / "accepted.pkl").write_bytes(b"x" * 1000)
    system_stale = Path(tempfile.mkdtemp(prefix=f"price-bench-curate-{dead}-"))
    (system_stale / "accepted.pkl").write_bytes(b"x" * 1000)
    path = _write_csv(tmp_path / "items.csv", _rows())

    built = kit.invoke("data", "build", "kitchen", "--source", str(path), "--recipe", "demo@1")

    assert built.exit_code == 0, built.output
    assert not any(folder.exists() for folder in stale)
    assert not system_stale.exists()
    assert kept.exists()
    leftovers = [p.name for p in datasets.iterdir() if p.name.startswith(".") and p != kept]
    assert leftovers == []  # this build's own spill and temporary folder are gone too


def test_curated_text_is_capped_at_the_recipe_maximum(tmp_path, price_bench_home):
    """Case: an item row whose text is 1 MB. Outcome: stored cut to the recipe's max_chars (4,000) and counted as a warning in the manifest; nothing else changes."""
    from price_bench.data.catalog import get_dataset
    from price_bench.data.curation import TEXT_CAPPED, get_recipe

    rows = _rows()
    rows[5]["text"] = _text(5, "word " * 200_000)
    path = _write_csv(tmp_path / "items.csv", rows)

    built = kit.invoke("data", "build", "capped", "--source", str(path), "--recipe", "demo@1")

    assert built.exit_code == 0, built.output
    ds = get_dataset("capped")
    limit = get_recipe("demo@1").max_chars
    texts = {item.id: item.text for split in ("train", "validation", "test") for item in ds.items(split)}
    assert max(len(t) for t in texts.values()) <= limit
    assert len(texts["p5"]) > limit // 2
    assert ds.manifest["counts"]["warnings"][TEXT_CAPPED] == 1


def test_build_reports_a_write_error_in_one_line(tmp_path, price_bench_home):
    """Case: the datasets folder is a file, so nothing can be written. Outcome: one line naming it, exit 1, before curating."""
    (price_bench_home / "datasets").write_text("not a folder")
    path = _write_csv(tmp_path / "items.csv", _rows())

    built = kit.invoke("data", "build", "kitchen", "--source", str(path))

    kit.assert_one_line_error(built, "cannot write to the data home", str(price_bench_home / "datasets"))
