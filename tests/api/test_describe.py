"""``price-bench describe ID``: config fields with type, default, role and description, and requirements."""

from __future__ import annotations

import json

from click.testing import CliRunner
from pydantic import Field

from price_bench import Prediction, Predictor, PredictorConfig, Requirement, predict_field, runtime_field
from price_bench.cli.main import get_cli


class KnobsConfig(PredictorConfig):
    depth: int = Field(3, ge=1, description="Tree depth [bold]deep[/bold].")
    #: Words kept per text.
    words: list[str] = ["a", "b"]
    temperature: float = predict_field(0.0)  # sampling temperature
    concurrency: int = runtime_field(4)
    api_key: str = "sk-should-never-show"


class Knobs(Predictor):
    id = "knobs"
    description = "Has [red]knobs[/red] <b>"
    Config = KnobsConfig
    requires = (Requirement.env("PB_DESCRIBE_UNSET", "set it to anything"), Requirement.package("json"))

    def predict(self, items):
        return [Prediction(price=1.0) for _ in items]


def _describe(*args: str):
    return CliRunner().invoke(get_cli(), ["describe", *args])


def test_json_lists_fields_with_roles_and_requirements(register_predictor):
    register_predictor(Knobs)
    result = _describe("knobs", "--json")
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    fields = {f["name"]: f for f in info["fields"]}
    mine = ["depth", "words", "temperature", "concurrency", "api_key"]
    assert [name for name in fields if name in mine] == mine, "in declaration order (base config fields may come first)"
    assert fields["depth"] == {"name": "depth", "type": "int", "default": 3, "role": "fit", "constraints": "ge=1",
                               "description": "Tree depth [bold]deep[/bold]."}
    assert fields["words"]["type"] == "list[str]" and fields["words"]["default"] == ["a", "b"]
    assert fields["words"]["description"] == "Words kept per text."
    assert (fields["temperature"]["role"], fields["temperature"]["description"]) == ("predict", "sampling temperature")
    assert fields["concurrency"]["role"] == "runtime"
    assert fields["api_key"]["default"] == "***"
    assert "sk-should-never-show" not in result.output
    reqs = {r["kind"]: r for r in info["requirements"]}
    assert reqs["env"]["met"] is False and "PB_DESCRIBE_UNSET" in reqs["env"]["reason"]
    assert reqs["package"]["met"] is True
    assert info["status"] == "skipped"


def test_table_shows_plugin_text_literally(register_predictor):
    register_predictor(Knobs)
    result = _describe("knobs")
    assert result.exit_code == 0, result.output
    assert "Has [red]knobs[/red] <b>" in result.output
    assert "[bold]deep[/bold]" in result.output
    for word in ("depth", "int", "fit", "predict", "runtime", "ge=1", "PB_DESCRIBE_UNSET", "***"):
        assert word in result.output
    assert "sk-should-never-show" not in result.output


def test_unknown_id_is_one_line():
    result = _describe("knbos")
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == ["Error: unknown predictor 'knbos'"]
