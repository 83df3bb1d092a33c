"""Writing files and folders so that a reader never sees half of one.

* :func:`atomic_write_text`: a file written to a temporary name beside it,
  then renamed over it.
* :func:`atomic_folder`: a folder assembled under a temporary name beside
  its target, then renamed into place (the previous one set aside and
  removed); on any error the temporary folder is removed and the target is
  left as it was.

Both give their output the mode an ordinary ``open()`` would
(:func:`file_mode`), never ``mkstemp``'s 0600.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_UMASK: list[int] = []


def file_mode() -> int:
    """The mode a plain ``open()`` would give a new file (0o666 less the umask): 0o644 under the usual umask."""
    if not _UMASK:
        current = os.umask(0o022)
        os.umask(current)
        _UMASK.append(current)
    return 0o666 & ~_UMASK[0]


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8, ``\\n`` line ends) to ``path`` via a temporary file and an atomic rename.

    The parent folder is created when missing; the temporary file
    (``.<name>.<random>``) is removed when the write fails.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
        os.chmod(tmp, file_mode())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def atomic_folder(target: Path, prefix: str | None = None) -> Iterator[Path]:
    """Yield an empty temporary folder beside ``target``; put it in place of ``target`` when the block succeeds.

    ``prefix`` names the temporary folder (default ``.<target name>.``): a
    caller that cleans up folders left by a killed process matches on it.
    An existing ``target`` is renamed aside, the new folder renamed in, and
    the old one removed, so ``target`` is always either the old or the new
    folder. When the block raises (``KeyboardInterrupt`` included), the
    temporary folder is removed and the exception propagates.
    """
    tmp = Path(tempfile.mkdtemp(prefix=prefix or f".{target.name}.", dir=target.parent))
    try:
        yield tmp
        if target.exists():
            old = target.with_name(f".{target.name}.old-{os.getpid()}-{tmp.name[-8:]}")
            target.rename(old)
            tmp.rename(target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
