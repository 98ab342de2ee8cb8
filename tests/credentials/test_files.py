"""Credential files on their own: parsing every accepted form, messages for bad files, atomic write-back."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from selector_service.credentials import files
from selector_service.credentials.files import (
    CredentialFileError,
    parse_credential_file,
    read_credential_file,
    write_credential_file,
)
from selector_service.credentials.watcher import diff, snapshot

ISO = "2030-01-31T12:00:00Z"
EPOCH = 1896091200.0  # the same moment


def parse(data: object, name: str = "kiro-work.json") -> files.FileCredential:
    return parse_credential_file(Path("/creds") / name, json.dumps(data))


@pytest.mark.parametrize("expiry", [ISO, "2030-01-31T12:00:00+00:00", "2030-01-31T13:00:00+01:00",
                                    "2030-01-31T12:00:00", EPOCH, int(EPOCH), int(EPOCH * 1000), str(int(EPOCH))])
def test_expiry_forms(expiry: object) -> None:
    assert parse({"access_token": "at-1", "refresh_token": "rt-1", "expires_at": expiry}).expires_at == EPOCH


def test_snake_and_camel_case_and_extras() -> None:
    snake = parse({"access_token": "at-1", "refresh_token": "rt-1", "expires_at": ISO, "profile_arn": "arn:x",
                   "region": "us-east-1"})
    camel = parse({"accessToken": "at-1", "refreshToken": "rt-1", "expiresAt": ISO})
    assert (snake.name, snake.access_token, snake.refresh_token) == ("kiro-work", "at-1", "rt-1")
    assert (camel.access_token, camel.refresh_token, camel.expires_at) == ("at-1", "rt-1", EPOCH)
    assert snake.field("region") == "us-east-1" and snake.field("profile_arn") == "arn:x"
    assert snake.field("access_token") is None and snake.field("refresh_token") is None  # never a token
    no_expiry = parse({"access_token": "at-1"})
    assert (no_expiry.expires_at, no_expiry.refresh_token) == (0.0, "")


@pytest.mark.parametrize(("text", "name", "problem"), [
    ('{"access_token": "at-secret-1", ', "kiro-a.json", "not valid JSON (line 1, column 33"),
    ('["at-secret-1"]', "kiro-a.json", "must be a JSON object with access_token"),
    ('{"refresh_token": "rt-secret-1"}', "kiro-a.json", "has no access_token; log in again"),
    ('{"access_token": 5}', "kiro-a.json", "access_token must be a string"),
    ('{"access_token": "at-secret-1", "refresh_token": ["x"]}', "kiro-a.json", "refresh_token must be a string"),
    ('{"access_token": "at-secret-1", "expires_at": "next tuesday"}', "kiro-a.json",
     "expires_at must be an ISO 8601 time (2030-01-31T12:00:00Z) or Unix seconds, got 'next tuesday'"),
    ('{"access_token": "at-secret-1"}', "kiro a.json", "rename the file"),
])
def test_bad_files_say_what_is_wrong_without_the_tokens(text: str, name: str, problem: str) -> None:
    with pytest.raises(CredentialFileError) as caught:
        parse_credential_file(Path("/creds") / name, text)
    assert problem in caught.value.problem
    assert str(caught.value).startswith(f"/creds/{name}: ")
    assert "secret" not in str(caught.value)


def test_write_back_is_atomic_0600_and_keeps_the_file_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "kiro-work.json"
    path.write_text(json.dumps({"accessToken": "at-1", "refreshToken": "rt-1", "expiresAt": int(EPOCH * 1000),
                                "profileArn": "arn:x", "authMethod": "social"}))
    path.chmod(0o644)
    inode = path.stat().st_ino
    updated = read_credential_file(path).with_tokens("at-2", "rt-2", EPOCH + 3600)
    write_credential_file(updated)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.stat().st_ino != inode  # replaced by a rename, never rewritten in place
    assert json.loads(path.read_text()) == {"accessToken": "at-2", "refreshToken": "rt-2",
                                            "expiresAt": int((EPOCH + 3600) * 1000), "profileArn": "arn:x",
                                            "authMethod": "social"}
    assert [p.name for p in tmp_path.iterdir()] == ["kiro-work.json"]  # no temporary file left


def test_write_back_keeps_iso_expiry_and_an_unrotated_refresh_token(tmp_path: Path) -> None:
    path = tmp_path / "kiro-work.json"
    path.write_text(json.dumps({"access_token": "at-1", "refresh_token": "rt-1", "expires_at": ISO}))
    write_credential_file(read_credential_file(path).with_tokens("at-2", "", EPOCH + 60))
    assert json.loads(path.read_text()) == {"access_token": "at-2", "refresh_token": "rt-1",
                                            "expires_at": "2030-01-31T12:01:00Z"}


def test_a_failed_write_leaves_the_old_file_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "kiro-work.json"
    original = json.dumps({"access_token": "at-1", "refresh_token": "rt-1", "expires_at": ISO})
    path.write_text(original)
    updated = read_credential_file(path).with_tokens("at-2", "rt-2", EPOCH)

    def fail(*_: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError):
        write_credential_file(updated)
    assert path.read_text() == original
    assert [p.name for p in tmp_path.iterdir()] == ["kiro-work.json"]


def test_a_removed_file_is_not_brought_back(tmp_path: Path) -> None:
    path = tmp_path / "kiro-work.json"
    path.write_text(json.dumps({"access_token": "at-1", "refresh_token": "rt-1"}))
    updated = read_credential_file(path).with_tokens("at-2", "rt-2", EPOCH)
    path.unlink()
    with pytest.raises(CredentialFileError, match="was removed"):
        write_credential_file(updated)
    assert list(tmp_path.iterdir()) == []


def test_snapshot_skips_hidden_files_and_diff_sees_every_change(tmp_path: Path) -> None:
    a, b = tmp_path / "kiro-a.json", tmp_path / "kiro-b.json"
    a.write_text("{}")
    b.write_text("{}")
    (tmp_path / ".kiro-c.json.x.tmp").write_text("{}")
    (tmp_path / "other.json").write_text("{}")
    before = snapshot(tmp_path, "kiro-*.json")
    assert sorted(before) == [a, b]
    a.write_text('{"changed": true}')
    b.unlink()
    (tmp_path / "kiro-d.json").write_text("{}")
    changes = diff(before, snapshot(tmp_path, "kiro-*.json"))
    assert (changes.added, changes.changed, changes.removed) == ([tmp_path / "kiro-d.json"], [a], [b])
    assert not diff(before, before)
