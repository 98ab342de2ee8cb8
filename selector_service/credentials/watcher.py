"""Watching a directory by polling: which matching files exist, and which changed since the last look.

Polling ``stat`` once a second is portable (no inotify/FSEvents dependency) and cheap for the tens of files a
credential directory holds. A file counts as changed when its modification time, size or inode changes (an atomic
replace gives a new inode even within the same timestamp tick).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True, slots=True)
class FileStat:
    mtime_ns: int
    size: int
    inode: int

    @classmethod
    def of(cls, result: os.stat_result) -> FileStat:
        return cls(result.st_mtime_ns, result.st_size, result.st_ino)


@dataclass(slots=True)
class Changes:
    added: list[Path] = field(default_factory=list)
    changed: list[Path] = field(default_factory=list)
    removed: list[Path] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.added or self.changed or self.removed)


def snapshot(directory: Path, pattern: str) -> dict[Path, FileStat]:
    """Regular files in ``directory`` matching ``pattern``, by path (hidden files, e.g. our temporary files, are
    skipped). Raises OSError when the directory cannot be listed."""
    found: dict[Path, FileStat] = {}
    for path in directory.glob(pattern):
        if path.name.startswith("."):
            continue
        try:
            result = path.stat()
        except FileNotFoundError:
            continue  # removed while listing
        if path.is_file():
            found[path] = FileStat.of(result)
    return found


def diff(before: dict[Path, FileStat], after: dict[Path, FileStat]) -> Changes:
    changes = Changes()
    for path, stat in after.items():
        old = before.get(path)
        if old is None:
            changes.added.append(path)
        elif old != stat:
            changes.changed.append(path)
    changes.removed = [path for path in before if path not in after]
    for group in (changes.added, changes.changed, changes.removed):
        group.sort()
    return changes
