"""An account's credential: the header it is sent in, its expiry, and where its renewal stands."""

from __future__ import annotations

from dataclasses import dataclass

from poolgate.config import AccountConfig, PoolConfig, redact
from poolgate.config.schema import parse_auth_header


@dataclass(frozen=True, slots=True)
class Credential:
    header: str
    value: str
    extra_headers: tuple[tuple[str, str], ...]


class CredentialState:
    """The credential an account is leased with, and its renewal (OAuth tokens expire and may be refreshed)."""

    __slots__ = ("awaiting_refresh", "credential", "credential_since", "expires_at", "expiry_skip", "expiry_wakeup",
                 "fingerprint", "prefix", "redacted", "refresh_margin", "refreshing", "rejection_refreshed")

    def __init__(self, pool: PoolConfig, config: AccountConfig) -> None:
        self.refreshing = False
        """A credential refresh is in flight."""
        # A rejected (401/403) credential that can be renewed is refreshed once before the account is disabled.
        self.awaiting_refresh = False
        """Rejected; not leased until a new credential arrives."""
        self.rejection_refreshed = False
        """Renewed after a rejection, and not yet proven by a success."""
        self.credential_since = 0.0
        """When the credential was last renewed (0: the configured one)."""
        self.expiry_wakeup = 0.0
        """The expiry edge the pool last scheduled a re-check for."""
        self.configure(pool, config)

    def configure(self, pool: PoolConfig, config: AccountConfig) -> None:
        """Take the credential from config (at start, and on reload)."""
        if config.auth_header:
            header, self.prefix = parse_auth_header(config.auth_header)
        elif pool.auth_scheme == "bearer":
            header, self.prefix = "authorization", "Bearer"
        else:
            header, self.prefix = "x-api-key", ""
        value = self._value(config.key)
        previous: Credential | None = getattr(self, "credential", None)
        if previous is not None and previous.value != value:
            self.awaiting_refresh = False  # a new credential from the config (someone logged in again)
        self.credential = Credential(header, value, tuple({**pool.headers, **config.headers}.items()))
        self.redacted = config.credential_redacted
        self.fingerprint = config.credential_fingerprint
        self.expires_at = config.expires_at
        self.expiry_skip = pool.oauth.skip_expiring_threshold
        self.refresh_margin = pool.oauth.refresh_margin

    def _value(self, key: str) -> str:
        """The credential header's value for ``key`` (``Bearer KEY``, or the bare key)."""
        return f"{self.prefix} {key}" if self.prefix else key

    def renew(self, key: str, expires_at: float, now: float) -> bool:
        """Take a renewed credential; returns whether it replaces one the upstream rejected."""
        self.credential = Credential(self.credential.header, self._value(key), self.credential.extra_headers)
        self.redacted = redact(key)
        self.expires_at = expires_at
        self.credential_since = now
        replaces_rejected, self.awaiting_refresh = self.awaiting_refresh, False
        return replaces_rejected

    def expiring(self, now: float) -> bool:
        """Whether the credential expires within the skip threshold (so the account must not be leased)."""
        return bool(self.expires_at) and now >= self.expires_at - self.expiry_skip

    def refresh_due(self, now: float) -> bool:
        """Whether the credential is within its refresh margin, or was rejected and waits for a new one."""
        return self.awaiting_refresh or (bool(self.expires_at) and now >= self.expires_at - self.refresh_margin)
