"""Registration through the plugin host, lazy imports, and a real harness run that reuses the fit."""

from __future__ import annotations

import importlib
import subprocess
import sys

import price_bench_classic


def test_registers_every_predictor_lazily(register_plugin):
    from price_bench.testing import get_registry

    register_plugin(price_bench_classic, name="classic-under-test")
    registry = get_registry()
    for predictor_id, factory, description in price_bench_classic.SPECS:
        spec = registry.get(predictor_id)
        assert spec.factory == factory and spec.description == description
        cls = spec.load()
        assert cls.id == predictor_id and cls.description == description
        assert not [name for name, field in cls.Config.model_fields.items() if field.is_required()]


def test_importing_the_plugin_and_its_modules_imports_no_heavy_library():
    modules = [f.partition(":")[0] for _, f, _ in price_bench_classic.SPECS]
    code = (
        "import sys, importlib\n"
        f"for m in {sorted(set(modules))!r}: importlib.import_module(m)\n"
        "heavy = [m for m in ('sklearn', 'gensim', 'torch', 'sentence_transformers', 'scipy') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == ""


def test_harness_run_fits_once_then_reuses_the_saved_model(demo_split, register_plugin, tmp_path, monkeypatch):
    from price_bench.testing import RunOptions, get_registry, run_predictors, write_dataset

    register_plugin(price_bench_classic, name="classic-under-test")
    dataset = write_dataset(
        "classic-small",
        {"train": demo_split.train[:600], "validation": demo_split.validation[:50], "test": demo_split.test[:100]},
        {"recipe": {"name": "test", "version": 1}},
    )
    options = RunOptions(dataset=dataset.name, results_dir=tmp_path / "results", progress=False)
    first = run_predictors(["tfidf-ridge"], options, registry=get_registry(), dataset=dataset)[0]
    assert first.status == "complete", first.reason
    assert first.record.timing.fit_reused is False

    ridge = importlib.import_module("price_bench_classic.linear").TfidfRidge
    monkeypatch.setattr(ridge, "fit", lambda *a, **k: (_ for _ in ()).throw(AssertionError("refitted")))
    again = RunOptions(dataset=dataset.name, results_dir=tmp_path / "results", progress=False, overwrite="always")
    second = run_predictors(["tfidf-ridge"], again, registry=get_registry(), dataset=dataset)[0]
    assert second.status == "complete", second.reason
    assert second.record.timing.fit_reused is True
    assert second.record.metrics["error"].value == first.record.metrics["error"].value


def test_without_gensim_the_w2v_predictors_name_the_extra(monkeypatch):
    import pytest
    from price_bench_classic import embeddings
    from price_bench_classic.w2v import Word2VecForest, Word2VecLinear, Word2VecSVR

    monkeypatch.setitem(sys.modules, "gensim", None)  # what an environment without gensim gives: ImportError
    for cls in (Word2VecLinear, Word2VecForest, Word2VecSVR):
        assert "price-bench-classic[w2v]" in cls.skip_reason(cls.Config())
    with pytest.raises(ImportError) as raised:
        embeddings.tokenize("a text")
    message = str(raised.value)
    assert "price-bench-classic[w2v]" in message and "\n" not in message


def test_every_predictor_builds_its_model_from_its_own_config():
    for cls in price_bench_classic.predictor_classes():
        predictor = cls(cls.Config(), seed=3)
        model = predictor.build_model()
        assert model.config is predictor.config and model.seed == 3
