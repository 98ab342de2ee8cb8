"""The pools' public shape: what a client of the selector needs to route requests, and nothing secret.

The selector owns the pools; a client (the edge) learns where each model goes from this document, which the
selector's ``WatchTopology`` stream sends at once and again after every change. It holds, per pool, the format,
base URL, APIs and failover settings, plus the ``models:`` and ``routes:`` sections as the config file writes them —
never an account, a key or a proxy (a lease carries its account's proxy).

The document keeps the config's order (the patterns of ``models:`` are tried in it), and its digest (the version) is
the same on every replica that reads the same config.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from poolgate.config.routes import RouteRule, check_routing
from poolgate.config.schema import ApiFormatName, ApiName, FailoverSettings, PoolConfig

VERSION_CHARS = 16


class TopologyError(ValueError):
    """A topology document that cannot be used; the message says what is wrong with it."""


class PoolShape(BaseModel):
    """One pool as a client routes to it (a projection of :class:`PoolConfig`)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    format: ApiFormatName
    base_url: str
    apis: tuple[ApiName, ...]
    failover: FailoverSettings = Field(default_factory=FailoverSettings)

    @classmethod
    def of(cls, pool: PoolConfig) -> PoolShape:
        return cls(format=pool.format, base_url=pool.base_url, apis=tuple(pool.apis), failover=pool.failover)


class Topology(BaseModel):
    """Every pool's shape plus ``models:`` and ``routes:``. Unknown fields are ignored, so a newer selector can add
    some without breaking older clients."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    pools: dict[str, PoolShape]
    models: dict[str, str | list[str]] = Field(default_factory=dict)
    routes: list[RouteRule] = Field(default_factory=list)

    @classmethod
    def of(cls, pools: Mapping[str, PoolConfig], models: Mapping[str, str | list[str]],
           routes: Sequence[RouteRule]) -> Topology:
        """The topology a config serves."""
        return cls(pools={name: PoolShape.of(pool) for name, pool in pools.items()}, models=dict(models),
                   routes=list(routes))

    def document(self) -> str:
        """The JSON document, in the config's order (glob patterns of ``models:`` are tried in that order)."""
        data = self.model_dump(mode="json", by_alias=True, exclude_defaults=False)
        return json.dumps(data, separators=(",", ":"), ensure_ascii=False)

    @staticmethod
    def version_of(document: str) -> str:
        return hashlib.sha256(document.encode()).hexdigest()[:VERSION_CHARS]

    @classmethod
    def parse(cls, document: str) -> Topology:
        """Read a document; raises :class:`TopologyError` naming the problem."""
        try:
            topology = cls.model_validate_json(document)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"]) or "document"
            raise TopologyError(f"{where}: {first['msg']} ({exc.error_count()} problem(s))") from None
        problem = check_routing(list(topology.pools), topology.models, topology.routes)
        if problem:
            raise TopologyError(problem)
        return topology
