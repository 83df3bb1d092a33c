"""docs/serving.md documents every `price-bench serve` option and every endpoint."""

from __future__ import annotations

from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "serving.md"


def test_every_serve_option_is_documented():
    from price_bench.cli.serve import serve_cmd

    text = DOC.read_text()
    for param in serve_cmd.params:
        for opt in getattr(param, "opts", []):
            if opt.startswith("--") and opt != "--results":
                assert f"`{opt}" in text or f"{opt}`" in text or f" {opt}" in text, opt


def test_every_endpoint_and_deployment_recipe_is_documented():
    text = DOC.read_text()
    for needle in ("POST /v1/predict", "POST /v1/feedback", "GET /healthz", "GET /v1/model", "GET /metrics", "/openapi.json",
                   "FROM python:3.11", "upstream price_api", "kind: Deployment", "price-bench monitor"):
        assert needle in text, needle
