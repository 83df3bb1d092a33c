"""docs/hooks.md documents every hook with its exact signature (datasette style)."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

from price_bench.plugins import hookspecs
from price_bench.plugins.manager import hook_names

DOCS = Path(__file__).resolve().parents[2] / "docs"


def documented_hooks() -> dict[str, str]:
    text = (DOCS / "hooks.md").read_text()
    return {m.group(1): m.group(2) for m in re.finditer(r"^## (\w+)\(([^)]*)\)\s*$", text, re.MULTILINE)}


def test_every_hook_is_documented_with_its_signature():
    expected = {name: ", ".join(inspect.signature(getattr(hookspecs, name)).parameters) for name in hook_names()}
    assert documented_hooks() == expected


def test_every_hookspec_has_a_docstring():
    for name in hook_names():
        assert (getattr(hookspecs, name).__doc__ or "").strip(), name


def test_plugin_guide_names_the_entry_point_group_and_example():
    guide = (DOCS / "writing-a-plugin.md").read_text()
    assert "[project.entry-points.price_bench]" in guide
    assert "plugins/price-bench-example" in guide
    example = (DOCS.parent / "plugins" / "price-bench-example" / "pyproject.toml").read_text()
    assert "[project.entry-points.price_bench]" in example
