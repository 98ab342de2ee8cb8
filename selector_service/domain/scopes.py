"""Cooldowns per model: providers limit an account per model (or model class), so a 429 for one model rests the
account for that model, or for its group, and leaves the others serving.

A scope is the model a lease was for, or the ``model_groups:`` glob it matches; the empty scope is the account
itself (``cooldown_scope: account``, or a request naming no model). After a scope's rest, its next lease is a probe,
as an account's is after an account-wide cooldown: one call, not a burst, until the upstream answers.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass

from poolgate.config.schema import PoolConfig

MAX_SCOPES = 256
"""Scopes kept per account beyond those resting (a cache of model names, bounded)."""


class Scoper:
    """A pool's rule for the scope of a model (cached: one glob walk per model name)."""

    def __init__(self, config: PoolConfig) -> None:
        self.account_wide = config.cooldown_scope == "account"
        self._groups = [(re.compile(fnmatch.translate(glob)), glob) for glob in config.model_groups]
        self._cache: dict[str, str] = {}

    def scope_of(self, model: str) -> str:
        """The scope of a request for ``model``: "" (the account) when cooldowns are account-wide."""
        if self.account_wide or not model:
            return ""
        scope = self._cache.get(model)
        if scope is None:
            scope = next((glob for regex, glob in self._groups if regex.match(model)), model)
            if len(self._cache) >= 4096:
                self._cache.clear()
            self._cache[model] = scope
        return scope


@dataclass(slots=True)
class ScopeRest:
    """One account's rest for one scope."""

    until: float
    reason: str
    streak: int = 1
    """429s in a row for this scope (the backoff's exponent)."""
    epoch: int = 1
    """Bumped by each fresh 429: a lease granted before the latest one proves nothing and steps nothing."""
    probe_since: float = 0.0
    """When the scope's probe lease was granted (0.0: none out); after the rest, one probe at a time."""
    woken: float = 0.0
    """The rest's end for which the pool has scheduled a re-check (queued calls wake then)."""

    def blocked_until(self, now: float, probe_timeout: float) -> float:
        """0.0 when a lease for the scope may be granted now; else until when it may not."""
        if self.until > now:
            return self.until
        if self.probe_since and now - self.probe_since < probe_timeout:
            return self.probe_since + probe_timeout
        return 0.0
