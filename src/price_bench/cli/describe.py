"""``price-bench describe ID``: a predictor's config fields and requirements.

Everything shown comes from plugins, so it reaches rich as ``Text`` (never
as markup).
"""

from __future__ import annotations

import json
from typing import Any

import click

from price_bench.cli.harness import _console, _echo_json, _user_errors, _warn_plugin_failures, json_option


def register(cli: click.Group) -> None:
    """Add ``describe`` to ``cli``."""
    cli.add_command(describe_cmd)


@click.command("describe")
@click.argument("predictor_id")
@json_option
@_user_errors
def describe_cmd(predictor_id: str, as_json: bool) -> None:
    """Config fields (type, default, role, description) and requirements of one predictor.

    Role: fit (a new value refits), predict (reuses the fit, re-predicts),
    runtime (reuses the fit and every cached answer). Override a field with
    ``price-bench run ID -o ID.FIELD=VALUE``.
    """
    from price_bench.harness.errors import HarnessError, one_line
    from price_bench.plugins.manager import get_registry
    from price_bench.predictors.describe import describe_predictor

    spec = get_registry().get(predictor_id)
    _warn_plugin_failures()
    try:
        info = describe_predictor(spec)
    except Exception as exc:
        raise HarnessError(f"could not load {predictor_id}: {one_line(exc)}") from None
    if as_json:
        _echo_json(info)
        return
    _print(info)


def _print(info: dict[str, Any]) -> None:
    from rich.table import Table
    from rich.text import Text

    console = _console()
    console.print(Text.assemble((info["id"], "bold"), f"  {info['origin']} {info['plugin_version']}, predictor v{info['predictor_version']}"))
    if info["description"]:
        console.print(Text(info["description"]))
    status = "ready" if info["status"] == "ready" else f"skipped: {info['reason']}"
    console.print(Text.assemble("status ", (status, "green" if info["status"] == "ready" else "yellow"),
                                f"   batch size {info['batch_size']}" + ("   nondeterministic (never cached)" if info["nondeterministic"] else "")))
    fields = Table(title=f"config ({len(info['fields'])} fields; -o {info['id']}.FIELD=VALUE)")
    for column in ("field", "type", "default", "role", "constraints", "description"):
        fields.add_column(column)
    for row in info["fields"]:
        default = row["default"] if isinstance(row["default"], str) else json.dumps(row["default"])
        fields.add_row(*(Text(str(v)) for v in (row["name"], row["type"], default, row["role"], row["constraints"], row["description"])))
    console.print(fields)
    if not info["requirements"]:
        console.print("requirements: none")
        return
    reqs = Table(title="requirements")
    for column in ("kind", "name", "met", "hint / reason"):
        reqs.add_column(column)
    for req in info["requirements"]:
        met = Text("yes", "green") if req["met"] else Text("no", "yellow")
        reqs.add_row(Text(req["kind"]), Text(req["name"]), met, Text(req["reason"] or req["hint"] or ""))
    console.print(reqs)
