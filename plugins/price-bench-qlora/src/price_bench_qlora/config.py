"""Configs of the ``qlora`` and ``qlora-base`` predictors.

Every field has a default and can be overridden from the CLI with
``-o qlora.key=value`` (lists as comma-separated values).

Hardware-dependent defaults (``base_model``, ``compute_dtype`` and, for
``qlora``, ``optimizer``) are resolved when the config is built, so the
effective values are what the result record shows and what the config hash
(and so the prediction cache and work folder) covers: a CPU run with
SmolLM2 and a CUDA run with Llama 3.1 never share cached answers.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from price_bench import PredictorConfig, cuda_available, predict_field, runtime_field

DEFAULT_GPU_MODEL = "meta-llama/Llama-3.1-8B"
DEFAULT_CPU_MODEL = "smollm2-135m"

Quantization = Literal["4bit", "8bit", "none"]
ComputeDtype = Literal["auto", "float32", "bfloat16", "float16"]


class BaseModelConfig(PredictorConfig):
    """Model loading and decoding: shared by ``qlora-base`` and ``qlora``."""

    base_model: str | None = Field(
        default=None,
        description="Hub id, local folder or alias ('smollm2-135m'). Unset: meta-llama/Llama-3.1-8B with CUDA, smollm2-135m without.",
    )
    quantization: Quantization = Field(default="4bit", description="4bit (nf4, double quantization), 8bit or none.")
    compute_dtype: ComputeDtype = Field(default="auto", description="Unset or auto: bfloat16 on CUDA, float32 on the CPU.")
    max_seq_length: int = Field(default=182, ge=32, description="Prompt plus answer, in tokens; longer item texts are cut.")
    max_new_tokens: int = predict_field(default=8, ge=1, le=64, description="Tokens generated per answer ('1234.00' is 7 digit tokens for SmolLM2).")
    predict_batch_size: int = predict_field(default=16, ge=1)
    expected_price: bool = predict_field(
        default=False,
        description="Probability-weighted average over the top-k numeric next tokens (each completed greedily) instead of greedy decoding.",
    )
    top_k: int = predict_field(default=3, ge=1, le=50, description="Candidates for expected-price decoding.")

    @model_validator(mode="before")
    @classmethod
    def _resolve_hardware_defaults(cls, data: Any) -> Any:
        """Fill unset hardware-dependent fields (checks CUDA once, only when one is unset)."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        unset = [
            key
            for key, auto in (("base_model", None), ("compute_dtype", "auto"), ("optimizer", None))
            if key in cls.model_fields and data.get(key, auto) in (auto, "")
        ]
        if unset:
            cuda = cuda_available()
            defaults = {
                "base_model": DEFAULT_GPU_MODEL if cuda else DEFAULT_CPU_MODEL,
                "compute_dtype": "bfloat16" if cuda else "float32",
                "optimizer": "paged_adamw_32bit" if cuda else "adamw_torch",
            }
            data.update({key: defaults[key] for key in unset})
        return data


#: On the CPU an unbounded fine-tune of even SmolLM2 takes hours, so `run --all`
#: trains on this many items unless max_train_items is given.
CPU_MAX_TRAIN_ITEMS = 512


class QLoRAConfig(BaseModelConfig):
    """The seed's ten hyperparameters plus the training loop's knobs."""

    @model_validator(mode="before")
    @classmethod
    def _cpu_sized_training(cls, data: Any) -> Any:
        """Bound the training set on the CPU when the user did not choose a size."""
        if isinstance(data, dict) and data.get("max_train_items") in (None, "") and not cuda_available():
            data = {**data, "max_train_items": CPU_MAX_TRAIN_ITEMS}
        return data

    # --- the seed's ten hyperparameters ---------------------------------------------
    target_modules: list[str] = Field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"])
    lora_r: int = Field(default=8, ge=1)
    lora_alpha: int | None = Field(default=None, ge=1, description="None: 2 * lora_r.")
    # quantization: inherited from BaseModelConfig
    lora_dropout: float = Field(default=0.1, ge=0.0, lt=1.0)
    epochs: float = Field(default=1.0, gt=0)
    batch_size: int = Field(default=8, ge=1)
    learning_rate: float = Field(default=1e-4, gt=0)
    gradient_accumulation_steps: int = Field(default=1, ge=1)
    optimizer: str | None = Field(default=None, description="Any transformers optim name. Unset: paged_adamw_32bit on CUDA, adamw_torch on the CPU.")

    # --- the training loop -------------------------------------------------------------
    lr_scheduler: str = Field(default="cosine", description="transformers scheduler name: cosine, linear, constant, ...")
    warmup_ratio: float = Field(default=0.03, ge=0.0, lt=1.0)
    max_steps: int = Field(default=-1, description="Positive: stop after this many optimizer steps (overrides epochs).")
    eval_steps: int = Field(default=50, ge=1)
    save_steps: int = Field(default=50, ge=1)
    save_total_limit: int = Field(default=2, ge=1)
    keep_checkpoints: bool = runtime_field(default=False, description="Keep the Trainer checkpoints after training finished (else removed; the adapter stays).")
    logging_steps: int = runtime_field(default=10, ge=1)
    seed: int | None = Field(default=None, description="Training seed. None: the run's --seed.")
    max_train_items: int | None = Field(
        default=None, ge=1, description=f"Use only the first N train items. Unset: all on CUDA, {CPU_MAX_TRAIN_ITEMS} on the CPU."
    )
    max_validation_items: int | None = Field(default=200, ge=1, description="Validation items used for the eval loss.")
    gradient_checkpointing: bool = False
    num_processes: int = Field(default=1, ge=1, description="Data-parallel training processes (DDP; gloo on the CPU). batch_size stays the global batch.")
    launcher: Literal["accelerate", "torchrun"] = runtime_field(default="accelerate", description="How num_processes > 1 is started.")

    @model_validator(mode="after")
    def _multi_process_needs(self) -> "QLoRAConfig":
        if self.num_processes > 1:
            if self.batch_size % self.num_processes:
                raise ValueError(f"batch_size ({self.batch_size}) must be a multiple of num_processes ({self.num_processes}): it is the global batch")
            if self.quantization != "none" and not cuda_available():
                # Several CPU processes are tested with float32 LoRA only; the CPU 4-bit path's layout fixes
                # (training.cpu_4bit_training_mode) are not validated under DDP.
                raise ValueError("num_processes > 1 on the CPU needs quantization=none (multi-process 4/8-bit training is supported on CUDA only)")
        return self
    report_to: list[str] = runtime_field(default_factory=list, description="'tensorboard' and/or 'wandb'; empty: no tracker.")
    merge_for_inference: bool = predict_field(
        default=False,
        description="Predict with the adapter merged into an unquantized copy of the base model (faster decoding, more memory).",
    )
    push_to_hub: str | None = runtime_field(default=None, description="Hub repo id to push the adapter to after training.")

    @model_validator(mode="after")
    def _check(self) -> "QLoRAConfig":
        if not self.target_modules:
            raise ValueError("target_modules must name at least one module")
        unknown = set(self.report_to) - {"tensorboard", "wandb"}
        if unknown:
            raise ValueError(f"report_to accepts 'tensorboard' and 'wandb', not {sorted(unknown)}")
        return self

    @property
    def effective_alpha(self) -> int:
        """``lora_alpha``, defaulting to twice the rank."""
        return self.lora_alpha if self.lora_alpha is not None else 2 * self.lora_r


def effective_optimizer(config: QLoRAConfig, cuda: bool) -> str:
    """The optimizer name: the configured one, else paged AdamW 32-bit on CUDA and AdamW on the CPU."""
    if config.optimizer:
        return config.optimizer
    return "paged_adamw_32bit" if cuda else "adamw_torch"  # only for configs built with model_construct
