"""price-bench predictors that prompt LLMs over any OpenAI-compatible endpoint.

Predictors (imported lazily, so ``price-bench list`` stays fast):

* ``frontier``: zero-shot, the reference prompt;
* ``frontier-fewshot``: k seeded train examples with their prices;
* ``frontier-rag``: the k most similar train items (all-MiniLM-L6-v2, or TF-IDF).

The reusable client layer (retries, cache, costs, spending cap) lives in
:mod:`price_bench_frontier.client`.
"""

from __future__ import annotations

from price_bench import PredictorSpec, hookimpl

__version__ = "0.1.0"

_PREDICTORS = {
    "frontier": ("FrontierZeroShot", "Prompted LLM over an OpenAI-compatible API, zero-shot (default gpt-4o-mini)."),
    "frontier-fewshot": ("FrontierFewShot", "Prompted LLM with k seeded train examples and their prices."),
    "frontier-rag": ("FrontierRag", "Prompted LLM with the k most similar train items (MiniLM embeddings or TF-IDF)."),
}


@hookimpl
def register_predictors(register):
    for predictor_id, (class_name, description) in _PREDICTORS.items():
        register(
            PredictorSpec(
                id=predictor_id,
                factory=f"price_bench_frontier.predictors:{class_name}",
                description=description,
            )
        )
