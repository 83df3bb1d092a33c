"""Repository test layer over the price-bench pytest plugin.

The isolation (own ``PRICE_BENCH_HOME`` and results folder per test, offline,
no entry-point plugins) and the fixtures ``price_bench_home``,
``tiny_dataset``, ``register_plugin``, ``register_predictor``,
``fake_openai_server`` and ``shared_data`` come from
:mod:`price_bench.testing.fixtures`, the same plugin third-party plugin
authors get with ``pip install price-bench`` (``pytest11`` entry point).
Naming it here keeps a checkout whose install predates the entry point working.
"""

pytest_plugins = ["price_bench.testing.fixtures", "pytester"]
