"""Work folders: where a predictor's fitted artefacts survive between runs.

Layout::

    <home>/work/<fingerprint-short>/<predictor id>/<config_hash>-<plugin_version>-<predictor_version>[-s<seed>][-c<code>]/
        fit.json      the marker: written only after ``fit`` returned, holds the fit time
        ...           whatever the predictor saved

A folder is keyed exactly like the prediction cache, so a new config, a new
plugin or predictor version, a new seed or a new dataset gets a fresh folder
and never reuses stale artefacts; ``<code>`` is the first 12 hex digits of
the predictor's code digest (an edited predictor refits).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from price_bench.data.dataset import data_home

MARKER = "fit.json"


def fingerprint_short(fingerprint: str) -> str:
    """``sha256:abcdef...`` -> ``abcdef012345`` (12 hex digits)."""
    return fingerprint.split(":", 1)[-1][:12]


def _safe(part: str) -> str:
    return re.sub(r"[^A-Za-z0-9._+-]", "_", part) or "_"


def workdir_for(
    predictor_id: str,
    config_hash: str,
    plugin_version: str,
    predictor_version: str,
    fingerprint: str,
    seed: int = 0,
    home: Path | None = None,
    code_digest: str = "",
) -> Path:
    """The work folder for this exact predictor, config, versions, seed, code and dataset (not created)."""
    leaf = f"{config_hash}-{_safe(plugin_version)}-{_safe(predictor_version)}"
    if seed:
        leaf += f"-s{seed}"
    if code_digest:
        leaf += f"-c{_safe(code_digest[:12])}"
    return (home or data_home()) / "work" / fingerprint_short(fingerprint) / _safe(predictor_id) / leaf


def earlier_code_workdir(workdir: Path) -> Path | None:
    """The newest finished fit of the same predictor, config, versions and seed under other code (escape hatch)."""
    name = workdir.name
    stem = name.rsplit("-c", 1)[0] if "-c" in name else name
    candidates = []
    for other in workdir.parent.glob(stem + "*"):
        rest = other.name[len(stem):]
        if other == workdir or not (rest == "" or rest.startswith("-c")):
            continue
        marker = read_marker(other)
        if marker is not None:
            candidates.append((marker.finished_at, other.name, other))
    return max(candidates)[2] if candidates else None


@dataclass
class FitMarker:
    """What ``fit.json`` records about the fit that produced the folder's artefacts."""

    fit_seconds: float
    finished_at: str


def read_marker(workdir: Path) -> FitMarker | None:
    """The marker of a completed fit, or None (no fit yet, or an unreadable marker)."""
    try:
        data = json.loads((workdir / MARKER).read_text())
        return FitMarker(float(data["fit_seconds"]), str(data["finished_at"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write_marker(workdir: Path, fit_seconds: float) -> FitMarker:
    """Record a finished fit (atomically)."""
    from price_bench.results.store import atomic_write_text

    marker = FitMarker(fit_seconds, datetime.now(timezone.utc).isoformat(timespec="seconds"))
    atomic_write_text(workdir / MARKER, json.dumps(marker.__dict__) + "\n")
    return marker


def clear_marker(workdir: Path) -> None:
    """Forget a previous fit (before refitting), so a crash mid-fit never looks finished."""
    (workdir / MARKER).unlink(missing_ok=True)
