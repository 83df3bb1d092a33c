"""QLoRA on a CUDA GPU: a Llama-3.1-8B-shaped model in 4-bit with LoRA r=32.

Nothing is downloaded: the model is built from a ``LlamaConfig`` with the
Llama 3.1 8B shape (32 layers, hidden 4096, MLP 14336, 32 heads / 8 KV
heads, vocabulary 128,256, llama3 RoPE) on the meta device, and every
decoder linear layer is materialised directly as a bitsandbytes
``Linear4bit`` (nf4, double quantization, bfloat16 compute) holding random
weights, so the full-precision model never exists in memory. Embeddings,
norms and the LM head are random bfloat16 tensors. Then:

* training: LoRA r=32, alpha=64, dropout 0.1 on q/k/v/o, paged AdamW 32-bit,
  bfloat16 autocast, random token batches of ``--seq-len`` tokens with the
  loss on the last ``--answer-tokens`` (like the price answer); train
  tokens/s over ``--steps`` timed steps after ``--warmup`` steps, with and
  without gradient checkpointing, and the peak GPU memory of each;
* prediction: batched left-padded greedy decoding of ``--new-tokens`` tokens
  for ``--items`` prompts of up to ``--prompt-len`` tokens; items/s and peak
  GPU memory.

The model has random weights, so only speed and memory mean anything here.
Runs in a few minutes on one H100/H200-class GPU:

    python bench/qlora_gpu.py [--steps 10] [--batch-size 16] [--items 256]

Needs torch with CUDA, transformers, peft and bitsandbytes. Where the GPU
machine lacks bitsandbytes, stage a trimmed copy (Python files plus the
CUDA 12.8/13.x libraries, about 35 MB) from a local install first and carry
it with the run; the script puts ``build/bnb-stage`` on ``sys.path`` when
bitsandbytes is not importable otherwise::

    .venv/bin/python bench/qlora_gpu.py --stage-bitsandbytes   # on the CPU machine
    python bench/qlora_gpu.py                                   # on the GPU machine (carry build/bnb-stage)

``--device cpu --tiny`` runs the same code on a tiny Llama on the CPU (a
smoke test of the script, not a benchmark).

``--num-gpus N`` (N > 1) trains data-parallel: the script starts itself under
``torchrun --standalone --nproc_per_node N``, each process builds the model on
its own GPU and trains it wrapped in ``DistributedDataParallel`` (NCCL; gloo
with ``--device cpu``) on its own random batches of ``--batch-size`` each;
the table gives train tokens/s in total and per GPU (prediction is not
repeated: it does not depend on the other GPUs).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
BNB_STAGE = REPO / "build" / "bnb-stage"
TARGET_MODULES = ["q_proj", "k_proj", "v_proj", "o_proj"]


def llama_31_8b_config(tiny: bool = False, layers: int | None = None) -> Any:
    """A ``LlamaConfig`` shaped like meta-llama/Llama-3.1-8B (or a tiny one for smoke tests; ``layers`` overrides the depth)."""
    from transformers import LlamaConfig

    rope = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
            "original_max_position_embeddings": 8192}
    shape = dict(vocab_size=128_256, hidden_size=4096, intermediate_size=14_336, num_hidden_layers=32,
                 num_attention_heads=32, num_key_value_heads=8, max_position_embeddings=131_072)
    if tiny:
        shape = dict(vocab_size=1024, hidden_size=128, intermediate_size=256, num_hidden_layers=2,
                     num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=8192)
    if layers:
        shape["num_hidden_layers"] = layers
    return LlamaConfig(
        **shape, rms_norm_eps=1e-5, rope_theta=500_000.0, rope_scaling=rope, tie_word_embeddings=False,
        bos_token_id=128_000 if not tiny else 1, eos_token_id=128_001 if not tiny else 2,
        pad_token_id=None, attention_bias=False, mlp_bias=False,
    )


def build_4bit_llama(config: Any, device: str, dtype: Any) -> Any:
    """A random-weight ``LlamaForCausalLM`` whose decoder linears are bnb 4-bit nf4, built without a full-precision copy."""
    import bitsandbytes as bnb
    import torch
    from torch import nn
    from transformers import LlamaForCausalLM

    with torch.device("meta"):
        model = LlamaForCausalLM(config)
    generator = torch.Generator(device=device).manual_seed(0)
    for module in list(model.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, nn.Linear) and name != "lm_head":
                module._modules[name] = _random_linear4bit(bnb, child, device, dtype, generator)
    for module in model.modules():  # embeddings, norms, LM head: random or ones, in bfloat16
        for name, param in list(module._parameters.items()):
            if param is not None and param.is_meta:
                data = torch.empty(param.shape, dtype=dtype, device=device)
                if "norm" in type(module).__name__.lower():
                    data.fill_(1.0)
                else:
                    data.normal_(0.0, 0.02, generator=generator)
                module._parameters[name] = nn.Parameter(data, requires_grad=False)
    rotary_cls = type(model.model.rotary_emb)
    with torch.device(device):  # its inv_freq buffer was computed on the meta device
        model.model.rotary_emb = rotary_cls(config=config)
    quantized = sum(isinstance(m, bnb.nn.Linear4bit) and m.weight.dtype == torch.uint8 for m in model.modules())
    if quantized != 7 * config.num_hidden_layers:
        raise RuntimeError(f"expected {7 * config.num_hidden_layers} 4-bit linear layers, found {quantized}")
    leftover = [n for n, t in list(model.named_parameters()) + list(model.named_buffers()) if t.is_meta]
    if leftover:
        raise RuntimeError(f"tensors left on the meta device: {leftover[:5]}")
    model.config.use_cache = True
    return model.eval()


def _random_linear4bit(bnb: Any, linear: Any, device: str, dtype: Any, generator: Any) -> Any:
    import torch

    layer = bnb.nn.Linear4bit(
        linear.in_features, linear.out_features, bias=False, compute_dtype=dtype,
        compress_statistics=True, quant_type="nf4", device="meta",
    )
    weight = torch.empty(linear.out_features, linear.in_features, dtype=dtype, device=device)
    weight.normal_(0.0, 0.02, generator=generator)
    layer.weight = bnb.nn.Params4bit(
        weight, requires_grad=False, compress_statistics=True, quant_type="nf4", module=layer
    ).to(device)  # quantizes here; the bfloat16 tensor is freed afterwards
    return layer


def attach_lora(model: Any, r: int, gradient_checkpointing: bool) -> Any:
    """LoRA r (alpha 2r, dropout 0.1) on the attention projections, as the plugin does."""
    from peft import LoraConfig, get_peft_model

    for param in model.parameters():
        param.requires_grad = False
    if gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
        model.config.use_cache = False
    lora = LoraConfig(r=r, lora_alpha=2 * r, lora_dropout=0.1, target_modules=TARGET_MODULES, bias="none", task_type="CAUSAL_LM")
    return get_peft_model(model, lora)


def detach_lora(peft_model: Any) -> Any:
    """The base model again, LoRA layers removed, checkpointing off."""
    base = peft_model.unload()
    if getattr(base, "is_gradient_checkpointing", False):
        base.gradient_checkpointing_disable()
    base.config.use_cache = True
    return base


def _sync(device: str) -> None:
    import torch

    if device == "cuda":
        torch.cuda.synchronize()


def _reset_peak(device: str) -> None:
    import torch

    if device == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def _peak_gib(device: str) -> float:
    import torch

    return torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else float("nan")


def train_speed(model: Any, args: argparse.Namespace, device: str, dtype: Any, vocab: int) -> dict:
    """Train tokens/s and peak memory for ``args.steps`` timed optimizer steps."""
    import torch

    params = [p for p in model.parameters() if p.requires_grad]
    if device == "cuda":
        import bitsandbytes as bnb

        optimizer = bnb.optim.PagedAdamW32bit(params, lr=1e-4)
    else:
        optimizer = torch.optim.AdamW(params, lr=1e-4)
    generator = torch.Generator(device="cpu").manual_seed(1 + int(os.environ.get("RANK", "0")))  # each process its own batches
    model.train()
    _reset_peak(device)

    def step() -> float:
        ids = torch.randint(0, vocab, (args.batch_size, args.seq_len), generator=generator).to(device)
        labels = ids.clone()
        labels[:, : args.seq_len - args.answer_tokens] = -100  # loss on the answer tokens only
        with torch.autocast(device_type=device, dtype=dtype, enabled=device == "cuda"):
            loss = model(input_ids=ids, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return float(loss.detach())

    for _ in range(args.warmup):
        step()
    _sync(device)
    started = time.perf_counter()
    losses = [step() for _ in range(args.steps)]
    _sync(device)
    elapsed = time.perf_counter() - started
    del optimizer
    return {
        "s_per_step": elapsed / args.steps,
        "tokens_per_s": args.steps * args.batch_size * args.seq_len / elapsed,
        "peak_gib": _peak_gib(device),
        "loss": losses[-1],
    }


def predict_speed(model: Any, args: argparse.Namespace, device: str, vocab: int) -> dict:
    """Items/s of batched left-padded greedy decoding, and peak memory."""
    import torch
    from transformers import GenerationConfig

    model.eval()
    generator = torch.Generator(device="cpu").manual_seed(2)
    lengths = torch.randint(args.prompt_len * 6 // 10, args.prompt_len + 1, (args.items,), generator=generator).tolist()
    prompts = [torch.randint(3, vocab, (n,), generator=generator).tolist() for n in lengths]
    config = GenerationConfig(max_new_tokens=args.new_tokens, min_new_tokens=args.new_tokens, do_sample=False,
                              num_beams=1, pad_token_id=0, eos_token_id=None)

    def run(batch: list[list[int]]) -> int:
        width = max(map(len, batch))
        ids = torch.zeros((len(batch), width), dtype=torch.long)
        mask = torch.zeros_like(ids)
        for row, seq in enumerate(batch):
            ids[row, width - len(seq):] = torch.tensor(seq)
            mask[row, width - len(seq):] = 1
        with torch.inference_mode():
            out = model.generate(input_ids=ids.to(device), attention_mask=mask.to(device), generation_config=config)
        return int(out.shape[1] - width) * len(batch)

    run(prompts[: min(4, len(prompts))])  # warm-up
    _reset_peak(device)
    _sync(device)
    started = time.perf_counter()
    generated = sum(run(prompts[i : i + args.predict_batch_size]) for i in range(0, len(prompts), args.predict_batch_size))
    _sync(device)
    elapsed = time.perf_counter() - started
    return {"items_per_s": len(prompts) / elapsed, "gen_tokens_per_s": generated / elapsed, "peak_gib": _peak_gib(device)}


def stage_bitsandbytes() -> None:
    """Copy a trimmed bitsandbytes (Python files plus CUDA 12.8/13.x libraries) into build/bnb-stage."""
    spec = importlib.util.find_spec("bitsandbytes")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("qlora_gpu.py --stage-bitsandbytes: bitsandbytes is not installed here")
    source = Path(list(spec.submodule_search_locations)[0])
    target = BNB_STAGE / "bitsandbytes"
    if target.exists():
        shutil.rmtree(target)
    keep = ("libbitsandbytes_cuda128.so", "libbitsandbytes_cuda130.so", "libbitsandbytes_cuda132.so", "libbitsandbytes_cpu.so")
    shutil.copytree(source, target, ignore=lambda d, names: [n for n in names if (n.endswith(".so") and n not in keep) or n == "__pycache__"])
    size = sum(p.stat().st_size for p in target.rglob("*") if p.is_file()) / 2**20
    print(f"staged {source} -> {target} ({size:.0f} MiB); carry 'build/bnb-stage' with the GPU run")


def check_environment(device: str) -> None:
    """Exit with a one-line reason when the run cannot work here."""
    if importlib.util.find_spec("bitsandbytes") is None and (BNB_STAGE / "bitsandbytes").is_dir():
        sys.path.insert(0, str(BNB_STAGE))
    missing = [m for m in ("torch", "transformers", "peft", "bitsandbytes") if importlib.util.find_spec(m) is None]
    if missing:
        raise SystemExit(f"qlora_gpu.py: missing packages {', '.join(missing)} (see the docstring for staging bitsandbytes)")
    import torch

    if device == "cuda" and not torch.cuda.is_available():
        raise SystemExit(
            "qlora_gpu.py: no CUDA device visible to torch; run it on a GPU machine "
            "(or use '--device cpu --tiny' for a smoke test of the script)"
        )


def print_table(args: argparse.Namespace, device_name: str, build: dict, rows: list[tuple[str, dict]], predict: dict) -> None:
    compute = "bf16" if args.device == "cuda" else "float32"
    shape = "tiny Llama" if args.tiny else "Llama-3.1-8B-shaped model"
    layers = f" ({args.layers} layers)" if args.layers else ""
    print(f"\nQLoRA, {shape}{layers} with random weights, 4-bit nf4 + double quantization, {compute} compute, on {device_name}")
    print(f"model built in {build['seconds']:.1f} s; {build['footprint_gib']:.2f} GiB weights (get_memory_footprint); "
          f"LoRA r={args.r} alpha={2 * args.r} on {'/'.join(m.split('_')[0] for m in TARGET_MODULES)}: {build['trainable']:,} trainable parameters\n")
    print("| phase | setting | throughput | peak GPU memory GiB |")
    print("|---|---|---|---|")
    optimizer = "paged AdamW 32-bit" if args.device == "cuda" else "AdamW"
    for label, r in rows:
        print(f"| train | batch {args.batch_size} x {args.seq_len} tokens, {label}, {optimizer} | "
              f"{r['tokens_per_s']:,.0f} tokens/s ({r['s_per_step']:.2f} s/step) | {r['peak_gib']:.1f} |")
    print(f"| predict | greedy, {args.items} prompts <= {args.prompt_len} tokens, batch {args.predict_batch_size}, "
          f"{args.new_tokens} new tokens | {predict['items_per_s']:.1f} items/s ({predict['gen_tokens_per_s']:,.0f} gen tokens/s) "
          f"| {predict['peak_gib']:.1f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    parser.add_argument("--tiny", action="store_true", help="a tiny Llama instead of the 8B shape (smoke test)")
    parser.add_argument("--layers", type=int, default=None, help="override the number of decoder layers (32)")
    parser.add_argument("--r", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--seq-len", type=int, default=182, help="the reference's maximum sequence length")
    parser.add_argument("--answer-tokens", type=int, default=4)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--checkpointing", choices=["both", "on", "off"], default="both")
    parser.add_argument("--items", type=int, default=256)
    parser.add_argument("--prompt-len", type=int, default=160)
    parser.add_argument("--predict-batch-size", type=int, default=64)
    parser.add_argument("--new-tokens", type=int, default=4, help="Llama 3.1 writes '123.00' in 3 tokens")
    parser.add_argument("--num-gpus", type=int, default=1, help="data-parallel processes, one GPU each (torchrun + DDP)")
    parser.add_argument("--stage-bitsandbytes", action="store_true", help="copy a trimmed bitsandbytes into build/bnb-stage and exit")
    args = parser.parse_args()
    if args.stage_bitsandbytes:
        stage_bitsandbytes()
        return
    check_environment(args.device)
    if args.num_gpus > 1:
        if "LOCAL_RANK" not in os.environ:
            relaunch_with_torchrun(args.num_gpus)
            return
        data_parallel_main(args)
        return
    import torch

    device = args.device
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    config = llama_31_8b_config(tiny=args.tiny, layers=args.layers)
    started = time.perf_counter()
    model = build_4bit_llama(config, device, dtype)
    _sync(device)
    build = {"seconds": time.perf_counter() - started, "footprint_gib": model.get_memory_footprint() / 2**30}
    rows = []
    settings = {"both": [False, True], "on": [True], "off": [False]}[args.checkpointing]
    for checkpointing in settings:
        peft_model = attach_lora(model, args.r, checkpointing)
        build["trainable"] = peft_model.get_nb_trainable_parameters()[0]
        label = "gradient checkpointing" if checkpointing else "no checkpointing"
        rows.append((label, train_speed(peft_model, args, device, dtype, config.vocab_size)))
        model = detach_lora(peft_model)
        print(f"  {label}: {rows[-1][1]}", flush=True)
    peft_model = attach_lora(model, args.r, False)
    predict = predict_speed(peft_model, args, device, config.vocab_size)
    name = torch.cuda.get_device_name(0) if device == "cuda" else "CPU (smoke test)"
    print_table(args, name, build, rows, predict)


def relaunch_with_torchrun(processes: int) -> None:
    """Run this script again as ``processes`` torchrun processes (the same arguments)."""
    if sys.argv[0] == "-c" or not Path(sys.argv[0]).is_file():
        raise SystemExit("qlora_gpu.py --num-gpus: run it as a script (python bench/qlora_gpu.py ...)")
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(processes), sys.argv[0], *sys.argv[1:]]
    raise SystemExit(subprocess.call(command))


def data_parallel_main(args: argparse.Namespace) -> None:
    """One torchrun process: the model on this process's GPU, DDP training, the table on rank 0."""
    import torch
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    device = args.device
    rank, local_rank, world = int(os.environ["RANK"]), int(os.environ["LOCAL_RANK"]), int(os.environ["WORLD_SIZE"])
    if device == "cuda":
        if torch.cuda.device_count() < world:
            raise SystemExit(f"qlora_gpu.py --num-gpus {world}: only {torch.cuda.device_count()} CUDA devices visible")
        torch.cuda.set_device(local_rank)  # "cuda" below means this process's GPU
    dist.init_process_group("nccl" if device == "cuda" else "gloo")
    try:
        dtype = torch.bfloat16 if device == "cuda" else torch.float32
        config = llama_31_8b_config(tiny=args.tiny, layers=args.layers)
        started = time.perf_counter()
        model = build_4bit_llama(config, device, dtype)  # the same seed in every process: identical weights
        _sync(device)
        build = {"seconds": time.perf_counter() - started, "footprint_gib": model.get_memory_footprint() / 2**30}
        rows = []
        settings = {"both": [False, True], "on": [True], "off": [False]}[args.checkpointing]
        for checkpointing in settings:
            peft_model = attach_lora(model, args.r, checkpointing)
            build["trainable"] = peft_model.get_nb_trainable_parameters()[0]
            wrapped = DistributedDataParallel(peft_model, device_ids=[local_rank] if device == "cuda" else None, broadcast_buffers=False)
            result = train_speed(wrapped, args, device, dtype, config.vocab_size)
            totals = torch.tensor([result["tokens_per_s"], result["peak_gib"] if result["peak_gib"] == result["peak_gib"] else 0.0], dtype=torch.float64)
            if device == "cuda":
                totals = totals.cuda()
            dist.all_reduce(totals)
            label = "gradient checkpointing" if checkpointing else "no checkpointing"
            rows.append((label, {**result, "total_tokens_per_s": float(totals[0]), "per_gpu_tokens_per_s": float(totals[0]) / world,
                                 "peak_gib_mean": float(totals[1]) / world}))
            del wrapped
            model = detach_lora(peft_model)
        if rank == 0:
            name = torch.cuda.get_device_name(0) if device == "cuda" else "CPU processes (smoke test)"
            print_parallel_table(args, name, world, build, rows)
    finally:
        dist.destroy_process_group()


def print_parallel_table(args: argparse.Namespace, device_name: str, world: int, build: dict, rows: list[tuple[str, dict]]) -> None:
    shape = "tiny Llama" if args.tiny else "Llama-3.1-8B-shaped model"
    print(f"\nQLoRA data-parallel training (DDP), {shape} with random weights, 4-bit nf4, on {world} x {device_name}")
    print(f"model built in {build['seconds']:.1f} s per process; {build['footprint_gib']:.2f} GiB weights per GPU; "
          f"LoRA r={args.r}: {build['trainable']:,} trainable parameters\n")
    print("| GPUs | setting | batch per GPU | tokens/s total | tokens/s per GPU | s/step | peak GPU memory GiB (mean) |")
    print("|---|---|---|---|---|---|---|")
    for label, r in rows:
        print(f"| {world} | {label} | {args.batch_size} x {args.seq_len} | {r['total_tokens_per_s']:,.0f} | "
              f"{r['per_gpu_tokens_per_s']:,.0f} | {r['s_per_step']:.2f} | {r['peak_gib_mean']:.1f} |")


if __name__ == "__main__":
    main()
