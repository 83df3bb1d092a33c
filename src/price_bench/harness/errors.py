"""Errors the CLI shows as one line, without a traceback."""


class HarnessError(Exception):
    """A user error (unknown predictor, bad ``-o`` override, bad value, missing run...)."""
