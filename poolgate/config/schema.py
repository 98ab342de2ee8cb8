"""The config file's schema: the whole file (:class:`Config`), put together from its parts, whose names are all
importable from here — :mod:`~poolgate.config.pool_settings` (what ``defaults:`` and each pool set),
:mod:`~poolgate.config.pools` (pools and accounts) and :mod:`~poolgate.config.sections` (``selector:``, ``edge:``,
``prices:``).

The selector reads the whole file; the edge only ``edge:`` and the selector's address and tokens (it takes the pools
from the selector, :mod:`poolgate.config.topology`). Settings under ``defaults:`` apply to every pool unless the pool
sets them.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator, model_validator

from poolgate.config.pool_settings import (
    CHAT_ONLY_HOSTS,
    DEFAULT_BASE_URLS,
    DEFAULT_RETRY_ON,
    DEFAULT_STRATEGY,
    FORMAT_APIS,
    PRIORITY_WORDS,
    RESTING_CLASSES,
    RETRY_ON_WORDS,
    ApiFormatName,
    ApiName,
    CircuitSettings,
    ClassifyMatch,
    ClassifyRule,
    CooldownSettings,
    ErrorClassName,
    FailoverSettings,
    PoolSettings,
)
from poolgate.config.pools import (
    DIRECT_PROXY,
    PROXY_SCHEMES,
    AccountConfig,
    OAuthSettings,
    PoolConfig,
    check_proxy,
    parse_auth_header,
)
from poolgate.config.routes import RouteRule, check_routing
from poolgate.config.section import Section
from poolgate.config.sections import (
    DEFAULT_DATABASE_FILE,
    DEFAULT_EDGE_LISTEN,
    DEFAULT_OVERLAY_FILE,
    DEFAULT_SELECTOR_LISTEN,
    ClientTimeouts,
    ClientTLS,
    EdgeSection,
    EdgeTimeouts,
    ModelPrice,
    SelectorAuth,
    SelectorSection,
    ServerTLS,
    UpstreamLimits,
)
from poolgate.secrets import redact

__all__ = [
    "CHAT_ONLY_HOSTS", "DEFAULT_BASE_URLS", "DEFAULT_DATABASE_FILE", "DEFAULT_EDGE_LISTEN", "DEFAULT_OVERLAY_FILE",
    "DEFAULT_RETRY_ON", "DEFAULT_SELECTOR_LISTEN", "DEFAULT_STRATEGY", "DIRECT_PROXY", "FORMAT_APIS",
    "PRIORITY_WORDS", "PROXY_SCHEMES", "RESTING_CLASSES", "RETRY_ON_WORDS", "AccountConfig", "ApiFormatName",
    "ApiName", "CircuitSettings", "ClassifyMatch", "ClassifyRule", "ClientTLS", "ClientTimeouts", "Config",
    "CooldownSettings", "EdgeSection", "EdgeTimeouts", "ErrorClassName", "FailoverSettings", "ModelPrice",
    "OAuthSettings", "PoolConfig", "PoolSettings", "SelectorAuth", "SelectorSection", "ServerTLS", "UpstreamLimits",
    "check_proxy", "parse_auth_header", "redact",
]


class Config(Section):
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
        problem = check_routing(list(self.pools), self.models, self.routes, self.edge.client_keys())
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

