"""Serving throughput: ``tfidf-ridge`` served from a bundle by ``price-bench serve``, driven over HTTP.

In a fresh PRICE_BENCH_HOME: builds the demo dataset, runs ``tfidf-ridge`` on
it, bundles the run, starts ``price-bench serve BUNDLE --workers W`` on
127.0.0.1 (a real uvicorn, access log off) and drives it from a *separate*
load-generator process (aiohttp when installed, else ``httpx.AsyncClient``; one connection per concurrent
client, keep-alive) with the demo test texts:

* single-item requests at concurrency 1, 8 and 32: requests/s and p50/p95/p99 latency;
* batches of 100 items at concurrency 1, 4 and 16: items/s (16 so that the
  clients' keep-alive connections spread over both workers: at 4 they may land 3 to 1);
* every phase: error rate (any non-200 answer or transport error), the
  server's peak RSS (parent plus workers, sampled every 0.2 s) and each
  worker's share of the workers' CPU ("100/0": every connection went to one
  worker: uvicorn's workers share one listening socket, and the worker that
  wakes first accepts all the connections waiting, so a few keep-alive
  clients may leave a core idle);
* the same phases against ``--balanced N`` (default 2) one-worker servers on
  N ports, the load generator giving its clients to them in turn, as a load
  balancer in front of N single-process containers does (docs/serving.md).

Each phase is bounded: at most ``--seconds`` of traffic after a short
warm-up and at most ``--max-requests`` requests. Targets (issue 19): at least
500 single-item requests/s with p99 < 50 ms at concurrency 8 with 2 workers,
and at least 20,000 items/s in batches. The load generator shares the CPUs
with the server, and the machine is shared with other work: say so when
quoting the figures.

It also measures the ceiling: the bundle's model alone, in a child process
running each tree's code, at batch 1 and 100, printed beside that tree's best
served figure, so that a reader sees how much of the served cost is HTTP
(parsing, validation, log, metrics) and how much is the model. Every server
runs with ``--allow-code-mismatch``: the bundle is fitted by this script's
code, and another tree's plugin code has another digest. ``--tree LABEL=PATH`` (repeatable) serves the code of
another source tree (e.g. main's) and measures every phase against each
tree back to back in the same run, with a table of ratios: on a shared
machine, compare those, not absolute figures from different runs.

Run: .venv/bin/python bench/serve_throughput.py [--workers 2] [--balanced 2] [--seconds 10] [--tree main=/path/to/main --tree branch=.]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

PHASES = (("single", 1, 1), ("single", 8, 1), ("single", 32, 1), ("batch", 1, 100), ("batch", 4, 100), ("batch", 16, 100))


# -- load generator (runs in its own process) ---------------------------------------------------------


def _bodies(texts: list[str], batch: int):
    """Request bodies, cycling through the test texts (ids unique per request)."""
    i = 0
    while True:
        if batch == 1:
            yield json.dumps({"id": f"r{i}", "text": texts[i % len(texts)]}).encode()
        else:
            yield json.dumps({"items": [{"id": f"r{i}-{j}", "text": texts[(i * batch + j) % len(texts)]} for j in range(batch)]}).encode()
        i += 1


async def _drive(urls: list[str], texts: list[str], concurrency: int, batch: int, seconds: float, max_requests: int, warmup: float) -> dict:
    """``concurrency`` clients, each sending its next request when the previous answer arrived (closed loop).

    With several ``urls`` (servers), client ``k`` talks to ``urls[k % len(urls)]``
    over its own keep-alive connection: the round robin of a load balancer.
    """
    latencies: list[float] = []
    state = {"errors": 0, "sent": 0}
    bodies = _bodies(texts, batch)
    posters = [await _poster(url, -(-concurrency // len(urls))) for url in urls]
    try:
        async def client(k: int, deadline: float, record: bool) -> None:
            post = posters[k % len(posters)]
            while time.perf_counter() < deadline and (not record or state["sent"] < max_requests):
                payload = next(bodies)
                started = time.perf_counter()
                ok = await post(payload)
                if record:
                    state["sent"] += 1
                    latencies.append(time.perf_counter() - started)
                    state["errors"] += not ok

        await asyncio.gather(*(client(k, time.perf_counter() + warmup, False) for k in range(concurrency)))
        cpu, started = time.process_time(), time.perf_counter()
        await asyncio.gather(*(client(k, started + seconds, True) for k in range(concurrency)))
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    finally:
        for post in posters:
            await post.close()
    return {"requests": state["sent"], "errors": state["errors"], "seconds": elapsed, "client_cpu_s": cpu, "latencies": latencies,
            "client": posters[0].name}


async def _poster(url: str, concurrency: int):
    """An async ``post(body) -> ok`` over keep-alive connections: aiohttp when installed, else httpx."""
    headers = {"content-type": "application/json"}
    try:
        import aiohttp
    except ImportError:
        aiohttp = None
    if aiohttp is not None:
        session = aiohttp.ClientSession(
            base_url=url, connector=aiohttp.TCPConnector(limit=concurrency), timeout=aiohttp.ClientTimeout(total=30)
        )

        async def post(body: bytes) -> bool:
            try:
                async with session.post("/v1/predict", data=body, headers=headers) as response:
                    await response.read()
                    return response.status == 200
            except (aiohttp.ClientError, TimeoutError):
                return False

        post.close, post.name = session.close, f"aiohttp {aiohttp.__version__}"
        return post
    import httpx

    client = httpx.AsyncClient(base_url=url, limits=httpx.Limits(max_connections=concurrency), timeout=30.0)

    async def post(body: bytes) -> bool:
        try:
            return (await client.post("/v1/predict", content=body, headers=headers)).status_code == 200
        except httpx.HTTPError:
            return False

    post.close, post.name = client.aclose, f"httpx {httpx.__version__}"
    return post


def loadgen_main(args: argparse.Namespace) -> None:
    texts = json.loads(Path(args.texts).read_text())
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    result = asyncio.run(_drive(args.url.split(","), texts, args.concurrency, args.batch, args.seconds, args.max_requests, args.warmup))
    print(json.dumps(result))


# -- the benchmark ---------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cli(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "price_bench", *args], env=env, capture_output=True, text=True, check=True)


def _prepare(env: dict, tmp: Path) -> tuple[Path, list[str]]:
    _cli("run", "tfidf-ridge", "--dataset", "demo", "--no-progress", env=env)
    records = [p for p in (tmp / "results" / "demo" / "tfidf-ridge").glob("*.json")]
    bundle = tmp / "bundle"
    _cli("bundle", str(records[0]), "--out", str(bundle), env=env)
    import pyarrow.parquet as pq

    texts = pq.read_table(tmp / "home" / "datasets" / "demo" / "test.parquet", columns=["text"]).column("text").to_pylist()
    return bundle, texts


def _serving_children(root) -> list:
    """The processes under ``root`` that serve requests: not multiprocessing's resource tracker (always idle)."""
    import psutil

    children = []
    for proc in root.children(recursive=True):
        try:
            if any("resource_tracker" in part for part in proc.cmdline()):
                continue
        except psutil.Error:
            continue
        children.append(proc)
    return children


class RssSampler(threading.Thread):
    """Peak RSS of a process and its children, sampled every 0.2 s; their CPU seconds on demand."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak, self.stop = pid, 0, threading.Event()

    def cpu_seconds(self) -> float:
        import psutil

        root = psutil.Process(self.pid)
        total = 0.0
        for proc in [root, *root.children(recursive=True)]:
            try:
                times = proc.cpu_times()
                total += times.user + times.system
            except psutil.Error:
                pass
        return total

    def worker_cpu_seconds(self) -> dict[int, float]:
        """CPU seconds of each uvicorn worker (the server's children but multiprocessing's resource tracker), by pid."""
        import psutil

        out = {}
        root = psutil.Process(self.pid)
        for proc in _serving_children(root) or [root]:  # one worker: uvicorn serves in the process itself
            try:
                times = proc.cpu_times()
                out[proc.pid] = times.user + times.system
            except psutil.Error:
                pass
        return out

    def run(self) -> None:
        import psutil

        root = psutil.Process(self.pid)
        while not self.stop.is_set():
            try:
                procs = [root, *root.children(recursive=True)]
                self.peak = max(self.peak, sum(p.memory_info().rss for p in procs if p.is_running()))
            except psutil.Error:
                pass
            self.stop.wait(0.2)


def _serve(bundle: Path, workers: int, port: int, env: dict, log_dir: Path) -> subprocess.Popen:
    server = subprocess.Popen(
        [sys.executable, "-m", "price_bench", "serve", str(bundle), "--port", str(port), "--workers", str(workers), "--no-access-log",
         "--log-dir", str(log_dir), "--allow-code-mismatch"],  # another --tree's plugin code differs from the one that fitted
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    import httpx

    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"server exited: {server.stderr.read()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                time.sleep(2.0 if workers > 1 else 0.0)  # let the other workers finish loading
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    server.terminate()
    raise SystemExit("server did not come up within 300 s")


def _percentile(values: list[float], q: float) -> float:
    import numpy as np

    return float(np.percentile(values, q)) * 1000.0 if values else float("nan")


def _tree_env(base: dict, tree: str | None) -> dict:
    """``base`` with PYTHONPATH on ``tree``'s src/ and plugins/*/src (None: the code this script imports)."""
    if tree is None:
        return base
    root = Path(tree).resolve()
    if not (root / "src" / "price_bench").is_dir():
        raise SystemExit(f"--tree {tree}: no src/price_bench under it")
    paths = [root / "src", *sorted((root / "plugins").glob("*/src"))]
    return {**base, "PYTHONPATH": os.pathsep.join(str(p) for p in paths)}


def model_ceiling(bundle: Path, texts: list[str], seconds: float) -> list[dict]:
    """The bundle's predictor alone, in this process: items/s of ``predict`` at batch 1 and 100 (wall and CPU)."""
    import math

    from price_bench.items import Item
    from price_bench.serve.bundle import load_predictor, verify_bundle

    loaded = load_predictor(verify_bundle(bundle), allow_code_mismatch=True)  # the bundle may come from another --tree's code
    predictor = loaded[0] if isinstance(loaded, tuple) else loaded
    rows = []
    for batch in (1, 100):
        groups = [[Item(id=f"m{i}-{j}", text=texts[(i * batch + j) % len(texts)], price=math.nan) for j in range(batch)] for i in range(50)]
        for group in groups[:5]:
            predictor.predict(group)  # warm-up
        calls, cpu, started = 0, time.process_time(), time.perf_counter()
        while time.perf_counter() - started < seconds:
            predictor.predict(groups[calls % len(groups)])
            calls += 1
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
        rows.append({"batch": batch, "calls": calls, "items_per_s": calls * batch / wall, "cpu_ms_per_item": cpu * 1000 / (calls * batch),
                     "ms_per_call": wall * 1000 / calls})
    predictor.close()
    return rows


def _tree_ceiling(bundle: Path, texts_file: Path, tree: str | None, env: dict, seconds: float) -> list[dict]:
    """:func:`model_ceiling` run by ``tree``'s code (its PYTHONPATH), in a child process."""
    out = subprocess.run([sys.executable, __file__, "--ceiling", str(bundle), "--texts", str(texts_file), "--seconds", str(seconds)],
                         env=_tree_env(env, tree), capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _phase(ports: list[int], texts_file: Path, concurrency: int, batch: int, args: argparse.Namespace, env: dict,
           samplers: list[RssSampler]) -> dict:
    """One phase against the servers on ``ports`` (several: the load generator balances its connections over them)."""
    def workers_cpu() -> dict[int, float]:
        return {pid: cpu for sampler in samplers for pid, cpu in sampler.worker_cpu_seconds().items()}

    server_cpu, workers_before = sum(s.cpu_seconds() for s in samplers), workers_cpu()
    urls = ",".join(f"http://127.0.0.1:{port}" for port in ports)
    out = subprocess.run(
        [sys.executable, __file__, "--loadgen", "--url", urls, "--texts", str(texts_file),
         "--concurrency", str(concurrency), "--batch", str(batch), "--seconds", str(args.seconds),
         "--warmup", str(args.warmup), "--max-requests", str(args.max_requests)],
        env=env, capture_output=True, text=True, check=True, timeout=args.seconds + args.warmup + 120,
    )
    result = json.loads(out.stdout)
    server_cpu = sum(s.cpu_seconds() for s in samplers) - server_cpu  # includes the warm-up requests: an upper bound
    # each worker's share of the workers' CPU: the client's keep-alive connections are accepted by whichever worker wakes
    # first on uvicorn's shared socket, so they may all land on one worker (e.g. "100/0": one core left idle)
    spent = [max(0.0, cpu - workers_before.get(pid, 0.0)) for pid, cpu in workers_cpu().items()]
    split = "/".join(f"{100 * c / sum(spent):.0f}" for c in sorted(spent, reverse=True)) if sum(spent) > 0 else "-"
    n, secs, lat = result["requests"], result["seconds"], result["latencies"]
    return {
        "batch": batch, "concurrency": concurrency, "requests": n,
        "requests_per_s": n / secs, "items_per_s": n * batch / secs,
        "p50_ms": _percentile(lat, 50), "p95_ms": _percentile(lat, 95), "p99_ms": _percentile(lat, 99),
        "errors": result["errors"], "error_rate": result["errors"] / max(1, n), "peak_rss_mb": sum(s.peak for s in samplers) / 1e6,
        "server_cpu_ms_per_item": server_cpu * 1000 / max(1, n * batch), "client_cpu_ms_per_request": result["client_cpu_s"] * 1000 / max(1, n),
        "client": result["client"], "worker_cpu_split_pct": split,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[2], help="Server worker counts to measure.")
    parser.add_argument("--tree", action="append", default=[], metavar="LABEL=PATH",
                        help="Serve with the code of this source tree (its src/ and plugins/*/src on PYTHONPATH); repeat to compare "
                             "trees phase by phase, back to back (default: the code this script imports).")
    parser.add_argument("--balanced", type=int, default=2, metavar="N",
                        help="Also measure N one-worker servers, the load generator spreading its connections over them (0: off).")
    parser.add_argument("--seconds", type=float, default=10.0, help="Traffic per phase (after warm-up).")
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--max-requests", type=int, default=20_000, help="Most requests per phase.")
    parser.add_argument("--loadgen", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--texts", help=argparse.SUPPRESS)
    parser.add_argument("--concurrency", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--ceiling", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.loadgen:
        loadgen_main(args)
        return
    if args.ceiling:  # in a --tree's process: the model alone with that tree's code, one JSON line
        print(json.dumps(model_ceiling(Path(args.ceiling), json.loads(Path(args.texts).read_text()), seconds=args.seconds)))
        return
    from rich.console import Console
    from rich.table import Table

    trees: list[tuple[str, str | None]] = []
    for spec in args.tree:
        label, sep, path = spec.partition("=")
        if not sep or not label or not path:
            raise SystemExit(f"--tree {spec!r}: expected LABEL=PATH")
        trees.append((label, path))
    if not trees:
        trees = [("installed", None)]

    console = Console(width=220)
    with tempfile.TemporaryDirectory(prefix="price-bench-serve-bench-") as tmp_name:
        tmp = Path(tmp_name)
        env = {**os.environ, "PRICE_BENCH_HOME": str(tmp / "home"), "PRICE_BENCH_RESULTS": str(tmp / "results"),
               "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        started = time.perf_counter()
        bundle, texts = _prepare(env, tmp)
        texts_file = tmp / "texts.json"
        texts_file.write_text(json.dumps(texts))
        console.print(f"setup (demo dataset, tfidf-ridge fit and run, bundle): {time.perf_counter() - started:.1f} s; {len(texts)} test texts")
        os.environ.update({k: env[k] for k in ("PRICE_BENCH_HOME", "PRICE_BENCH_RESULTS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")})
        ceiling = []
        for label, tree in trees:  # each tree's model code in its own process, one after the other
            ceiling += [{"code": label, **row} for row in _tree_ceiling(bundle, texts_file, tree, env, seconds=min(args.seconds, 5.0))]
        table = Table(title=f"price-bench serve, tfidf-ridge bundle, {os.cpu_count()} CPUs shared by server and load generator")
        columns = ("workers", "request", "concurrency", "code", "requests/s", "items/s", "p50 ms", "p95 ms", "p99 ms", "errors",
                   "server peak RSS", "server CPU ms/item", "client CPU ms/req", "worker CPU split %")
        for column in columns:
            table.add_column(column, justify="right")
        rows = []
        # (label, uvicorn workers per server, servers): each --workers count behind one shared socket, then (--balanced N)
        # N one-worker servers with the load generator spreading its connections over them, as a load balancer would
        topologies = [(str(w), w, 1) for w in args.workers] + ([(f"{args.balanced} x 1, balanced", 1, args.balanced)] if args.balanced else [])
        for topology, workers, n_servers in topologies:
            servers = []
            try:
                for label, tree in trees:  # all trees' servers up at once: each phase runs against them back to back
                    ports, procs, samplers = [], [], []
                    for k in range(n_servers):
                        ports.append(_free_port())
                        procs.append(_serve(bundle, workers, ports[-1], _tree_env(env, tree), tmp / f"log-{label}-{topology}-{k}"))
                        samplers.append(RssSampler(procs[-1].pid))
                        samplers[-1].start()
                    servers.append((label, ports, procs, samplers))
                for kind, concurrency, batch in PHASES:
                    for label, ports, _procs, samplers in servers:
                        row = {"workers": topology, "kind": kind, "code": label, **_phase(ports, texts_file, concurrency, batch, args, env, samplers)}
                        rows.append(row)
                        table.add_row(
                            topology, "single" if batch == 1 else f"batch of {batch}", str(concurrency), label,
                            f"{row['requests_per_s']:,.0f}", f"{row['items_per_s']:,.0f}", f"{row['p50_ms']:.1f}", f"{row['p95_ms']:.1f}",
                            f"{row['p99_ms']:.1f}", str(row["errors"]), f"{row['peak_rss_mb']:,.0f} MB",
                            f"{row['server_cpu_ms_per_item']:.2f}", f"{row['client_cpu_ms_per_request']:.2f}", row["worker_cpu_split_pct"],
                        )
            finally:
                for _label, _ports, procs, samplers in servers:
                    for server, sampler in zip(procs, samplers):
                        sampler.stop.set()
                        server.terminate()
                        try:
                            server.wait(timeout=30)
                        except subprocess.TimeoutExpired:
                            server.kill()
        console.print(table)
        _print_ceiling(console, ceiling, rows)
        if len(trees) > 1:
            _print_ratios(console, rows, [label for label, _ in trees])
        console.print(f"load generator: {rows[0]['client'] if rows else '-'} in a separate process; server CPU ms/item counts the warm-up too")
        load = os.getloadavg()
        console.print(f"load average at the end of the run (1/5/15 min): {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} on {os.cpu_count()} CPUs"
                      + (" -- the machine was busy: compare the rows side by side, not with other runs" if load[0] > (os.cpu_count() or 1) else ""))
        print(json.dumps({"ceiling": ceiling, "rows": rows}))


def _print_ceiling(console, ceiling: list[dict], rows: list[dict]) -> None:
    """The model alone (in process, one thread), per tree, beside that tree's best served figure at the same batch size."""
    from rich.table import Table

    table = Table(title="ceiling: the model alone (TfidfRidge.predict in one process, one thread, each tree's code) vs served")
    for column in ("code", "batch", "model items/s", "model CPU ms/item", "model ms/call", "best served items/s (workers, concurrency)",
                   "served / model", "served server CPU ms/item (same row)"):
        table.add_column(column, justify="right")
    for c in ceiling:
        served = [r for r in rows if r["batch"] == c["batch"] and r["code"] == c.get("code", r["code"])]
        best = max(served, key=lambda r: r["items_per_s"], default=None)
        table.add_row(
            c.get("code", "-"), str(c["batch"]), f"{c['items_per_s']:,.0f}", f"{c['cpu_ms_per_item']:.3f}", f"{c['ms_per_call']:.2f}",
            f"{best['items_per_s']:,.0f} ({best['workers']}, c={best['concurrency']})" if best else "-",
            f"{best['items_per_s'] / c['items_per_s']:.2f}" if best else "-",
            f"{best['server_cpu_ms_per_item']:.3f}" if best else "-",
        )
    console.print(table)


def _print_ratios(console, rows: list[dict], labels: list[str]) -> None:
    """Each tree against the first, phase by phase (measured back to back in this run)."""
    from rich.table import Table

    base_label = labels[0]
    table = Table(title=f"side by side: each code against {base_label} (same run, phases back to back)")
    for column in ("workers", "request", "concurrency", "code", "requests/s ratio", "p99 ratio", "server CPU/item ratio"):
        table.add_column(column, justify="right")
    base = {(r["workers"], r["batch"], r["concurrency"]): r for r in rows if r["code"] == base_label}
    for r in rows:
        b = base.get((r["workers"], r["batch"], r["concurrency"]))
        if r["code"] == base_label or b is None:
            continue
        table.add_row(str(r["workers"]), "single" if r["batch"] == 1 else f"batch of {r['batch']}", str(r["concurrency"]), r["code"],
                      f"{r['requests_per_s'] / b['requests_per_s']:.2f}x", f"{r['p99_ms'] / b['p99_ms']:.2f}x",
                      f"{r['server_cpu_ms_per_item'] / b['server_cpu_ms_per_item']:.2f}x")
    console.print(table)


if __name__ == "__main__":
    main()
