"""Client authentication with the edge's own keys (never the upstream accounts' keys)."""

from __future__ import annotations

import hmac
from collections.abc import Mapping

from poolgate.config import EdgeSection
from proxy_edge.client_input import valid_text


class EdgeConfigError(Exception):
    """The edge cannot start with this config; the message says what to change."""


class Authenticator:
    """Checks ``Authorization: Bearer <key>`` or ``x-api-key: <key>`` against the configured keys.

    Every configured key is compared, in constant time, whatever the outcome, so timing tells nothing about which
    key (or how much of one) matched.
    """

    def __init__(self, enabled: bool, keys: list[str]) -> None:
        problem = EdgeSection(auth=enabled, api_keys=keys).client_key_problem()
        if problem:
            raise EdgeConfigError(problem)
        self.enabled = enabled
        self._keys = [key.encode() for key in keys]

    def take(self, other: Authenticator) -> None:
        """Switch to ``other``'s keys (a reload); requests already checked are not checked again."""
        self.enabled, self._keys = other.enabled, other._keys

    def check(self, headers: Mapping[str, str]) -> bool:
        """Whether the request's headers carry one of the edge's keys (always True with auth off)."""
        if not self.enabled:
            return True
        presented = presented_key(headers)
        if presented is None:
            return False
        candidate = presented.encode()
        matched = False
        for key in self._keys:
            matched |= hmac.compare_digest(candidate, key)
        return matched


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
