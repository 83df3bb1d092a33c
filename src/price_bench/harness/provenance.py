"""Provenance of a run: versions, platform, hardware, thread settings and git state.

Collected once per ``price-bench run`` and written into every record, so that
two runs of one config that disagree can be explained. Nothing here imports
a heavy library: versions come from :mod:`importlib.metadata`, the GPU from
the NVIDIA driver's ``/proc`` files, thread counts from the environment (and
from torch only when it is imported already).
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
import sys
from pathlib import Path

from price_bench.results.schema import Provenance

#: Libraries whose versions are recorded when installed.
KEY_LIBRARIES = ("price-bench", "numpy", "scipy", "pandas", "scikit-learn", "torch", "transformers", "peft",
                 "bitsandbytes", "sentence-transformers", "gensim", "openai", "llama-cpp-python", "tiktoken")
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS",
                    "VECLIB_MAXIMUM_THREADS", "RAYON_NUM_THREADS", "TOKENIZERS_PARALLELISM")


def package_version(name: str) -> str | None:
    """The installed version of distribution ``name`` (None when not installed)."""
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None
    except Exception:  # a broken installation never breaks a run
        return None


def versions(extra: tuple[str, ...] = ()) -> dict[str, str]:
    """``{distribution: version}`` for the key libraries and ``extra`` (plugins) that are installed."""
    out = {}
    for name in dict.fromkeys(KEY_LIBRARIES + tuple(extra)):
        version = package_version(name)
        if version is not None:
            out[name] = version
    return out


def cpu_model() -> str | None:
    """The CPU's model name (``/proc/cpuinfo`` on Linux, else :func:`platform.processor`)."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.lower().startswith(("model name", "hardware", "cpu model")):
                return line.split(":", 1)[1].strip() or None
    except OSError:
        pass
    return platform.processor() or None


def gpus() -> list[str]:
    """NVIDIA GPU models from the driver's ``/proc`` files (empty without a driver)."""
    root = Path("/proc/driver/nvidia/gpus")
    names = []
    try:
        for info in sorted(root.glob("*/information")):
            for line in info.read_text(encoding="utf-8", errors="replace").splitlines():
                if line.startswith("Model:"):
                    names.append(line.split(":", 1)[1].strip())
    except OSError:
        pass
    return names


def thread_settings() -> dict[str, str]:
    """Thread-count variables in force, plus torch's thread count when torch is already imported."""
    out = {name: os.environ[name] for name in THREAD_VARIABLES if os.environ.get(name)}
    torch = sys.modules.get("torch")
    if torch is not None:
        try:
            out["torch.get_num_threads"] = str(torch.get_num_threads())
        except Exception:
            pass
    return out


def git_dirty(cwd: Path | None = None) -> bool | None:
    """True when tracked files have uncommitted changes; None outside a git repository."""
    try:
        out = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True,
                             timeout=10, check=False, cwd=cwd)
    except (OSError, subprocess.SubprocessError):
        return None
    return bool(out.stdout.strip()) if out.returncode == 0 else None


_GIT_COMMIT: list[str | None] = []


def git_commit() -> str | None:
    """HEAD of the git repository around the current directory, or None (asked once per process)."""
    if not _GIT_COMMIT:
        try:
            out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=False)
            _GIT_COMMIT.append(out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else None)
        except (OSError, subprocess.SubprocessError):
            _GIT_COMMIT.append(None)
    return _GIT_COMMIT[0]


def collect(plugins: tuple[str, ...] = ()) -> Provenance:
    """Everything :class:`Provenance` holds, for this process, with the versions of ``plugins`` too."""
    return Provenance(
        python=platform.python_version(),
        versions=versions(plugins),
        platform=platform.platform(),
        machine=platform.machine() or None,
        cpu=cpu_model(),
        cpu_count=os.cpu_count(),
        gpu=gpus(),
        threads=thread_settings(),
        git_dirty=git_dirty(),
    )


def differences(a: Provenance | None, b: Provenance | None) -> list[str]:
    """One line per provenance fact in which two runs differ (empty when they agree or either has none)."""
    if a is None or b is None:
        return [] if a is None and b is None else ["only one of the runs records provenance"]
    lines = []
    da, db = a.model_dump(), b.model_dump()
    for name in ("python", "platform", "machine", "cpu", "cpu_count", "gpu", "git_dirty"):
        if da[name] != db[name]:
            lines.append(f"{name}: {da[name]} vs {db[name]}")
    for group in ("versions", "threads"):
        for key in sorted(set(da[group]) | set(db[group])):
            va, vb = da[group].get(key, "-"), db[group].get(key, "-")
            if va != vb:
                lines.append(f"{key}: {va} vs {vb}")
    return lines
