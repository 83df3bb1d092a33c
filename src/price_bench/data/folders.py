"""Folders of the data home: can they be written, and what a killed build left in them.

* :func:`ensure_writable`: prove a folder can take a new file, or a one-line
  :class:`~price_bench.data.dataset.DatasetError` naming it (before any work);
* :func:`clean_stale_temp`: remove the hidden ``.<name>.tmp-<pid>-*``,
  ``.<name>.old-<pid>-*`` and ``.curate-<pid>-*`` folders (the last holds the
  curation spill ``accepted.pkl``) whose process is gone;
* :func:`clean_legacy_spills`: the same for ``price-bench-curate-*`` folders
  older versions left in the system temp folder.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from pathlib import Path


def ensure_writable(folder: Path, what: str) -> None:
    """Create ``folder`` and prove a file can be written in it; DatasetError (one line) otherwise."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-probe-", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        from price_bench.data.dataset import DatasetError

        raise DatasetError(f"cannot write to the {what} {folder}: {exc.strerror or exc}") from None


#: Hidden leftovers of a build: ``.<name>.tmp-<pid>-*`` / ``.<name>.old-<pid>-*`` (dataset
#: writes) and ``.curate-<pid>-*`` (the curation spill).
_TEMP = re.compile(r"^\.(?:.+\.(?:tmp|old)|curate)-(\d+)-")
#: Before pids were part of the names: ``.<name>.<8 random>`` and ``.<name>.old-<pid>``.
_LEGACY_TEMP = re.compile(r"^\.[A-Za-z0-9][A-Za-z0-9._-]*\.(?:[a-z0-9_]{8}|old-\d+)$")
LEGACY_STALE_SECONDS = 24 * 3600


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def _ours(st: os.stat_result) -> bool:
    """True when this user owns the file (always on systems without uids)."""
    return not hasattr(os, "getuid") or st.st_uid == os.getuid()


def clean_stale_temp(folder: Path) -> list[Path]:
    """Remove the hidden temporary folders a killed build left in ``folder``; returns what was removed.

    A folder whose name carries a pid is stale when that process is gone; an
    older-style one (no pid) when it is more than a day old.
    """
    removed: list[Path] = []
    if not folder.is_dir():
        return removed
    for entry in folder.iterdir():
        if not entry.name.startswith(".") or entry.is_symlink() or not entry.is_dir():
            continue
        match = _TEMP.match(entry.name)
        if match:
            stale = not _pid_alive(int(match.group(1)))
        elif _LEGACY_TEMP.match(entry.name):
            try:
                stale = time.time() - entry.stat().st_mtime > LEGACY_STALE_SECONDS
            except OSError:
                stale = False
        else:
            continue
        if stale:
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
    return removed


def clean_legacy_spills() -> list[str]:
    """Remove ``price-bench-curate-*`` folders (a killed build's ``accepted.pkl``) from the system temp folder.

    Only this user's, and only stale ones: the pid in the name is gone, or
    (older names without a pid) the folder is more than a day old.
    """
    removed: list[str] = []
    root = tempfile.gettempdir()
    try:
        entries = list(os.scandir(root))
    except OSError:
        return removed
    for entry in entries:
        if not entry.name.startswith("price-bench-curate-"):
            continue
        try:
            if entry.is_symlink() or not entry.is_dir() or not _ours(entry.stat()):
                continue
            match = re.match(r"price-bench-curate-(\d+)-", entry.name)
            stale = (not _pid_alive(int(match.group(1)))) if match else time.time() - entry.stat().st_mtime > LEGACY_STALE_SECONDS
        except OSError:
            continue
        if stale:
            shutil.rmtree(entry.path, ignore_errors=True)
            removed.append(entry.path)
    return removed
