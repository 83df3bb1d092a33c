"""Row labels that say what ran: ``frontier · smollm2-135m-instruct · local``.

A label is the predictor id followed by:

1. its *label fields* -- the config fields the predictor declared
   (``Predictor.label_fields``, kept in the record), or by default the model
   fields (``model``, ``base_model``) and the endpoint (``base_url``) when the
   config has them. An endpoint is shown as its kind: ``local`` for a
   loopback or private address (a self-hosted server), ``openai`` for the
   default hosted API (no ``base_url``), else the host name;
2. when rows of one id still read the same, the fields whose values differ
   between them (``n_estimators=300``), runtime fields excluded;
3. ``@`` and the config hash, only when two rows would still read the same.

Labels are chosen from the records alone, so a page stays a pure function of them.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlparse

from price_bench.results.schema import RunRecord

SEP = " · "
DEFAULT_LABEL_FIELDS = ("model", "base_model", "base_url")
ENDPOINT_FIELDS = frozenset({"base_url", "endpoint", "api_base"})
LOCAL = "local"
HOSTED_DEFAULT = "openai"
VALUE_CHARS = 40


def endpoint_kind(url: Any) -> str:
    """``local`` (loopback or private address), ``openai`` (no URL: the hosted default), else the host name."""
    if url in (None, ""):
        return HOSTED_DEFAULT
    text = str(url).split(",")[0].strip()
    host = (urlparse(text if "//" in text else "//" + text).hostname or "").lower()
    if host in ("localhost", "") or host.endswith(".local") or host.endswith(".localhost"):
        return LOCAL
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    return LOCAL if (address.is_loopback or address.is_private or address.is_unspecified or address.is_link_local) else host


def is_local(record: RunRecord) -> bool:
    """True when the run's model was served from this machine or network (a self-hosted endpoint)."""
    config = record.predictor.config
    return any(name in config and endpoint_kind(config[name]) == LOCAL for name in ENDPOINT_FIELDS)


def _show(value: Any) -> str:
    if isinstance(value, str):
        text = value
    elif isinstance(value, bool) or value is None:
        text = json.dumps(value)
    elif isinstance(value, (int, float)):
        text = f"{value:g}" if isinstance(value, float) else str(value)
    else:
        text = json.dumps(value, sort_keys=True, separators=(",", ":"))
    text = " ".join(text.split())
    return text if len(text) <= VALUE_CHARS else text[: VALUE_CHARS - 1] + "…"


def label_fields(record: RunRecord) -> list[str]:
    """The declared label fields of the record's predictor, or the default ones its config has."""
    declared = record.predictor.label_fields
    fields = declared if declared is not None else DEFAULT_LABEL_FIELDS
    return [f for f in fields if f in record.predictor.config]


def describe(record: RunRecord) -> list[str]:
    """The label-field parts of one record (endpoint fields as their kind)."""
    config = record.predictor.config
    return [endpoint_kind(config[f]) if f in ENDPOINT_FIELDS else _show(config[f]) for f in label_fields(record)]


def _differing(records: list[RunRecord]) -> list[str]:
    """Config fields whose values differ between ``records`` (runtime and label fields left out), sorted."""
    names: set[str] = set()
    for r in records:
        names |= set(r.predictor.config)
    skip = set().union(*(set(r.predictor.runtime_fields) | set(label_fields(r)) for r in records))
    out = []
    for name in sorted(names - skip):
        values = {json.dumps(r.predictor.config.get(name, "<unset>"), sort_keys=True, default=str) for r in records}
        if len(values) > 1:
            out.append(name)
    return out


def board_labels(records: Iterable[RunRecord]) -> dict[tuple[str, str], str]:
    """A distinct label per (predictor id, config hash) among ``records``."""
    by_key: dict[tuple[str, str], RunRecord] = {}
    for r in records:
        by_key.setdefault((r.predictor.id, r.predictor.config_hash), r)
    by_id: dict[str, list[tuple[str, str]]] = {}
    for key in by_key:
        by_id.setdefault(key[0], []).append(key)
    labels: dict[tuple[str, str], str] = {}
    for pid, keys in by_id.items():
        named: dict[str, list[tuple[str, str]]] = {}
        for key in keys:
            named.setdefault(SEP.join([pid] + describe(by_key[key])), []).append(key)
        for base, group in named.items():
            varying = _differing([by_key[k] for k in group]) if len(group) > 1 else []
            for key in group:
                config = by_key[key].predictor.config
                labels[key] = SEP.join([base] + [f"{f}={_show(config.get(f, '—'))}" for f in varying])
        seen: dict[str, int] = {}
        for key in keys:
            seen[labels[key]] = seen.get(labels[key], 0) + 1
        for key in keys:
            if seen[labels[key]] > 1:
                labels[key] += f" @{key[1][:7]}"
    return labels
