"""Errors the CLI shows as one line, without a traceback."""


class HarnessError(Exception):
    """A user error (unknown predictor, bad ``-o`` override, bad value, missing run...)."""


def one_line(exc: BaseException, limit: int = 300) -> str:
    """``"ValueError: first line of the message"``, at most ``limit`` characters."""
    text = str(exc).strip().splitlines()
    message = f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
    return message if len(message) <= limit else message[: limit - 1] + "…"
