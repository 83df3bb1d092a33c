"""Curation throughput and peak memory on >= 200,000 raw Amazon 2023 records.

The real shared records (``../shared/data/amazon-2023-raw``: 435 priced and
300 unpriced) are repeated with varied ``parent_asin`` into a temporary
JSON-lines file. Two inputs:

* ``real, ids varied``: the shared records, only ``parent_asin`` changes, so
  text de-duplication collapses the copies (the later stages see ~435 items);
* ``demo generator``: as many distinct synthetic records in the same format,
  so 100,000 items (the recipe's ``max_items``) reach sampling, the split,
  the leakage check and the parquet writer.

Rates are given per wall-clock second and per CPU-second (process plus
worker CPU time): on a shared machine the second is the fair per-core
figure. Each configuration runs in a fresh process (so peak RSS is its own) and
builds a dataset end to end: read, JSON decode, curate, de-duplicate,
sample, split, leakage check, write. Side by side, the same run measures a
reproduction of the reference pipeline's per-record rule set
(ed-donner/llm_engineering ``week6/pricer/parser.py``: float price, window,
scrub, ``MIN_CHARS``), on already-decoded records ("parse only", what the
reference's own rate covers) and with ``json.loads`` first.

    .venv/bin/python bench/curation_throughput.py [--records 200000] [--workers N]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared" / "data" / "amazon-2023-raw"


def make_input(path: Path, records: int, kind: str) -> int:
    """Write ``records`` raw lines (``real`` shared records or ``demo``); returns the count written."""
    if kind == "demo":
        from price_bench.data import demo

        demo.write_raw(path, n=records, seed=1)
        return records
    base = []
    for name in sorted(os.listdir(SHARED)):
        with open(SHARED / name, encoding="utf-8") as fh:
            base += [json.loads(line) for line in fh if line.strip()]
    written = 0
    with path.open("w", encoding="utf-8") as out:
        copy = 0
        while written < records:
            for record in base:
                if written >= records:
                    break
                row = dict(record)
                row["parent_asin"] = f"{record.get('parent_asin') or 'X'}-{copy}"
                out.write(json.dumps(row))
                out.write("\n")
                written += 1
            copy += 1
    return written


# ----------------------------------------------------------------------------- reference rule set (reproduced)

REF_MIN_CHARS, REF_MIN_PRICE, REF_MAX_PRICE, REF_EACH, REF_TOTAL = 600, 0.5, 999.49, 3000, 4000
REF_REMOVALS = ["Part Number", "Best Sellers Rank", "Batteries Included?", "Batteries Required?", "Item model number"]
REF_PATTERN = re.compile(r"\b(?=[A-Z0-9]{7,}\b)(?=.*[A-Z])(?=.*\d)[A-Z0-9]+\b")


def _ref_simplify(text_list) -> str:
    return str(text_list).replace("\n", " ").replace("\r", "").replace("\t", "").replace("  ", " ").strip()[:REF_EACH]


def _ref_weight(details) -> float:
    weight = details.get("Item Weight")
    if weight:
        parts = weight.split(" ")
        try:
            amount, unit = float(parts[0]), parts[1].lower()
        except (ValueError, IndexError):
            return 0
        return {"pounds": amount, "ounces": amount / 16, "grams": amount / 453.592}.get(unit, 0)
    return 0


def ref_parse(datapoint) -> dict | None:
    """The reference ``parse`` rules (details may be a JSON string, as from its HF loader, or a dict)."""
    try:
        price = float(datapoint["price"])
    except (ValueError, TypeError):
        return None
    if REF_MIN_PRICE <= price <= REF_MAX_PRICE:
        details = datapoint["details"]
        details = json.loads(details) if isinstance(details, str) else dict(details)
        weight = _ref_weight(details)
        for remove in REF_REMOVALS:
            details.pop(remove, None)
        result = datapoint["title"] + "\n"
        if datapoint["description"]:
            result += _ref_simplify(datapoint["description"]) + "\n"
        if datapoint["features"]:
            result += _ref_simplify(datapoint["features"]) + "\n"
        if details:
            result += json.dumps(details) + "\n"
        full = REF_PATTERN.sub("", result).strip()[:REF_TOTAL]
        if len(full) >= REF_MIN_CHARS:
            return {"title": datapoint["title"], "price": price, "full": full, "weight": weight}
    return None


def reference_rates(path: Path, cap: int = 100_000) -> tuple[float, float]:
    """(records per CPU-second for json.loads + parse, for parse alone), one core."""
    with path.open("rb") as fh:
        lines = [line for _, line in zip(range(cap), fh)]
    start = time.process_time()
    decoded = [json.loads(line) for line in lines]
    for record in decoded:
        ref_parse(record)
    both = time.process_time() - start
    # details as the JSON string the reference's HF loader gave it
    for record in decoded:
        if isinstance(record.get("details"), dict):
            record["details"] = json.dumps(record["details"])
    start = time.process_time()
    for record in decoded:
        ref_parse(record)
    parse_only = time.process_time() - start
    return len(lines) / both, len(lines) / parse_only


# ----------------------------------------------------------------------------- one measured build (child process)


def _peak_rss_kb() -> int:
    """This process's own peak RSS (VmHWM; ru_maxrss would include the parent's before exec)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _cpu_seconds() -> float:
    """CPU time of this process and its finished children (the worker pool)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def child(path: str, workers: int, home: str) -> None:
    from price_bench.data.catalog import build_dataset

    cpu_before = _cpu_seconds()
    start = time.perf_counter()
    dataset = build_dataset("bench", path, workers=workers, home=Path(home))
    seconds = time.perf_counter() - start
    cpu = _cpu_seconds() - cpu_before
    self_kb = _peak_rss_kb()
    children_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    counts = dataset.manifest["counts"]
    print(json.dumps({
        "seconds": seconds,
        "cpu_seconds": cpu,
        "read": counts["read"],
        "items": sum(dataset.manifest["sizes"].values()),
        "rss_main_mb": self_kb / 1024,
        "rss_worker_mb": children_kb / 1024,
    }))


def run_child(path: Path, workers: int) -> dict:
    with tempfile.TemporaryDirectory() as home:
        out = subprocess.run(
            [sys.executable, __file__, "--child", str(path), "--workers", str(workers), "--home", home],
            check=True, capture_output=True, text=True,
        )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--child")
    parser.add_argument("--home")
    args = parser.parse_args()
    if args.child:
        child(args.child, args.workers, args.home)
        return
    if not SHARED.is_dir():
        sys.exit(f"skipped: {SHARED} not found (the shared real records are needed)")
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"Curation throughput, {args.records:,} raw records, {os.cpu_count()} CPUs")
    for column in ("input", "pipeline", "processes", "wall s", "records/s (wall)", "records/CPU-s", "items out", "peak RSS main", "peak RSS worker"):
        table.add_column(column, justify="right" if column not in ("input", "pipeline") else "left")
    with tempfile.TemporaryDirectory() as tmp:
        for label, kind in (("real, ids varied", "real"), ("demo generator", "demo")):
            path = Path(tmp) / f"raw-{kind}.jsonl"
            make_input(path, args.records, kind)
            for workers in sorted({1, args.workers}):
                r = run_child(path, workers)
                rate = r["read"] / r["seconds"]
                table.add_row(label, "price-bench build (end to end)", str(workers), f"{r['seconds']:.1f}", f"{rate:,.0f}",
                              f"{r['read'] / r['cpu_seconds']:,.0f}",
                              f"{r['items']:,}", f"{r['rss_main_mb']:,.0f} MB",
                              f"{r['rss_worker_mb']:,.0f} MB" if workers > 1 else "-")
            if kind == "real":
                both, parse_only = reference_rates(path)
                table.add_row(label, "reference rules: json.loads + parse", "1", "-", "-", f"{both:,.0f}", "-", "-", "-")
                table.add_row(label, "reference rules: parse only", "1", "-", "-", f"{parse_only:,.0f}", "-", "-", "-")
    Console(width=170).print(table)
    print(f"load average during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
