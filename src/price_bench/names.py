"""The one rule for values that become part of a file or folder name.

Dataset names and predictor ids name folders (``<results>/<dataset>/<predictor>/``,
``<home>/datasets/<dataset>/``, ``<home>/work/.../<predictor>/``), and a
dataset's fingerprint names its work folder and keys its cached predictions.
All three come from outside (a command line, a plugin, a ``manifest.json``
someone shared), so each is checked here, at the place where it enters, and
nothing downstream ever builds a path from an unchecked value.

* **Name** (dataset names, predictor ids): 1 to 64 characters, letters,
  digits, ``.``, ``_`` and ``-``, starting with a letter or digit. So no path
  separators, no ``..``, no hidden names, no shell or Markdown specials, and
  short enough for every file system.
* **Fingerprint**: ``sha256:`` followed by exactly 64 lower-case hex digits
  (what :func:`price_bench.data.dataset.fingerprint_items` writes).

Text from outside that is *shown* (a product text, a reason, a file name)
goes through :func:`printable` before it reaches a terminal.
"""

from __future__ import annotations

import re

NAME_MAX = 64
NAME_PATTERN = re.compile(rf"[A-Za-z0-9][A-Za-z0-9._-]{{0,{NAME_MAX - 1}}}")
FINGERPRINT_PATTERN = re.compile(r"sha256:[0-9a-f]{64}")
#: C0 and C1 control characters except tab and newline: ESC sequences can recolour, retitle or clear a terminal.
CONTROL_PATTERN = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
NAME_RULE = f"1-{NAME_MAX} letters, digits, '.', '_' or '-', starting with a letter or digit"


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "...'"


def name_problem(value: object, what: str = "name") -> str | None:
    """Why ``value`` is not a valid dataset name / predictor id (None when it is)."""
    if isinstance(value, str) and NAME_PATTERN.fullmatch(value):
        return None
    if isinstance(value, str) and len(value) > NAME_MAX and NAME_PATTERN.fullmatch(value[:NAME_MAX]):
        return f"invalid {what} {_shown(value)}: {len(value)} characters, at most {NAME_MAX}"
    return f"invalid {what} {_shown(value)} (use {NAME_RULE})"


def is_valid_name(value: object) -> bool:
    """True for a valid dataset name / predictor id."""
    return name_problem(value) is None


def fingerprint_problem(value: object) -> str | None:
    """Why ``value`` is not a dataset fingerprint (None when it is ``sha256:<64 hex>``)."""
    if isinstance(value, str) and FINGERPRINT_PATTERN.fullmatch(value):
        return None
    return f"fingerprint {_shown(value)} is not 'sha256:' followed by 64 lower-case hex digits"


def printable(value: object) -> str:
    """``value`` as text for a terminal: control characters (ESC, CR, BEL, ...) shown as ``\\x1b``, never sent."""
    return CONTROL_PATTERN.sub(lambda m: f"\\x{ord(m.group()):02x}", "" if value is None else str(value))
