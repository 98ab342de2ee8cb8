"""The config file's schema, shared by the selector and the edge; every default lives here.

One YAML file configures both processes; each reads its own section (``selector:`` or ``edge:``) plus the shared
``defaults:``, ``pools:`` and ``models:``. Settings under ``defaults:`` apply to every pool unless the pool sets them.
"""

from __future__ import annotations

import hashlib
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from poolgate.config.durations import Duration, Size

DEFAULT_SELECTOR_LISTEN = "127.0.0.1:50151"
DEFAULT_EDGE_LISTEN = "127.0.0.1:8080"
DEFAULT_DATABASE_FILE = "poolgate.db"
DEFAULT_OVERLAY_FILE = "poolgate.overlay.yaml"
DEFAULT_STRATEGY = "round_robin"
DEFAULT_BASE_URLS = {"openai": "https://api.openai.com/v1", "anthropic": "https://api.anthropic.com"}
# Outcomes the edge retries on another account; numbers are HTTP statuses.
DEFAULT_RETRY_ON: tuple[int | str, ...] = (429, 529, 500, 502, 503, 504, 401, 403, "network", "timeout")
RETRY_ON_WORDS = ("network", "timeout")
PRIORITY_WORDS = {"low": 0, "normal": 1, "high": 2}

ApiFormatName = Literal["openai", "anthropic"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False, validate_default=True)


class CooldownSettings(_Section):
    """How long a rate-limited (429) account rests."""

    base: Duration = 1.0
    """First backoff when the upstream gives no retry-after; doubles on each further 429 in a row."""
    max: Duration = 300.0
    """Longest backoff computed without a retry-after."""
    max_retry_after: Duration = 900.0
    """Cap on an upstream's retry-after (a misbehaving upstream cannot park an account for a day)."""
    jitter: float = Field(default=0.2, ge=0.0, le=1.0)
    """Fraction of random spread added to computed backoffs, so accounts do not all return at once."""


class CircuitSettings(_Section):
    """The per-account circuit breaker for 5xx, network errors and timeouts."""

    failures: int = Field(default=5, ge=1)
    """Consecutive failures that open the circuit."""
    cooldown: Duration = 30.0
    """How long an open circuit stays open the first time; doubles each time a probe fails."""
    max_cooldown: Duration = 600.0


class FailoverSettings(_Section):
    """What the edge retries on another account, and how often."""

    retry_on: list[int | str] = Field(default_factory=lambda: list(DEFAULT_RETRY_ON))
    max_attempts: int = Field(default=3, ge=1, le=20)

    @field_validator("retry_on")
    @classmethod
    def _known_outcomes(cls, value: list[int | str]) -> list[int | str]:
        for item in value:
            if isinstance(item, int) and 100 <= item <= 599:
                continue
            if isinstance(item, str) and item in RETRY_ON_WORDS:
                continue
            raise ValueError(f"entries must be HTTP statuses (e.g. 429) or one of {', '.join(RETRY_ON_WORDS)}, got {item!r}")
        return value


class PoolSettings(_Section):
    """Settings a pool inherits from ``defaults:`` unless it sets them itself."""

    strategy: str = DEFAULT_STRATEGY
    strategy_options: dict[str, Any] = Field(default_factory=dict)
    cooldown: CooldownSettings = Field(default_factory=CooldownSettings)
    circuit: CircuitSettings = Field(default_factory=CircuitSettings)
    failover: FailoverSettings = Field(default_factory=FailoverSettings)
    lease_ttl: Duration = 900.0
    """A lease not reported within this time is released (long streams need it long)."""
    queue_timeout: Duration = 30.0
    """Longest a SelectAccount call waits for an account when the caller set no deadline."""
    sticky_sessions: bool = False
    session_ttl: Duration = 3600.0


def _priority(value: Any) -> Any:
    if isinstance(value, str) and value.lower() in PRIORITY_WORDS:
        return PRIORITY_WORDS[value.lower()]
    if isinstance(value, bool) or value not in (0, 1, 2):
        raise ValueError(f"must be 0, 1 or 2 (or low, normal, high), got {value!r}")
    return value


class AccountConfig(_Section):
    """One account: a credential and its limits."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9._@:+-]+$")
    key: str = Field(repr=False)
    weight: int = Field(default=1, ge=1, le=1_000_000)
    priority: Annotated[int, Field(ge=0, le=2)] = 1
    rpm_limit: int = Field(default=0, ge=0)
    itpm_limit: int = Field(default=0, ge=0)
    otpm_limit: int = Field(default=0, ge=0)
    max_concurrency: int = Field(default=0, ge=0)
    headers: dict[str, str] = Field(default_factory=dict)
    """Extra headers sent with this account's requests (e.g. an organization id)."""

    @model_validator(mode="before")
    @classmethod
    def _aliases(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        if "api_key" in data:
            if "key" in data:
                raise ValueError("set either key or api_key, not both")
            data["key"] = data.pop("api_key")
        if "tpm_limit" in data:
            tpm = data.pop("tpm_limit")
            if not isinstance(tpm, int) or isinstance(tpm, bool) or tpm < 0:
                raise ValueError(f"tpm_limit must be a whole number >= 0, got {tpm!r}")
            # Legacy combined limit: split half for input, half for output, unless those are set explicitly.
            data.setdefault("itpm_limit", tpm // 2)
            data.setdefault("otpm_limit", tpm - tpm // 2)
        return data

    @field_validator("key", mode="before")
    @classmethod
    def _key_given(cls, key: Any) -> Any:
        if not isinstance(key, str):
            raise ValueError("must be a string (quote it in YAML)")
        if not key.strip():
            raise ValueError("is empty: set the account's API key, or remove the account")
        return key

    @field_validator("priority", mode="before")
    @classmethod
    def _priority_value(cls, value: Any) -> Any:
        return _priority(value)

    @property
    def credential_redacted(self) -> str:
        return redact(self.key)

    @property
    def credential_fingerprint(self) -> str:
        """A one-way digest of the key: tells a changed key from an unchanged one without storing it."""
        return hashlib.sha256(self.key.encode()).hexdigest()[:16]


class PoolConfig(PoolSettings):
    """A pool: accounts of one provider behind one base URL. Unset settings come from ``defaults:``."""

    format: ApiFormatName = "openai"
    base_url: str = ""
    auth_scheme: Literal["bearer", "x-api-key", ""] = ""
    """How the credential is sent; empty means the format's usual one (openai: bearer, anthropic: x-api-key)."""
    headers: dict[str, str] = Field(default_factory=dict)
    accounts: list[AccountConfig] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _shorthands(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        given = [k for k in ("accounts", "api_key", "api_keys") if k in data]
        if len(given) > 1:
            raise ValueError(f"set only one of accounts, api_key and api_keys (got {' and '.join(given)})")
        if not given:
            raise ValueError("no accounts: add accounts:, api_key: or api_keys:")
        if "api_key" in data:
            key = data.pop("api_key")
            if not isinstance(key, str) or not key.strip():
                raise ValueError("api_key is empty: set the key, or remove the pool")
            data["accounts"] = [{"name": "key-1", "key": key}]
        elif "api_keys" in data:
            keys = data.pop("api_keys")
            if not isinstance(keys, list) or not keys:
                raise ValueError("api_keys must be a non-empty list of keys")
            for i, key in enumerate(keys):
                if not isinstance(key, str) or not key.strip():
                    raise ValueError(f"api_keys[{i}] is empty: set the key, or remove the entry")
            data["accounts"] = [{"name": f"key-{i + 1}", "key": key} for i, key in enumerate(keys)]
        accounts = data["accounts"]
        if isinstance(accounts, list):
            named = []
            for i, account in enumerate(accounts):
                if isinstance(account, dict) and "name" not in account:
                    account = {**account, "name": f"account-{i + 1}"}
                named.append(account)
            data["accounts"] = named
        return data

    @model_validator(mode="after")
    def _complete(self) -> PoolConfig:
        if not self.accounts:
            raise ValueError("no accounts: add at least one account")
        seen: set[str] = set()
        for account in self.accounts:
            if account.name in seen:
                raise ValueError(f"two accounts are named {account.name!r}: account names must be unique in a pool")
            seen.add(account.name)
        if not self.base_url:
            self.base_url = DEFAULT_BASE_URLS[self.format]
        self.base_url = self.base_url.rstrip("/")
        if not self.base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must start with http:// or https://, got {self.base_url!r}")
        if not self.auth_scheme:
            self.auth_scheme = "bearer" if self.format == "openai" else "x-api-key"
        return self


class SelectorSection(_Section):
    listen: str = DEFAULT_SELECTOR_LISTEN
    """host:port, or unix:/path/to.sock."""
    database: str = ""
    """SQLAlchemy URL or a file path; empty means poolgate.db next to the config file."""
    usage_log: bool = True
    """Record every attempt (pool, account, model, outcome, tokens, latency, cost) in the database."""
    usage_retention: Duration = 30 * 86400.0
    metrics_listen: str = ""
    """host:port for the selector's Prometheus metrics (GET /metrics); empty turns them off."""
    overlay: str = ""
    """File holding accounts added or removed at run time (poolgate accounts add/remove); empty means
    poolgate.overlay.yaml next to the config file."""


class ModelPrice(_Section):
    """USD per million tokens."""

    input: float = Field(ge=0)
    output: float = Field(ge=0)


class EdgeTimeouts(_Section):
    connect: Duration = 10.0
    first_byte: Duration = 300.0
    total: Duration = 900.0
    selector: Duration = 5.0
    """Deadline for one SelectAccount call (how long a request may wait for a free account)."""


class EdgeSection(_Section):
    listen: str = DEFAULT_EDGE_LISTEN
    selector: str = ""
    """Address of the selector; empty means the selector section's listen address."""
    api_keys: list[str] = Field(default_factory=list, repr=False)
    """Keys clients must present (Authorization: Bearer … or x-api-key: …)."""
    auth: bool = True
    timeouts: EdgeTimeouts = Field(default_factory=EdgeTimeouts)
    body_limit: Size = 32 * 1024 * 1024
    fake_upstream: str = ""
    """host:port on which ``poolgate up`` also runs the fake upstream (demos, load tests); empty runs none."""

    @field_validator("api_keys")
    @classmethod
    def _no_empty_keys(cls, keys: list[str]) -> list[str]:
        for i, key in enumerate(keys):
            if not key.strip():
                raise ValueError(f"entry {i} is empty: set the key or remove the entry")
        return keys


class Config(_Section):
    """The whole file. ``source`` is the file it came from, for relative paths."""

    selector: SelectorSection = Field(default_factory=SelectorSection)
    edge: EdgeSection = Field(default_factory=EdgeSection)
    defaults: PoolSettings = Field(default_factory=PoolSettings)
    pools: dict[str, PoolConfig]
    models: dict[str, str] = Field(default_factory=dict)
    """Requested model (exact name or glob such as ``claude-*``) -> ``pool`` or ``pool/upstream-model``."""
    prices: dict[str, ModelPrice] = Field(default_factory=dict)
    """Upstream model (exact name or glob) -> price, for the usage log's cost estimate."""

    @field_validator("pools", mode="before")
    @classmethod
    def _inherit_defaults(cls, pools: Any, info: Any) -> Any:
        # Pools see the file's defaults: merge ``defaults:`` under each pool's own settings before validation.
        if not isinstance(pools, dict):
            return pools
        if not pools:
            raise ValueError("no pools: add at least one pool")
        defaults = (info.data or {}).get("defaults")
        if defaults is None:
            return pools
        inherited = defaults.model_dump(exclude_unset=True)
        merged = {}
        for name, pool in pools.items():
            merged[name] = _deep_merge(inherited, pool) if isinstance(pool, dict) else pool
        return merged

    @field_validator("pools")
    @classmethod
    def _pool_names(cls, pools: dict[str, PoolConfig]) -> dict[str, PoolConfig]:
        for name in pools:
            if not name or "/" in name or name.strip() != name:
                raise ValueError(f"pool name {name!r} must be non-empty, without '/' or surrounding spaces")
        return pools

    @model_validator(mode="after")
    def _models_name_pools(self) -> Config:
        for pattern, target in self.models.items():
            pool = target.split("/", 1)[0]
            if pool not in self.pools:
                raise ValueError(
                    f"models.{pattern}: names pool {pool!r}, which is not configured (pools: {', '.join(self.pools)})"
                )
        return self


def _deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    result = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = _deep_merge(result[key], value)
        else:
            result[key] = value
    return result


def redact(secret: str) -> str:
    """The only form in which a credential may be shown: its last four characters."""
    return "…" + secret[-4:] if len(secret) > 8 else "…"
