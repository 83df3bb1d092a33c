"""Text from plugins, models, datasets and result records reaches the terminal verbatim (issue 13, item 10).

Rich would read ``[/]`` or ``[bold]`` as markup (raising ``MarkupError`` or
eating the text) and ``:x:`` as an emoji code; every table and line the CLI
prints escapes such text first.
"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from price_bench import Prediction, Predictor, Requirement, hookimpl

import price_bench_faults_plugin_kit as kit  # loaded by tests/faults/conftest.py


MARKUP = "[bold]loud[/] [/] :x:"
CATEGORY = "[red]Toys[/] :x:"


class Fine(Predictor):
    id = "fine"
    description = "describes itself with [italic]markup[/]"

    def predict(self, items):
        return [Prediction(raw=f"$42 {MARKUP}") for _ in items]


class Broken(Predictor):
    id = "broken"

    def predict(self, items):
        raise RuntimeError(f"model said {MARKUP}")


class NeedsExtra(Predictor):
    id = "needs-extra"
    requires = (Requirement.package("price_bench_missing_module", hint="pip install 'price-bench-qlora[smollm2]'"),)

    def predict(self, items):
        return []


class _Plugin:
    @hookimpl
    def register_predictors(self, register):
        for cls in (Fine, Broken, NeedsExtra):
            register(cls)


@pytest.fixture
def cli(register_plugin):
    from price_bench.cli.main import get_cli

    register_plugin(_Plugin(), name="markup-plugin")
    runner = CliRunner()
    return lambda *args: runner.invoke(get_cli(), list(args))


@pytest.fixture
def marked_dataset():
    """``tiny`` whose product texts and categories carry markup and an emoji code."""
    from price_bench.data.dataset import write_dataset
    from price_bench.items import Item

    def items(split, n):
        return [Item(id=f"{split}-{i}", text=f"Widget {i} {MARKUP}", price=10.0 + i, category=CATEGORY) for i in range(n)]

    return write_dataset("tiny", {"train": items("train", 20), "validation": items("validation", 2), "test": items("test", 8)},
                         {"recipe": {"name": "test", "version": 1}})


def _squash(text: str) -> str:
    """The output with table borders and line breaks removed (a long cell may wrap)."""
    return " ".join(text.replace("│", " ").replace("┃", " ").split())


def _cells(output: str) -> list[str]:
    """Every table cell of a Rich table, wrapped lines joined, whitespace removed (compare with :func:`_bare`)."""
    rows: list[list[str]] = []
    for line in output.splitlines():
        if not line.startswith("│"):
            if line[:1] in ("├", "┡"):
                rows.append([])  # a row separator: the next line starts a row
            continue
        parts = [part.strip() for part in line.strip().strip("│").split("│")]
        if not rows or not rows[-1] or parts[0]:
            rows.append(parts)
        else:
            rows[-1] = [f"{a}{b}" for a, b in zip(rows[-1], parts)]
    return ["".join(cell.split()) for row in rows for cell in row]


def _bare(text: str) -> str:
    return "".join(text.split())


def _has_cell(output: str, text: str) -> bool:
    """True when one table cell of ``output`` holds ``text`` (ignoring where Rich wrapped it)."""
    return any(_bare(text) in cell for cell in _cells(output))


def test_run_summary_shows_a_failure_reason_with_markup_verbatim(cli, marked_dataset, tmp_path):
    """Case: a predictor fails with `[bold]`, `[/]` and `:x:` in its error. Outcome: the run summary prints the reason verbatim (no MarkupError, no emoji), exit 1 for the failure, the other predictor's record is written."""
    result = cli("run", "fine", "broken", "--dataset", "tiny", "--results", str(tmp_path / "results"))
    assert result.exit_code == 1, result.output
    assert _has_cell(result.output, "predict failed: RuntimeError: model said [bold]loud[/] [/] :x:")
    assert "❌" not in result.output and "Traceback" not in result.output
    assert kit.lines(result.output, "Error:") == ["Error: 1 predictor(s) failed: broken"]
    assert len(list((tmp_path / "results" / "tiny" / "fine").glob("*[0-9a-f].json"))) == 1


def test_results_and_show_print_record_text_verbatim(cli, marked_dataset, tmp_path):
    """Case: result records whose reason, categories and raw answers carry markup. Outcome: `results` and `show` print them verbatim (exit 0), including the category breakdown."""
    results = tmp_path / "results"
    cli("run", "fine", "broken", "--dataset", "tiny", "--results", str(results))
    listed = cli("results", "--results", str(results))
    assert listed.exit_code == 0, listed.output
    assert _has_cell(listed.output, "predict failed: RuntimeError: model said [bold]loud[/] [/] :x:")
    [fine] = json.loads(cli("results", "--results", str(results), "--predictor", "fine", "--json").output)
    shown = cli("show", fine["run_id"], "--results", str(results))
    assert shown.exit_code == 0, shown.output
    assert _has_cell(shown.output, CATEGORY) and "❌" not in shown.output
    [broken] = json.loads(cli("results", "--results", str(results), "--predictor", "broken", "--json").output)
    failed = cli("show", broken["run_id"], "--results", str(results))
    assert failed.exit_code == 0 and "model said [bold]loud[/] [/] :x:" in _squash(failed.output)


def test_data_show_prints_product_text_verbatim(marked_dataset):
    """Case: product text and categories with markup and `:x:`. Outcome: `data show` prints them verbatim, exit 0, every item shown."""
    from price_bench.cli.main import get_cli

    result = CliRunner().invoke(get_cli(), ["data", "show", "tiny", "-n", "8"])
    assert result.exit_code == 0, result.output
    cells = _cells(result.output)
    assert all(_bare(f"Widget {i} {MARKUP}") in cells for i in range(8))
    assert cells.count(_bare(CATEGORY)) == 8 and "❌" not in result.output


def test_list_keeps_the_extra_in_install_advice(cli):
    """Case: a skip reason whose install advice names an extra (`[smollm2]`). Outcome: `list` prints the advice whole, exit 0; markup in a description is shown verbatim."""
    result = cli("list")
    assert result.exit_code == 0, result.output
    assert _has_cell(result.output, "skipped: package 'price_bench_missing_module' is not installed "
                                    "(pip install 'price-bench-qlora[smollm2]')")
    assert _has_cell(result.output, "describes itself with [italic]markup[/]")
