"""Cooldowns per model: providers limit an account per model (or model class), so a 429 for one model rests the
account for that model, or for its group, and leaves the others serving.

A scope is the model a lease was for, or the ``model_groups:`` glob it matches; the empty scope is the account
itself (``cooldown_scope: account``, or a request naming no model). After a scope's rest, its next lease is a probe,
as an account's is after an account-wide cooldown: one call, not a burst, until the upstream answers.
"""

from __future__ import annotations

import fnmatch
import random
import re
from dataclasses import dataclass

from poolgate.config import CooldownSettings
from poolgate.config.schema import PoolConfig
from selector_service.domain.backoff import rate_limit_cooldown
from selector_service.domain.state import ScopeRestRow, StateChange, extends

MAX_SCOPES = 256
"""Scopes kept per account beyond those resting (a cache of model names, bounded)."""
SHORT_REST = 1.0
"""Seconds: a rest from rate-limit headers at zero that ends sooner lives in memory only. It would be over before a
restarted selector, or another replica polling the database, could act on it, and a provider near its limit can say
"at zero, resets in 6 ms" on many answers a second: a database write each would be work for nothing."""


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
    saved: bool = True
    """Whether the rest is in the database (a short rest from headers at zero is not: :data:`SHORT_REST`)."""

    def blocked_until(self, now: float, probe_timeout: float) -> float:
        """0.0 when a lease for the scope may be granted now; else until when it may not."""
        if self.until > now:
            return self.until
        if self.probe_since and now - self.probe_since < probe_timeout:
            return self.probe_since + probe_timeout
        return 0.0


class ModelRests:
    """An account's rests per model scope, and each scope's probe after its rest."""

    __slots__ = ("rests",)

    def __init__(self) -> None:
        self.rests: dict[str, ScopeRest] = {}

    def blocked_until(self, scope: str, now: float, probe_timeout: float) -> float:
        """0.0 when ``scope``'s rest lets a lease for it go now; else until when it does not."""
        rest = self.rests.get(scope) if scope else None
        return rest.blocked_until(now, probe_timeout) if rest is not None else 0.0

    def probe_out(self, scope: str, now: float) -> bool:
        """Whether ``scope``'s rest is over and its probe is out (it frees up as soon as the probe answers)."""
        rest = self.rests.get(scope) if scope else None
        return rest is not None and rest.until <= now and bool(rest.probe_since)

    def probe(self, scope: str, now: float) -> tuple[int, bool]:
        """A lease for ``scope`` is being granted: the scope's epoch (0 when it is not resting), and whether the
        lease is the scope's one probe (its rest is over and no probe is out)."""
        rest = self.rests.get(scope) if scope else None
        if rest is None:
            return 0, False
        if rest.until <= now and not rest.probe_since:
            rest.probe_since = now
            return rest.epoch, True
        return rest.epoch, False

    def returned(self, scope: str, epoch: int) -> None:
        """A lease for ``scope`` ended: if it was the scope's probe, another may go."""
        rest = self.rests.get(scope) if scope else None
        if rest is not None and rest.epoch == epoch:
            rest.probe_since = 0.0

    def rate_limited(
        self, scope: str, epoch: int, retry_after: float | None, status: int, now: float, cooldown: CooldownSettings,
        rng: random.Random, change: StateChange,
    ) -> None:
        """A 429 for ``scope``: rest the account for that model only. A 429 for a lease granted before the scope's
        last one (an older epoch) is the same news: it may lengthen the rest, never step the backoff again."""
        rest = self.rests.get(scope)
        fresh = rest is None or epoch >= rest.epoch
        if not fresh and retry_after is None:
            return
        streak = (rest.streak + 1 if rest is not None else 1) if fresh else rest.streak if rest is not None else 1
        seconds = rate_limit_cooldown(cooldown, retry_after, streak, rng)
        until = now + seconds
        reason = f"rate limited ({status}) for {scope}, cooling {seconds:.0f} s"
        if rest is None:
            rest = self.rests[scope] = ScopeRest(until, reason, streak)
        else:
            rest.saved = True
            if extends(rest.until, until):
                rest.until, rest.reason = until, reason
            rest.streak = streak
            if fresh:
                rest.epoch += 1
                rest.probe_since = 0.0
        change.rest_scope(scope, (rest.until, rest.reason, rest.streak))

    def succeeded(self, scope: str, epoch: int, change: StateChange) -> None:
        """A success for ``scope`` granted after its last 429 proves the model is served again: the rest ends."""
        rest = self.rests.get(scope) if scope else None
        if rest is not None and epoch >= rest.epoch:
            del self.rests[scope]
            if rest.saved:
                change.rest_scope(scope, None)

    def at_zero(self, scope: str, until: float, now: float, change: StateChange) -> None:
        """The model's rate-limit headers are at zero (or under the reserve) until ``until``: it rests until then,
        and its next lease after that is a probe. Saved unless it is short (:data:`SHORT_REST`) and nothing about
        the scope is saved already."""
        rest = self.rests.get(scope)
        if rest is not None and not extends(rest.until, until):
            return
        reason = f"quota at zero (rate-limit headers) for {scope} until reset"
        if rest is None:
            rest = self.rests[scope] = ScopeRest(until, reason, streak=0, saved=False)
        else:
            rest.until, rest.reason, rest.probe_since = until, reason, 0.0
            rest.epoch += 1
        if rest.saved or until - now >= SHORT_REST:
            rest.saved = True
            change.rest_scope(scope, (rest.until, rest.reason, rest.streak))

    def restore(self, saved: dict[str, ScopeRestRow]) -> None:
        """Take the saved rests: a scope saved longer than known here is news (a new epoch); a scope no longer saved
        was cleared by a success."""
        rests = {}
        for scope, (until, reason, streak) in saved.items():
            rest = self.rests.get(scope)
            if rest is None:
                rest = ScopeRest(until, reason, streak)
            elif extends(rest.until, until):
                rest.until, rest.reason, rest.streak = until, reason, max(streak, rest.streak)
                rest.epoch += 1
            rest.saved = True
            rests[scope] = rest
        for scope, rest in self.rests.items():
            if not rest.saved:  # in memory only (short): not in the database, still this replica's to keep
                rests.setdefault(scope, rest)
        self.rests = rests

    def ends(self) -> dict[str, float]:
        """Each resting scope's end (to tell whether news changed anything)."""
        return {scope: rest.until for scope, rest in self.rests.items()}

    def clear(self, change: StateChange) -> None:
        """Forget every rest (an operator's reset), and save that."""
        for scope, rest in self.rests.items():
            if rest.saved:
                change.rest_scope(scope, None)
        self.rests = {}
