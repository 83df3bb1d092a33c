"""docs/writing-a-plugin.md: its example, built from the page's own code blocks, installs, passes its tests and runs."""

from __future__ import annotations

import ast
import importlib.metadata
import json
import os
import re
import site
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
GUIDE = REPO / "docs" / "writing-a-plugin.md"
BLOCK = re.compile(r"^```(\w+) file=(\S+)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
PLUGIN = "price_bench.testing.fixtures"


def guide_files() -> dict[str, str]:
    """``relative path -> text`` of every code block marked ``file=PATH`` in the guide."""
    return {path: text for _, path, text in BLOCK.findall(GUIDE.read_text(encoding="utf-8"))}


def test_the_guide_holds_a_short_complete_example():
    files = guide_files()
    assert set(files) == {"pyproject.toml", "src/price_bench_catmedian/__init__.py", "tests/test_catmedian.py"}
    code = files["src/price_bench_catmedian/__init__.py"]
    assert len(code.splitlines()) <= 50, "the example stays about 40 lines"
    for path, text in files.items():
        if path.endswith(".py"):
            modules = {n.module for n in ast.walk(ast.parse(text)) if isinstance(n, ast.ImportFrom)}
            modules |= {a.name for n in ast.walk(ast.parse(text)) if isinstance(n, ast.Import) for a in n.names}
            core = {m for m in modules if m.split(".")[0] == "price_bench"}
            assert core <= {"price_bench", "price_bench.testing"}, f"{path} imports {core}"
    guide = GUIDE.read_text()
    for topic in ("pip install -e .", "price-bench plugins", "--limit", "price_bench.testing", "predict_field",
                  "runtime_field", "PredictorSpec(", "PRICE_BENCH_LOAD_PLUGINS=price-bench,", "[project.entry-points.price_bench]"):
        assert topic in guide, topic


def _venv(tmp_path: Path) -> Path:
    """A fresh venv that sees this environment's packages (so installing is offline and fast)."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    target = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                            capture_output=True, text=True, check=True).stdout.strip()
    # A venv's --system-site-packages means the base interpreter's, not this venv's: chain them.
    lines = [f"import site; site.addsitedir({path!r})" for path in site.getsitepackages()]
    (Path(target) / "_price_bench_parent_env.pth").write_text("\n".join(lines) + "\n")
    return python


@pytest.mark.slow
def test_the_guide_example_installs_passes_its_tests_and_runs(tmp_path, tiny_dataset):
    project = tmp_path / "price-bench-catmedian"
    assert not project.resolve().is_relative_to(REPO)
    for relative, text in guide_files().items():
        (project / relative).parent.mkdir(parents=True, exist_ok=True)
        (project / relative).write_text(text)
    python = _venv(tmp_path)

    def run(*args: str, cwd: Path = project, **env: str) -> subprocess.CompletedProcess:
        done = subprocess.run([str(python), *args], capture_output=True, text=True, cwd=cwd, env={**os.environ, **env}, timeout=600)
        assert done.returncode == 0, f"{' '.join(args)}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        return done

    run("-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "-e", str(project))
    where = run("-c", "import price_bench_catmedian as m; print(m.__file__)").stdout.strip()
    assert where == str(project / "src" / "price_bench_catmedian" / "__init__.py")

    # Its own tests, with the price_bench.testing plugin (named explicitly while this environment's
    # price-bench install predates the pytest11 entry point).
    installed = {ep.name for ep in importlib.metadata.entry_points(group="pytest11")}
    plugin_args = [] if PLUGIN in installed else ["-p", PLUGIN]
    tests = run("-m", "pytest", "-q", "-p", "no:cacheprovider", *plugin_args, "tests")
    assert "2 passed" in tests.stdout

    env = {"PRICE_BENCH_LOAD_PLUGINS": "price-bench,price-bench-catmedian"}
    plugins = {row["name"]: row for row in json.loads(run("-m", "price_bench", "plugins", "--json", **env).stdout)}
    assert plugins["catmedian"]["distribution"] == "price-bench-catmedian" and plugins["catmedian"]["error"] is None
    listed = {row["id"]: row for row in json.loads(run("-m", "price_bench", "list", "--json", **env).stdout)}
    assert listed["category-median"]["status"] == "ready"
    assert "constant-median" in listed, "listing price-bench keeps the baselines"

    results = tmp_path / "results"
    ran = run("-m", "price_bench", "run", "category-median", "constant-median", "--dataset", "tiny", "--limit", "40",
              "--results", str(results), "-o", "category-median.shrink=0.2", "--json", **env)
    outcomes = {row["predictor"]: row for row in json.loads(ran.stdout)}
    assert outcomes["category-median"]["status"] == outcomes["constant-median"]["status"] == "complete"
    record = json.loads(Path(outcomes["category-median"]["record"]).read_text())
    assert record["predictor"]["plugin_distribution"] == "price-bench-catmedian"
    assert record["predictor"]["config"].items() >= {"min_items": 5, "shrink": 0.2}.items()
    assert record["n_items"] == 40 and record["limit"] == 40

    # Publishable: a wheel whose metadata carries the entry point.
    run("-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", str(tmp_path / "dist"), str(project))
    [wheel] = (tmp_path / "dist").glob("price_bench_catmedian-0.1.0-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        entry_points = archive.read("price_bench_catmedian-0.1.0.dist-info/entry_points.txt").decode()
    assert "[price_bench]" in entry_points and "catmedian = price_bench_catmedian" in entry_points
