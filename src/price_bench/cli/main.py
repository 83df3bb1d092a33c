"""The ``price-bench`` command line.

Commands live in one module per concern (``data``, ``harness``,
``leaderboard``), each exposing ``register(cli)``; plugins add their own with
the ``register_commands`` hook. Nothing heavy is imported at module level, so
``price-bench --help`` stays fast.
"""

from __future__ import annotations

import sys

import click

from price_bench import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="price-bench")
def cli() -> None:
    """Benchmark product price predictors on curated Amazon test sets."""


def _build() -> click.Group:
    from price_bench.cli import data, harness, leaderboard, serve
    from price_bench.plugins.manager import pm, load_plugins

    for module in (data, harness, leaderboard, serve):
        module.register(cli)
    load_plugins()
    pm.hook.register_commands(cli=cli)
    return cli


_built = False


def get_cli() -> click.Group:
    """The fully assembled CLI (core commands plus plugin commands), built once."""
    global _built
    if not _built:
        _build()
        _built = True
    return cli


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    get_cli().main(args=argv if argv is not None else sys.argv[1:], prog_name="price-bench")
