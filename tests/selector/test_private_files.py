"""Files the selector writes for its owner: replaced whole, mode 0600, and durable once written."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from selector_service.private_files import replace_private_file


def test_replaces_the_file_whole_for_its_owner_only_and_syncs_the_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "overlay.yaml"
    path.write_text("old\n")
    path.chmod(0o644)
    synced: list[str] = []
    real_fsync = os.fsync

    def recording_fsync(fd: int) -> None:
        synced.append("directory" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    replace_private_file(path, "new\n")
    assert path.read_text() == "new\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert synced == ["file", "directory"]  # the data, then the rename
    assert [p.name for p in tmp_path.iterdir()] == ["overlay.yaml"]  # no temporary file left


def test_a_check_that_fails_before_the_rename_replaces_nothing(tmp_path: Path) -> None:
    path = tmp_path / "kiro-a.json"
    path.write_text("{}\n")

    def refuse() -> None:
        raise RuntimeError("removed meanwhile")

    with pytest.raises(RuntimeError):
        replace_private_file(path, '{"access_token": "new"}\n', before_replace=refuse)
    assert path.read_text() == "{}\n"
    assert [p.name for p in tmp_path.iterdir()] == ["kiro-a.json"]
