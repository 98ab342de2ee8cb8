"""One account of a pool: who it is, its settings, and its parts, each in its own module.

- :class:`~.credential.CredentialState` the credential it is leased with and its renewal,
- :class:`~.load.Load` leases in flight and what it has served,
- :class:`~.state.Health` its persisted health (cooldown, streaks, circuit, disable, totals),
- :class:`~.quota.Quota` limits learned from headers and configured caps,
- :class:`~.scopes.ModelRests` its rests per model,
- :class:`~.admission.Admission` how many leases it may take while its health is unknown.

An account is available when it is enabled, not cooling, its circuit is closed, it is under its concurrency limit,
no known rate limit is at zero, and, while its health is unknown, it has no probe out (:mod:`.admission`).
:meth:`Account.blocked_until` answers that question and says until when; :mod:`.outcome_rules` turns an attempt's
outcome into a new state and the change to persist. Strategies never see an :class:`Account`, only its read-only
:attr:`Account.view`.
"""

from __future__ import annotations

import math

from poolgate.config import AccountConfig, PoolConfig
from selector_service.domain import outcome_rules
from selector_service.domain.admission import Admission, Probing
from selector_service.domain.credential import Credential, CredentialState
from selector_service.domain.load import Load
from selector_service.domain.outcomes import AccountState
from selector_service.domain.quota import Quota
from selector_service.domain.scopes import ModelRests
from selector_service.domain.state import Health, PersistedState, StateChange
from selector_service.domain.view import AccountReadView

NEVER = math.inf  # "blocked until something else happens" (a lease returns, an operator re-enables)


class Account:
    """An account of a pool, as the selector keeps it (strategies get :attr:`view`)."""

    __slots__ = ("__weakref__", "account_id", "admission", "auth", "config", "health", "index", "load",
                 "max_concurrency", "name", "pool", "priority", "quota", "rests", "view", "weight")

    def __init__(self, pool: PoolConfig, pool_name: str, config: AccountConfig, index: int) -> None:
        self.pool = pool_name
        self.account_id = f"{pool_name}/{config.name}"
        self.name = config.name
        self.load = Load()
        self.admission = Admission(pool.probe_leases, pool.slow_start, pool.probe_timeout)  # new: health unknown
        self.health = Health()
        self.auth = CredentialState(pool, config)
        self.quota = Quota(pool, config)
        self.rests = ModelRests()
        self._take_settings(pool, config, index)
        self.view = AccountReadView(self)

    def configure(self, pool: PoolConfig, config: AccountConfig, index: int) -> None:
        """Take the settings from a reloaded config (live state and health are kept)."""
        self._take_settings(pool, config, index)
        self.auth.configure(pool, config)
        self.quota.configure(pool, config)

    def _take_settings(self, pool: PoolConfig, config: AccountConfig, index: int) -> None:
        self.config = config
        self.index = index
        self.weight = config.weight
        self.priority = config.priority
        self.max_concurrency = config.max_concurrency
        self.admission.configure(pool.probe_leases, pool.slow_start, pool.probe_timeout)

    def set_credential(self, key: str, expires_at: float, now: float) -> None:
        """Take a renewed credential (a refreshed OAuth token) without becoming a new account: health, load and
        leases stay. The pool must re-check availability afterwards (``SelectorCore.account_changed``)."""
        if self.auth.renew(key, expires_at, now):
            self.admission.distrust(Probing.NEW_CREDENTIAL)  # the rejected one is replaced: prove the new one

    # What the rest of the selector and operators read; the parts hold the state.

    @property
    def credential(self) -> Credential:
        return self.auth.credential

    @property
    def credential_redacted(self) -> str:
        return self.auth.redacted

    @property
    def expires_at(self) -> float:
        return self.auth.expires_at

    @property
    def disabled(self) -> bool:
        return self.health.disabled

    @property
    def disabled_reason(self) -> str:
        return self.health.disabled_reason

    @property
    def cooldown_until(self) -> float:
        return self.health.cooldown_until

    @property
    def auth_failures_total(self) -> int:
        return self.health.auth_failures_total

    @property
    def rate_limited_total(self) -> int:
        return self.health.rate_limited_total

    @property
    def in_flight(self) -> int:
        return self.load.in_flight

    @property
    def requests_total(self) -> int:
        return self.load.requests_total

    @property
    def successes_total(self) -> int:
        return self.load.successes_total

    @property
    def error_rate(self) -> float:
        return self.load.error_rate

    # -- persisted health ------------------------------------------------------------------------------------------

    def restore(self, saved: PersistedState) -> None:
        """Take over health from the database; a changed credential starts clean (a new key is a new account)."""
        if saved.credential_fingerprint and saved.credential_fingerprint != self.auth.fingerprint:
            return
        self.health.take(saved)
        self.rests.restore(saved.scope_rests)
        if self.admission.probing is Probing.NEW and (saved.cooldown_until or saved.circuit_opens):
            self.admission.probing = Probing.RESTORED

    def take_external(self, saved: PersistedState, now: float) -> bool:
        """Take over health another replica wrote to the shared database; returns whether it changed anything.

        The row holds every replica's changes merged, so counters and streaks are set, never added: nothing counts
        twice. Bad news from elsewhere counts as news here too: a lease granted before it proves nothing.
        """
        if saved.credential_fingerprint and saved.credential_fingerprint != self.auth.fingerprint:
            return False  # another key under this name (a replica with another config): not this account's health
        health = self.health
        worse = (saved.cooldown_until > health.cooldown_until or saved.circuit_opens > health.circuit_opens
                 or saved.circuit_open_until > health.circuit_open_until or (saved.disabled and not health.disabled))
        before = health.copy(), self.rests.ends()
        self.restore(saved)
        if worse:
            self.admission.distrust(Probing.HALF_OPEN if health.circuit_opens and not health.disabled
                                    else Probing.OPERATOR if health.disabled else Probing.AFTER_COOLDOWN)
        return before != (health, self.rests.ends())

    # -- availability ----------------------------------------------------------------------------------------------

    def _resting_until(self, now: float) -> float:
        """0.0 when the account's health lets it serve; else until when it rests (``NEVER``: until an event)."""
        health = self.health
        if health.disabled or self.auth.awaiting_refresh:
            return NEVER
        if self.auth.expiring(now):
            return NEVER  # until a refresh brings a new token
        until = 0.0
        if health.cooldown_until > now:
            until = health.cooldown_until
        if health.circuit_opens and health.circuit_open_until > now:
            until = max(until, health.circuit_open_until)
        return until

    def blocked_until(self, now: float) -> float:
        """0.0 when the account can take a lease now; else when it may (``NEVER``: on an event, not a time)."""
        until = self._resting_until(now)
        if until == NEVER:
            return NEVER
        in_flight = self.load.in_flight
        if until == 0.0:
            until = self.admission.blocked_until(in_flight, now)  # a probe's answer (or a lease back) frees it
            if until == NEVER:
                return NEVER
        if self.max_concurrency and in_flight >= self.max_concurrency:
            return NEVER
        return max(until, self.quota.blocked_until(now))

    def awaiting_probe(self, now: float) -> bool:
        """Whether the account's only block is its probes out: it frees up as soon as one answers."""
        admission = self.admission
        return (admission.probing is not None and admission.probes_in_flight >= admission.probe_leases
                and self._resting_until(now) == 0.0)

    def scope_blocked_until(self, scope: str, now: float) -> float:
        """0.0 when a lease for ``scope`` may be granted now (as far as that scope's rest goes); else until when."""
        if not scope:
            return 0.0
        until = self.rests.blocked_until(scope, now, self.admission.probe_timeout)
        return max(until, self.quota.scope_full_until(scope, now))

    def awaiting_scope_probe(self, scope: str, now: float) -> bool:
        """Whether ``scope``'s only block is its probe out (as :meth:`awaiting_probe` for the account): it frees up as
        soon as the probe answers."""
        return self.rests.probe_out(scope, now) and not self.quota.scope_full_until(scope, now)

    def state(self, now: float) -> tuple[AccountState, str]:
        """The state shown to operators, with the reason when not healthy."""
        health, auth = self.health, self.auth
        if health.disabled:
            return AccountState.DISABLED, health.disabled_reason
        if auth.awaiting_refresh:
            doing = "being refreshed" if auth.refreshing else "refresh to be retried"
            return AccountState.COOLING, f"credentials rejected, {doing}"
        if auth.expiring(now):
            left = auth.expires_at - now
            when = f"expires in {left:.0f} s" if left > 0 else "has expired"
            doing = "being refreshed" if auth.refreshing else "not refreshed"
            return AccountState.COOLING, f"credential {when}, {doing}"
        if health.circuit_opens and health.circuit_open_until > now:
            return AccountState.CIRCUIT_OPEN, f"{health.failure_streak} failures in a row"
        if health.cooldown_until > now:
            return AccountState.COOLING, health.cooldown_reason
        quota_reason = self.quota.why_blocked(now)
        if quota_reason:
            return AccountState.COOLING, quota_reason
        admission = self.admission
        if admission.probing is not None:
            leases = admission.probe_leases
            return AccountState.PROBING, (f"{admission.probing.value}: {leases} probe lease{'s' * (leases > 1)} "
                                          "until the upstream answers")
        if admission.cap:
            return AccountState.HEALTHY, f"slow start: at most {admission.cap} in flight"
        return AccountState.HEALTHY, ""

    def cooldown_remaining(self, now: float) -> float:
        health, limits = self.health, self.quota.limits
        ends = [health.cooldown_until, health.circuit_open_until if health.circuit_opens else 0.0]
        if limits is not None:
            ends.append(limits.exhausted_until(now))
        return max(0.0, max(ends) - now)

    # -- leases ----------------------------------------------------------------------------------------------------

    def acquire(self, now: float, light: bool = False, scope: str = "") -> int:
        """Count a new lease; returns its probe id when it is a probe (granted while the account's health is
        unknown), else 0. A light lease (token counting) counts in neither the concurrency nor the request rate:
        providers meter those calls apart; it is still a probe when the account's health is unknown."""
        load = self.load
        load.requests_total += 1
        if not light:
            load.in_flight += 1
            if self.quota.counts_requests:
                self.quota.count_request(now, scope)
        return self.admission.admit(now)

    def release(self, probe_id: int, light: bool = False) -> None:
        if not light:
            self.load.in_flight = max(0, self.load.in_flight - 1)
        self.admission.returned(probe_id)

    # -- outcomes --------------------------------------------------------------------------------------------------

    # The health rules are functions of the account (outcome_rules), bound here as its methods: no call in between.
    answered = outcome_rules.answered
    apply = outcome_rules.apply

    # -- operator actions ------------------------------------------------------------------------------------------

    def disable(self, reason: str) -> StateChange:
        self.health.disabled, self.health.disabled_reason = True, reason
        self.admission.distrust(Probing.OPERATOR)
        return StateChange(self.account_id).set("disabled", True).set("disabled_reason", reason)

    def reset(self) -> StateChange:
        """Forget cooldowns, streaks and an open circuit (the quota came back early); a disable stays."""
        health = self.health
        health.cooldown_until, health.cooldown_reason = 0.0, ""
        health.rate_limit_streak = health.failure_streak = health.circuit_opens = 0
        health.circuit_open_until = 0.0
        self.quota.clear()
        change = StateChange(self.account_id).restart("rate_limit_streak").restart("failure_streak")
        change.set("cooldown_until", 0.0).set("cooldown_reason", "").set("circuit_open_until", 0.0)
        change.set("circuit_opens", 0)
        self.rests.clear(change)
        self.admission.distrust(Probing.OPERATOR)  # the operator's word is not the upstream's: probe first
        return change

    def enable(self) -> StateChange:
        """Re-enable and forget every failure (an operator's word)."""
        change = self.reset()
        self.health.disabled, self.health.disabled_reason = False, ""
        self.auth.awaiting_refresh = self.auth.rejection_refreshed = False
        return change.set("disabled", False).set("disabled_reason", "")
