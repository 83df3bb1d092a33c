"""Work folders: where a predictor's fitted artefacts survive between runs.

Layout::

    <home>/work/<fingerprint-short>/<predictor id>/<fit config hash>-<plugin_version>-<predictor_version>[-s<seed>][-c<code>]/
        fit.json      the marker: written only after ``fit`` returned, holds the fit
                      time and the sha256 of every file the fit left in the folder
        ...           whatever the predictor saved

A folder is keyed by the same :class:`~price_bench.harness.runkey.RunKey` as the
prediction cache, with the hash of the config's *fit* fields only, so a new fit
field, a new plugin or predictor version, a new seed or a new dataset gets a
fresh folder and never reuses stale artefacts, while a new predict field
reuses the fit; ``<code>`` is the first 12 hex digits of
the predictor's code digest (an edited predictor refits). Every part of the path is a validated value
(:mod:`price_bench.names`: the predictor id, the dataset fingerprint) or a
hash/version reduced to safe characters, so the folder is always under
``<home>/work``.

Artefacts may be pickles (joblib), which execute code when loaded, so
:func:`verify_marker` must pass before a predictor's ``load`` sees the
folder: every recorded file is still there with the recorded digest, and no
file was added (links are refused). Anything else means "not ours any more":
the runner refits.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from price_bench.data.dataset import data_home
from price_bench.names import fingerprint_problem, name_problem

MARKER = "fit.json"
#: The predictor's ``info()``, saved after it predicted.
INFO_FILE = "info.json"
#: Files the harness itself writes into a work folder after the fit (not artefacts).
HARNESS_FILES = frozenset({MARKER, INFO_FILE})


def fingerprint_short(fingerprint: str) -> str:
    """``sha256:abcdef...`` -> ``abcdef012345`` (12 hex digits); ValueError for anything else."""
    problem = fingerprint_problem(fingerprint)
    if problem:
        raise ValueError(problem)
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
    """The work folder for this exact predictor, config, versions, seed, code and dataset (not created).

    ValueError when the predictor id or the fingerprint is not valid.
    """
    problem = name_problem(predictor_id, "predictor id")
    if problem:
        raise ValueError(problem)
    leaf = f"{_safe(config_hash)}-{_safe(plugin_version)}-{_safe(predictor_version)}"
    if seed:
        leaf += f"-s{int(seed)}"
    if code_digest:
        leaf += f"-c{_safe(code_digest[:12])}"
    return (home or data_home()) / "work" / fingerprint_short(fingerprint) / predictor_id / leaf


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
    #: sha256 (hex) of every file the fit left in the folder, by path relative to it.
    files: dict[str, str] = field(default_factory=dict)


def read_marker(workdir: Path) -> FitMarker | None:
    """The marker of a completed fit, or None (no fit yet, or an unreadable marker)."""
    try:
        data = json.loads((workdir / MARKER).read_text())
        files = data.get("files")
        if not isinstance(files, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in files.items()):
            return None  # a marker without digests (older versions) cannot vouch for the folder
        return FitMarker(float(data["fit_seconds"]), str(data["finished_at"]), dict(files))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def write_marker(workdir: Path, fit_seconds: float) -> FitMarker:
    """Record a finished fit and the digest of every file in the folder (atomically)."""
    from price_bench.files import atomic_write_text

    marker = FitMarker(fit_seconds, datetime.now(UTC).isoformat(timespec="seconds"), folder_digests(workdir))
    atomic_write_text(workdir / MARKER, json.dumps(marker.__dict__, sort_keys=True) + "\n")
    return marker


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _artefacts(workdir: Path) -> tuple[dict[str, Path], list[str]]:
    """Regular files under ``workdir`` except the harness's own, and the links/odd entries found."""
    files: dict[str, Path] = {}
    odd: list[str] = []
    for path in sorted(workdir.rglob("*")):
        rel = path.relative_to(workdir).as_posix()
        if path.is_symlink():
            odd.append(rel)
        elif path.is_file():
            temp = path.parent == workdir and any(path.name.startswith(f".{name}.") for name in HARNESS_FILES)
            if rel not in HARNESS_FILES and not temp:
                files[rel] = path
        elif not path.is_dir():
            odd.append(rel)
    return files, odd


def folder_digests(workdir: Path) -> dict[str, str]:
    """sha256 of every artefact file in ``workdir`` (links are left out: they never verify)."""
    files, _ = _artefacts(workdir)
    return {rel: _file_sha256(path) for rel, path in files.items()}


def verify_marker(workdir: Path, marker: FitMarker) -> str | None:
    """Why ``workdir`` no longer holds exactly what its fit recorded (None when it does)."""
    files, odd = _artefacts(workdir)
    if odd:
        return f"{odd[0]} is a link or special file"
    for rel in sorted(marker.files):
        if rel not in files:
            return f"{rel} is missing"
    for rel, path in files.items():
        expected = marker.files.get(rel)
        if expected is None:
            return f"{rel} was added after the fit"
        try:
            if _file_sha256(path) != expected:
                return f"{rel} changed after the fit"
        except OSError as exc:
            return f"{rel} is unreadable ({exc.strerror or exc})"
    return None


def clear_marker(workdir: Path) -> None:
    """Forget a previous fit (before refitting), so a crash mid-fit never looks finished."""
    (workdir / MARKER).unlink(missing_ok=True)


def fit_workdir(workdir: Path, keep_earlier_code: bool = False) -> Path:
    """``workdir``, or with ``keep_earlier_code`` and no fit there, the newest fit made under other code (escape hatch)."""
    if not keep_earlier_code or read_marker(workdir) is not None:
        return workdir
    earlier = earlier_code_workdir(workdir)
    return earlier if earlier is not None else workdir



def save_info(workdir: Path, info: dict[str, Any], redact: Callable[[str | None], str | None]) -> None:
    """Keep a predictor's ``info()`` beside its artefacts (secrets scrubbed by ``redact``)."""
    from price_bench.files import atomic_write_text

    if info:
        text = redact(json.dumps(info, sort_keys=True, default=str)) or "{}"
        atomic_write_text(workdir / INFO_FILE, text + "\n")


def read_info(workdir: Path) -> dict[str, Any]:
    """The saved ``info()`` of the predictor that owns ``workdir`` (empty when none)."""
    try:
        data = json.loads((workdir / INFO_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
