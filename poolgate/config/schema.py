"""The config file's schema, shared by the selector and the edge; every default lives here.

One YAML file configures both processes; each reads its own section (``selector:`` or ``edge:``) plus the shared
``defaults:``, ``pools:`` and ``models:``. Settings under ``defaults:`` apply to every pool unless the pool sets them.
"""

from __future__ import annotations

import hashlib
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from poolgate.addresses import check_listen
from poolgate.config.durations import Duration, Size
from poolgate.config.routes import HEADER_NAME, RouteRule, check_routing

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
ApiName = Literal["chat", "responses", "embeddings", "messages", "count_tokens"]
FORMAT_APIS: dict[str, tuple[str, ...]] = {
    "openai": ("chat", "responses", "embeddings"), "anthropic": ("messages", "count_tokens")}
"""The APIs an upstream of each format may speak, and speaks unless the pool's ``apis:`` says otherwise."""
CHAT_ONLY_HOSTS = ("generativelanguage.googleapis.com",)
"""Upstreams known to lack the Responses API (Gemini's OpenAI-compatible endpoint): ``apis`` defaults to chat and
embeddings there."""


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


ErrorClassName = Literal["rate_limited", "quota_exhausted", "auth", "overloaded", "request_error", "server_error",
                         "network", "timeout"]
RESTING_CLASSES = ("rate_limited", "quota_exhausted")


class ClassifyMatch(_Section):
    """What an upstream error must have for a ``classify:`` rule to apply (every field given must match)."""

    status: int | list[int] | None = None
    type: str = ""
    """The provider's error type (OpenAI ``error.type``, Anthropic ``error.type``, Gemini ``error.status``)."""
    code: str = ""
    message: str = ""
    """A part of the error message (case does not matter)."""

    @model_validator(mode="after")
    def _something(self) -> ClassifyMatch:
        if self.status is None and not (self.type or self.code or self.message):
            raise ValueError("match needs at least one of status, type, code, message")
        for status in self.statuses:
            if not 400 <= status <= 599:
                raise ValueError(f"status must be an HTTP error status (400 to 599), got {status}")
        return self

    @property
    def statuses(self) -> list[int]:
        if self.status is None:
            return []
        return self.status if isinstance(self.status, list) else [self.status]


class ClassifyRule(_Section):
    """Upstream errors matching ``match`` are of class ``class`` (``rest``: how long the account rests, for
    rate_limited and quota_exhausted)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    match: ClassifyMatch
    error_class: ErrorClassName = Field(alias="class")
    rest: Duration | None = None

    @model_validator(mode="after")
    def _rest_rests(self) -> ClassifyRule:
        if self.rest is not None and self.error_class not in RESTING_CLASSES:
            raise ValueError(f"rest applies only to the classes {' and '.join(RESTING_CLASSES)}, not "
                             f"{self.error_class}")
        return self


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
            words = ", ".join(RETRY_ON_WORDS)
            raise ValueError(f"entries must be HTTP statuses (e.g. 429) or one of {words}, got {item!r}")
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
    """Every request with a session key stays on one account while it is healthy."""
    conversation_affinity: bool = True
    """A coding agent's conversation (Claude Code's session id, Codex's session id or prompt_cache_key, Anthropic
    ``metadata.user_id``) stays on one account while it is healthy, so its prompt cache is reused, even with
    sticky_sessions off."""
    session_ttl: Duration = 3600.0
    probe_leases: int = Field(default=1, ge=1, le=1000)
    """Leases in flight at most on an account whose health is unknown (new, after a cooldown, half-open, re-enabled)
    until the upstream answers one of them; other requests go to known accounts or wait."""
    probe_timeout: Duration = 30.0
    """A probe not answered within this time (a long non-stream generation, or an edge that died holding it) gives
    up its slot, and the account admits another probe."""
    cooldown_scope: Literal["model", "account"] = "model"
    """What a 429 rests: the account for the model it was for (providers limit per model), or the whole account.
    Quota, credentials, the circuit breaker and operators' actions are always account-wide."""
    model_groups: list[str] = Field(default_factory=list)
    """Globs naming models that share one limit (``claude-opus-*``): a 429 for one rests the group."""
    classify: list[ClassifyRule] = Field(default_factory=list)
    """Rules for upstream errors, tried before the built-in table (docs/health.md)."""
    quota_rest: Duration = 3600.0
    quota_timezone: str = "UTC"
    """The time zone whose midnight starts the day of rpd_limit and tpd_limit (an IANA name such as
    America/Los_Angeles)."""
    reserve: float = Field(default=0.0, ge=0.0, lt=1.0)
    """Stop using an account while a learned rate-limit or quota window has less than this share left (e.g. 0.1 for
    owners who also use their account by hand), until that window resets."""
    """How long an account out of quota rests when the upstream does not say when its quota comes back."""
    slow_start: int = Field(default=0, ge=0, le=1_000_000)
    """0: a probe's success opens the account fully. N: it then takes 2, 4, 8 … leases in flight, doubling per
    success, until the step passes N."""


def _priority(value: Any) -> Any:
    if isinstance(value, str) and value.lower() in PRIORITY_WORDS:
        return PRIORITY_WORDS[value.lower()]
    if isinstance(value, bool) or value not in (0, 1, 2):
        raise ValueError(f"must be 0, 1 or 2 (or low, normal, high), got {value!r}")
    return value


class AccountConfig(_Section):
    """One account: a credential and its limits."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9._@:+-]+$")
    key: str = Field(default="", repr=False, validate_default=False)  # empty: key_env (or a source) gives it
    weight: int = Field(default=1, ge=1, le=1_000_000)
    priority: int = 1  # 0, 1 or 2: checked (and words mapped) by _priority_value
    rpm_limit: int = Field(default=0, ge=0)
    itpm_limit: int = Field(default=0, ge=0)
    otpm_limit: int = Field(default=0, ge=0)
    max_concurrency: int = Field(default=0, ge=0)
    rpd_limit: int = Field(default=0, ge=0)
    """Requests per day (a calendar day in the pool's quota_timezone); 0 = unlimited."""
    tpd_limit: int = Field(default=0, ge=0)
    """Tokens (input and output) per day; 0 = unlimited."""
    headers: dict[str, str] = Field(default_factory=dict)
    """Extra headers sent with this account's requests (e.g. an organization id)."""
    key_env: str = Field(default="", pattern=r"^([A-Za-z_][A-Za-z0-9_]*)?$")
    """Name of an environment variable holding the key, read by the selector when it starts (instead of key)."""
    identity: str = ""
    """What keeps this the same account when its key changes (e.g. a credential file's path); empty: the key itself.
    Set by credential sources whose tokens are renewed, so that a refresh keeps the account's health."""
    expires_at: float = Field(default=0.0, ge=0)
    """When the credential stops working (Unix seconds); 0: it does not expire. Set by credential sources."""
    auth_header: str = ""
    """Header (and scheme) the key is sent in, e.g. ``authorization: Bearer`` or ``x-api-key``; empty: the pool's
    auth_scheme."""
    proxy: str = Field(default="", repr=False)
    """The HTTP proxy this account's upstream calls go through (``http://[user:pass@]host:port``), ``direct`` for
    none; empty: the pool's proxy (see :func:`check_proxy`)."""

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

    @field_validator("auth_header")
    @classmethod
    def _auth_header_form(cls, value: str) -> str:
        if value:
            parse_auth_header(value)
        return value

    @field_validator("proxy", mode="before")
    @classmethod
    def _proxy_form(cls, value: Any) -> Any:
        return check_proxy(value)

    @model_validator(mode="after")
    def _one_key_source(self) -> AccountConfig:
        if self.key and self.key_env:
            raise ValueError("set either key or key_env, not both")
        if not self.key and not self.key_env:
            raise ValueError("key: required: set the account's API key, or key_env: the name of an environment "
                             "variable holding it")
        return self

    @property
    def credential_redacted(self) -> str:
        return redact(self.key) if self.key else f"${{{self.key_env}}}"

    @property
    def credential_fingerprint(self) -> str:
        """A one-way digest of the key (or of ``identity`` when set): tells a changed credential from an unchanged
        one without storing it."""
        material = f"identity:{self.identity}" if self.identity else self.key
        return hashlib.sha256(material.encode()).hexdigest()[:16]




DIRECT_PROXY = "direct"
"""The ``proxy:`` value that sends an account's (or a pool's) upstream calls to the upstream itself, whatever the
environment's proxy variables say."""
PROXY_SCHEMES = ("http", "https")


def check_proxy(value: Any) -> str:
    """A ``proxy:`` setting as given, once it is valid: empty (the pool's, else the environment's), ``direct``, or an
    ``http://`` or ``https://`` URL of a proxy (credentials in it are allowed, and never shown); ValueError else."""
    if not isinstance(value, str):
        raise ValueError("must be a string: an http:// or https:// URL of a proxy, or direct")
    text: str = value.strip()
    if not text or text == DIRECT_PROXY:
        return text
    from urllib.parse import urlsplit

    from poolgate.secrets import redact_url

    shown = redact_url(text)
    try:
        parts = urlsplit(text)
    except ValueError:
        parts = None
    try:
        port = parts.port if parts is not None else None
    except ValueError:
        port = 0
    if parts is not None and parts.scheme.lower().startswith("socks"):
        raise ValueError(f"SOCKS proxies are not supported, got {shown!r}: use an HTTP proxy (http://host:port), or "
                         "run an HTTP-to-SOCKS bridge and name it here")
    if (parts is None or parts.scheme.lower() not in PROXY_SCHEMES or not parts.hostname
            or parts.path not in ("", "/") or parts.query or parts.fragment):
        raise ValueError(f"must be an http:// or https:// URL of a proxy such as http://proxy.example:3128 "
                         f"(credentials as http://user:password@host:port), or {DIRECT_PROXY} for none, got {shown!r}")
    if port == 0:
        raise ValueError(f"the port must be from 1 to 65535, got {shown!r}")
    return text


def parse_auth_header(spec: str) -> tuple[str, str]:
    """``"authorization: Bearer"`` -> ``("authorization", "Bearer")``; ``"x-api-key"`` -> ``("x-api-key", "")``."""
    name, _, scheme = spec.partition(":")
    name, scheme = name.strip().lower(), scheme.strip()
    if not HEADER_NAME.match(name) or (scheme and not HEADER_NAME.match(scheme)):
        raise ValueError(f"must be a header name, optionally followed by ': ' and a scheme, such as "
                         f"'authorization: Bearer' or 'x-api-key', got {spec!r}")
    return name, scheme


class OAuthSettings(_Section):
    """How a pool's file accounts renew their OAuth access tokens (the refresh_token grant)."""

    token_url: str = ""
    """The provider's token endpoint; empty: tokens are never refreshed, only used until they expire. Fields of the
    credential file may be named in braces, e.g. ``https://oidc.{region}.amazonaws.com/token``."""
    body: Literal["form", "json"] = "form"
    """How the request is encoded: form (application/x-www-form-urlencoded, RFC 6749) or json."""
    client_id: str = ""
    client_secret: str = Field(default="", repr=False)
    scope: str = ""
    grant_type: str = "refresh_token"
    """Sent as ``grant_type``; empty sends none (endpoints that take only the refresh token)."""
    refresh_token_field: str = Field(default="refresh_token", min_length=1)
    """The request field that carries the refresh token (e.g. ``refreshToken``)."""
    params: dict[str, str] = Field(default_factory=dict)
    """Further fields sent with every refresh request."""
    header: str = "authorization: Bearer"
    """Header (and scheme) the access token is sent upstream in."""
    refresh_margin: Duration = 600.0
    """Refresh a token this long before it expires."""
    skip_expiring_threshold: Duration = 300.0
    """An account whose token expires within this time, and has not been refreshed, is not selected."""
    timeout: Duration = 30.0
    """Longest wait for the token endpoint."""

    @field_validator("client_secret", mode="before")
    @classmethod
    def _secret_is_text(cls, value: Any) -> Any:
        if not isinstance(value, str):
            raise ValueError("must be a string (quote it in YAML)")  # never echo what may be a secret
        return value

    @field_validator("token_url")
    @classmethod
    def _token_url_form(cls, value: str) -> str:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError(f"must start with http:// or https://, got {value!r}")
        return value

    @field_validator("header")
    @classmethod
    def _header_form(cls, value: str) -> str:
        parse_auth_header(value)
        return value

    @model_validator(mode="after")
    def _margins(self) -> OAuthSettings:
        if self.refresh_margin < self.skip_expiring_threshold:
            raise ValueError(
                f"refresh_margin ({self.refresh_margin:g} s) is shorter than skip_expiring_threshold "
                f"({self.skip_expiring_threshold:g} s): accounts would stop being selected before a refresh is "
                "tried; make refresh_margin at least as long"
            )
        return self


class PoolConfig(PoolSettings):
    """A pool: accounts of one provider behind one base URL. Unset settings come from ``defaults:``."""

    format: ApiFormatName = "openai"
    base_url: str = ""
    apis: list[ApiName] = Field(default_factory=list)
    """The APIs the pool's upstream speaks; a request for another is translated to one of these. Empty: the
    format's (openai: chat, responses, embeddings, but chat and embeddings for Gemini's endpoint; anthropic: messages,
    count_tokens)."""
    auth_scheme: Literal["bearer", "x-api-key", ""] = ""
    """How the credential is sent; empty means the format's usual one (openai: bearer, anthropic: x-api-key)."""
    headers: dict[str, str] = Field(default_factory=dict)
    accounts: list[AccountConfig] = Field(default_factory=list)
    credentials_dir: str = ""
    """A directory of OAuth credential files (JSON, one per account); every file matching credentials_glob becomes
    an account named after the file, and the directory is watched for added, changed and removed files."""
    credentials_glob: str = "*.json"
    credentials_headers: dict[str, str] = Field(default_factory=dict)
    """Header name -> field of the credential file, sent with that account's requests (e.g. a profile ARN)."""
    oauth: OAuthSettings = Field(default_factory=OAuthSettings)
    credential_sources: dict[str, dict[str, Any]] = Field(default_factory=dict)
    """Options for credential-source plugins, by source name: each source named here adds its accounts."""
    proxy: str = Field(default="", repr=False)
    """The HTTP proxy the pool's accounts go through unless an account sets its own (accounts added at run time too);
    ``direct`` for none; empty: the environment's (``edge.proxy_from_env``). See :func:`check_proxy`."""

    @field_validator("proxy", mode="before")
    @classmethod
    def _proxy_form(cls, value: Any) -> Any:
        return check_proxy(value)

    @model_validator(mode="before")
    @classmethod
    def _shorthands(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        given = [k for k in ("accounts", "api_key", "api_keys") if k in data]
        if len(given) > 1:
            raise ValueError(f"set only one of accounts, api_key and api_keys (got {' and '.join(given)})")
        if not given and not data.get("credentials_dir") and not data.get("credential_sources"):
            raise ValueError("no accounts: add accounts:, api_key:, api_keys: or credentials_dir:")
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
        accounts = data.get("accounts")
        if isinstance(accounts, list):
            named = []
            for i, account in enumerate(accounts):
                if isinstance(account, dict) and "name" not in account:
                    account = {**account, "name": f"account-{i + 1}"}
                named.append(account)
            data["accounts"] = named
        return data

    @field_validator("quota_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from poolgate.day_windows import time_zone

        time_zone(value)  # raises ValueError naming what to give
        return value

    @model_validator(mode="after")
    def _complete(self) -> PoolConfig:
        if not self.accounts and not self.credentials_dir and not self.credential_sources:
            raise ValueError("no accounts: add at least one account")
        if not self.credentials_glob.strip() or "/" in self.credentials_glob:
            raise ValueError(f"credentials_glob must be a file name pattern such as 'kiro-*.json' (no '/'), got "
                             f"{self.credentials_glob!r}")
        for header in self.credentials_headers:
            if not HEADER_NAME.match(header):
                raise ValueError(f"credentials_headers: {header!r} is not a valid header name")
        if self.oauth.token_url and not self.credentials_dir and "oauth" in self.model_fields_set:
            raise ValueError("oauth: only accounts from credentials_dir are refreshed; set credentials_dir, or "
                             "remove oauth")
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
        self._check_apis()
        return self

    def _check_apis(self) -> None:
        possible = FORMAT_APIS[self.format]
        if not self.apis:
            chat_only = any(host in self.base_url for host in CHAT_ONLY_HOSTS)
            self.apis = [api for api in possible if not (chat_only and api == "responses")]  # type: ignore[misc]
            return
        wrong = [api for api in self.apis if api not in possible]
        if wrong:
            raise ValueError(f"apis: {', '.join(wrong)} is not an API of {self.format}-format upstreams (they speak "
                             f"{', '.join(possible)})")
        if self.format == "anthropic" and "messages" not in self.apis:
            raise ValueError("apis: an anthropic-format upstream must speak messages")
        if self.format == "openai" and not {"chat", "responses"} & set(self.apis):
            raise ValueError("apis: an openai-format upstream must speak chat or responses (or both)")
        self.apis = list(dict.fromkeys(self.apis))


class SelectorAuth(_Section):
    """Bearer tokens the selector accepts (several each, for rotation)."""

    tokens: list[str] = Field(default_factory=list, repr=False)
    """For the Selector service (leases carry credentials: whoever can lease can read keys)."""
    admin_tokens: list[str] = Field(default_factory=list, repr=False)
    """For the Admin service too (enable, disable, reset, add, remove, reload); also valid for Selector calls."""

    @model_validator(mode="after")
    def _distinct(self) -> SelectorAuth:
        for i, token in enumerate([*self.tokens, *self.admin_tokens]):
            if not token.strip():
                raise ValueError(f"token {i} is empty: set it or remove it")
            if len(token) < 16:
                raise ValueError(f"token {i} is shorter than 16 characters: use a long random token "
                                 "(python -c 'import secrets; print(secrets.token_urlsafe(32))')")
        if set(self.tokens) & set(self.admin_tokens):
            raise ValueError("an admin token must differ from every lease token")
        return self


class ServerTLS(_Section):
    cert: str = ""
    """PEM certificate chain the selector presents."""
    key: str = ""
    """PEM private key of that certificate."""
    client_ca: str = ""
    """PEM CA bundle; when set, clients must present a certificate it signed (mutual TLS)."""

    @model_validator(mode="after")
    def _pair(self) -> ServerTLS:
        if bool(self.cert) != bool(self.key):
            raise ValueError("set both cert and key (PEM files), or neither")
        if self.client_ca and not self.cert:
            raise ValueError("client_ca needs cert and key as well")
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
    auth: SelectorAuth = Field(default_factory=SelectorAuth)
    tls: ServerTLS = Field(default_factory=ServerTLS)

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        return check_listen(value, unix=True)

    @field_validator("metrics_listen")
    @classmethod
    def _metrics_listen(cls, value: str) -> str:
        return check_listen(value, port_only=True) if value else value


class ModelPrice(_Section):
    """USD per million tokens."""

    input: float = Field(ge=0)
    output: float = Field(ge=0)


class EdgeTimeouts(_Section):
    """How long the edge waits on an upstream (and on the selector) before an attempt counts as timed out.

    ``first_token`` and ``stream_idle`` default to 60 s, or to ``first_byte`` when the config sets that and not
    them (``first_byte`` used to bound streams as well, and such configs keep their meaning).
    """

    connect: Duration = 10.0
    first_byte: Duration = 120.0
    """Non-stream requests: until the response headers, and the longest pause while the body is read."""
    first_token: Duration = 60.0
    """Stream requests: from sending the request until its first whole event (headers included)."""
    stream_idle: Duration = 60.0
    """Stream requests: the longest pause between two chunks once the first event has come."""
    total: Duration = 900.0
    """One upstream attempt, streams included."""
    selector: Duration = 5.0
    """Deadline for one SelectAccount call (how long a request may wait for a free account)."""
    selector_unavailable: Duration = Field(default=0.8, gt=0)
    """How long a request waits for an unreachable selector (reconnecting) before it gets a 503 with Retry-After:
    the answer comes within a second, and a selector back within that time serves the request."""

    @model_validator(mode="after")
    def _streams_follow_first_byte(self) -> EdgeTimeouts:
        if "first_byte" in self.model_fields_set:
            for name in ("first_token", "stream_idle"):
                if name not in self.model_fields_set:
                    setattr(self, name, self.first_byte)
        return self


class UpstreamLimits(_Section):
    """The most the edge holds of one upstream answer; an answer beyond them ends as a failed attempt."""

    sse_event: Size = 8 * 1024 * 1024
    """One SSE event; a larger one ends the stream with an error event (before the first event: a 502)."""
    response_body: Size = 32 * 1024 * 1024
    """A non-stream answer; a larger one is a 502 in the client's API shape (a server error of the account)."""
    error_body: Size = 64 * 1024
    """What is read of an error answer (4xx/5xx); the rest is not read."""


class ClientTLS(_Section):
    """How a client (the edge, ``poolgate accounts``) verifies the selector's TLS certificate and proves its own."""

    ca: str = ""
    """PEM CA bundle that signed the selector's certificate; setting it turns TLS on."""
    cert: str = ""
    """PEM client certificate, for a selector that requires mutual TLS."""
    key: str = ""
    server_name: str = ""
    """Name to verify in the selector's certificate when it differs from the address's host."""

    @model_validator(mode="after")
    def _pair(self) -> ClientTLS:
        if bool(self.cert) != bool(self.key):
            raise ValueError("set both cert and key (PEM files), or neither")
        if self.cert and not self.ca:
            raise ValueError("a client certificate needs ca (the selector's CA) as well")
        return self


class ClientTimeouts(_Section):
    """How long the edge waits for its clients (a client that stalls loses its connection, or gets a 408)."""

    header: Duration = Field(default=30.0, gt=0)
    """From a request's first byte until its headers are complete."""
    body: Duration = Field(default=60.0, gt=0)
    """From the headers until the request body is complete."""
    idle: Duration = Field(default=75.0, gt=0)
    """A keep-alive connection with no request (and a new connection before its first byte)."""


class EdgeSection(_Section):
    listen: str = DEFAULT_EDGE_LISTEN
    selector: str = ""
    """Address of the selector, or several (comma-separated or a YAML list of IP:port) to spread over replicas;
    empty means the selector section's listen address."""
    selector_transport: Literal["stream", "unary"] = "stream"
    """``stream``: one long-lived Exchange stream carries every selection and report (fast); ``unary``: one
    SelectAccount and one ReportOutcome call per attempt."""
    selector_tls: ClientTLS = Field(default_factory=ClientTLS)
    api_keys: list[str] = Field(default_factory=list, repr=False)
    """Keys clients must present (Authorization: Bearer … or x-api-key: …)."""
    auth: bool = True
    timeouts: EdgeTimeouts = Field(default_factory=EdgeTimeouts)
    upstream_limits: UpstreamLimits = Field(default_factory=UpstreamLimits)
    body_limit: Size = 32 * 1024 * 1024
    client_timeouts: ClientTimeouts = Field(default_factory=ClientTimeouts)
    listen_backlog: int = Field(default=1024, ge=1, le=65535)
    """Connections the kernel queues before the edge accepts them (capped by the system's somaxconn)."""
    shutdown_timeout: Duration = Field(default=10.0, ge=0)
    """On SIGTERM, how long requests in flight may take to finish; then they end with an error in their API's
    shape."""
    fake_upstream: str = ""
    """host:port on which ``poolgate up`` also runs the fake upstream (demos, load tests); empty runs none."""
    proxy_from_env: bool = True
    """Upstream calls of accounts without a ``proxy:`` of their own or their pool's go through the proxy that the
    standard variables name when the edge starts (``HTTPS_PROXY``, ``HTTP_PROXY``, lower case first; ``NO_PROXY``
    honoured); upstreams on loopback never do. false: such calls go direct, whatever the environment says."""

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        return check_listen(value)

    @field_validator("fake_upstream")
    @classmethod
    def _fake_upstream(cls, value: str) -> str:
        return check_listen(value) if value else value

    @field_validator("selector", mode="before")
    @classmethod
    def _address_list(cls, value: Any) -> Any:
        if isinstance(value, list):
            return ",".join(str(v).strip() for v in value)
        return value

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
    models: dict[str, str | list[str]] = Field(default_factory=dict)
    """Requested model (exact name or glob such as ``claude-*``) -> ``pool``, ``pool/upstream-model``, another model
    name (an alias), or a list of ``pool/model`` targets (a fallback chain)."""
    routes: list[RouteRule] = Field(default_factory=list)
    """Rules that send a request to a model by what it is (system prompt, header, client key, model); the first
    that matches wins, before ``models:``."""
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
        problem = check_routing(list(self.pools), self.models, self.routes, self.edge.api_keys)
        if problem:
            raise ValueError(problem)
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
