"""The one place where the command line turns an error into one line and a non-zero exit.

A :class:`~price_bench.errors.PriceBenchError` (from the core or from a
plugin) and an ``OSError`` (a read-only or vanished file) become
``Error: <first line>`` on stderr and exit status 1, never a traceback. Any
other exception is a bug and keeps its traceback. The root command group
(:class:`price_bench.cli.main.PriceBenchGroup`) applies this to every
command, plugin commands included; :func:`user_errors` applies the same
handler to a command called on its own (outside the ``price-bench`` group).
"""

from __future__ import annotations

import errno
import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import NoReturn, ParamSpec, TypeVar

import click

from price_bench.errors import PriceBenchError, first_line
from price_bench.names import printable

P = ParamSpec("P")
R = TypeVar("R")


def error_line(exc: BaseException) -> str | None:
    """The line a user sees for ``exc``; None when ``exc`` is not a user error (a bug, or a closed pipe)."""
    if isinstance(exc, PriceBenchError):
        return printable(first_line(exc))
    if isinstance(exc, OSError) and exc.errno != errno.EPIPE:  # click handles a closed stdout itself
        where = f"{exc.filename}: " if exc.filename else ""
        return printable(f"{where}{exc.strerror or first_line(exc)}")
    return None


@contextmanager
def one_line_errors() -> Iterator[None]:
    """Turn a user error raised inside the block into ``Error: <one line>`` and exit status 1."""
    try:
        yield
    except (PriceBenchError, OSError) as exc:
        line = error_line(exc)
        if line is None:
            raise
        raise click.ClickException(line) from None


def user_errors(func: Callable[P, R]) -> Callable[P, R]:
    """``func`` with :func:`one_line_errors` around it (for a command used outside the root group)."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with one_line_errors():
            return func(*args, **kwargs)

    return wrapper


def fail(message: object) -> NoReturn:
    """Stop the command with ``Error: <first line of message>`` and exit status 1."""
    lines = str(message).strip().splitlines()
    raise click.ClickException(printable(lines[0] if lines else "failed"))
