"""Errors the CLI shows as one line, without a traceback."""

from price_bench.errors import PriceBenchError


class HarnessError(PriceBenchError):
    """A user error (unknown predictor, bad ``-o`` override, bad value, missing run...)."""


def one_line(exc: BaseException, limit: int = 300) -> str:
    """``"ValueError: first line of the message"``, at most ``limit`` characters (:func:`price_bench.errors.first_line`)."""
    from price_bench.errors import first_line

    return first_line(exc, typed=True, limit=limit)
