"""Hook specifications for price-bench plugins.

Every hook name carries the registering style of simonw/llm: the host passes
a ``register`` callback and plugins call it; they never return lists.
Implementations may accept a subset of the arguments. Argument names are
public API: they are only ever added to, never renamed or removed.

Documented in ``docs/hooks.md`` (a test keeps the two in sync).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    import click

    from price_bench.predictors.contract import Predictor
    from price_bench.predictors.registry import PredictorSpec

hookspec = pluggy.HookspecMarker("price_bench")
hookimpl = pluggy.HookimplMarker("price_bench")


@hookspec
def register_predictors(register: Callable[[type[Predictor] | PredictorSpec], None]) -> None:
    """Register predictors.

    ``register(predictor)`` takes a :class:`price_bench.Predictor` subclass or
    a :class:`price_bench.PredictorSpec` (for a lazily
    imported ``"module:Class"`` factory). A duplicate id keeps the first
    registration and makes only that id fail to load (see docs/hooks.md).
    """


@hookspec
def register_commands(cli: click.Group) -> None:
    """Add commands to the ``price-bench`` CLI.

    ``cli`` is the root :class:`click.Group`; call ``cli.add_command`` or use
    ``@cli.command()``. Import heavy libraries inside the command function.
    """
