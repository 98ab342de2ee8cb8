"""Client authentication with the edge's own keys (never the upstream accounts' keys): each key belongs to a
:class:`Client`, named in logs, metrics and the usage log instead of the key.

``edge.clients`` entries are clients with a name, the models and pools they may use, and limits the selector
enforces; each plain ``edge.api_keys`` entry is a client named by the key's redacted form (``…abcd``), without
limits.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase

from poolgate.config import EdgeSection
from poolgate.config.sections import ClientConfig
from poolgate.secrets import redact
from proxy_edge.client_input import valid_text
from proxy_edge.leases import ClientLimits

__all__ = ["Authenticator", "Client", "EdgeConfigError", "presented_key"]


class EdgeConfigError(Exception):
    """The edge cannot start with this config; the message says what to change."""


@dataclass(frozen=True, slots=True)
class Client:
    """Who a request comes from, and what it may use."""

    limits: ClientLimits
    """Its name and the limits the selector enforces (sent with each selection)."""
    models: tuple[str, ...] = ()
    """Requested model names (globs) it may ask for; empty: all."""
    pools: tuple[str, ...] = ()
    """Pools that may serve it; empty: all."""

    @property
    def name(self) -> str:
        return self.limits.name

    def may_ask_for(self, model: str) -> bool:
        return not self.models or any(fnmatchcase(model, pattern) for pattern in self.models)

    def may_use(self, pool: str) -> bool:
        return not self.pools or pool in self.pools


def _client(config: ClientConfig) -> Client:
    budget = config.budget
    limits = ClientLimits(config.name, config.rpm_limit, config.tpm_limit, budget.daily, budget.monthly,
                          config.budget_timezone)
    return Client(limits, tuple(config.models), tuple(config.pools))


class Authenticator:
    """The edge's client directory: finds the client whose key a request carries (``Authorization: Bearer <key>``
    or ``x-api-key: <key>``).

    Every configured key is compared in constant time (plain keys as they are, ``key_sha256`` entries by the
    presented key's digest), whatever the outcome, so timing tells nothing about which key (or how much of one)
    matched.
    """

    def __init__(self, section: EdgeSection, environ: Mapping[str, str] | None = None) -> None:
        environ = os.environ if environ is None else environ
        problem = section.client_key_problem(environ)
        if problem:
            raise EdgeConfigError(problem)
        self.enabled = section.auth
        self._keys: list[tuple[bytes, Client]] = [
            (key.encode(), Client(ClientLimits(redact(key)))) for key in section.api_keys]
        self._digests: list[tuple[bytes, Client]] = []
        for config in section.clients:
            if config.key_sha256:
                self._digests.append((bytes.fromhex(config.key_sha256), _client(config)))
            else:
                key = config.key or environ[config.key_env].strip()
                self._keys.append((key.encode(), _client(config)))
        self.names = frozenset(config.name for config in section.clients)
        """The ``edge.clients`` names (the metrics' bounded ``client`` label values)."""
        self.count = len(self._keys) + len(self._digests)

    def take(self, other: Authenticator) -> None:
        """Switch to ``other``'s clients (a reload); requests already checked are not checked again."""
        self.enabled, self._keys, self._digests = other.enabled, other._keys, other._digests
        self.names, self.count = other.names, other.count

    def identify(self, headers: Mapping[str, str]) -> Client | None:
        """The client whose key the request's headers carry; None when there is none (unauthenticated). With auth
        off every request is :data:`ANONYMOUS`."""
        if not self.enabled:
            return ANONYMOUS
        presented = presented_key(headers)
        if presented is None:
            return None
        candidate = presented.encode()
        found: Client | None = None
        for key, client in self._keys:
            if hmac.compare_digest(candidate, key):
                found = client
        if self._digests:
            digest = hashlib.sha256(candidate).digest()
            for stored, client in self._digests:
                if hmac.compare_digest(digest, stored):
                    found = client
        return found

    def check(self, headers: Mapping[str, str]) -> bool:
        """Whether the request's headers carry one of the edge's keys (always True with auth off)."""
        return self.identify(headers) is not None


ANONYMOUS = Client(ClientLimits(""))
"""Every request's client while ``edge.auth`` is off: no name, no limits."""


def presented_key(headers: Mapping[str, str]) -> str | None:
    """The key a client sent: the Bearer token of ``Authorization``, else ``x-api-key``; None when there is none,
    or when it is not text (bytes that are not UTF-8 are no key: the request is unauthenticated)."""
    authorization = headers.get("Authorization")
    if authorization:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return _text_or_none(token.strip())
    key = headers.get("x-api-key")
    return _text_or_none(key.strip()) if key else None


def _text_or_none(key: str) -> str | None:
    return key if valid_text(key) else None
