"""The ``price-bench`` command line.

Commands live in one module per concern (``data``, ``harness``,
``leaderboard``), each exposing ``register(cli)``; plugins add their own with
the ``register_commands`` hook (a plugin whose hook raises is reported as
failed and the rest of the CLI works). Nothing heavy is imported at module
level, so ``price-bench --help`` stays fast.

Ctrl-C exits with code 130 from every command, without a traceback: the
first one raises ``KeyboardInterrupt`` (commands save what they finished and
say how to resume), a second one while that cleanup runs exits at once.
"""

from __future__ import annotations

import os
import signal
import sys
from types import FrameType
from typing import Any

import click

from price_bench import __version__
from price_bench.cli.errors import one_line_errors

#: Exit status of a command stopped by Ctrl-C (128 + SIGINT), as shells report it.
INTERRUPTED = 130


class PriceBenchGroup(click.Group):
    """The root group: the one error handler of every command.

    A user error (:class:`~price_bench.errors.PriceBenchError`, ``OSError``)
    prints ``Error: <one line>`` and exits 1 (:mod:`price_bench.cli.errors`);
    a ``KeyboardInterrupt`` exits 130 with one line.
    """

    def invoke(self, ctx: click.Context) -> Any:
        try:
            with one_line_errors():
                return super().invoke(ctx)
        except KeyboardInterrupt:
            click.echo("Interrupted.", err=True)
            raise click.exceptions.Exit(INTERRUPTED) from None


@click.group(cls=PriceBenchGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="price-bench")
def cli() -> None:
    """Benchmark product price predictors on curated Amazon test sets."""


def _build() -> click.Group:
    from price_bench.cli import data, describe, harness, leaderboard, serve
    from price_bench.plugins.manager import register_commands

    for module in (data, harness, describe, leaderboard, serve):
        module.register(cli)
    register_commands(cli)
    return cli


_built = False


def get_cli() -> click.Group:
    """The fully assembled CLI (core commands plus plugin commands), built once."""
    global _built
    if not _built:
        from price_bench.cli import cache  # the cache commands (``price-bench cache ...``)

        cache.register(cli)
        _build()
        _built = True
    return cli


def _first_interrupt(signum: int, frame: FrameType | None) -> None:
    """First Ctrl-C: a normal ``KeyboardInterrupt``; the next one exits at once (see :func:`_second_interrupt`)."""
    signal.signal(signal.SIGINT, _second_interrupt)
    raise KeyboardInterrupt


def _second_interrupt(signum: int, frame: FrameType | None) -> None:
    """Ctrl-C again while the first one's cleanup runs: no traceback, exit 130 now.

    Whatever was committed (finished batches, written records) stays; the
    rest is redone by the next run.
    """
    try:
        sys.stderr.write("Interrupted again: exiting now.\n")
        sys.stderr.flush()
    finally:
        os._exit(INTERRUPTED)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, _first_interrupt)
    try:
        get_cli().main(args=argv if argv is not None else sys.argv[1:], prog_name="price-bench")
    except KeyboardInterrupt:  # before a command started (while plugins load)
        click.echo("Interrupted.", err=True)
        sys.exit(INTERRUPTED)
