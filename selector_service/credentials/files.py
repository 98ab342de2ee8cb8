"""OAuth credential files: one JSON file per account, parsed, and written back atomically after a refresh.

A file holds ``access_token``, ``refresh_token`` and ``expires_at`` (ISO 8601, or Unix seconds or milliseconds), in
snake_case or camelCase, plus whatever else the provider's tool stored (``profile_arn``, ``region``, ``email``...),
which is kept as it is. The account is named after the file (``kiro-work.json`` -> ``kiro-work``).

Nothing here ever puts a token into a message.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from selector_service.private_files import replace_private_file

ACCESS_KEYS = ("access_token", "accessToken")
REFRESH_KEYS = ("refresh_token", "refreshToken")
EXPIRY_KEYS = ("expires_at", "expiresAt", "expired", "expiry", "expiry_date")
SECRET_KEYS = frozenset({*ACCESS_KEYS, *REFRESH_KEYS, "id_token", "idToken", "client_secret", "clientSecret"})
ACCOUNT_NAME = re.compile(r"^[A-Za-z0-9._@:+-]+$")
_MILLISECONDS = 1e11  # epoch values above this are milliseconds (1e11 s is the year 5138)


class CredentialFileError(Exception):
    """A credential file cannot be used: says which file and what is wrong."""

    def __init__(self, path: Path, problem: str) -> None:
        self.path = path
        self.problem = problem
        super().__init__(f"{path}: {problem}")


@dataclass(frozen=True, slots=True)
class FileCredential:
    """One parsed credential file."""

    path: Path
    name: str
    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    expires_at: float
    """Unix seconds; 0 when the file does not say."""
    data: dict[str, Any] = field(repr=False)
    """The whole document, written back with only the token fields changed."""

    @property
    def digest(self) -> str:
        """Tells one version of the tokens from another without keeping them side by side."""
        material = f"{self.access_token}\0{self.refresh_token}\0{self.expires_at}"
        return hashlib.sha256(material.encode()).hexdigest()

    def field(self, name: str) -> str | None:
        """A provider field (e.g. ``region``) as text, for headers and URLs; never a token."""
        value = self.data.get(name)
        if name in SECRET_KEYS or isinstance(value, bool) or not isinstance(value, str | int | float):
            return None
        return str(value)

    def with_tokens(self, access_token: str, refresh_token: str, expires_at: float) -> FileCredential:
        """The same file with new tokens, each written under the key (and in the format) the file already uses."""
        data = dict(self.data)
        data[_key_in(data, ACCESS_KEYS)] = access_token
        if refresh_token:
            data[_key_in(data, REFRESH_KEYS)] = refresh_token
        expiry_key = _key_in(data, EXPIRY_KEYS)
        data[expiry_key] = format_expiry(expires_at, data.get(expiry_key))
        return FileCredential(self.path, self.name, access_token, refresh_token or self.refresh_token, expires_at, data)


def _key_in(data: Mapping[str, Any], keys: tuple[str, ...]) -> str:
    return next((key for key in keys if key in data), keys[0])


def account_name(path: Path) -> str:
    return path.stem


def parse_credential_file(path: Path, text: str) -> FileCredential:
    """Parse one file's text; raises :class:`CredentialFileError` saying what is wrong and what to do."""
    name = account_name(path)
    if not ACCOUNT_NAME.match(name):
        raise CredentialFileError(path, f"the file name makes the account name {name!r}, but names may contain only "
                                        "letters, digits and . _ @ : + -; rename the file")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:  # the message names a position, never the content
        raise CredentialFileError(path, f"not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); fix "
                                        "the file or log in again with the provider's tool") from None
    if not isinstance(data, dict):
        raise CredentialFileError(path, f"must be a JSON object with access_token, refresh_token and expires_at, "
                                        f"got {type(data).__name__}")
    access = data.get(_key_in(data, ACCESS_KEYS))
    if access is None or access == "":
        raise CredentialFileError(path, "has no access_token; log in again with the provider's tool, or remove the "
                                        "file")
    if not isinstance(access, str):
        raise CredentialFileError(path, f"access_token must be a string, got {type(access).__name__}")
    refresh = data.get(_key_in(data, REFRESH_KEYS))
    if refresh is None:
        refresh = ""
    if not isinstance(refresh, str):
        raise CredentialFileError(path, f"refresh_token must be a string, got {type(refresh).__name__}")
    expiry_key = _key_in(data, EXPIRY_KEYS)
    try:
        expires_at = parse_expiry(data.get(expiry_key))
    except ValueError as exc:
        raise CredentialFileError(path, f"{expiry_key} {exc}") from None
    return FileCredential(path, name, access, refresh, expires_at, data)


def read_credential_file(path: Path) -> FileCredential:
    """Read and parse; a file that cannot be read is a :class:`CredentialFileError` too."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CredentialFileError(path, "was removed") from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise CredentialFileError(path, f"cannot be read ({reason}); check its permissions") from None
    return parse_credential_file(path, text)


def parse_expiry(value: Any) -> float:
    """Unix seconds from ISO 8601 text or Unix seconds / milliseconds; 0.0 when absent."""
    if value is None or value == "":
        return 0.0
    if isinstance(value, str) and re.fullmatch(r"\s*\d+(\.\d+)?\s*", value):
        value = float(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
        if seconds < 0:
            raise ValueError(f"must not be negative, got {value!r}")
        return seconds / 1000.0 if seconds > _MILLISECONDS else seconds
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            pass
        else:
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
            return moment.timestamp()
    shown = repr(value)[:60] if isinstance(value, str) else type(value).__name__
    raise ValueError(f"must be an ISO 8601 time (2030-01-31T12:00:00Z) or Unix seconds, got {shown}")


def format_expiry(expires_at: float, like: Any) -> Any:
    """``expires_at`` in the format of the value it replaces (ISO text by default)."""
    if isinstance(like, int | float) and not isinstance(like, bool):
        return int(expires_at * 1000) if like > _MILLISECONDS else int(expires_at)
    text = datetime.fromtimestamp(expires_at, UTC).isoformat(timespec="seconds")
    if isinstance(like, str) and not like.strip().endswith(("Z", "z")) and "+" in like:
        return text
    return text.replace("+00:00", "Z")


def write_credential_file(credential: FileCredential) -> None:
    """Replace the file atomically, mode 0600: a reader sees the old file or the new one, never a mix. A file removed
    meanwhile is not brought back."""
    path = credential.path

    def still_there() -> None:
        if not path.exists():
            raise CredentialFileError(path, "was removed while its token was being refreshed")

    replace_private_file(path, json.dumps(credential.data, indent=2) + "\n", before_replace=still_there)
