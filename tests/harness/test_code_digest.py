"""Code-aware caching: an edited predictor recomputes; the escape hatch keeps paid answers."""

from __future__ import annotations

import importlib
import json
import sys

import pytest

from price_bench.harness import codedigest
from price_bench.harness.runner import RunOptions, run_predictors
from price_bench.plugins.hookspecs import hookimpl

SOURCE = '''
import json
from price_bench.predictors.contract import Prediction, Predictor


class Edited(Predictor):
    id = "edited"
    calls = 0
    fits = 0

    def fit(self, train, validation, workdir):
        type(self).fits += 1
        (workdir / "model.json").write_text(json.dumps({"n": len(train)}))

    def load(self, workdir):
        return (workdir / "model.json").exists()

    def predict(self, items):
        type(self).calls += len(items)
        return [Prediction(raw=f"{10 + len(item.text):.2f}") for item in items]
'''


class Plugin:
    def __init__(self, cls):
        self.cls = cls

    @hookimpl
    def register_predictors(self, register):
        register(self.cls)


@pytest.fixture
def edited_package(tmp_path, monkeypatch):
    """A predictor package on sys.path whose source the test edits, and a function that edits it."""
    root = tmp_path / "src"
    package = root / "pb_edited_predictor"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "model.py").write_text(SOURCE)
    monkeypatch.syspath_prepend(str(root))
    codedigest.package_digest.cache_clear()

    def edit(comment: str) -> None:
        (package / "model.py").write_text(SOURCE + f"\n# {comment}\n")
        codedigest.package_digest.cache_clear()

    yield importlib.import_module("pb_edited_predictor.model"), edit
    sys.modules.pop("pb_edited_predictor.model", None)
    sys.modules.pop("pb_edited_predictor", None)
    codedigest.package_digest.cache_clear()


def _run(dataset, results_dir, **options):
    [outcome] = run_predictors(["edited"], RunOptions(results_dir=results_dir, progress=False, **options), dataset=dataset)
    return outcome


def test_an_edited_predictor_recomputes_and_the_escape_hatch_keeps_old_answers(
        register_plugin, tiny_dataset, results_dir, edited_package, monkeypatch, price_bench_home):
    module, edit = edited_package
    cls = module.Edited
    register_plugin(Plugin(cls), name="edited-plugin")
    first = _run(tiny_dataset, results_dir)
    assert first.new_items == 30 and cls.fits == 1
    assert first.record.predictor.code_digest == codedigest.code_digest(cls)
    assert _run(tiny_dataset, results_dir).cached_items == 30 and cls.calls == 30

    edit("a change to predict")
    second = _run(tiny_dataset, results_dir)
    assert second.new_items == 30 and cls.calls == 60 and cls.fits == 2  # new answers and a new fit
    assert second.record.predictor.code_digest != first.record.predictor.code_digest

    stale = codedigest.stale_cache_keys(price_bench_home / "cache" / "predictions.sqlite", _registry())
    assert [row["code_digest"] for row in stale] == [first.record.predictor.code_digest]
    from click.testing import CliRunner

    from price_bench.cli.main import get_cli

    shown = CliRunner().invoke(get_cli(), ["cache", "info", "--json"])
    assert shown.exit_code == 0, shown.output
    [row] = [r for r in json.loads(shown.output)["predictors"] if r["predictor"] == "edited"]
    assert (row["keys"], row["stale_keys"]) == (2, 1)  # `price-bench cache info` says which keys are stale
    human = CliRunner().invoke(get_cli(), ["cache", "info"])
    assert "1 stale: written by other code of the predictor" in human.output

    edit("a docstring, known not to matter")
    monkeypatch.setenv(codedigest.KEEP_ENV, "1")
    third = _run(tiny_dataset, results_dir)
    assert third.cached_items == 30 and cls.calls == 60 and cls.fits == 2  # the answers and fit of the code before
    monkeypatch.delenv(codedigest.KEEP_ENV)
    assert _run(tiny_dataset, results_dir).cached_items == 30  # adopted under the new digest


def _registry():
    from price_bench.plugins.manager import get_registry

    return get_registry()


def test_digest_covers_the_package_sources_and_is_stable(edited_package):
    module, edit = edited_package
    before = codedigest.code_digest(module.Edited)
    assert before == codedigest.code_digest(module.Edited) and len(before) == codedigest.DIGEST_CHARS
    edit("x")
    assert codedigest.code_digest(module.Edited) != before


def test_installed_plugins_have_a_digest():
    from price_bench.predictors.baselines import ConstantMean

    assert len(codedigest.code_digest(ConstantMean)) == codedigest.DIGEST_CHARS
