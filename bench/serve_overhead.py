"""Serving overhead without the model: the app's CPU per request with a stub predictor, in process, tree against tree.

``bench/serve_throughput.py`` measures the whole server over HTTP; on a busy
machine its wall-clock figures mostly measure the other tenants. This script
isolates what the serving code itself costs: it builds the demo bundle of
``tfidf-ridge`` once, then, for each ``--tree`` (a source tree: its src/ and
plugins/*/src on PYTHONPATH) in its own process, builds the app from the
bundle, swaps the predictor for a stub that answers $12.50 at once, and
drives the ASGI app directly (no sockets, no uvicorn) with the demo texts:
single items at concurrency 1 and 8, batches of 100 at concurrency 1. It
prints CPU ms per request and per item (process CPU time, so the other
tenants matter less), phase by phase, trees back to back, plus the ratio to
the first tree. The model's own cost and uvicorn's HTTP parsing are not in
these figures (see serve_throughput.py's ceiling table for the model).

Run: .venv/bin/python bench/serve_overhead.py --tree main=/path/to/main --tree branch=. [--requests 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PHASES = ((1, 1), (1, 8), (100, 1))


def _worker(args: argparse.Namespace) -> None:
    """In the tree's process: the app with a stub predictor, driven through ASGI; prints one JSON line."""
    from price_bench import Prediction
    from price_bench.serve.app import ServeSettings, create_app

    texts = json.loads(Path(args.texts).read_text())
    app = create_app(ServeSettings(bundle=args.bundle, log_dir=args.log_dir))
    service = app.state.service

    class Stub:
        config = service.predictor.config

        def predict(self, items):
            return [Prediction(price=12.5) for _ in items]

        def close(self) -> None:
            pass

    service.predictor.close()
    service.predictor = Stub()

    def body(i: int, batch: int) -> bytes:
        if batch == 1:
            return json.dumps({"id": f"r{i}", "text": texts[i % len(texts)]}).encode()
        return json.dumps({"items": [{"id": f"r{i}-{j}", "text": texts[(i * batch + j) % len(texts)]} for j in range(batch)]}).encode()

    async def call(data: bytes) -> int:
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
                 "path": "/v1/predict", "raw_path": b"/v1/predict", "query_string": b"", "root_path": "",
                 "headers": [(b"host", b"bench"), (b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())],
                 "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 8000)}
        sent, status = False, [0]

        async def receive():
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": data, "more_body": False}
            await asyncio.sleep(3600)

        async def send(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]

        await app(scope, receive, send)
        return status[0]

    async def phase(batch: int, concurrency: int, n: int) -> dict:
        bodies = [body(i, batch) for i in range(n)]
        for data in bodies[:20]:
            assert await call(data) == 200
        pending = iter(bodies)
        errors = 0

        async def client() -> None:
            nonlocal errors
            for data in pending:
                errors += await call(data) != 200

        cpu, wall = time.process_time(), time.perf_counter()
        await asyncio.gather(*(client() for _ in range(concurrency)))
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        return {"batch": batch, "concurrency": concurrency, "requests": n, "errors": errors,
                "cpu_ms_per_request": cpu * 1000 / n, "cpu_ms_per_item": cpu * 1000 / (n * batch), "wall_ms_per_request": wall * 1000 / n}

    try:
        import uvloop

        run = uvloop.run
    except ImportError:
        run = asyncio.run
    batch, concurrency = args.batch, args.concurrency
    n = args.requests if batch == 1 else max(50, args.requests // 10)
    print(json.dumps(run(phase(batch, concurrency, n))))


def _tree_env(tree: str) -> dict:
    root = Path(tree).resolve()
    if not (root / "src" / "price_bench").is_dir():
        raise SystemExit(f"--tree {tree}: no src/price_bench under it")
    paths = [root / "src", *sorted((root / "plugins").glob("*/src"))]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(str(p) for p in paths)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", action="append", default=[], metavar="LABEL=PATH", required=True)
    parser.add_argument("--requests", type=int, default=2000, help="Single-item requests per phase (batches: a tenth).")
    parser.add_argument("--rounds", type=int, default=2, help="Each phase this many times per tree, interleaved; the best round is kept.")
    for hidden in ("--worker", "--bundle", "--texts", "--log-dir", "--batch", "--concurrency"):
        parser.add_argument(hidden, help=argparse.SUPPRESS, **({"action": "store_true"} if hidden == "--worker" else {}))
    args = parser.parse_args()
    if args.worker:
        args.batch, args.concurrency = int(args.batch), int(args.concurrency)
        _worker(args)
        return
    sys.path.insert(0, str(Path(__file__).parent))
    import serve_throughput
    from rich.console import Console
    from rich.table import Table

    trees = [spec.partition("=")[::2] for spec in args.tree]
    console = Console(width=160)
    with tempfile.TemporaryDirectory(prefix="price-bench-serve-overhead-") as tmp_name:
        tmp = Path(tmp_name)
        env = {**os.environ, "PRICE_BENCH_HOME": str(tmp / "home"), "PRICE_BENCH_RESULTS": str(tmp / "results"),
               "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
        bundle, texts = serve_throughput._prepare(env, tmp)
        (tmp / "texts.json").write_text(json.dumps(texts))
        best: dict[tuple[str, int, int], dict] = {}
        for round_ in range(args.rounds):
            for batch, concurrency in PHASES:
                for label, tree in trees:
                    out = subprocess.run(
                        [sys.executable, __file__, "--tree", "x=y", "--worker", "--bundle", str(bundle), "--texts", str(tmp / "texts.json"),
                         "--log-dir", str(tmp / f"log-{label}-{round_}"), "--batch", str(batch), "--concurrency", str(concurrency),
                         "--requests", str(args.requests)],
                        env={**_tree_env(tree), **{k: env[k] for k in ("PRICE_BENCH_HOME", "PRICE_BENCH_RESULTS", "OMP_NUM_THREADS")}},
                        capture_output=True, text=True, timeout=900,
                    )
                    if out.returncode != 0:
                        raise SystemExit(f"{label}: {out.stderr[-2000:]}")
                    row = json.loads(out.stdout.strip().splitlines()[-1])
                    key = (label, batch, concurrency)
                    if key not in best or row["cpu_ms_per_request"] < best[key]["cpu_ms_per_request"]:
                        best[key] = row
        table = Table(title=f"serving overhead with a stub predictor (in process, ASGI, no model), best of {args.rounds} interleaved rounds")
        for column in ("request", "concurrency", "code", "requests", "errors", "CPU ms/request", "CPU ms/item", f"vs {trees[0][0]}"):
            table.add_column(column, justify="right")
        for batch, concurrency in PHASES:
            base = best[(trees[0][0], batch, concurrency)]
            for label, _tree in trees:
                row = best[(label, batch, concurrency)]
                table.add_row("single" if batch == 1 else f"batch of {batch}", str(concurrency), label, str(row["requests"]), str(row["errors"]),
                              f"{row['cpu_ms_per_request']:.3f}", f"{row['cpu_ms_per_item']:.4f}",
                              f"{row['cpu_ms_per_request'] / base['cpu_ms_per_request']:.2f}x")
        console.print(table)
        load = os.getloadavg()
        console.print(f"load average at the end (1/5/15 min): {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} on {os.cpu_count()} CPUs")
        print(json.dumps([{"code": k[0], **v} for k, v in best.items()]))


if __name__ == "__main__":
    main()
