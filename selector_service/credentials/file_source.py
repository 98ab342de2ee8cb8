"""The credential-file directory source: ``credentials_dir`` + ``credentials_glob`` -> one account per file.

At start every matching file is parsed; a file that does not parse is reported (which file, what is wrong) and
skipped, an empty match is an error. While running, the directory is polled: a new file adds an account, a removed
file removes (drains) it, a changed file reloads it. A file that changes into something unreadable keeps its last
good tokens (a tool may be rewriting it) and is reported.

Refreshing an account (:meth:`FileCredentialSource.refresh`) first re-reads its file, so tokens renewed by another
process are taken instead of spending (and possibly invalidating) the refresh token again; then it runs the
refresh_token grant and writes the new tokens back atomically before they are returned, hence before they are used.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from poolgate.config import AccountConfig, PoolConfig
from selector_service.credentials.files import (
    ACCESS_KEYS,
    EXPIRY_KEYS,
    REFRESH_KEYS,
    CredentialFileError,
    FileCredential,
    account_name,
    read_credential_file,
    write_credential_file,
)
from selector_service.credentials.oauth import TokenPoster, TokenRejected, refresh_tokens
from selector_service.credentials.source import CredentialRejected, CredentialSourceError, RefreshedCredential
from selector_service.credentials.watcher import Changes, FileStat, diff, snapshot

log = logging.getLogger("poolgate.selector.credentials")

POLL_INTERVAL = 1.0


@dataclass(eq=False)
class _Directory:
    """What is known of one pool's credential directory."""

    pool: str
    directory: Path
    pattern: str
    config: PoolConfig
    stats: dict[Path, FileStat] = field(default_factory=dict)
    files: dict[Path, FileCredential] = field(default_factory=dict)
    problems: dict[Path, str] = field(default_factory=dict)
    names: dict[str, Path] = field(default_factory=dict)  # account name -> its file
    missing: bool = False

    @property
    def where(self) -> str:
        return f"pools.{self.pool}.credentials_dir"

    def by_name(self, name: str) -> FileCredential | None:
        path = self.names.get(name)
        return self.files.get(path) if path is not None else None

    def put(self, credential: FileCredential) -> None:
        self.files[credential.path] = credential
        self.names[credential.name] = credential.path

    def drop(self, path: Path) -> bool:
        """Forget a file's account; returns whether there was one."""
        credential = self.files.pop(path, None)
        if credential is not None and self.names.get(credential.name) == path:
            del self.names[credential.name]
        return credential is not None


@dataclass
class _Scan:
    stats: dict[Path, FileStat]
    changes: Changes
    parsed: dict[Path, FileCredential | CredentialFileError]
    missing: bool


def _scan(directory: Path, pattern: str, known: dict[Path, FileStat], busy: frozenset[Path]) -> _Scan:
    """Runs in a worker thread: list, stat, and parse what is new or changed."""
    try:
        stats, missing = snapshot(directory, pattern), False
    except OSError:
        stats, missing = {}, True
    changes = diff(known, stats)
    parsed: dict[Path, FileCredential | CredentialFileError] = {}
    for path in changes.added + changes.changed:
        if path in busy:
            continue  # being refreshed by us: looked at again on the next poll
        try:
            parsed[path] = read_credential_file(path)
        except CredentialFileError as exc:
            parsed[path] = exc
    return _Scan(stats, changes, parsed, missing)


class FileCredentialSource:
    """Accounts from directories of OAuth credential files, kept current and refreshed."""

    def __init__(
        self, post: TokenPoster, clock: Callable[[], float] = time.time, poll_interval: float = POLL_INTERVAL,
    ) -> None:
        self._post = post
        self._clock = clock
        self._interval = poll_interval
        self._dirs: dict[str, _Directory] = {}
        self._busy: set[Path] = set()
        self._changed: Callable[[], None] | None = None
        self._task: asyncio.Task[None] | None = None

    # -- CredentialSource ------------------------------------------------------------------------------------------

    def accounts(self, pool: str, config: PoolConfig) -> list[AccountConfig]:
        if not config.credentials_dir:
            return []  # what is known of a former directory stays: a reload that fails must not lose it
        directory = Path(config.credentials_dir).expanduser().absolute()
        entry = self._dirs.get(pool)
        if entry is None or (entry.directory, entry.pattern) != (directory, config.credentials_glob):
            entry = self._load(pool, directory, config)
            self._dirs[pool] = entry
        entry.config = config
        return [self._account(config, credential) for credential in sorted(entry.files.values(), key=_name)]

    def problems(self, pool: str) -> dict[str, str]:
        """File name -> what is wrong with it, for the files of ``pool`` that are skipped."""
        entry = self._dirs.get(pool)
        return {path.name: problem for path, problem in sorted(entry.problems.items())} if entry else {}

    @staticmethod
    def _account(config: PoolConfig, credential: FileCredential) -> AccountConfig:
        headers = {header: value for header, name in config.credentials_headers.items()
                   if (value := credential.field(name)) is not None}
        return AccountConfig(
            name=credential.name, key=credential.access_token, identity=f"file:{credential.path}",
            expires_at=credential.expires_at, auth_header=config.oauth.header, headers=headers,
        )

    def _load(self, pool: str, directory: Path, config: PoolConfig) -> _Directory:
        """First look at a directory (at start, or when a reload names a new one): it must give accounts."""
        entry = _Directory(pool, directory, config.credentials_glob, config)
        if not directory.is_dir():
            raise CredentialSourceError([f"{entry.where}: {directory} is not a directory; create it (log in with the "
                                         "provider's tool), or fix credentials_dir"])
        try:
            entry.stats = snapshot(directory, entry.pattern)
        except OSError as exc:
            raise CredentialSourceError([f"{entry.where}: {directory} cannot be read ({exc.strerror or exc}); check "
                                         "its permissions"]) from None
        if not entry.stats:
            raise CredentialSourceError([f"{entry.where}: no file in {directory} matches {entry.pattern!r}; log in "
                                         "with the provider's tool to create one, or fix credentials_glob"])
        for path in sorted(entry.stats):
            try:
                self._take(entry, read_credential_file(path))
            except CredentialFileError as exc:
                self._report(entry, path, exc.problem)
        if not entry.files:
            problems = "; ".join(f"{path.name}: {problem}" for path, problem in sorted(entry.problems.items()))
            raise CredentialSourceError([f"{entry.where}: none of the {len(entry.stats)} file(s) matching "
                                         f"{entry.pattern!r} in {directory} can be used ({problems})"])
        return entry

    # -- keeping the files' state ----------------------------------------------------------------------------------

    def _report(self, entry: _Directory, path: Path, problem: str) -> None:
        if entry.problems.get(path) != problem:
            kept = " (its last good tokens stay in use)" if path in entry.files else ""
            log.warning("%s: %s %s; skipped%s, the other files still load", entry.where, path, problem, kept)
        entry.problems[path] = problem

    def _take(self, entry: _Directory, credential: FileCredential) -> bool:
        """Record a good file; returns whether the pool's accounts change."""
        path = credential.path
        clash = entry.names.get(credential.name)
        if clash is not None and clash != path:
            self._report(entry, path, f"gives the account name {credential.name!r}, as {clash.name} does; rename or "
                                      "remove one of them")
            return False
        entry.problems.pop(path, None)
        old = entry.files.get(path)
        if old is not None and old.data == credential.data:
            return False
        entry.put(credential)
        missing = [name for name in entry.config.credentials_headers.values() if credential.field(name) is None]
        if missing:
            log.warning("%s: %s has no %s field for credentials_headers; that header is not sent for it",
                        entry.where, path, ", ".join(missing))
        return True

    def _apply(self, entry: _Directory, scan: _Scan) -> bool:
        """Take one poll's findings (on the event loop); returns whether the pool's accounts changed."""
        changed = False
        if scan.missing and not entry.missing:
            log.warning("%s: %s can no longer be read; its accounts are removed until it is back", entry.where,
                        entry.directory)
        entry.missing = scan.missing
        for path in scan.changes.removed:
            entry.stats.pop(path, None)
            entry.problems.pop(path, None)
            if entry.drop(path):
                log.info("%s: %s was removed; account %s/%s drains", entry.where, path.name, entry.pool,
                         account_name(path))
                changed = True
        for path, result in scan.parsed.items():
            entry.stats[path] = scan.stats[path]
            if isinstance(result, CredentialFileError):
                self._report(entry, path, result.problem)
            elif self._take(entry, result):
                verb = "updated" if path in scan.changes.changed else "added"
                log.info("%s: %s %s; account %s/%s", entry.where, path.name, verb, entry.pool, result.name)
                changed = True
        return changed

    def _adopt(self, pool: str, credential: FileCredential) -> None:
        """Record tokens read or written during a refresh, so the watcher does not take them for a change."""
        entry = self._dirs.get(pool)
        if entry is None or credential.path not in entry.stats:
            return
        with contextlib.suppress(OSError):
            entry.stats[credential.path] = FileStat.of(credential.path.stat())
        entry.problems.pop(credential.path, None)
        old = entry.files.get(credential.path)
        entry.put(credential)
        if old is not None and _extras(old) != _extras(credential) and self._changed is not None:
            self._changed()  # provider fields (headers) changed too: re-apply

    # -- WatchingSource --------------------------------------------------------------------------------------------

    async def start(self, changed: Callable[[], None]) -> None:
        self._changed = changed
        self._task = asyncio.create_task(self._watch(), name="poolgate-credential-files")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        close = getattr(self._post, "close", None)
        if close is not None:
            await close()

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.poll()
            except Exception:  # one bad poll must not end the watching
                log.exception("looking at credential directories failed; trying again in %.0f s", self._interval)

    async def poll(self) -> bool:
        """Look at every directory once; returns (and signals) whether any pool's accounts changed."""
        changed = False
        for entry in list(self._dirs.values()):
            scan = await asyncio.to_thread(_scan, entry.directory, entry.pattern, dict(entry.stats),
                                           frozenset(self._busy))
            if self._dirs.get(entry.pool) is entry:  # not replaced by a reload meanwhile
                changed |= self._apply(entry, scan)
        if changed and self._changed is not None:
            self._changed()
        return changed

    # -- RefreshingSource ------------------------------------------------------------------------------------------

    def refreshable(self, pool: str, config: PoolConfig, account: str) -> bool:
        entry = self._dirs.get(pool)
        credential = entry.by_name(account) if entry else None
        return bool(config.oauth.token_url) and credential is not None and bool(credential.refresh_token)

    async def refresh(self, pool: str, config: PoolConfig, account: str) -> RefreshedCredential:
        entry = self._dirs.get(pool)
        credential = entry.by_name(account) if entry else None
        if credential is None:
            raise CredentialFileError(Path(account), "has no credential file any more")
        path = credential.path
        self._busy.add(path)
        try:
            return await self._refresh(pool, config, credential)
        finally:
            self._busy.discard(path)

    def _fresh(self, config: PoolConfig, credential: FileCredential) -> bool:
        expires = credential.expires_at
        return not expires or self._clock() < expires - config.oauth.refresh_margin

    async def _refresh(self, pool: str, config: PoolConfig, known: FileCredential) -> RefreshedCredential:
        credential = await asyncio.to_thread(read_credential_file, known.path)
        for attempt in range(2):
            if credential.data != known.data:
                self._adopt(pool, credential)  # another process wrote the file
                if self._fresh(config, credential):
                    log.info("pools.%s.credentials_dir: %s was renewed by another process; using its tokens",
                             pool, credential.path.name)
                    return RefreshedCredential(credential.access_token, credential.expires_at)
            if not credential.refresh_token:
                raise CredentialFileError(credential.path, "has no refresh_token; log in again with the provider's "
                                                           "tool")
            try:
                tokens = await refresh_tokens(self._post, config.oauth, credential.refresh_token, credential.field,
                                              self._clock)
            except TokenRejected as exc:
                # Rotated by another process while we asked? Then its new refresh token is in the file.
                known, credential = credential, await asyncio.to_thread(read_credential_file, credential.path)
                if attempt == 0 and credential.refresh_token != known.refresh_token:
                    continue
                raise CredentialRejected(f"{exc}; log in again with the provider's tool") from None
            updated = credential.with_tokens(tokens.access_token, tokens.refresh_token, tokens.expires_at)
            await asyncio.to_thread(write_credential_file, updated)
            self._adopt(pool, updated)
            return RefreshedCredential(updated.access_token, updated.expires_at)
        raise AssertionError("unreachable")  # pragma: no cover


def _name(credential: FileCredential) -> str:
    return credential.name


_TOKEN_KEYS = frozenset({*ACCESS_KEYS, *REFRESH_KEYS, *EXPIRY_KEYS})


def _extras(credential: FileCredential) -> dict[str, object]:
    return {k: v for k, v in credential.data.items() if k not in _TOKEN_KEYS}
