"""The one error hierarchy: every core error is a PriceBenchError, shown by the CLI as one line."""

from __future__ import annotations

import ast
import errno
import importlib
import inspect
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

import price_bench
from price_bench import PriceBenchError, first_line

SRC = Path(price_bench.__file__).resolve().parent

#: Exceptions that never reach a user, so they need not be PriceBenchErrors (each with its reason).
CONTROL_FLOW = {
    "price_bench.harness.runner._PredictorFailed": "caught by the runner, which records the predictor as failed",
    "price_bench.harness.answers.BatchSizeError": "caught by the runner, which fails the batch's items with its message",
    "price_bench.serve.app.ApiError": "caught by the server, which answers it as a JSON error response",
    "price_bench.testing.openai_server.wire.APIError": "the OpenAI stand-in's error envelope, answered as an HTTP response",
}


def _modules() -> list[str]:
    names = []
    for path in sorted(SRC.rglob("*.py")):
        parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
        if parts[-1] == "__main__":
            continue  # running it is the CLI
        if parts[-1] == "__init__":
            parts.pop()
        names.append(".".join(parts))
    return names


def _defined_classes(module: str) -> list[str]:
    """Names of the top-level classes that ``module``'s source defines."""
    spec = importlib.util.find_spec(module)
    assert spec is not None and spec.origin
    tree = ast.parse(Path(spec.origin).read_text(encoding="utf-8"))
    return [node.name for node in tree.body if isinstance(node, ast.ClassDef)]


@pytest.mark.parametrize("module", _modules())
def test_every_exception_class_derives_from_price_bench_error(module):
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if (exc.name or "").startswith("price_bench"):
            raise
        pytest.skip(f"{module} needs {exc.name} (an optional extra)")
    strays = []
    for name in _defined_classes(module):
        obj = getattr(mod, name)
        qualified = f"{module}.{name}"
        if inspect.isclass(obj) and issubclass(obj, BaseException) and qualified not in CONTROL_FLOW:
            if not issubclass(obj, PriceBenchError):
                strays.append(qualified)
    assert not strays, f"derive these from price_bench.errors.PriceBenchError (or list them in CONTROL_FLOW): {strays}"


@pytest.mark.parametrize("qualified", sorted(CONTROL_FLOW))
def test_control_flow_exceptions_exist(qualified):
    """A stale entry in the list of exceptions would hide a new error."""
    module, name = qualified.rsplit(".", 1)
    obj = getattr(importlib.import_module(module), name)
    assert issubclass(obj, Exception) and not issubclass(obj, PriceBenchError)


def test_mixins_kept_and_names_importable_where_they_were():
    from price_bench.data.dataset import DatasetError
    from price_bench.data.pipeline import CurationError
    from price_bench.harness.errors import HarnessError
    from price_bench.leaderboard import LeaderboardError
    from price_bench.plugins.manager import PluginError
    from price_bench.predictors.registry import DuplicatePredictorError, InvalidPredictorIdError, UnknownPredictorError
    from price_bench.results.store import ResultError

    for cls in (DatasetError, CurationError, HarnessError, LeaderboardError, PluginError, ResultError,
                UnknownPredictorError, DuplicatePredictorError, InvalidPredictorIdError):
        assert issubclass(cls, PriceBenchError)
    assert issubclass(UnknownPredictorError, KeyError)
    assert str(UnknownPredictorError("unknown predictor 'x'")) == "unknown predictor 'x'", "no KeyError quotes"
    for cls in (PluginError, DuplicatePredictorError, InvalidPredictorIdError):
        assert issubclass(cls, ValueError)
    assert price_bench.HarnessError is HarnessError and price_bench.DatasetError is DatasetError


def test_first_line():
    assert first_line(PriceBenchError("data/x.json: bad field 'price'\nmore detail")) == "data/x.json: bad field 'price'"
    assert first_line(ValueError("\n  bad value  \nrest")) == "bad value"
    assert first_line(ValueError("bad value"), typed=True) == "ValueError: bad value"
    assert first_line(RuntimeError()) == first_line(RuntimeError(), typed=True) == "RuntimeError"
    assert first_line(ValueError("x" * 50), typed=True, limit=20) == "ValueError: xxxxxxx…"
    assert len(first_line(ValueError("x" * 50), limit=10)) == 10


def _group(exc: BaseException) -> click.Group:
    from price_bench.cli.main import PriceBenchGroup

    @click.group(cls=PriceBenchGroup)
    def root() -> None:
        pass

    @root.command("boom")
    def boom() -> None:
        raise exc

    return root


@pytest.mark.parametrize(("exc", "line"), [
    (PriceBenchError("results/a.json: not a result record\nsecond line"), "Error: results/a.json: not a result record"),
    (price_bench.DatasetError("dataset 'x': field 'sizes' is \x1b[31mred\x1b[0m"), "Error: dataset 'x': field 'sizes' is \\x1b[31mred\\x1b[0m"),
    (PermissionError(errno.EACCES, "Permission denied", "out/board.md"), "Error: out/board.md: Permission denied"),
])
def test_the_cli_handler_prints_one_line_and_exits_1(exc, line):
    """Any command under the root group (a plugin's too): one line, exit 1, no traceback."""
    result = CliRunner().invoke(_group(exc), ["boom"])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [line]
    assert "Traceback" not in result.output


def test_a_bug_keeps_its_traceback():
    result = CliRunner().invoke(_group(ZeroDivisionError("division by zero")), ["boom"])
    assert isinstance(result.exception, ZeroDivisionError)


def test_a_command_used_alone_gets_the_same_handler():
    from price_bench.cli.errors import user_errors

    @click.command()
    @user_errors
    def alone() -> None:
        raise price_bench.HarnessError("unknown predictor 'nope'\ndid you mean ...")

    result = CliRunner().invoke(alone, [])
    assert (result.exit_code, result.output) == (1, "Error: unknown predictor 'nope'\n")
