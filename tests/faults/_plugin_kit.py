"""Helpers for the plugin and terminal fault tests (not a conftest: imported by path).

* :func:`install` writes a fake *installed distribution* (a ``.dist-info``
  folder with a ``price_bench`` entry point, plus its module) into a folder
  that the ``price-bench`` subprocess gets on its ``PYTHONPATH``: the plugin
  is found and loaded exactly as a third-party wheel would be.
* :func:`price_bench` runs the real console entry point in a subprocess
  (``python -m price_bench``), so exit codes, stderr and signals are real.
* :func:`tiny_dataset` writes a small dataset with the real dataset writer.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import textwrap
from pathlib import Path

#: The core distribution (its built-in baselines come through an entry point too).
CORE = "price-bench"


def install(site: Path, dist: str, source: str, version: str = "1.0.0") -> str:
    """Install distribution ``dist`` (module ``dist`` with dashes as underscores) into ``site``; returns the module name."""
    module = dist.replace("-", "_")
    site.mkdir(parents=True, exist_ok=True)
    info = site / f"{module}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(f"[price_bench]\n{module} = {module}\n")
    (site / f"{module}.py").write_text(textwrap.dedent(source))
    return module


def cli_env(site: Path, *dists: str, **extra: str) -> dict[str, str]:
    """The environment of a ``price-bench`` subprocess that loads only ``dists`` (and the core baselines)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(site), env.get("PYTHONPATH", "")) if p)
    env["PRICE_BENCH_LOAD_PLUGINS"] = ",".join((CORE, *dists))
    env.pop("PRICE_BENCH_STRICT_PLUGINS", None)
    env["COLUMNS"] = "200"
    env.update(extra)
    return env


def price_bench_cmd(*args: str) -> list[str]:
    """The argv of the real command line."""
    return [sys.executable, "-m", "price_bench", *args]


def price_bench(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run ``price-bench ARGS`` to completion; stdout and stderr captured as text."""
    return subprocess.run(price_bench_cmd(*args), env=env, capture_output=True, text=True, timeout=timeout)


def tiny_dataset(name: str = "tiny", n_test: int = 30):
    """A 40/5/``n_test`` item dataset called ``name`` in the current ``PRICE_BENCH_HOME``."""
    from price_bench.data.dataset import write_dataset
    from price_bench.items import Item

    def items(split: str, n: int) -> list[Item]:
        rng = random.Random(split)
        return [Item(id=f"{split}-{i:04d}", text=f"Product {i} of the {split} split", price=round(rng.uniform(5, 500), 2),
                     category=rng.choice(["Electronics", "Toys"])) for i in range(n)]

    return write_dataset(name, {"train": items("train", 40), "validation": items("validation", 5), "test": items("test", n_test)},
                         {"recipe": {"name": "test", "version": 1}})


def assert_no_traceback(result: subprocess.CompletedProcess | str) -> None:
    """No Python traceback in the output (a fault is reported in one line)."""
    text = result if isinstance(result, str) else result.stdout + result.stderr
    assert "Traceback" not in text, text[-3000:]


def lines(text: str, prefix: str) -> list[str]:
    """The lines of ``text`` that start with ``prefix``."""
    return [line for line in text.splitlines() if line.startswith(prefix)]
