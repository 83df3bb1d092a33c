"""The fault catalogue: run the ``tests/faults`` suite and print one row per case.

Every test in ``tests/faults/test_*.py`` is one fault case. Its docstring
starts with ``Case: <short case name>. Outcome: <what happens>.``; the test
itself asserts the one-line message, the exit code and that nothing was lost
or written elsewhere. So the catalogue's "data lost" column is derived from
the test result: ``none`` when the test passed (its assertions that nothing
was lost held), "not verified" otherwise.

The suite runs in a pytest subprocess with a JUnit XML report; the cases are
collected from the test files' docstrings with ``ast`` (nothing is imported),
so test files added later show up without touching this script.

Run: .venv/bin/python bench/faults.py [-k EXPR] [--markdown] [--no-run REPORT.xml]
Exit status: 0 when every case passed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import ast
import re
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SUITE = REPO / "tests" / "faults"
_DOC = re.compile(r"Case:\s*(?P<case>.+?)\.\s+Outcome:\s*(?P<outcome>.+)", re.DOTALL)


@dataclass
class Case:
    """One fault case: where its test lives, what it claims, and how its run went."""

    module: str
    test: str
    case: str
    outcome: str
    result: str = "not run"
    detail: str = ""

    @property
    def data_lost(self) -> str:
        if self.result == "passed":
            return "none"
        if self.result == "skipped":
            return "not checked"
        return "not verified"


def collect(suite: Path = SUITE) -> list[Case]:
    """Every ``test_*`` function (or method) of ``suite/test_*.py`` with its Case/Outcome docstring."""
    cases = []
    for path in sorted(suite.glob("test_*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test"):
                doc = " ".join((ast.get_docstring(node) or "").split())
                match = _DOC.match(doc)
                if match:
                    cases.append(Case(path.stem, node.name, match["case"].strip(), match["outcome"].strip()))
                else:
                    cases.append(Case(path.stem, node.name, node.name, "(no 'Case: ... Outcome: ...' docstring)"))
    return cases


def run_suite(report: Path, keyword: str | None) -> float:
    """Run the suite with a JUnit XML report at ``report``; returns the wall seconds."""
    cmd = [sys.executable, "-m", "pytest", str(SUITE.relative_to(REPO)), "-q", "-p", "no:cacheprovider",
           f"--junitxml={report}", "-o", "junit_family=xunit2"]
    if keyword:
        cmd += ["-k", keyword]
    started = time.perf_counter()
    subprocess.run(cmd, cwd=REPO, check=False, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def read_report(report: Path, cases: list[Case]) -> None:
    """Fill in each case's result from the JUnit report (parametrised tests: every instance must pass)."""
    by_key = {(c.module, c.test): c for c in cases}
    seen: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for testcase in ET.parse(report).getroot().iter("testcase"):
        module = next((part for part in testcase.get("classname", "").split(".") if part.startswith("test_")), "")
        name = testcase.get("name", "").split("[", 1)[0]
        seen.setdefault((module, name), []).append(_result(testcase))
    for key, results in seen.items():
        case = by_key.get(key)
        if case is None:
            continue
        for wanted in ("failed", "error", "skipped", "passed"):
            hits = [detail for result, detail in results if result == wanted]
            if hits:
                case.result, case.detail = wanted, hits[0]
                break


def _result(testcase: ET.Element) -> tuple[str, str]:
    for tag, result in (("failure", "failed"), ("error", "error"), ("skipped", "skipped")):
        element = testcase.find(tag)
        if element is not None:
            return result, " ".join((element.get("message") or "").split())[:160]
    return "passed", ""


def print_table(cases: list[Case], markdown: bool, seconds: float | None) -> None:
    """The catalogue as a Markdown table, or as a Rich table on a terminal."""
    headers = ("case", "outcome", "data lost", "result")
    rows = [(c.case, c.outcome, c.data_lost, c.result + (f" ({c.detail})" if c.detail else "")) for c in cases]
    passed = sum(c.result == "passed" for c in cases)
    footer = f"{passed} of {len(cases)} fault cases passed" + (f" in {seconds:.0f} s wall" if seconds is not None else "")
    if markdown:
        print("| " + " | ".join(headers) + " |")
        print("|" + "---|" * len(headers))
        for row in rows:
            print("| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |")
        print(f"\n{footer}")
        return
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(title="fault catalogue (tests/faults)", show_lines=True)
    for header in headers:
        table.add_column(header)
    for case, row in zip(cases, rows):
        style = {"passed": "green", "skipped": "yellow"}.get(case.result, "red")
        table.add_row(escape(row[0]), escape(row[1]), escape(row[2]), f"[{style}]{escape(row[3])}[/]")
    console = Console(emoji=False, highlight=False)
    console.print(table)
    console.print(footer)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-k", dest="keyword", default=None, help="Only the tests matching this pytest -k expression.")
    parser.add_argument("--markdown", action="store_true", help="Print a Markdown table (for bench/RESULTS.md).")
    parser.add_argument("--no-run", dest="report", type=Path, default=None,
                        help="Read this JUnit XML report instead of running the suite.")
    args = parser.parse_args()
    cases = collect()
    seconds = None
    if args.report is not None:
        read_report(args.report, cases)
    else:
        with tempfile.TemporaryDirectory(prefix="pb-faults-") as tmp:
            report = Path(tmp) / "faults.xml"
            seconds = run_suite(report, args.keyword)
            if not report.is_file():
                raise SystemExit("pytest wrote no report: see its output above")
            read_report(report, cases)
    if args.keyword:
        cases = [c for c in cases if c.result != "not run"]
    print_table(cases, args.markdown, seconds)
    sys.exit(0 if cases and all(c.result in ("passed", "skipped") for c in cases) else 1)


if __name__ == "__main__":
    main()
