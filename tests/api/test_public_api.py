"""The public surface: what ``price_bench`` exports, that it loads lazily, and that plugins use nothing else."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

import price_bench

REPO = Path(__file__).resolve().parents[2]
PLUGIN_CONTRACT = ("Predictor", "PredictorConfig", "Prediction", "Item", "Requirement", "PredictorSpec",
                   "predict_field", "runtime_field", "hookimpl")
NOTEBOOK = ("evaluate", "load_dataset", "Results", "Dataset")
ERRORS = ("PriceBenchError", "first_line", "HarnessError", "DatasetError")


@pytest.mark.parametrize("name", PLUGIN_CONTRACT + NOTEBOOK + ERRORS)
def test_exported_with_a_docstring(name):
    assert name in price_bench.__all__
    value = getattr(price_bench, name)
    assert (value.__doc__ or "").strip(), f"price_bench.{name} has no docstring"


def test_exported_errors_share_one_base():
    from price_bench.errors import PriceBenchError, first_line

    assert price_bench.PriceBenchError is PriceBenchError and price_bench.first_line is first_line
    for name in price_bench.__all__:
        value = getattr(price_bench, name)
        if isinstance(value, type) and issubclass(value, BaseException):
            assert issubclass(value, PriceBenchError), f"price_bench.{name} is not a PriceBenchError"


def test_every_export_resolves_and_unknown_names_raise():
    assert set(price_bench.__all__) == set(price_bench._EXPORTS) | {"__version__"}
    for name in price_bench.__all__:
        assert getattr(price_bench, name) is not None
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        price_bench.nope  # noqa: B018
    assert set(price_bench.__all__) <= set(dir(price_bench))


def test_import_is_lazy():
    code = ("import sys, price_bench; heavy = [m for m in ('pydantic', 'numpy', 'pandas', 'pluggy', 'rich') if m in sys.modules];"
            "print(heavy); from price_bench import Item; print('pydantic' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split("\n")
    assert out[0] == "[]", f"`import price_bench` imported {out[0]}"


def test_prediction_with_only_a_price():
    p = price_bench.Prediction(price=12.5)
    assert (p.raw, p.price) == (None, 12.5)
    assert price_bench.Prediction("$3").raw == "$3", "raw stays the first positional field"


def _price_bench_imports(path: Path) -> list[tuple[int, str, list[str]]]:
    """(line, module, imported names) of every ``price_bench`` import in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[tuple[int, str, list[str]]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module, [alias.name for alias in node.names]))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, alias.name, []) for alias in node.names]
    return [row for row in found if row[1] == "price_bench" or row[1].startswith("price_bench.")]


def _allowed(module: str, in_tests: bool) -> bool:
    return module == "price_bench" or (in_tests and (module == "price_bench.testing" or module.startswith("price_bench.testing.")))


def _suggestion(names: list[str], in_tests: bool) -> str:
    """The public import lines that replace a deep one (what to write instead)."""
    import price_bench.testing

    public = [n for n in names if n in price_bench._EXPORTS]
    testing = [n for n in names if in_tests and n in price_bench.testing._EXPORTS]
    missing = [n for n in names if n not in public and n not in testing]
    lines = [f"from price_bench import {', '.join(public)}"] if public else []
    lines += [f"from price_bench.testing import {', '.join(testing)}"] if testing else []
    lines += [f"({', '.join(missing)}: not public; export it or do without)"] if missing else []
    return "; ".join(lines)


def test_plugins_import_only_the_public_api():
    offenders = []
    files = [p for p in (REPO / "plugins").rglob("*.py") if "build" not in p.relative_to(REPO).parts]
    assert len(files) > 20
    for path in files:
        in_tests = "tests" in path.relative_to(REPO).parts
        for line, module, names in _price_bench_imports(path):
            if not _allowed(module, in_tests):
                offenders.append(f"{path.relative_to(REPO)}:{line}: from {module} import ... -> {_suggestion(names, in_tests)}")
    assert not offenders, "plugins import only from price_bench (tests also price_bench.testing):\n" + "\n".join(offenders)


def test_the_testing_plugin_is_a_pytest11_entry_point_named_after_its_module():
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert project["entry-points"]["pytest11"] == {"price_bench.testing.fixtures": "price_bench.testing.fixtures"}


def test_help_stays_light():
    code = ("import sys; from price_bench.cli.main import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "print(__import__('json').dumps([m for m in ('torch', 'transformers', 'openai', 'sklearn', 'pandas') if m in sys.modules]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
    assert json.loads(out) == []
