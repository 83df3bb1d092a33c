"""Fixtures for the frontier plugin's tests: items, fake OpenAI servers and a real llama.cpp server."""

from __future__ import annotations

import os

import pytest

from price_bench import Item
from price_bench.testing import FakeOpenAIServer, LlamaServer, llama_server_unavailable

PRODUCTS = [
    ("USB-C charging cable, 6 ft, braided nylon, fast charge for phones and tablets", 12.99, "Electronics"),
    ("Stainless steel kitchen sink, 30 inch undermount, single bowl with drain", 189.0, "Home"),
    ("Garden hose 50 ft, expandable, with 8-pattern spray nozzle", 29.95, "Garden"),
    ("Wireless optical mouse, 2.4 GHz, 1600 DPI, with USB receiver", 15.49, "Electronics"),
    ("Cordless drill driver kit, 20V lithium-ion, two batteries and charger", 99.0, "Tools"),
    ("Ceramic coffee mug set of 4, 12 oz, dishwasher safe", 24.5, "Home"),
    ("Car phone mount for dashboard and windshield, 360 degree rotation", 18.99, "Automotive"),
    ("LED desk lamp with USB charging port, dimmable, five color modes", 35.0, "Home"),
    ("Replacement brake pads for front wheels, ceramic, set of 4", 42.75, "Automotive"),
    ("Bluetooth over-ear headphones, noise cancelling, 30 hour battery", 79.99, "Electronics"),
    ("Socket wrench set, 40 pieces, chrome vanadium, with carrying case", 45.0, "Tools"),
    ("Patio umbrella, 9 ft, tilt and crank, UV resistant canopy", 64.0, "Garden"),
]


def make_items(n: int, prefix: str = "item") -> list[Item]:
    """``n`` small real-looking products (cycling through :data:`PRODUCTS`, ids unique)."""
    items = []
    for i in range(n):
        text, price, category = PRODUCTS[i % len(PRODUCTS)]
        suffix = "" if i < len(PRODUCTS) else f" (variant {i // len(PRODUCTS)})"
        items.append(Item(id=f"{prefix}-{i}", text=text + suffix, price=price, category=category))
    return items


@pytest.fixture(autouse=True)
def _private_results(tmp_path_factory, monkeypatch):
    """Run records go to a temporary folder, never to ./results of the checkout."""
    monkeypatch.setenv("PRICE_BENCH_RESULTS", str(tmp_path_factory.mktemp("results")))


@pytest.fixture
def items() -> list[Item]:
    return make_items(len(PRODUCTS))


@pytest.fixture(name="make_items")
def make_items_fixture():
    """:func:`make_items` for tests (conftest is not importable under importlib mode)."""
    return make_items


@pytest.fixture
def stub():
    """A factory of started :class:`~price_bench.testing.FakeOpenAIServer` objects (with their
    ``url``), stopped after the test: ``stub("429", "500", retry_after="0")``."""
    servers: list[FakeOpenAIServer] = []

    def _make(*script: str, **kwargs) -> tuple[FakeOpenAIServer, str]:
        server = FakeOpenAIServer(script, **kwargs).start()
        servers.append(server)
        return server, server.url

    yield _make
    for server in servers:
        server.stop()


@pytest.fixture(scope="session")
def llama_server_process(tmp_path_factory):
    """A real llama.cpp OpenAI-compatible server with SmolLM2-135M-Instruct (session-wide)."""
    reason = llama_server_unavailable()
    if reason and os.environ.get("CI"):  # CI installs it (scripts/setup.sh --dev): there a skip would hide a broken install
        pytest.fail(f"CI must run the llama.cpp end-to-end tests: {reason}")
    if reason:
        pytest.skip(reason)
    log = tmp_path_factory.mktemp("llama") / "server.log"
    server = LlamaServer(n_ctx=2048, log_path=log)
    try:
        server.start()
    except RuntimeError as exc:
        pytest.fail(f"{exc}:\n{server.log_tail()}")
    yield server
    server.stop()


@pytest.fixture
def llama_server(llama_server_process):
    """The server's base URL, watched: a test fails with the exit signal and the log's tail when
    the server died before or during it (instead of with a dozen anonymous item errors)."""
    died = llama_server_process.death_report("before this test")
    if died:
        pytest.fail(died)
    yield llama_server_process.base_url
    died = llama_server_process.death_report("during this test")
    if died:
        pytest.fail(died)
