"""QLoRA training with the transformers ``Trainer``.

Layout of a predictor's workdir::

    checkpoints/checkpoint-N/   Trainer checkpoints (adapter, optimizer, scheduler, RNG):
                                a rerun after an interrupt resumes from the last one;
                                removed once training finished (unless keep_checkpoints)
    checkpoints/runs/           TensorBoard logs (with report_to=tensorboard)
    initial_eval.json           validation loss of the untrained adapter (kept across resumes)
    adapter/                    the final adapter in PEFT format, plus the tokenizer
    training.json               the training summary (losses, steps, timings)

The Trainer was chosen over a custom loop because it already does
checkpointing with optimizer/scheduler/RNG state, exact resumption, paged
optimizers, schedulers and TensorBoard/W&B reporting; it runs on the CPU
with a bitsandbytes 4-bit model.

Under ``accelerate launch --num_processes N`` or ``torchrun --nproc_per_node N``
(``WORLD_SIZE`` set; see :mod:`price_bench_qlora.launch`) the same code trains
data-parallel (DDP; gloo on the CPU): ``batch_size`` stays the *global* batch
(``batch_size / N`` per process), so the number of optimizer steps is the same
as in one process; only the main process writes files, and every process
resumes from the same checkpoint.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any, Iterator, Sequence

from price_bench import Item

from price_bench_qlora.config import QLoRAConfig, effective_optimizer
from price_bench_qlora.prompts import PadCollator, PromptEncoder

log = logging.getLogger(__name__)

CHECKPOINTS = "checkpoints"
ADAPTER = "adapter"
SUMMARY = "training.json"
INITIAL_EVAL = "initial_eval.json"


class ExampleSet:
    """A map-style dataset of tokenized examples that counts the tokens it hands out."""

    def __init__(self, examples: list[dict[str, list[int]]]) -> None:
        self.examples = examples
        self.tokens_served = 0

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, index: int) -> dict[str, list[int]]:
        example = self.examples[index]
        self.tokens_served += len(example["input_ids"])
        return example


def build_examples(items: Sequence[Item], encoder: PromptEncoder) -> ExampleSet:
    """Tokenize items into training examples (loss on the answer only)."""
    return ExampleSet([encoder.train_example(item.text, item.price) for item in items])


def attach_lora(model: Any, config: QLoRAConfig) -> Any:
    """Prepare a (possibly k-bit) base model for training and wrap it with a fresh LoRA adapter."""
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    if getattr(model, "is_loaded_in_4bit", False) or getattr(model, "is_loaded_in_8bit", False):
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=config.gradient_checkpointing)
    elif config.gradient_checkpointing:
        model.gradient_checkpointing_enable()
        model.enable_input_require_grads()
    if config.gradient_checkpointing:
        model.config.use_cache = False
    lora = LoraConfig(
        r=config.lora_r,
        lora_alpha=config.effective_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=list(config.target_modules),
        bias="none",
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, lora)


def world_size() -> int:
    """Processes in this data-parallel run (``WORLD_SIZE`` from accelerate/torchrun; 1 when launched plainly)."""
    try:
        return max(1, int(os.environ.get("WORLD_SIZE", "1")))
    except ValueError:
        return 1


def per_process_batch(config: QLoRAConfig, processes: int) -> int:
    """``batch_size`` is the global batch: each of ``processes`` processes gets an equal share."""
    if config.batch_size % processes:
        raise ValueError(f"batch_size ({config.batch_size}) must be a multiple of the {processes} training processes")
    return config.batch_size // processes


def training_arguments(config: QLoRAConfig, workdir: Path, *, cuda: bool, seed: int, has_eval: bool) -> Any:
    """The ``TrainingArguments`` for one fit (data-parallel when launched with several processes)."""
    from transformers import TrainingArguments

    dtype = config.compute_dtype if config.compute_dtype != "auto" else ("bfloat16" if cuda else "float32")
    processes = world_size()
    per_device = per_process_batch(config, processes)
    parallel = {"ddp_backend": "nccl" if cuda else "gloo", "ddp_find_unused_parameters": False} if processes > 1 else {}
    return TrainingArguments(
        output_dir=str(workdir / CHECKPOINTS),
        num_train_epochs=config.epochs,
        max_steps=config.max_steps,
        per_device_train_batch_size=per_device,
        per_device_eval_batch_size=per_device,
        **parallel,
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        learning_rate=config.learning_rate,
        optim=effective_optimizer(config, cuda),
        lr_scheduler_type=config.lr_scheduler,
        warmup_steps=config.warmup_ratio,  # a float in [0, 1) is a ratio of the total steps
        eval_strategy="steps" if has_eval else "no",
        eval_steps=config.eval_steps,
        save_strategy="steps",
        save_steps=config.save_steps,
        save_total_limit=config.save_total_limit,
        logging_steps=config.logging_steps,
        logging_first_step=True,
        seed=seed,
        data_seed=seed,
        report_to=list(config.report_to) or "none",
        use_cpu=not cuda,
        bf16=cuda and dtype == "bfloat16",  # gradient checkpointing is set on the model by attach_lora
        fp16=cuda and dtype == "float16",
        remove_unused_columns=False,
        label_names=["labels"],
        dataloader_pin_memory=cuda,
        dataloader_num_workers=0,
        disable_tqdm=True,
    )


def _log_callback() -> Any:
    """A TrainerCallback that sends the Trainer's log lines (loss, eval_loss, ...) to this module's logger."""
    from transformers import TrainerCallback

    class LogToLogging(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs:
                shown = {k: round(v, 4) if isinstance(v, float) else v for k, v in logs.items()}
                log.info("qlora step %s/%s: %s", state.global_step, state.max_steps, shown)

    return LogToLogging()


def last_checkpoint(workdir: Path) -> str | None:
    """The newest complete Trainer checkpoint in ``workdir``, if any."""
    from transformers.trainer_utils import get_last_checkpoint

    folder = workdir / CHECKPOINTS
    return get_last_checkpoint(str(folder)) if folder.is_dir() else None


def train_adapter(
    model: Any,
    tokenizer: Any,
    encoder: PromptEncoder,
    train: Sequence[Item],
    validation: Sequence[Item],
    config: QLoRAConfig,
    workdir: Path,
    *,
    cuda: bool,
    seed: int,
    callbacks: Sequence[Any] = (),
) -> tuple[Any, dict[str, Any]]:
    """Train a LoRA adapter on ``model``; resume from the last checkpoint in ``workdir`` if there is one.

    Returns the trained PEFT model and the training summary (also written to
    ``training.json``); the adapter is saved in ``workdir/adapter``.
    """
    from transformers import PrinterCallback, Trainer, set_seed

    set_seed(seed)  # the LoRA initialisation happens before the Trainer seeds anything
    peft_model = attach_lora(model, config)
    train_set = build_examples(train, encoder)
    eval_set = build_examples(validation, encoder) if validation else None
    args = training_arguments(config, workdir, cuda=cuda, seed=seed, has_eval=eval_set is not None)
    trainer = Trainer(
        model=peft_model,
        args=args,
        train_dataset=train_set,
        eval_dataset=eval_set,
        data_collator=PadCollator(tokenizer.pad_token_id),
        callbacks=[_log_callback(), *callbacks],
    )
    trainer.remove_callback(PrinterCallback)  # progress goes to logging, not stdout
    resume = last_checkpoint(workdir)
    main = trainer.is_world_process_zero()
    with cpu_4bit_training_mode(peft_model):
        initial = _initial_eval(trainer, workdir, resume, eval_set, write=main)
        started = time.perf_counter()
        output = trainer.train(resume_from_checkpoint=resume)
        train_seconds = time.perf_counter() - started
        tokens = train_set.tokens_served * world_size()  # each process counts its own shard
        final_eval = _final_eval(trainer, eval_set)
    if main:
        save_adapter(peft_model, tokenizer, workdir)
        if not config.keep_checkpoints:
            remove_checkpoints(workdir)
    trainable, total = peft_model.get_nb_trainable_parameters()
    summary = {
        "train_loss": [[e["step"], e["loss"]] for e in trainer.state.log_history if "loss" in e],
        "val_loss": _val_curve(trainer.state.log_history, initial),
        "val_loss_initial": initial,
        "val_loss_final": final_eval,
        "train_loss_mean": output.training_loss,
        "global_step": trainer.state.global_step,
        "resumed_from": Path(resume).name if resume else None,
        "train_items": len(train_set),
        "validation_items": len(eval_set) if eval_set is not None else 0,
        "trainable_parameters": trainable,
        "total_parameters": total,
        "optimizer": str(getattr(args.optim, "value", args.optim)),
        "train_seconds": round(train_seconds, 3),
        "train_tokens_per_second": round(tokens / train_seconds, 2) if train_seconds > 0 else None,
        "processes": world_size(),
        "per_process_batch": args.per_device_train_batch_size,
    }
    if main:
        (workdir / SUMMARY).write_text(json.dumps(summary, indent=2))
    trainer.accelerator.wait_for_everyone()  # no process leaves before the adapter and summary are written
    return peft_model, summary


@contextlib.contextmanager
def cpu_4bit_training_mode(model: Any) -> Iterator[None]:
    """Keep bitsandbytes 4-bit CPU layers in their trainable weight layout while training.

    On CPUs with AVX512-BF16, a ``Linear4bit`` in eval mode repacks its
    weight into an inference-only layout on the first no-grad forward (an
    eval step). Back in training, that layout's kernel has no autograd, so
    gradients would silently stop flowing through the frozen base layers
    to the LoRA weights below them. This turns the repacking off (undoing
    any already done) for the duration and restores it afterwards, so
    inference keeps the fast kernel.
    """
    layers = _cpu_4bit_layers(model)
    saved = [layer.support_avx512bf16_for_cpu for layer in layers]
    for layer in layers:
        layer.support_avx512bf16_for_cpu = False
        _unpack_cpu_weight(layer)
    try:
        yield
    finally:
        for layer, flag in zip(layers, saved):
            layer.support_avx512bf16_for_cpu = flag


def _cpu_4bit_layers(model: Any) -> list[Any]:
    try:
        import bitsandbytes as bnb
    except ImportError:
        return []
    return [
        module
        for module in model.modules()
        if isinstance(module, bnb.nn.Linear4bit) and hasattr(module, "support_avx512bf16_for_cpu") and module.weight.device.type == "cpu"
    ]


def _unpack_cpu_weight(layer: Any) -> None:
    state = getattr(layer.weight, "quant_state", None)
    if state is not None and getattr(state, "packing_format_for_cpu", False):
        from bitsandbytes.functional import _convert_weight_packed_for_cpu_inverse

        layer.weight.data, layer.weight.quant_state = _convert_weight_packed_for_cpu_inverse(layer.weight.data, state)


def _val_curve(log_history: list[dict[str, Any]], initial: float | None) -> list[list[float]]:
    """``[step, eval_loss]`` pairs, starting with the untrained adapter's loss at step 0."""
    curve = [[e["step"], e["eval_loss"]] for e in log_history if "eval_loss" in e]
    if initial is not None and not any(step == 0 for step, _ in curve):
        curve.insert(0, [0, initial])
    return curve


def _initial_eval(trainer: Any, workdir: Path, resume: str | None, eval_set: ExampleSet | None, *, write: bool = True) -> float | None:
    """Validation loss before any training; remembered on disk so a resumed run still reports it.

    Every process evaluates (a collective step under DDP); only ``write`` ones touch the file.
    """
    path = workdir / INITIAL_EVAL
    if resume is not None:
        return json.loads(path.read_text())["eval_loss"] if path.is_file() else None
    if eval_set is None:
        if write:
            path.unlink(missing_ok=True)
        return None
    loss = float(trainer.evaluate()["eval_loss"])
    if write:
        path.write_text(json.dumps({"eval_loss": loss}))
    return loss


def _final_eval(trainer: Any, eval_set: ExampleSet | None) -> float | None:
    """Validation loss of the trained adapter (reusing an eval already logged at the last step)."""
    if eval_set is None:
        return None
    step = trainer.state.global_step
    for entry in reversed(trainer.state.log_history):
        if "eval_loss" in entry and entry.get("step") == step:
            return float(entry["eval_loss"])
    return float(trainer.evaluate()["eval_loss"])


def remove_checkpoints(workdir: Path) -> None:
    """Delete the Trainer checkpoints once the adapter is saved, so a refit starts afresh (TensorBoard logs stay)."""
    for folder in (workdir / CHECKPOINTS).glob("checkpoint-*"):
        shutil.rmtree(folder, ignore_errors=True)


def save_adapter(peft_model: Any, tokenizer: Any, workdir: Path) -> Path:
    """Save the adapter (PEFT format) and tokenizer to ``workdir/adapter`` atomically."""
    target = workdir / ADAPTER
    tmp = workdir / f".{ADAPTER}.tmp"
    if tmp.exists():
        shutil.rmtree(tmp)
    peft_model.save_pretrained(str(tmp))
    tokenizer.save_pretrained(str(tmp))
    if target.exists():
        shutil.rmtree(target)
    tmp.rename(target)
    return target
