"""What a predictor takes: its config fields (type, default, role, description) and its requirements.

The data behind ``price-bench describe ID``; the values are JSON-ready and
secrets in defaults are shown as ``***``.
"""

from __future__ import annotations

import inspect
import io
import re
import tokenize
import typing
from typing import Any

from price_bench.predictors.contract import Predictor, cheap_checks, field_role
from price_bench.predictors.registry import PredictorSpec

#: annotated-types / pydantic constraint attributes shown next to a field.
_CONSTRAINTS = ("gt", "ge", "lt", "le", "multiple_of", "min_length", "max_length", "pattern")


def describe_predictor(spec: PredictorSpec) -> dict[str, Any]:
    """Everything ``describe`` shows about the predictor of ``spec`` (imports its class, nothing heavy)."""
    cls = spec.load()
    with cheap_checks():
        requirements = [_requirement(req) for req in cls.requires]
        try:
            reason = cls.skip_reason(cls.Config())
        except Exception as exc:  # a broken skip_reason is reported, not raised
            reason = f"skip_reason raised {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    return {
        "id": spec.id,
        "description": cls.description or spec.description,
        "origin": spec.origin,
        "plugin_version": spec.plugin_version,
        "predictor_version": str(cls.version),
        "batch_size": cls.batch_size,
        "nondeterministic": cls.nondeterministic,
        "status": "ready" if reason is None else "skipped",
        "reason": reason,
        "fields": config_fields(cls),
        "requirements": requirements,
    }


def config_fields(cls: type[Predictor]) -> list[dict[str, Any]]:
    """One dict per config field: name, type, default, role, constraints, description."""
    from pydantic import SecretBytes, SecretStr
    from pydantic_core import to_jsonable_python

    from price_bench.harness.overrides import REDACTED, is_secret_field

    comments = source_comments(cls.Config)
    rows = []
    for name, info in cls.Config.model_fields.items():
        default = info.get_default(call_default_factory=True)
        if isinstance(default, (SecretStr, SecretBytes)) or (is_secret_field(name) and default not in (None, "")):
            shown: Any = REDACTED if default not in (None, "") and str(default) else default
            if isinstance(default, (SecretStr, SecretBytes)):
                shown = REDACTED if default.get_secret_value() else ""
        else:
            shown = to_jsonable_python(default, fallback=str)
        rows.append(
            {
                "name": name,
                "type": type_label(info.annotation),
                "default": shown,
                "role": field_role(cls.Config, name),
                "constraints": _constraints(info.metadata),
                "description": info.description or comments.get(name, ""),
            }
        )
    return rows


_FIELD_LINE = re.compile(r"^(\s+)([A-Za-z_]\w*)\s*:")


def source_comments(config_cls: type) -> dict[str, str]:
    """Field name -> the comment written beside it (``x: int = 1  # ...``) or above it (``#: ...``).

    The fallback description of fields declared without ``description=``;
    base configs are read first, so a subclass's comment wins. Empty when the
    source is not available (e.g. a class typed into a REPL).
    """
    out: dict[str, str] = {}
    for klass in reversed(config_cls.__mro__):
        if klass.__module__.startswith(("pydantic", "builtins")) or klass.__name__ == "PredictorConfig":
            continue
        try:
            lines, _ = inspect.getsourcelines(klass)
            tokens = list(tokenize.generate_tokens(io.StringIO("".join(lines)).readline))
        except (OSError, TypeError, tokenize.TokenError, IndentationError, SyntaxError):
            continue
        comments = {tok.start[0]: tok.string.lstrip("#").strip() for tok in tokens if tok.type == tokenize.COMMENT}
        body_indent = None
        for number, line in enumerate(lines, 1):
            match = _FIELD_LINE.match(line)
            if not match:
                continue
            body_indent = body_indent if body_indent is not None else match.group(1)
            if match.group(1) != body_indent:
                continue
            text = comments.get(number)
            if text is None and lines[number - 2].strip().startswith("#:"):
                text = lines[number - 2].strip()[2:].strip()
            if text:
                out[match.group(2)] = text.lstrip(":").strip()
    return out


def type_label(annotation: Any) -> str:
    """``int``, ``str | None``, ``list[str]``, ``Literal['a', 'b']``: a type as a user writes it."""
    if annotation is None or annotation is type(None):
        return "None"
    if isinstance(annotation, type) and not typing.get_args(annotation):
        return annotation.__name__
    return repr(annotation).replace("typing.", "").replace("NoneType", "None").replace("pydantic.types.", "")


def _constraints(metadata: list[Any]) -> str:
    parts = []
    for item in metadata:
        for attr in _CONSTRAINTS:
            value = getattr(item, attr, None)
            if value is not None:
                parts.append(f"{attr}={value}")
    return ", ".join(parts)


def _requirement(req: Any) -> dict[str, Any]:
    reason = req.unmet_reason()
    return {"kind": req.kind, "name": req.name, "hint": req.hint, "met": reason is None, "reason": reason}
