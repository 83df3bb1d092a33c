"""Curation at scale: 1,000,000 raw Amazon 2023 records, local engine (1 and N processes) and Ray.

The input is the real shared records (``../shared/data/amazon-2023-raw``:
435 priced, 300 unpriced) repeated with varied ``parent_asin`` and titles
(so text de-duplication keeps the copies and 100,000 items reach sampling,
the split, the leakage check and parquet), written into a temporary folder
(never the repository). Every copy of a record nearly duplicates the
others, so the leakage check is at its worst: about half the train items
are near-duplicates of a test item.

One table, measured in one run, each build in a fresh process (so its peak
RSS is its own), end to end: reading, decoding, price parsing, scrubbing,
de-duplication, sampling, split, leakage check, fingerprint and parquet.
Beside every build, plain ``orjson`` decoding of the same file (one process)
is timed again, and the ratio is taken to that neighbour, because the
machine is shared and its speed drifts. Records/s per core is wall time:
records / wall seconds / processes.

Also measured, for each engine: a build whose worker is killed (SIGKILL)
mid-run must fail with one clear line and leave no dataset folder.

With ``--baseline SRC`` (e.g. the ``src`` folder of an exported main) every
local build also runs with that code, right after the build of this tree on
the same input, and its rows are marked ``baseline``: a side-by-side
comparison that the machine's drift affects least. ``cpu s`` is the build's
user + system CPU seconds (its own and its worker processes'): on a shared
machine it shows the work done when the wall time only shows the neighbours.

    .venv/bin/python bench/curation_scale.py [--records 1000000] [--workers N]
        [--big 4000000] [--ray-records 100000] [--no-ray | --ray-only] [--baseline SRC] [--repeat N]

``--repeat N`` runs each local build at ``--records`` N times (with
``--baseline``: each (this, baseline) pair, alternating) and prints the
medians, which are the figures to read: on a host whose speed drifts by 10%
between two consecutive builds, one build cannot show a change smaller
than that. The ``--big`` row runs once.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared" / "data" / "amazon-2023-raw"
WORDS = "classic deluxe premium compact travel family value pro ultra mini max plus select original advanced".split()


def make_input(path: Path, records: int) -> int:
    """``records`` raw lines: the shared records repeated, ``parent_asin`` and title varied per copy."""
    import orjson

    base = []
    for name in sorted(os.listdir(SHARED)):
        with open(SHARED / name, "rb") as fh:
            base += [orjson.loads(line) for line in fh if line.strip()]
    written = copy = 0
    with path.open("wb") as out:
        while written < records:
            for record in base:
                if written >= records:
                    break
                row = dict(record)
                row["parent_asin"] = f"{record.get('parent_asin') or 'X'}-{copy}"
                if isinstance(record.get("title"), str):
                    n = len(WORDS)
                    row["title"] = f"{record['title']} {WORDS[copy % n]} {WORDS[(copy // n) % n]} edition {copy}"
                out.write(orjson.dumps(row))
                out.write(b"\n")
                written += 1
            copy += 1
    return written


# ----------------------------------------------------------------------------- children (fresh processes)


def _peak_rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child_orjson(path: str) -> None:
    import orjson

    start = time.perf_counter()
    n = 0
    with open(path, "rb") as fh:
        for line in fh:
            orjson.loads(line)
            n += 1
    print(json.dumps({"seconds": time.perf_counter() - start, "records": n}))


def child_build(path: str, workers: int, home: str, engine: str) -> None:
    from price_bench.data.catalog import build_dataset

    timings: dict[str, float] = {}
    start = time.perf_counter()
    if engine == "ray":
        import ray
        import ray.data

        ray.init(address="local", num_cpus=workers, object_store_memory=400 * 1024 * 1024, include_dashboard=False,
                 log_to_driver=False, configure_logging=False)
        ray.data.DataContext.get_current().enable_progress_bars = False
    ds = build_dataset("bench", path, workers=workers, home=Path(home), engine=engine, timings=timings)
    seconds = time.perf_counter() - start
    print(json.dumps({
        "seconds": seconds,
        "read": ds.manifest["counts"]["read"],
        "items": sum(ds.manifest["sizes"].values()),
        "fingerprint": ds.fingerprint,
        "rss_main_mb": _peak_rss_mb(),
        "rss_worker_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
        "cpu_seconds": sum(r.ru_utime + r.ru_stime for r in (resource.getrusage(resource.RUSAGE_SELF),
                                                              resource.getrusage(resource.RUSAGE_CHILDREN))),
        "timings": timings,
        "code": str(Path(sys.modules["price_bench"].__file__ or "").parent),
    }))


def _child(*args: str, timeout: float = 3600, src: str | None = None) -> dict:
    env = None
    if src is not None:  # the code under test comes from another tree (plugins are not needed to curate)
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([src, *os.environ.get("PYTHONPATH", "").split(os.pathsep)]))
    out = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, timeout=timeout, env=env)
    if out.returncode != 0:
        lines = [line for line in out.stderr.strip().splitlines() if line.strip()]
        raise RuntimeError(f"child {args[0]} failed: {lines[-1] if lines else out.returncode}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    print(json.dumps({"child": list(args[:1]) + list(args[1:2]), **result}), file=sys.stderr, flush=True)
    return result


def orjson_seconds(path: Path) -> float:
    return _child("--child-orjson", str(path))["seconds"]


def build(path: Path, workers: int, engine: str = "local", src: str | None = None) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-home-") as home:
        return _child("--child-build", str(path), "--workers", str(workers), "--home", home, "--engine", engine, src=src)


def _is_curation_worker(child, cmd: list[str]) -> bool:
    """A forked worker of the local engine: the build's own command line, not the resource tracker."""
    import psutil

    try:
        line = child.cmdline()
    except psutil.Error:
        return False
    return line[1:] == cmd[1:] and not any("resource_tracker" in part for part in line)


def killed_worker(path: Path, workers: int, engine: str = "local") -> tuple[int, str, bool]:
    """Start a build, SIGKILL one of its worker processes; (exit code, last stderr line, dataset left?).

    local: a forked curation worker, 1 s after it appears; ray: the first Ray worker process seen running the curation task
    (``ray::MapBatches(_curate_units)``), as soon as it appears.
    """
    import psutil

    with tempfile.TemporaryDirectory(prefix="bench-home-") as home:
        env = dict(os.environ, PRICE_BENCH_HOME=home, RAY_USAGE_STATS_ENABLED="0")
        cmd = [sys.executable, "-m", "price_bench", "data", "build", "killed", "--source", str(path),
               "--workers", str(workers), "--no-progress", "--engine", engine]
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if engine == "local":
            # A forked curation worker carries the parent's command line; the first child can be
            # multiprocessing's resource tracker, whose death the build rightly survives.
            deadline = time.monotonic() + 300
            while proc.poll() is None and time.monotonic() < deadline:
                workers_seen = [c for c in psutil.Process(proc.pid).children(recursive=True) if _is_curation_worker(c, cmd)]
                if workers_seen:
                    time.sleep(1.0)  # mid-unit
                    try:
                        os.kill(workers_seen[0].pid, signal.SIGKILL)
                    except ProcessLookupError:  # the worker finished first (a small input): nothing was killed
                        pass
                    break
                time.sleep(0.05)
        else:
            deadline = time.monotonic() + 300
            while proc.poll() is None and time.monotonic() < deadline:
                running = [c for c in psutil.Process(proc.pid).children(recursive=True) if _runs(c, "_curate_units")]
                if running:
                    os.kill(running[0].pid, signal.SIGKILL)
                    break
                time.sleep(0.05)
        _, err = proc.communicate(timeout=600)
        left = (Path(home) / "datasets" / "killed").exists() or any((Path(home) / "datasets").glob(".killed*")) \
            if (Path(home) / "datasets").exists() else False
        return proc.returncode, (err.strip().splitlines() or [""])[-1], left


def _runs(process, task: str) -> bool:
    try:
        return task in " ".join(process.cmdline())
    except Exception:  # gone, or not ours to read
        return False


# ----------------------------------------------------------------------------- the table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--big", type=int, default=0, help="also the N-process build at this many records (e.g. 4000000)")
    parser.add_argument("--ray-records", type=int, default=100_000)
    parser.add_argument("--no-ray", action="store_true")
    parser.add_argument("--ray-only", action="store_true", help="only the Ray rows (build and killed worker)")
    parser.add_argument("--baseline", help="a src folder of other code (e.g. main's): its local builds run beside these")
    parser.add_argument("--repeat", type=int, default=1,
                        help="run each local build at --records N times (with --baseline: alternating pairs); print medians")
    parser.add_argument("--child-orjson")
    parser.add_argument("--child-build")
    parser.add_argument("--home")
    parser.add_argument("--engine", default="local")
    args = parser.parse_args()
    if args.child_orjson:
        return child_orjson(args.child_orjson)
    if args.child_build:
        return child_build(args.child_build, args.workers, args.home, args.engine)
    if not SHARED.is_dir():
        sys.exit(f"skipped: {SHARED} not found (the shared real records are needed)")
    from rich.console import Console
    from rich.table import Table

    cpus = len(os.sched_getaffinity(0))
    load_before = os.getloadavg()[0]
    rows: list[tuple] = []
    notes: list[str] = []
    fingerprints: dict[int, str] = {}
    walls: dict[tuple[int, int, str], list[tuple[float, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="curation-scale-") as tmp:
        configs = [] if args.ray_only else [(args.records, 1, "local"), (args.records, args.workers, "local")]
        if args.big and not args.ray_only:
            configs.append((args.big, args.workers, "local"))
        if not args.no_ray:
            configs.append((args.ray_records, args.workers, "ray"))
        inputs: dict[int, Path] = {}
        one_process_rate: dict[tuple[int, str], list[float]] = {}  # the median of them is the 1-process figure
        for records, workers, engine in configs:
            if records not in inputs:
                for old in list(inputs.values()):
                    old.unlink()
                inputs = {records: Path(tmp) / f"raw-{records}.jsonl"}
                make_input(inputs[records], records)
            path = inputs[records]
            versions = [("this", None)] + ([("baseline", args.baseline)] if args.baseline and engine == "local" else [])
            if engine == "local" and records == args.records:
                versions = versions * max(1, args.repeat)
            for code, src in versions:
                load = os.getloadavg()[0]
                decode = orjson_seconds(path)
                try:
                    r = build(path, workers, engine, src)
                except RuntimeError as exc:
                    rows.append((f"{records:,}", code, engine, str(workers), "failed", "-", "-", "-", f"{decode:.1f}", "-", "-",
                                 "-", "-", f"{load:.1f}", str(exc)[:60]))
                    continue
                rate = r["read"] / r["seconds"]
                walls.setdefault((records, workers, code), []).append((r["seconds"], r["seconds"] / decode))
                if workers == 1 and engine == "local":
                    one_process_rate.setdefault((records, code), []).append(rate)
                base = statistics.median(one_process_rate[(records, code)]) if (records, code) in one_process_rate else None
                scaling = f"{rate / base:.2f}x" if workers > 1 and base else "-"
                fingerprints.setdefault(records, r["fingerprint"])
                same = "same" if fingerprints[records] == r["fingerprint"] else "DIFFERENT"
                rows.append((
                    f"{records:,}", code, engine, str(workers), f"{r['seconds']:.1f}", f"{r.get('cpu_seconds', 0):.1f}",
                    f"{rate:,.0f}", f"{rate / workers:,.0f}", f"{decode:.1f}", f"{r['seconds'] / decode:.1f}x", scaling,
                    f"{r['items']:,}",
                    f"{r['rss_main_mb']:,.0f} / {r['rss_worker_mb']:,.0f}" if engine == "local" else f"{r['rss_main_mb']:,.0f} (driver)",
                    f"{load:.1f}", f"{r['fingerprint'][7:19]} {same}",
                ))
                stages = ", ".join(f"{k} {v:.1f}s" for k, v in r["timings"].items())
                notes.append(f"{records:,} {code} {engine} x{workers}: {stages}")
        path = inputs[next(iter(inputs))]
        killed = [] if args.ray_only else [("local", *killed_worker(path, args.workers))]
        if not args.no_ray:
            killed.append(("ray", *killed_worker(path, args.workers, "ray")))
    table = Table(title=f"Curation at scale — {cpus} CPUs, machine shared with other engineers (busy: load {load_before:.1f} "
                        f"at start, {os.getloadavg()[0]:.1f} at end)")
    for column in ("raw records", "code", "engine", "processes", "wall s", "cpu s", "records/s", "records/s/core",
                   "orjson s (beside)", "x orjson", "vs 1 process", "items out", "peak RSS MB main / worker", "load",
                   "fingerprint"):
        table.add_column(column, justify="left" if column in ("code", "engine", "fingerprint") else "right")
    for row in rows:
        table.add_row(*row)
    console = Console(width=200)
    console.print(table)
    console.print("Where the time goes (wall seconds per stage):")
    for note in notes:
        console.print(f"  {note}")
    _print_medians(console, walls)
    for engine, code, line, left in killed:
        when = "1 s after a curation worker appears" if engine == "local" else "as soon as a Ray worker runs the curation task"
        console.print(f"Killed worker, {engine} (SIGKILL {when}, {args.workers} processes): exit {code}, dataset left behind: "
                      f"{'YES' if left else 'no'}; message: {line}")


def _print_medians(console, walls: dict[tuple[int, int, str], list[tuple[float, float]]]) -> None:
    """Median wall seconds (and x orjson) per configuration, 1 -> N scaling, and this code's ratio to the baseline."""
    for (records, workers, code), runs in walls.items():
        if len(runs) < 2:
            continue
        wall, ratio = statistics.median(w for w, _ in runs), statistics.median(x for _, x in runs)
        line = (f"Median of {len(runs)}, {code}, {records:,} records x{workers}: {wall:.1f} s wall, "
                f"{records / wall / workers:,.0f} records/s per core, {ratio:.2f}x orjson")
        one = walls.get((records, 1, code))
        if workers > 1 and one and len(one) > 1:
            line += f"; 1 -> {workers} processes: {statistics.median(w for w, _ in one) / wall:.2f}x"
        console.print(line)
    for (records, workers, code), runs in walls.items():
        if code != "this" or (records, workers, "baseline") not in walls:
            continue
        base = walls[(records, workers, "baseline")]
        mine_s, base_s = (statistics.median(w for w, _ in r) for r in (runs, base))
        mine_x, base_x = (statistics.median(x for _, x in r) for r in (runs, base))
        console.print(f"Side by side, {records:,} records x{workers} ({len(runs)} + {len(base)} alternating builds): median "
                      f"{mine_s:.1f} s ({mine_x:.2f}x orjson) this, {base_s:.1f} s ({base_x:.2f}x orjson) baseline: "
                      f"this takes {mine_s / base_s:.3f} of the baseline's wall time ({mine_x / base_x:.3f} of its x orjson)")


if __name__ == "__main__":
    main()
