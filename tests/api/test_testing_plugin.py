"""price_bench.testing, the pytest plugin: isolation and fixtures."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

import price_bench
from price_bench import Prediction, Predictor
from price_bench.testing import get_registry

REPO = Path(__file__).resolve().parents[2]


class Fixed(Predictor):
    id = "fixed-testing-plugin"
    description = "always $10"

    def predict(self, items):
        return [Prediction(price=10.0) for _ in items]


def test_every_test_is_isolated(price_bench_home):
    assert os.environ["PRICE_BENCH_HOME"] == str(price_bench_home)
    assert os.environ["PRICE_BENCH_RESULTS"] == str(price_bench_home / "results")
    assert not price_bench_home.is_relative_to(REPO)
    assert "OPENAI_API_KEY" not in os.environ
    assert getattr(sys, "_called_from_test", False), "entry-point plugins stay unloaded"
    assert price_bench.data_home() == price_bench_home


def test_tiny_dataset_is_curated_by_the_real_pipeline(tiny_dataset, price_bench_home):
    manifest = tiny_dataset.manifest
    assert tiny_dataset.path.parent == price_bench_home / "datasets"
    assert manifest["recipe"]["id"] == "demo@1" and manifest["synthetic"] is True
    assert manifest["counts"], "curation counts (rejections by reason) are recorded"
    assert 30 <= manifest["sizes"]["test"] <= 200 and manifest["sizes"]["train"] > manifest["sizes"]["test"]
    assert len({i.category for i in tiny_dataset.train}) > 3


def test_tiny_dataset_is_deterministic(tiny_dataset, tmp_path):
    from price_bench.testing import build_tiny_dataset

    assert build_tiny_dataset(tmp_path).fingerprint == tiny_dataset.fingerprint


def test_register_predictor_for_one_test(register_predictor):
    assert register_predictor(Fixed) is Fixed
    spec = get_registry().get("fixed-testing-plugin")
    assert spec.load() is Fixed and spec.origin.endswith("(in-process)")


def test_registered_predictors_are_gone_in_the_next_test():
    assert "fixed-testing-plugin" not in get_registry()


def test_a_registered_predictor_runs_through_the_cli(register_predictor, tiny_dataset, tmp_path):
    from click.testing import CliRunner

    from price_bench.cli.main import get_cli

    register_predictor(Fixed)
    result = CliRunner().invoke(get_cli(), ["run", "fixed-testing-plugin", "--dataset", "tiny", "--limit", "5", "--json"])
    assert result.exit_code == 0, result.output
    assert '"status": "complete"' in result.output


@pytest.mark.fake_openai_server(default="ok")
def test_fake_openai_server(fake_openai_server):
    import json
    import urllib.request

    assert fake_openai_server.url.startswith("http://127.0.0.1:") and fake_openai_server.url.endswith("/v1")
    body = json.dumps({"model": "m", "messages": [{"role": "user", "content": "How much is a $12 mug?"}]}).encode()
    request = urllib.request.Request(fake_openai_server.url + "/chat/completions", body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        reply = json.loads(response.read())
    assert reply["object"] == "chat.completion" and reply["choices"][0]["message"]["content"]


def test_shared_data_skips_with_the_path_when_absent(pytester):
    pytester.makeini("[pytest]\nprice_bench_shared_data = no/such/folder\n")
    pytester.makepyfile("def test_it(shared_data):\n    pass\n")
    result = pytester.runpytest("-p", "price_bench.testing.fixtures", "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*shared data folder not found at*no/such/folder*"])


def test_isolation_can_be_switched_off(pytester, monkeypatch):
    monkeypatch.setenv("PRICE_BENCH_HOME", "/somewhere/else")
    pytester.makeini("[pytest]\nprice_bench_isolate = false\n")
    pytester.makepyfile(
        "import os, sys\n"
        "def test_untouched():\n"
        "    assert os.environ['PRICE_BENCH_HOME'] == '/somewhere/else'\n"
        "def test_home_still_on_request(price_bench_home):\n"
        "    assert os.environ['PRICE_BENCH_HOME'] == str(price_bench_home)\n"
    )
    result = pytester.runpytest_subprocess("-p", "price_bench.testing.fixtures")
    result.assert_outcomes(passed=2)
