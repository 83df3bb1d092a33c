"""Predictor configs from the command line: ``-o ID.key=value``.

Also the two things every consumer of a config needs: a stable hash (part
of the cache key and of the work-folder name) and a scrubbed copy that is
safe to write into a result record (no API key, token or password).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, SecretBytes, SecretStr, ValidationError

from price_bench.harness.errors import HarnessError

if TYPE_CHECKING:
    from price_bench.predictors.contract import Predictor, PredictorConfig

REDACTED = "***"

#: Field-name parts that mark a secret (``api_key``, ``hf_token``, ``client_secret``...).
#: ``max_tokens`` is not a secret: only the singular ``token`` counts.
_SECRET_PARTS = frozenset({"key", "apikey", "secret", "password", "passwd", "token", "credential", "credentials", "auth"})


def parse_overrides(pairs: Iterable[str]) -> dict[str, dict[str, str]]:
    """``["knn.k=5", "random.low=1"]`` -> ``{"knn": {"k": "5"}, "random": {"low": "1"}}``.

    The predictor id is everything before the *last* dot of the left-hand side,
    so ids may contain dots; keys may not.
    """
    out: dict[str, dict[str, str]] = {}
    for pair in pairs:
        left, eq, value = pair.partition("=")
        pid, dot, key = left.strip().rpartition(".")
        if not eq or not dot or not pid or not key:
            raise HarnessError(f"bad override {pair!r}: expected -o ID.key=value")
        out.setdefault(pid, {})[key] = value
    return out


def parse_variants(pairs: Iterable[str]) -> dict[str, list[dict[str, str]]]:
    """The run matrix of ``--vary ID.key=value`` (repeatable): per predictor id, the override sets to run.

    Values given for one ``ID.key`` are alternatives; several keys of one id
    combine as a cross product (``--vary m.a=1 --vary m.a=2 --vary m.b=x``
    gives ``{a=1, b=x}`` and ``{a=2, b=x}``). A comma keeps its meaning inside a
    value (a list, e.g. an endpoint pool), so alternatives are always separate flags.
    """
    import itertools

    values: dict[str, dict[str, list[str]]] = {}
    for pair in pairs:
        parsed = parse_overrides([pair])
        (pid, kv), = parsed.items()
        (key, value), = kv.items()
        options = values.setdefault(pid, {}).setdefault(key, [])
        if value in options:
            raise HarnessError(f"--vary {pair!r} is given twice")
        options.append(value)
    matrix = {}
    for pid, keys in values.items():
        names = list(keys)
        matrix[pid] = [dict(zip(names, combo)) for combo in itertools.product(*(keys[n] for n in names))]
    return matrix


def parse_seeds(text: str) -> list[int]:
    """``"0,1,2"`` -> ``[0, 1, 2]`` (distinct non-negative integers), else :class:`HarnessError`."""
    seeds = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        if not part.isdigit():
            raise HarnessError(f"--seeds {text!r}: {part!r} is not a non-negative integer")
        if int(part) in seeds:
            raise HarnessError(f"--seeds {text!r}: seed {part} is given twice")
        seeds.append(int(part))
    if not seeds:
        raise HarnessError("--seeds needs at least one seed, e.g. --seeds 0,1,2")
    return seeds


def build_config(predictor_cls: type[Predictor], overrides: Mapping[str, Any] | None = None) -> PredictorConfig:
    """The predictor's config: defaults plus ``overrides``, validated.

    Raises :class:`HarnessError` (one line) for an unknown key or a bad value.
    """
    overrides = dict(overrides or {})
    fields = predictor_cls.Config.model_fields
    unknown = sorted(set(overrides) - set(fields))
    if unknown:
        known = ", ".join(sorted(fields)) or "none"
        raise HarnessError(f"{predictor_cls.id}: unknown config key {unknown[0]!r} (known keys: {known})")
    try:
        return predictor_cls.make_config(overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "config"
        raise HarnessError(f"{predictor_cls.id}: bad value for {where!r}: {first.get('msg', 'invalid')}") from None


def is_secret_field(name: str) -> bool:
    """True when a config field name looks like it holds a secret."""
    parts = set(re.split(r"[_\-.]+", name.lower()))
    return bool(parts & _SECRET_PARTS) or "apikey" in name.lower().replace("_", "")


def scrubbed_config(config: BaseModel) -> dict[str, Any]:
    """JSON-ready config with every secret-looking field replaced by ``***`` (when set)."""
    data = config.model_dump(mode="json")
    for name, value in list(data.items()):
        raw = getattr(config, name, None)
        if isinstance(raw, (SecretStr, SecretBytes)) or is_secret_field(name):
            data[name] = REDACTED if value not in (None, "") else value
    return data


def config_hash(config: BaseModel, roles: Iterable[str] = ("fit", "predict")) -> str:
    """First 12 hex digits of the sha256 of the canonical JSON of the *scrubbed* config.

    Only fields whose role (see :func:`price_bench.predictors.contract.field_role`)
    is in ``roles`` count: the default keys predictions (runtime fields such as
    concurrency are left out); ``roles=("fit",)`` keys the work folder.
    Secrets are left out on purpose: a new API key does not change predictions,
    and a hash must never leak a key.
    """
    from price_bench.predictors.contract import field_role

    wanted = set(roles)
    data = {
        name: value
        for name, value in scrubbed_config(config).items()
        if name not in type(config).model_fields or field_role(type(config), name) in wanted
    }
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


def secret_values(config: BaseModel, env_names: Iterable[str] = ()) -> list[str]:
    """The actual secret strings a run knows about (config secrets and named env vars).

    Used by :class:`Redactor` to scrub raw outputs and error messages.
    """
    import os

    values = []
    for name in type(config).model_fields:
        raw = getattr(config, name, None)
        if isinstance(raw, (SecretStr, SecretBytes)):
            raw = raw.get_secret_value()
        if is_secret_field(name) and isinstance(raw, (str, bytes)) and raw:
            values.append(raw.decode() if isinstance(raw, bytes) else raw)
    values = [v for v in values if len(v) >= 4]
    for env in env_names:
        value = os.environ.get(env)
        # Environment values are only treated as secrets when long enough to be a key,
        # so that e.g. SOME_AUTH_MODE=true never rewrites "true" in answers.
        if value and len(value) >= 8:
            values.append(value)
    return sorted(set(values), key=len, reverse=True)


class Redactor:
    """Replaces known secret values in free text with ``***``."""

    def __init__(self, secrets: Iterable[str]) -> None:
        self.secrets = [s for s in secrets if s]

    def __call__(self, text: str | None) -> str | None:
        if text is None or not self.secrets:
            return text
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        return text
