"""`serve` refuses a bundle fitted by other predictor code than the installed one (unless told to serve anyway).

In process: a predictor module written into a tmp folder is imported and
registered, run by the real harness (which records its code digest) and
bundled by the real bundler; then its source changes on disk, as an upgrade
of the installed plugin would change it, and the app is built from the
bundle and served by a real uvicorn (in a thread). Through the real CLI and uvicorn: a copy of the session's
tfidf-ridge bundle whose manifest records another digest.
"""

from __future__ import annotations

import importlib
import json
import random
import shutil
import sys
from pathlib import Path

import pytest

from price_bench.data.dataset import write_dataset
from price_bench.harness.codedigest import code_digest, package_digest
from price_bench.harness.runner import RunOptions, run_predictors
from price_bench.items import Item
from price_bench.serve.bundle import MANIFEST, BundleError

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

MODULE = "pb_serve_codecheck_predictor"
SOURCE = '''
import json
from price_bench import Prediction, Predictor


class Lengthy(Predictor):
    """Prices an item at a tenth of its text length."""

    id = "lengthy-codecheck"
    description = "a tenth of the text length"

    def fit(self, train, validation, workdir):
        (workdir / "lengthy.json").write_text(json.dumps({"scale": 0.1}))

    def load(self, workdir):
        return (workdir / "lengthy.json").is_file()

    def predict(self, items):
        return [Prediction(price=max(1.0, len(item.text) / 10)) for item in items]
'''


@pytest.fixture
def lengthy(tmp_path, monkeypatch, register_predictor):
    """The predictor class, imported from ``tmp_path/src/<MODULE>.py``; yields (class, source file)."""
    src = tmp_path / "src"
    src.mkdir()
    source = src / f"{MODULE}.py"
    source.write_text(SOURCE)
    monkeypatch.syspath_prepend(str(src))
    package_digest.cache_clear()
    module = importlib.import_module(MODULE)
    register_predictor(module.Lengthy)
    yield module.Lengthy, source
    sys.modules.pop(MODULE, None)
    package_digest.cache_clear()


def _items(split: str, n: int) -> list[Item]:
    rng = random.Random(split)
    return [Item(id=f"{split}-{i}", text=f"product {i} " + "x" * rng.randint(50, 900), price=round(rng.uniform(5, 90), 2), category="Toys")
            for i in range(n)]


def _bundle(tmp_path: Path, cls: type):
    from price_bench.serve.bundle import build_bundle

    write_dataset("codecheck", {"train": _items("train", 20), "validation": _items("validation", 4), "test": _items("test", 12)},
                  {"recipe": {"name": "reference-2023", "version": 1}})
    results = tmp_path / "results"
    (outcome,) = run_predictors([cls.id], RunOptions(dataset="codecheck", results_dir=results, n_resamples=20, progress=False))
    assert outcome.status == "complete", outcome.reason
    assert outcome.record.predictor.code_digest == code_digest(cls)
    return build_bundle(outcome.record.run_id, tmp_path / "bundle", results_dir=results)


def test_changed_installed_code_is_refused_unless_allowed(lengthy, price_bench_home, tmp_path, kit):
    import httpx

    from price_bench.serve.app import ServeSettings, create_app

    cls, source = lengthy
    bundle = _bundle(tmp_path, cls)
    fitted_by = bundle.manifest.predictor.code_digest
    assert fitted_by

    # the same code: served, and said to match
    app = create_app(ServeSettings(bundle=str(bundle.path), log_dir=str(tmp_path / "log-same")))
    assert app.state.service.code.mismatch is False
    app.state.service.close()

    # the installed plugin's code changes (an upgrade, a local edit)
    source.write_text(SOURCE.replace("a tenth of its text length", "a tenth of its text length (edited)"))
    package_digest.cache_clear()
    installed = code_digest(cls)
    assert installed != fitted_by

    with pytest.raises(BundleError) as refused:
        create_app(ServeSettings(bundle=str(bundle.path), log_dir=str(tmp_path / "log-refused")))
    message = str(refused.value)
    assert "\n" not in message and fitted_by in message and installed in message
    assert "lengthy-codecheck" in message and "--allow-code-mismatch" in message

    app = create_app(ServeSettings(bundle=str(bundle.path), log_dir=str(tmp_path / "log-allowed"), allow_code_mismatch=True))

    with kit.uvicorn_in_thread(app) as url, httpx.Client(base_url=url, timeout=60) as client:  # closes the service on shutdown
        health, model, predict = client.get("/healthz"), client.get("/v1/model"), client.post("/v1/predict", json={"text": "x" * 200})
    assert health.json()["code_mismatch"] is True
    assert fitted_by in health.json()["warning"] and installed in health.json()["warning"]
    code = model.json()["code"]
    assert code == {"plugin": code["plugin"], "recorded_digest": fitted_by, "installed_digest": installed, "mismatch": True, "allowed": True}
    assert predict.status_code == 200 and predict.json()["price"] == pytest.approx(20.0)


@pytest.mark.slow
def test_serve_cli_refuses_another_code_digest_in_one_line(kit, fitted, tmp_path):
    """The real CLI and uvicorn: refused in one line; with --allow-code-mismatch served, and /healthz and /v1/model say so."""
    import httpx

    copy = tmp_path / "bundle"
    shutil.copytree(fitted.bundle, copy)
    manifest = json.loads((copy / MANIFEST).read_text())
    installed = manifest["predictor"]["code_digest"]
    assert installed, "the session's run recorded no code digest"
    manifest["predictor"]["code_digest"] = "0123456789abcdef"
    (copy / MANIFEST).write_text(json.dumps(manifest, indent=2))

    for workers in ("1", "2"):
        out = kit.run_cli("serve", str(copy), "--port", "1", "--workers", workers, env=fitted.env, check=False)
        assert out.returncode == 1, out.stderr
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1, lines
        assert "0123456789abcdef" in lines[0] and installed in lines[0] and "price-bench-classic" in lines[0], lines[0]

    srv = kit.start_server(fitted, "code-mismatch", "--allow-code-mismatch", "--no-access-log", target=str(copy))
    try:
        with httpx.Client(base_url=srv.url, timeout=60) as client:
            health = client.get("/healthz").json()
            model = client.get("/v1/model").json()
            assert client.post("/v1/predict", json={"text": fitted.test_texts[0]}).status_code == 200
    finally:
        kit.stop_server(srv)
    assert health["code_mismatch"] is True and "0123456789abcdef" in health["warning"]
    assert model["code"]["mismatch"] is True and model["code"]["allowed"] is True
    assert model["code"]["recorded_digest"] == "0123456789abcdef" and model["code"]["installed_digest"] == installed
    assert "--allow-code-mismatch" in srv.stderr()
