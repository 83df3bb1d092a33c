"""price-bench plugin ``openai-ft``: fine-tune an OpenAI model on the train split, then price items with it.

Registered lazily (``price-bench list`` imports neither openai nor the
predictor module). Adds the ``price-bench openai-ft status`` and
``price-bench openai-ft cancel`` commands. Spending needs
``-o openai-ft.confirm=true``; the estimate is printed first.
"""

from __future__ import annotations

from price_bench import PredictorSpec, hookimpl

__version__ = "0.1.0"


@hookimpl
def register_predictors(register):
    register(
        PredictorSpec(
            id="openai-ft",
            factory="price_bench_openai_ft.predictor:OpenAIFineTune",
            description="OpenAI fine-tuning of gpt-4o-mini on train items (asks before spending), then chat completions.",
        )
    )


@hookimpl
def register_commands(cli):
    from price_bench_openai_ft.cli import openai_ft

    cli.add_command(openai_ft)
