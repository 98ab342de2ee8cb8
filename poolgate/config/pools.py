"""A pool and its accounts: credentials, limits, OAuth refresh, proxies."""

from __future__ import annotations

import hashlib
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from poolgate.config.durations import Duration
from poolgate.config.pool_settings import (
    CHAT_ONLY_HOSTS,
    DEFAULT_BASE_URLS,
    FORMAT_APIS,
    PRIORITY_WORDS,
    ApiFormatName,
    ApiName,
    PoolSettings,
)
from poolgate.config.routes import HEADER_NAME
from poolgate.config.section import Section
from poolgate.secrets import redact


def _priority(value: Any) -> Any:
    if isinstance(value, str) and value.lower() in PRIORITY_WORDS:
        return PRIORITY_WORDS[value.lower()]
    if isinstance(value, bool) or value not in (0, 1, 2):
        raise ValueError(f"must be 0, 1 or 2 (or low, normal, high), got {value!r}")
    return value


class AccountConfig(Section):
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


class OAuthSettings(Section):
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

