"""The health rules: what an attempt's outcome does to its account, and what of that must be persisted.

A lease remembers the admission epoch it was granted in: a lease granted before the account's health last changed
counts in the totals, but neither steps a backoff or a circuit again nor vouches for the account.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from poolgate.config import PoolConfig
from poolgate.rate_limit_times import parse_header_duration, parse_retry_after
from poolgate.secrets import scrub_text
from selector_service.domain.admission import Probing
from selector_service.domain.backoff import circuit_cooldown, rate_limit_cooldown
from selector_service.domain.classify import ErrorClass, Rule, classify
from selector_service.domain.outcomes import Outcome, OutcomeReport
from selector_service.domain.ratelimits import MODEL_KINDS
from selector_service.domain.state import StateChange

if TYPE_CHECKING:
    from selector_service.domain.account import Account

MAX_QUOTA_REST = 31 * 86400.0
"""The longest an account out of quota rests on the upstream's word (a monthly plan's reset)."""


def answered(account: Account, report: OutcomeReport, epoch: int, now: float, scope: str = "", scope_epoch: int = 0,
             model: str = "") -> StateChange:
    """The upstream's early answer to a lease (a 2xx status and its rate-limit headers, before the body): a fresh one
    proves the account (and the lease's model scope) as a success does, without counting a finished request."""
    change = StateChange(account.account_id)
    account.quota.learn(report, now, scope, model)
    if report.outcome is Outcome.SUCCESS:
        _proven(account, epoch, change)
        account.rests.succeeded(scope, scope_epoch, change)
    _scope_at_zero(account, scope, now, change)
    return change


def apply(
    account: Account, report: OutcomeReport, epoch: int, granted_at: float, now: float, pool: PoolConfig,
    rng: random.Random, renew: Callable[[], bool] | None = None, rules: Sequence[Rule] = (), scope: str = "",
    scope_epoch: int = 0, model: str = "",
) -> StateChange:
    """Apply an attempt's outcome to ``account``; return what must be persisted (maybe nothing).

    ``epoch`` is the admission epoch the lease was granted in. ``renew`` is asked when the upstream rejected the
    credential: it starts a refresh and returns True when the credential can be renewed, and the account then waits
    for the new one instead of being disabled. ``rules`` are the pool's ``classify:`` rules (:mod:`.classify`);
    ``scope`` is the model scope the lease was for (``scope_epoch`` its rest's epoch then): a 429 rests only that
    scope (:mod:`.scopes`)."""
    change = StateChange(account.account_id)
    outcome = report.outcome
    load = account.load
    quota = account.quota
    quota.learn(report, now, scope, model)
    load.count_tokens(report.input_tokens, report.output_tokens)
    if quota.counts_tokens:
        quota.count_tokens(report, now, scope)
    error_class, rest = classify(report, rules)
    if outcome is Outcome.CANCELLED or error_class is ErrorClass.REQUEST_ERROR:
        _scope_at_zero(account, scope, now, change)
        return change  # not the account's fault: health unchanged
    load.count_outcome(outcome is not Outcome.SUCCESS, report.latency_ms)
    fresh = account.admission.fresh(epoch)
    if outcome is Outcome.SUCCESS:
        _succeeded(account, fresh, epoch, granted_at, change)
        account.rests.succeeded(scope, scope_epoch, change)
    elif error_class is ErrorClass.RATE_LIMITED and scope:
        account.health.rate_limited_total += 1
        change.add("rate_limited_total")
        retry_after = rest if rest is not None else _retry_after(report, now)
        account.rests.rate_limited(scope, scope_epoch, retry_after, report.http_status or 429, now, pool.cooldown,
                                   rng, change)
    elif error_class is ErrorClass.RATE_LIMITED:
        _rate_limited(account, report, fresh, now, pool, rng, change, rest)
    elif error_class is ErrorClass.QUOTA_EXHAUSTED:
        _out_of_quota(account, report, fresh, now, pool, change, rest)
    elif error_class is ErrorClass.AUTH:
        _auth_failed(account, report, fresh, granted_at, change, renew)
    else:  # server errors, network errors, timeouts, an overloaded provider: the circuit breaker's
        _failed(account, fresh, now, pool, change)
    _scope_at_zero(account, scope, now, change)
    return change


def _scope_at_zero(account: Account, scope: str, now: float, change: StateChange) -> None:
    """Rate-limit headers of a model's answer at zero (or under the reserve): that model rests until their reset.
    A plan's windows stay the account's (see :meth:`.Quota.blocked_until`)."""
    quota = account.quota
    if not scope or quota.limits is None or quota.limits_scope != scope:
        return
    until = quota.limits.exhausted_until(now, quota.reserve, MODEL_KINDS)
    if until > now:
        account.rests.at_zero(scope, until, now, change)


def _succeeded(account: Account, fresh: bool, epoch: int, granted_at: float, change: StateChange) -> None:
    if granted_at >= account.auth.credential_since:
        account.auth.rejection_refreshed = False  # the current credential works: a later rejection may refresh again
    health = account.health
    # Only a lease granted after the last bad news proves the account is fine again; an older in-flight success
    # says nothing about a 429 that came later.
    if health.failure_streak and (fresh or not health.circuit_opens):
        health.failure_streak = 0
        change.restart("failure_streak")
    if fresh:
        _proven(account, epoch, change)


def _proven(account: Account, epoch: int, change: StateChange) -> None:
    """A lease of ``epoch`` succeeded: if it is fresh, the account is known to be fine."""
    if not account.admission.fresh(epoch):
        return
    account.admission.proven(epoch)
    health = account.health
    if health.rate_limit_streak:
        health.rate_limit_streak = 0
        change.restart("rate_limit_streak")
    if health.cooldown_until:
        health.cooldown_until, health.cooldown_reason = 0.0, ""
        change.set("cooldown_until", 0.0).set("cooldown_reason", "")
    if health.circuit_opens:
        health.circuit_opens, health.circuit_open_until = 0, 0.0
        change.set("circuit_opens", 0).set("circuit_open_until", 0.0)


def _rate_limited(
    account: Account, report: OutcomeReport, fresh: bool, now: float, pool: PoolConfig, rng: random.Random,
    change: StateChange, rest: float | None = None,
) -> None:
    health = account.health
    health.rate_limited_total += 1
    change.add("rate_limited_total")
    retry_after = rest if rest is not None else _retry_after(report, now)
    if not fresh and retry_after is None:
        return  # the same piece of news as the 429 that already rested the account: one step, not another
    if fresh:
        health.rate_limit_streak += 1
        change.add("rate_limit_streak")
    # A stale 429 with its own Retry-After may still lengthen the rest (never shorten it), at the same step.
    seconds = rate_limit_cooldown(pool.cooldown, retry_after, max(1, health.rate_limit_streak), rng)
    health.extend_cooldown(now + seconds, f"rate limited ({report.http_status or 429}), cooling {seconds:.0f} s",
                           change)
    if fresh:
        account.admission.distrust(Probing.AFTER_COOLDOWN)


def _out_of_quota(
    account: Account, report: OutcomeReport, fresh: bool, now: float, pool: PoolConfig, change: StateChange,
    rest: float | None,
) -> None:
    """Out of credit or of a plan's window: no backoff from one second, which would call an empty account again
    and again, but one rest until the quota's reset (when the upstream says it), else the rule's or the pool's
    ``quota_rest``; then one probe."""
    health = account.health
    health.rate_limited_total += 1
    change.add("rate_limited_total")
    said = _retry_after(report, now)
    seconds = rest if rest is not None else said if said is not None else pool.quota_rest
    seconds = min(max(0.0, seconds), MAX_QUOTA_REST)
    kind = report.error_code or report.error_type or str(report.http_status or "")
    health.extend_cooldown(now + seconds, f"out of quota ({kind}), resting {seconds:.0f} s", change)
    if fresh:
        account.admission.distrust(Probing.AFTER_COOLDOWN)


def _auth_failed(
    account: Account, report: OutcomeReport, fresh: bool, granted_at: float, change: StateChange,
    renew: Callable[[], bool] | None,
) -> None:
    health, auth = account.health, account.auth
    health.auth_failures_total += 1
    change.add("auth_failures_total")
    if auth.awaiting_refresh or granted_at < auth.credential_since:
        return  # a refresh is under way, or the rejected credential has been replaced since the lease was granted
    if not health.disabled and renew is not None and not auth.rejection_refreshed and renew():
        # An OAuth token revoked or expired early: one refresh before giving up on the account.
        auth.awaiting_refresh = auth.rejection_refreshed = True
        account.admission.distrust(Probing.NEW_CREDENTIAL)
        return
    if not health.disabled:
        # Scrubbed here too: a client in another language may pass on an upstream message that echoes the key.
        detail = scrub_text(report.detail.strip(), auth.credential.value)[:200]
        status = report.http_status or 401
        health.disabled = True
        health.disabled_reason = f"credentials rejected ({status})" + (f": {detail}" if detail else "")
        change.set("disabled", True).set("disabled_reason", health.disabled_reason)
        account.admission.distrust(Probing.OPERATOR)


def _failed(account: Account, fresh: bool, now: float, pool: PoolConfig, change: StateChange) -> None:
    health = account.health
    health.failures_total += 1
    change.add("failures_total")
    if not fresh:
        return  # granted before the circuit last opened (or other news): counted, but not another step
    health.failure_streak += 1
    change.add("failure_streak")
    settings = pool.circuit
    if health.circuit_opens and health.circuit_open_until <= now:
        health.circuit_opens += 1  # the half-open probe failed: reopen, for longer
    elif not health.circuit_opens and health.failure_streak >= settings.failures:
        health.circuit_opens = 1
    else:
        return
    health.circuit_open_until = now + circuit_cooldown(settings, health.circuit_opens)
    change.set("circuit_opens", health.circuit_opens).set("circuit_open_until", health.circuit_open_until)
    account.admission.distrust(Probing.HALF_OPEN)


_TRY_AGAIN_IN = re.compile(r"(?:try again|retry) in (\d+(?:\.\d+)?(?:ms|us|h|m|s)(?:\d+(?:\.\d+)?(?:ms|us|h|m|s))*)",
                           re.IGNORECASE)
"""The wait an error message states: OpenAI's "Please try again in 6m0s.", Gemini's "Please retry in 37.5s."."""


def _retry_after(report: OutcomeReport, now: float) -> float | None:
    """Seconds until the upstream says to try again: its retry-after (as the report or the headers carry it), else
    the wait its error message states."""
    if report.retry_after_ms > 0:
        return report.retry_after_ms / 1000.0
    if report.rate_limit_headers:
        said = parse_retry_after(report.rate_limit_headers, now)
        if said is not None:
            return said
    match = _TRY_AGAIN_IN.search(report.detail) if report.detail else None
    return parse_header_duration(match.group(1)) if match else None
