"""Helpers for the data / state / security fault tests (not a conftest: imported by path).

* :func:`make_items` / :func:`write_tiny`: small datasets written with the real writer;
* :class:`Counting`: a predictor that counts its calls (proves "nothing ran");
* :class:`Pickled`: a predictor that keeps its fit as a pickle in the work
  folder, like ``model.joblib`` of price-bench-classic;
* :func:`evil_pickle`: bytes that create a marker file when unpickled;
* :func:`invoke`: the real CLI in-process (click's runner: exit code, stdout,
  stderr kept apart);
* :func:`snapshot` / :func:`new_files`: prove that nothing was written outside
  the folders a command may write.
"""

from __future__ import annotations

import pickle
import random
from pathlib import Path

from click.testing import CliRunner

from price_bench import Prediction, Predictor, hookimpl
from price_bench.data.dataset import write_dataset
from price_bench.items import Item


def make_items(split: str, n: int, seed: int = 0) -> list[Item]:
    """``n`` items with prices over every band, two categories."""
    rng = random.Random(f"{split}:{seed}")
    return [
        Item(
            id=f"{split}-{i:05d}",
            text=f"Product {i} of the {split} split, seed {seed}",
            price=round(rng.choice([rng.uniform(2, 25), rng.uniform(25, 250), rng.uniform(250, 900)]), 2),
            category=rng.choice(["Electronics", "Toys"]),
        )
        for i in range(n)
    ]


def write_tiny(name: str = "tiny", home: Path | None = None, seed: int = 0):
    """A 40/5/30 item dataset ``name`` under ``home`` (default: this test's data home)."""
    return write_dataset(
        name,
        {"train": make_items("train", 40, seed), "validation": make_items("validation", 5, seed), "test": make_items("test", 30, seed)},
        {"recipe": {"name": "test", "version": 1}},
        home=home,
    )


class Counting(Predictor):
    """Guesses the train mean; counts fits and predicted items (class-level)."""

    id = "faults-count"
    fits: list[int] = []
    predicted: list[int] = []

    def fit(self, train, validation, workdir):
        type(self).fits.append(1)
        self.mean = sum(i.price for i in train) / len(train)

    def load(self, workdir):
        return False

    def predict(self, items):
        type(self).predicted.append(len(items))
        return [Prediction(raw=round(self.mean, 2), price=round(self.mean, 2)) for _ in items]


class Pickled(Predictor):
    """Keeps its fit as ``model.pkl`` (a pickle) in the work folder, like classic's ``model.joblib``."""

    id = "faults-pickle"
    fits: list[int] = []
    loads: list[int] = []

    def fit(self, train, validation, workdir):
        type(self).fits.append(1)
        self.mean = round(sum(i.price for i in train) / len(train), 2)
        (Path(workdir) / "model.pkl").write_bytes(pickle.dumps({"mean": self.mean}))

    def load(self, workdir):
        type(self).loads.append(1)
        self.mean = pickle.loads((Path(workdir) / "model.pkl").read_bytes())["mean"]
        return True

    def predict(self, items):
        return [Prediction(raw=self.mean, price=self.mean) for _ in items]


class Plugin:
    @hookimpl
    def register_predictors(self, register):
        register(Counting)
        register(Pickled)


def reset_counters() -> None:
    for cls in (Counting, Pickled):
        for name in ("fits", "predicted", "loads"):
            if hasattr(cls, name):
                getattr(cls, name).clear()


class _Marker:
    """Unpickling this writes ``path``: proof that a pickle was loaded."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def __reduce__(self):
        return (Path.write_text, (self.path, "code ran"))


def evil_pickle(marker: Path) -> bytes:
    """Pickle bytes whose loading creates ``marker``."""
    return pickle.dumps(_Marker(marker))


def invoke(*args: str, cwd: Path | None = None):
    """Run ``price-bench ARGS`` in-process; returns click's Result (exit_code, stdout, stderr)."""
    import os

    from price_bench.cli.main import get_cli

    runner = CliRunner()
    old = os.getcwd()
    if cwd is not None:
        os.chdir(cwd)
    try:
        return runner.invoke(get_cli(), list(args), catch_exceptions=True)
    finally:
        os.chdir(old)


def lines(text: str) -> list[str]:
    """Non-empty lines of ``text``."""
    return [line for line in text.splitlines() if line.strip()]


def assert_one_line_error(result, *needles: str, code: int = 1) -> str:
    """The command failed with ``code`` and exactly one error line containing every needle; no traceback."""
    assert result.exit_code == code, (result.exit_code, result.output, result.exception)
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    errors = [line for line in lines(result.stderr) if line.lower().startswith("error")]
    assert len(errors) == 1, result.stderr
    for needle in needles:
        assert needle in errors[0], (needle, errors[0])
    return errors[0]


def snapshot(*roots: Path) -> dict[Path, bytes]:
    """Every regular file under ``roots`` with its bytes."""
    out = {}
    for root in roots:
        if root.exists():
            for path in root.rglob("*"):
                if path.is_file() and not path.is_symlink():
                    out[path] = path.read_bytes()
    return out


def new_files(before: dict[Path, bytes], *roots: Path) -> list[Path]:
    """Files under ``roots`` that are new or changed since ``before``."""
    after = snapshot(*roots)
    return sorted(p for p, data in after.items() if before.get(p) != data)
