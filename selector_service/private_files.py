"""Files the selector writes for its owner only (OAuth credential files, the run-time config overlay, the SQLite
database)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

PRIVATE_MODE = 0o600


def replace_private_file(path: Path, text: str, before_replace: Callable[[], None] | None = None) -> None:
    """Replace ``path`` with ``text`` atomically, mode 0600: a temporary file in the same directory, fsync, rename,
    then fsync of the directory, so a reader sees the old file or the new one and a crash keeps one of them.

    ``before_replace`` runs just before the rename; if it raises, nothing is replaced.
    """
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, PRIVATE_MODE)
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        if before_replace is not None:
            before_replace()
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    _sync_directory(path.parent)


def create_private_file(path: Path) -> None:
    """Create ``path`` (and its folder) empty, mode 0600, unless it exists: what is written to it later stays
    private."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, PRIVATE_MODE))


def _sync_directory(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # not supported on every file system; the rename itself is still atomic
    finally:
        os.close(fd)
