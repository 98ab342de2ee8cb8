"""The two processes' own sections: ``selector:`` (listening, database, tokens, TLS) and ``edge:`` (listening,
client keys, timeouts, limits, the link to the selector), and ``prices:`` entries."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from poolgate.addresses import check_listen
from poolgate.config.durations import Duration, Size, TimeZoneName, sha256_hex
from poolgate.config.routes import ClientKeys
from poolgate.config.section import Section

DEFAULT_SELECTOR_LISTEN = "127.0.0.1:50151"
DEFAULT_EDGE_LISTEN = "127.0.0.1:8080"
DEFAULT_DATABASE_FILE = "poolgate.db"
DEFAULT_OVERLAY_FILE = "poolgate.overlay.yaml"
CLIENT_NAME = re.compile(r"[A-Za-z0-9._@:+-]{1,100}")
"""What a client's name may be: it appears in logs, metrics labels, the usage log and pages."""


class SelectorAuth(Section):
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


class ServerTLS(Section):
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


class SelectorSection(Section):
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


class ModelPrice(Section):
    """USD per million tokens."""

    input: float = Field(ge=0)
    output: float = Field(ge=0)


class EdgeTimeouts(Section):
    """How long the edge waits on an upstream (and on the selector) before an attempt counts as timed out.

    ``first_token`` and ``stream_idle`` default to 60 s, or to ``first_byte`` when the config sets that and not
    them (``first_byte`` used to bound streams as well, and such configs keep their meaning).
    """

    connect: Duration = 10.0
    first_byte: Duration = 120.0
    """Non-stream requests: until the response headers, and the longest pause while the body is read."""
    first_token: Duration = Field(default=60.0, gt=0)
    """Stream requests: from sending the request until its first whole event (headers included)."""
    stream_idle: Duration = Field(default=60.0, gt=0)
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


class UpstreamLimits(Section):
    """The most the edge holds of one upstream answer; an answer beyond them ends as a failed attempt."""

    sse_event: Size = 8 * 1024 * 1024
    """One SSE event; a larger one ends the stream with an error event (before the first event: a 502)."""
    response_body: Size = 32 * 1024 * 1024
    """A non-stream answer; a larger one is a 502 in the client's API shape (a server error of the account)."""
    error_body: Size = 64 * 1024
    """What is read of an error answer (4xx/5xx); the rest is not read."""


class ClientTLS(Section):
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


class ClientTimeouts(Section):
    """How long the edge waits for its clients (a client that stalls loses its connection, or gets a 408)."""

    header: Duration = Field(default=30.0, gt=0)
    """From a request's first byte until its headers are complete."""
    body: Duration = Field(default=60.0, gt=0)
    """From the headers until the request body is complete."""
    idle: Duration = Field(default=75.0, gt=0)
    """A keep-alive connection with no request (and a new connection before its first byte)."""


class ClientBudget(Section):
    """USD a client may spend (at the selector's ``prices:``) per calendar day and month; 0 means no budget."""

    daily: float = Field(default=0.0, ge=0)
    monthly: float = Field(default=0.0, ge=0)


class ClientConfig(Section):
    """One entry of ``edge.clients``: a client key (a virtual key) with its name, what it may use, and its limits."""

    name: str
    """Shown wherever the client is (logs, metrics, the usage log, pages) instead of its key."""
    key: str = Field(default="", repr=False)
    key_env: str = Field(default="", pattern=r"^([A-Za-z_][A-Za-z0-9_]*)?$")
    """The name of an environment variable of the edge's process that holds the key."""
    key_sha256: str = ""
    """The key's SHA-256 in hex: the config never holds the key itself."""
    models: list[str] = Field(default_factory=list)
    """Requested model names (globs) the client may ask for; empty: every model."""
    pools: list[str] = Field(default_factory=list)
    """Pools that may serve the client; empty: every pool."""
    rpm_limit: int = Field(default=0, ge=0)
    """Selections (attempts) per sliding minute, per selector replica; 0: no limit."""
    tpm_limit: int = Field(default=0, ge=0)
    """Input plus output tokens per sliding minute, per selector replica; 0: no limit."""
    budget: ClientBudget = Field(default_factory=ClientBudget)
    budget_timezone: TimeZoneName = "UTC"
    """Where the budget's days and months start at midnight (an IANA name, or UTC)."""

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not CLIENT_NAME.fullmatch(value):
            raise ValueError("must be 1 to 100 characters of letters, digits and . _ @ : + - (it names the client "
                             "in logs, metrics and the usage log)")
        return value

    @field_validator("key_sha256")
    @classmethod
    def _digest(cls, value: str) -> str:
        return sha256_hex(value, "must be the key's SHA-256 as 64 hex digits (printf %s KEY | sha256sum)")

    @model_validator(mode="after")
    def _one_key(self) -> ClientConfig:
        given = [name for name in ("key", "key_env", "key_sha256") if getattr(self, name)]
        if len(given) != 1:
            raise ValueError("give exactly one of key, key_env (an environment variable holding the key) or "
                             f"key_sha256 (the key's SHA-256), not {' and '.join(given) or 'none'}")
        if self.key and (not self.key.strip() or self.key != self.key.strip()):
            raise ValueError("key: is empty or has surrounding spaces: set the key as clients send it")
        return self

    def digest(self, environ: Mapping[str, str]) -> str | None:
        """The SHA-256 (hex) of the client's key; None when key_env names a variable that is not set."""
        if self.key_sha256:
            return self.key_sha256
        key = self.key or environ.get(self.key_env, "").strip()
        return key_digest(key) if key else None


def key_digest(key: str) -> str:
    """The hex SHA-256 of a client key, as ``key_sha256`` holds it."""
    return hashlib.sha256(key.encode()).hexdigest()


class EdgeSection(Section):
    listen: str = DEFAULT_EDGE_LISTEN
    selector: str = ""
    """Address of the selector, or several (comma-separated or a YAML list of IP:port) to spread over replicas;
    empty means the selector section's listen address."""
    selector_transport: Literal["stream", "unary"] = "stream"
    """``stream``: one long-lived Exchange stream carries every selection and report (fast); ``unary``: one
    SelectAccount and one ReportOutcome call per attempt."""
    selector_tls: ClientTLS = Field(default_factory=ClientTLS)
    api_keys: list[str] = Field(default_factory=list, repr=False)
    """Keys clients must present (Authorization: Bearer … or x-api-key: …), without limits; each is a client named
    by its redacted form (``…abcd``)."""
    clients: list[ClientConfig] = Field(default_factory=list)
    """Client keys as objects: a name, allowed models and pools, rate limits and budgets (docs/edge.md)."""
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

    def client_keys(self) -> ClientKeys:
        """What the file says of the client keys (for checking the ``client_key`` of routes)."""
        return ClientKeys([*self.api_keys, *(client.key for client in self.clients if client.key)],
                          [client.key_sha256 for client in self.clients if client.key_sha256],
                          any(client.key_env for client in self.clients))

    def client_key_problem(self, environ: Mapping[str, str] | None = None) -> str | None:
        """What keeps the edge from authenticating clients with these settings (checked at start, on a reload and by
        ``poolgate check``): no keys at all, a ``key_env`` that is not set, a key listed twice; None when nothing
        does. Never quotes a key."""
        if self.auth and not self.api_keys and not self.clients:
            return ("edge.auth is on but edge.api_keys is empty: add the keys clients must present "
                    "(edge: {api_keys: [\"...\"]}, or named clients with limits: edge: {clients: [{name: ..., "
                    "key_env: ...}]}), or set edge.auth: false to serve without client authentication")
        environ = os.environ if environ is None else environ
        problems: list[str] = []
        places = [(f"edge.api_keys[{i}]", key_digest(key)) for i, key in enumerate(self.api_keys)]
        for i, client in enumerate(self.clients):
            digest = client.digest(environ)
            if digest is None:
                problems.append(f"edge.clients[{i}] ({client.name}): key_env {client.key_env} is not set in the "
                                "edge's environment: export it, or give key_sha256")
            else:
                places.append((f"edge.clients[{i}] ({client.name})", digest))
        seen: dict[str, str] = {}
        for place, digest in places:
            if digest in seen:
                problems.append(f"{place}: the same key as {seen[digest]}: give each client its own key")
            seen.setdefault(digest, place)
        return "; ".join(problems) or None

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

    @field_validator("clients")
    @classmethod
    def _unique_names(cls, clients: list[ClientConfig]) -> list[ClientConfig]:
        names: set[str] = set()
        for i, client in enumerate(clients):
            if client.name in names:
                raise ValueError(f"entry {i}: name {client.name!r} is taken by an earlier client: names are unique")
            names.add(client.name)
        return clients

    @field_validator("api_keys")
    @classmethod
    def _no_empty_keys(cls, keys: list[str]) -> list[str]:
        for i, key in enumerate(keys):
            if not key.strip():
                raise ValueError(f"entry {i} is empty: set the key or remove the entry")
        return keys

