"""Errors the CLI shows as one line, without a traceback."""

from price_bench.errors import PriceBenchError


class HarnessError(PriceBenchError):
    """A user error (unknown predictor, bad ``-o`` override, bad value, missing run...)."""
