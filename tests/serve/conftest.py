"""Fixtures for the serving tests: a real tfidf-ridge run, its bundle, and real uvicorn servers.

Everything goes through the real CLI in subprocesses (``python -m
price_bench``) with a private PRICE_BENCH_HOME, so entry-point plugins load
as they do for a user. The dataset is small and written with the real
dataset writer, so fitting takes a second.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

TOKEN = "test-token-0123456789abcdef"
TOKEN_ENV = "PRICE_BENCH_TEST_SERVE_TOKEN"
MAX_BATCH = 50
MAX_BODY = 200_000
CATEGORIES = ("Appliances", "Electronics", "Toys_and_Games")
WORDS = {
    "kettle": 35, "blender": 60, "toaster": 40, "laptop": 700, "headphones": 120, "charger": 20, "puzzle": 15,
    "drone": 300, "doll": 25, "monitor": 250, "microwave": 150, "cable": 10,
}


def make_items(split: str, n: int, seed: int = 0):
    """``n`` products whose price follows the product word in their text (so a model can learn it)."""
    from price_bench.items import Item

    rng = random.Random(f"{split}:{seed}")
    items = []
    for i in range(n):
        word = rng.choice(sorted(WORDS))
        adjectives = " ".join(rng.choice(["steel", "compact", "wireless", "deluxe", "classic", "portable", "smart"]) for _ in range(3))
        text = f"{word.title()} {adjectives} edition {i}. A {adjectives} {word} for everyday use, " + "with warranty. " * rng.randint(5, 30)
        price = round(WORDS[word] * rng.uniform(0.8, 1.25), 2)
        items.append(Item(id=f"{split}-{i:04d}", text=text, price=price, category=rng.choice(CATEGORIES), title=f"{word.title()} {adjectives}"))
    return items


def cli_env(root: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRICE_BENCH_")}
    env.update(
        PRICE_BENCH_HOME=str(root / "home"),
        PRICE_BENCH_RESULTS=str(root / "results"),
        PRICE_BENCH_LOAD_PLUGINS="price-bench-classic",
        OMP_NUM_THREADS="1",
        OPENBLAS_NUM_THREADS="1",
        PYTHONPATH=os.pathsep.join(sys.path),
    )
    env.update(extra)
    return env


def run_cli(*args: str, env: dict[str, str], check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "price_bench", *args], env=env, capture_output=True, text=True, timeout=timeout, check=False)
    if check and result.returncode != 0:
        raise AssertionError(f"price-bench {' '.join(args)} failed ({result.returncode}): {result.stderr[-2000:]}")
    return result


@dataclass
class Fitted:
    """A complete tfidf-ridge run on the ``small`` dataset, and its bundle."""

    root: Path
    env: dict[str, str]
    run_id: str
    bundle: Path
    test_texts: list[str]


@pytest.fixture(scope="session")
def fitted(tmp_path_factory) -> Fitted:
    if importlib.util.find_spec("price_bench_classic") is None or importlib.util.find_spec("sklearn") is None:
        pytest.skip("price-bench-classic (tfidf-ridge) is not installed")
    from price_bench.data.dataset import write_dataset

    root = tmp_path_factory.mktemp("serve")
    test_items = make_items("test", 120)
    write_dataset(
        "small",
        {"train": make_items("train", 400), "validation": make_items("validation", 40), "test": test_items},
        {"recipe": {"name": "reference-2023", "version": 1}},
        home=root / "home",
    )
    env = cli_env(root)
    run_cli("run", "tfidf-ridge", "--dataset", "small", "--no-progress", "--bootstrap", "200", env=env)
    records = sorted((root / "results" / "small" / "tfidf-ridge").glob("*[0-9a-f].json"))
    assert len(records) == 1, records
    run_id = records[0].stem
    bundle = root / "bundle"
    run_cli("bundle", run_id, "--out", str(bundle), env=env)
    return Fitted(root, env, run_id, bundle, [item.text for item in test_items])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    url: str
    process: subprocess.Popen
    log_dir: Path
    stderr_path: Path

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")


def start_server(fitted: Fitted, name: str, *extra: str, env: dict[str, str] | None = None, target: str | None = None,
                 settle: float = 0.0) -> Server:
    """``price-bench serve TARGET`` (default: the bundle) on a free port, once ``/healthz`` answers."""
    import httpx

    port = free_port()
    log_dir = fitted.root / f"log-{name}"
    stderr_path = fitted.root / f"server-{name}.err"
    with open(stderr_path, "w") as stderr:  # the child keeps its own copy of the descriptor
        process = subprocess.Popen(
            [sys.executable, "-m", "price_bench", "serve", target or str(fitted.bundle), "--port", str(port), "--log-dir", str(log_dir), *extra],
            env=env or fitted.env, stdout=subprocess.DEVNULL, stderr=stderr,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"server exited with {process.returncode}: {stderr_path.read_text()[-2000:]}")
        try:
            if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                time.sleep(settle)  # e.g. let a second worker finish loading
                return Server(url, process, log_dir, stderr_path)
        except httpx.HTTPError:
            time.sleep(0.3)
    process.kill()
    raise AssertionError(f"server did not start: {stderr_path.read_text()[-2000:]}")


@contextlib.contextmanager
def uvicorn_in_thread(app) -> Iterator[str]:
    """A real uvicorn serving ``app`` (built in this process) on a free 127.0.0.1 port; yields its URL.

    For predictors registered in-process, which a ``price-bench serve``
    subprocess cannot see: the same server, HTTP parser and sockets, in a thread.
    """
    import uvicorn

    config = uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="warning", lifespan="on", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="test-uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise AssertionError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{config.port}"
    finally:
        server.should_exit = True
        thread.join(60)
        assert not thread.is_alive(), "uvicorn did not shut down"


def stop_server(server: Server) -> None:
    """SIGTERM, then check uvicorn's graceful shutdown ran (it re-raises the signal: exit status -15)."""
    server.process.terminate()
    try:
        code = server.process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        server.process.kill()
        raise
    assert code in (0, -signal.SIGTERM), server.stderr()[-2000:]
    assert "Application shutdown complete" in server.stderr() and "Traceback" not in server.stderr(), server.stderr()[-2000:]


@pytest.fixture(scope="session")
def server(fitted):
    """One real uvicorn server with a token, small limits and uncached live metrics."""
    pytest.importorskip("fastapi")
    pytest.importorskip("httpx")
    env = {**fitted.env, TOKEN_ENV: TOKEN}
    srv = start_server(
        fitted, "main", "--token-env", TOKEN_ENV, "--max-batch", str(MAX_BATCH), "--max-body-bytes", str(MAX_BODY),
        "--metrics-ttl", "0", env=env,
    )
    yield srv
    stop_server(srv)


@pytest.fixture
def client(server):
    import httpx

    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60) as c:
        yield c


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one Prometheus sample in ``text`` (0 when absent)."""
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        key, _, value = line.rpartition(" ")
        head, _, rest = key.partition("{")
        found = ",".join(sorted(rest.rstrip("}").split(","))) if rest else ""
        if head == name and found == want:
            return float(value)
    return 0.0


def jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture
def kit():
    """This module: the helpers and constants above, for the test modules."""
    return sys.modules[__name__]
