"""One account's live state and the health rules applied to it.

An account is available when it is enabled, not cooling, its circuit is closed, it is under its concurrency limit,
no known rate limit is at zero, and, while its health is unknown, it has no probe out (:mod:`.admission`).
:meth:`Account.blocked_until` answers that question and says until when; :meth:`Account.apply` turns an attempt's
outcome into a new state and the change to persist.
"""

from __future__ import annotations

import math
import random
import re
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import tzinfo

from poolgate.config import AccountConfig, PoolConfig, redact
from poolgate.config.schema import parse_auth_header
from poolgate.day_windows import day_end, time_zone
from poolgate.rate_limit_times import parse_header_duration, parse_retry_after
from poolgate.secrets import scrub_text
from selector_service.domain.admission import Admission, Probing
from selector_service.domain.backoff import circuit_cooldown, rate_limit_cooldown
from selector_service.domain.classify import ErrorClass, Rule, classify
from selector_service.domain.outcomes import AccountState, Outcome, OutcomeReport
from selector_service.domain.ratelimits import MODEL_KINDS, PLAN_KINDS, RateLimitSnapshot, parse_headers
from selector_service.domain.scopes import MAX_SCOPES, ScopeRest
from selector_service.domain.state import PersistedState, StateChange

WINDOW = 60.0  # seconds: rpm / itpm / otpm limits are per minute
EWMA_ALPHA = 0.2
NEVER = math.inf  # "blocked until something else happens" (a lease returns, an operator re-enables)


@dataclass(frozen=True, slots=True)
class Credential:
    header: str
    value: str
    extra_headers: tuple[tuple[str, str], ...]


class _Window:
    """Sum of amounts over the last minute (requests or tokens), amortised O(1), and the configured limit on it."""

    __slots__ = ("entries", "limit", "total")

    def __init__(self, limit: int) -> None:
        self.entries: deque[tuple[float, int]] = deque()
        self.total = 0
        self.limit = limit

    def add(self, now: float, amount: int) -> None:
        if amount > 0:
            self.entries.append((now, amount))
            self.total += amount

    def used(self, now: float) -> int:
        entries = self.entries
        while entries and entries[0][0] <= now - WINDOW:
            self.total -= entries.popleft()[1]
        return self.total

    def frees_at(self) -> float:
        return self.entries[0][0] + WINDOW if self.entries else 0.0

    @property
    def pending(self) -> bool:
        """Whether some use will age out by itself."""
        return bool(self.entries)

    def clear(self) -> None:
        self.entries.clear()
        self.total = 0


class _DayWindow:
    """Sum of amounts since the start of the calendar day (in the pool's quota_timezone), and the limit on it."""

    __slots__ = ("ends", "limit", "total", "zone")

    def __init__(self, limit: int, zone: tzinfo) -> None:
        self.limit = limit
        self.zone = zone
        self.total = 0
        self.ends = 0.0

    def add(self, now: float, amount: int) -> None:
        if amount > 0:
            self.used(now)
            self.total += amount

    def used(self, now: float) -> int:
        if now >= self.ends:
            self.total, self.ends = 0, day_end(now, self.zone)
        return self.total

    def frees_at(self) -> float:
        return self.ends

    @property
    def pending(self) -> bool:
        return self.total > 0

    def clear(self) -> None:
        self.total = 0


Window = _Window | _DayWindow
WINDOW_LABELS = {"requests": "requests per minute", "input_tokens": "input tokens per minute",
                 "output_tokens": "output tokens per minute", "requests_day": "requests per day",
                 "tokens_day": "tokens per day"}


class Account:
    """An account of a pool: configuration, health and load. Also the :class:`AccountView` strategies see."""

    __slots__ = (
        "account_id", "admission", "auth_failures_total", "awaiting_refresh", "circuit_open_until", "circuit_opens",
        "config", "cooldown_reason", "cooldown_until", "credential", "credential_fingerprint", "credential_prefix",
        "credential_redacted", "credential_since", "disabled", "disabled_reason", "error_rate", "error_samples",
        "expires_at", "expiry_skip", "expiry_wakeup", "failure_streak", "failures_total", "headroom_wakeup",
        "in_flight", "index", "input_tokens_total", "limits", "limits_scope", "max_concurrency", "minute_limits",
        "model_limits", "name", "output_tokens_total", "pool", "priority", "rate_limit_streak", "rate_limited_total",
        "recent_latency_ms", "refresh_margin", "refreshing", "rejection_refreshed", "requests_total", "reserve",
        "scope_windows", "scopes", "successes_total", "weight", "windows",
    )

    def __init__(self, pool: PoolConfig, pool_name: str, config: AccountConfig, index: int) -> None:
        self.pool = pool_name
        self.account_id = f"{pool_name}/{config.name}"
        self.name = config.name
        # load
        self.in_flight = 0
        self.admission = Admission(pool.probe_leases, pool.slow_start, pool.probe_timeout)  # new: health unknown
        self.requests_total = self.successes_total = self.failures_total = 0
        self.rate_limited_total = self.auth_failures_total = 0
        self.input_tokens_total = self.output_tokens_total = 0
        self.recent_latency_ms = 0.0
        self.error_rate = 0.0
        self.error_samples = 0  # outcomes counted in error_rate (it is a plain average of the first few)
        # health (persisted)
        self.cooldown_until = 0.0
        self.cooldown_reason = ""
        self.rate_limit_streak = 0
        self.failure_streak = 0
        self.circuit_open_until = 0.0
        self.circuit_opens = 0
        self.disabled = False
        self.disabled_reason = ""
        # quota learned from headers, and local per-minute windows for configured limits
        self.limits: RateLimitSnapshot | None = None
        self.limits_scope = ""
        self.model_limits: dict[str, RateLimitSnapshot] = {}
        """The latest learned limits per model (at most MAX_SCOPES models), for :meth:`headroom_for`."""
        """The model scope of the answer :attr:`limits` were read from ("" when cooldowns are account-wide)."""
        self.windows: dict[str, Window] = {}
        self.scopes: dict[str, ScopeRest] = {}
        self.minute_limits: dict[str, int] = {}
        """The configured per-minute caps, counted per model scope (cooldown_scope: model); empty otherwise."""
        self.scope_windows: dict[str, dict[str, _Window]] = {}
        """Per model scope, the windows of :attr:`minute_limits` ("" for requests naming no model)."""
        """Per-model rests (see :mod:`.scopes`), by scope."""
        self.refreshing = False  # a credential refresh is in flight
        # A rejected (401/403) credential that can be renewed is refreshed once before the account is disabled.
        self.awaiting_refresh = False  # rejected; not leased until a new credential arrives
        self.rejection_refreshed = False  # renewed after a rejection, and not yet proven by a success
        self.credential_since = 0.0  # when the credential was last renewed (0: the configured one)
        self.expiry_wakeup = 0.0  # the expiry edge the pool last scheduled a re-check for
        self.headroom_wakeup = 0.0  # when the pool re-checks the headroom of this account next (0: not scheduled)
        self.configure(pool, config, index)

    def configure(self, pool: PoolConfig, config: AccountConfig, index: int) -> None:
        """Take the settings from config (at start, and on reload: live state and health are kept)."""
        self.config = config
        self.index = index
        self.weight = config.weight
        self.priority = config.priority
        self.max_concurrency = config.max_concurrency
        self.admission.configure(pool.probe_leases, pool.slow_start, pool.probe_timeout)
        self.reserve = pool.reserve
        if config.auth_header:
            scheme_header, self.credential_prefix = parse_auth_header(config.auth_header)
        elif pool.auth_scheme == "bearer":
            scheme_header, self.credential_prefix = "authorization", "Bearer"
        else:
            scheme_header, self.credential_prefix = "x-api-key", ""
        scheme_value = self._credential_value(config.key)
        extra = {**pool.headers, **config.headers}
        previous = getattr(self, "credential", None)
        if previous is not None and previous.value != scheme_value:
            self.awaiting_refresh = False  # a new credential from the config (someone logged in again)
        self.credential = Credential(scheme_header, scheme_value, tuple(extra.items()))
        self.credential_redacted = config.credential_redacted
        self.expires_at = config.expires_at
        self.expiry_skip = pool.oauth.skip_expiring_threshold
        self.refresh_margin = pool.oauth.refresh_margin
        self.credential_fingerprint = config.credential_fingerprint
        windows: dict[str, Window] = {}
        minute = {kind: limit for kind, limit in (("requests", config.rpm_limit), ("input_tokens", config.itpm_limit),
                                                  ("output_tokens", config.otpm_limit)) if limit}
        per_model = pool.cooldown_scope == "model"
        for kind, limit in ({} if per_model else minute).items():
            window = windows[kind] = self.windows.get(kind) or _Window(limit)
            window.limit = limit  # a reload may change the limit; the minute's counts stay
        # With per-model cooldowns the per-minute caps count per model, as providers' per-model limits do.
        self.minute_limits = minute if per_model else {}
        for scope, kinds in list(self.scope_windows.items()):
            if set(kinds) != set(self.minute_limits):
                del self.scope_windows[scope]  # the caps changed kind: that model's minute starts afresh
            else:
                for kind, window in kinds.items():
                    window.limit = self.minute_limits[kind]
        zone = time_zone(pool.quota_timezone)
        for kind, limit in (("requests_day", config.rpd_limit), ("tokens_day", config.tpd_limit)):
            if limit:
                day = self.windows.get(kind)
                if not isinstance(day, _DayWindow) or day.zone != zone:
                    day = _DayWindow(limit, zone)
                day.limit = limit  # the day's counts stay across a reload
                windows[kind] = day
        self.windows = windows

    def _credential_value(self, key: str) -> str:
        """The credential header's value for ``key`` (``Bearer KEY``, or the bare key)."""
        return f"{self.credential_prefix} {key}" if self.credential_prefix else key

    def set_credential(self, key: str, expires_at: float, now: float) -> None:
        """Take a renewed credential (a refreshed OAuth token) without becoming a new account: health, load and
        leases stay. The pool must re-check availability afterwards (``SelectorCore.account_changed``)."""
        self.credential = Credential(self.credential.header, self._credential_value(key), self.credential.extra_headers)
        self.credential_redacted = redact(key)
        self.expires_at = expires_at
        self.credential_since = now
        if self.awaiting_refresh:
            self.admission.distrust(Probing.NEW_CREDENTIAL)  # the rejected one is replaced: prove the new one
        self.awaiting_refresh = False

    def expiring(self, now: float) -> bool:
        """Whether the credential expires within the skip threshold (so the account must not be leased)."""
        return bool(self.expires_at) and now >= self.expires_at - self.expiry_skip

    def refresh_due(self, now: float) -> bool:
        """Whether the credential is within its refresh margin, or was rejected and waits for a new one."""
        return self.awaiting_refresh or (bool(self.expires_at) and now >= self.expires_at - self.refresh_margin)

    # -- persisted state -------------------------------------------------------------------------------------------

    def restore(self, saved: PersistedState) -> None:
        """Take over health from the database; a changed credential starts clean (a new key is a new account)."""
        if saved.credential_fingerprint and saved.credential_fingerprint != self.credential_fingerprint:
            return
        self.cooldown_until, self.cooldown_reason = saved.cooldown_until, saved.cooldown_reason
        self.rate_limit_streak, self.failure_streak = saved.rate_limit_streak, saved.failure_streak
        self.circuit_open_until, self.circuit_opens = saved.circuit_open_until, saved.circuit_opens
        self.disabled, self.disabled_reason = saved.disabled, saved.disabled_reason
        self.rate_limited_total, self.failures_total = saved.rate_limited_total, saved.failures_total
        self.auth_failures_total = saved.auth_failures_total
        self._restore_scopes(saved.scope_rests)
        if self.admission.probing is Probing.NEW and (saved.cooldown_until or saved.circuit_opens):
            self.admission.probing = Probing.RESTORED

    def _restore_scopes(self, saved: dict[str, tuple[float, str, int]]) -> None:
        """The saved per-model rests: a scope saved longer than known here is news (a new epoch); a scope no longer
        saved was cleared by a success."""
        scopes = {}
        for scope, (until, reason, streak) in saved.items():
            rest = self.scopes.get(scope)
            if rest is None:
                rest = ScopeRest(until, reason, streak)
            elif until > rest.until:
                rest.until, rest.reason, rest.streak = until, reason, max(streak, rest.streak)
                rest.epoch += 1
            scopes[scope] = rest
        self.scopes = scopes

    def take_external(self, saved: PersistedState, now: float) -> bool:
        """Take over health another replica wrote to the shared database; returns whether it changed anything.

        The row holds every replica's changes merged, so counters and streaks are set, never added: nothing counts
        twice. Bad news from elsewhere counts as news here too: a lease granted before it proves nothing.
        """
        if saved.credential_fingerprint and saved.credential_fingerprint != self.credential_fingerprint:
            return False  # another key under this name (a replica with another config): not this account's health
        worse = (saved.cooldown_until > self.cooldown_until or saved.circuit_opens > self.circuit_opens
                 or saved.circuit_open_until > self.circuit_open_until or (saved.disabled and not self.disabled))
        before = (self.cooldown_until, self.circuit_open_until, self.circuit_opens, self.disabled,
                  self.failure_streak, self.rate_limit_streak, self.rate_limited_total, self.failures_total,
                  {scope: rest.until for scope, rest in self.scopes.items()})
        self.restore(saved)
        if worse:
            self.admission.distrust(Probing.HALF_OPEN if self.circuit_opens and not self.disabled
                                    else Probing.OPERATOR if self.disabled else Probing.AFTER_COOLDOWN)
        return before != (self.cooldown_until, self.circuit_open_until, self.circuit_opens, self.disabled,
                          self.failure_streak, self.rate_limit_streak, self.rate_limited_total, self.failures_total,
                          {scope: rest.until for scope, rest in self.scopes.items()})

    # -- per-model rests -------------------------------------------------------------------------------------------

    def scope_blocked_until(self, scope: str, now: float) -> float:
        """0.0 when a lease for ``scope`` may be granted now (as far as that scope's rest goes); else until when."""
        if not scope:
            return 0.0
        rest = self.scopes.get(scope)
        until = rest.blocked_until(now, self.admission.probe_timeout) if rest is not None else 0.0
        windows = self.scope_windows.get(scope)
        return max(until, _full_until(windows, now)) if windows else until

    def awaiting_scope_probe(self, scope: str, now: float) -> bool:
        """Whether ``scope``'s only block is its probe out (as :meth:`awaiting_probe` for the account): it frees up as
        soon as the probe answers."""
        rest = self.scopes.get(scope) if scope else None
        if rest is None or rest.until > now or not rest.probe_since:
            return False
        windows = self.scope_windows.get(scope)
        return not (windows and _full_until(windows, now))

    def scope_probe(self, scope: str, now: float) -> tuple[int, bool]:
        """A lease for ``scope`` is being granted: the scope's epoch (0 when it is not resting), and whether the
        lease is the scope's one probe (its rest is over and no probe is out)."""
        rest = self.scopes.get(scope) if scope else None
        if rest is None:
            return 0, False
        if rest.until <= now and not rest.probe_since:
            rest.probe_since = now
            return rest.epoch, True
        return rest.epoch, False

    def scope_returned(self, scope: str, epoch: int) -> None:
        """A lease for ``scope`` ended: if it was the scope's probe, another may go."""
        rest = self.scopes.get(scope) if scope else None
        if rest is not None and rest.epoch == epoch:
            rest.probe_since = 0.0

    def _scope_rate_limited(
        self, scope: str, epoch: int, report: OutcomeReport, now: float, pool: PoolConfig, rng: random.Random,
        change: StateChange, rest_for: float | None,
    ) -> None:
        """A 429 for ``scope``: rest the account for that model only. A 429 for a lease granted before the scope's
        last one (an older epoch) is the same news: it may lengthen the rest, never step the backoff again."""
        self.rate_limited_total += 1
        change.rate_limited_delta = 1
        rest = self.scopes.get(scope)
        fresh = rest is None or epoch >= rest.epoch
        retry_after = rest_for if rest_for is not None else _retry_after(report, now)
        if not fresh and retry_after is None:
            return
        streak = (rest.streak + 1 if rest is not None else 1) if fresh else rest.streak if rest is not None else 1
        seconds = rate_limit_cooldown(pool.cooldown, retry_after, streak, rng)
        until = now + seconds
        status = report.http_status or 429
        reason = f"rate limited ({status}) for {scope}, cooling {seconds:.0f} s"
        if rest is None:
            rest = self.scopes[scope] = ScopeRest(until, reason, streak)
        else:
            if until > rest.until:
                rest.until, rest.reason = until, reason
            rest.streak = streak
            if fresh:
                rest.epoch += 1
                rest.probe_since = 0.0
        change.scope_rests[scope] = (rest.until, rest.reason, rest.streak)

    def _scope_succeeded(self, scope: str, epoch: int, change: StateChange) -> None:
        """A success for ``scope`` granted after its last 429 proves the model is served again: the rest ends."""
        rest = self.scopes.get(scope) if scope else None
        if rest is not None and epoch >= rest.epoch:
            del self.scopes[scope]
            change.scope_rests[scope] = None

    # -- availability ----------------------------------------------------------------------------------------------

    def _resting_until(self, now: float) -> float:
        """0.0 when the account's health lets it serve; else until when it rests (``NEVER``: until an event)."""
        if self.disabled or self.awaiting_refresh:
            return NEVER
        if self.expiring(now):
            return NEVER  # until a refresh brings a new token
        until = 0.0
        if self.cooldown_until > now:
            until = self.cooldown_until
        if self.circuit_opens and self.circuit_open_until > now:
            until = max(until, self.circuit_open_until)
        return until

    def blocked_until(self, now: float) -> float:
        """0.0 when the account can take a lease now; else when it may (``NEVER``: on an event, not a time)."""
        until = self._resting_until(now)
        if until == NEVER:
            return NEVER
        if until == 0.0:
            until = self.admission.blocked_until(self.in_flight, now)  # a probe's answer (or a lease back) frees it
            if until == NEVER:
                return NEVER
        if self.max_concurrency and self.in_flight >= self.max_concurrency:
            return NEVER
        if self.limits is not None:
            # Learned from a model's answer (per-model scope): its own limits rest that model (_scope_at_zero); a
            # plan's windows are the whole account's.
            kinds = PLAN_KINDS if self.limits_scope else None
            until = max(until, self.limits.exhausted_until(now, self.reserve, kinds))
        until = max(until, _full_until(self.windows, now))
        if self.minute_limits and "" in self.scope_windows:
            until = max(until, _full_until(self.scope_windows[""], now))  # requests that name no model
        return until

    def awaiting_probe(self, now: float) -> bool:
        """Whether the account's only block is its probes out: it frees up as soon as one answers."""
        admission = self.admission
        return (admission.probing is not None and admission.probes_in_flight >= admission.probe_leases
                and self._resting_until(now) == 0.0)

    def expire_quota(self, now: float) -> float:
        """Forget quota use that has passed, so :attr:`headroom` is true as of ``now``: window entries older than a
        minute, and learned limits whose reset time has come (full again, as the providers define reset).

        Returns when the headroom will next rise by itself, with no request: 0.0 when it will not.
        """
        rises_at = math.inf
        for window in self.windows.values():
            window.used(now)
            if window.pending:
                rises_at = min(rises_at, window.frees_at())
        for windows in self.scope_windows.values():
            for window in windows.values():
                window.used(now)
        if self.limits is not None:
            rises_at = min(rises_at, self.limits.expire(now))
        for snapshot in self.model_limits.values():
            snapshot.expire(now)
        return 0.0 if rises_at == math.inf else rises_at

    @property
    def headroom(self) -> float:
        """Share of quota left on the tightest limit, as of the pool's last :meth:`expire_quota`."""
        fraction = self.limits.fraction() if self.limits is not None else 1.0
        return min(fraction, _room(self.windows), _room(self.scope_windows.get("", {})))

    def headroom_for(self, model: str) -> float:
        """:attr:`headroom` as the latest answer for ``model`` (or its group) tells it, with the account's own caps."""
        snapshot = self.model_limits.get(model) if model else None
        if snapshot is None:
            return self.headroom
        return min(snapshot.fraction(), _room(self.windows), _room(self.scope_windows.get(model, {})))

    @property
    def window_reset_at(self) -> float:
        """The soonest reset of a learned window that is partly used (0.0 when none is known)."""
        return self.limits.soonest_reset(0.0) if self.limits is not None else 0.0

    def state(self, now: float) -> tuple[AccountState, str]:
        """The state shown to operators, with the reason when not healthy."""
        if self.disabled:
            return AccountState.DISABLED, self.disabled_reason
        if self.awaiting_refresh:
            doing = "being refreshed" if self.refreshing else "refresh to be retried"
            return AccountState.COOLING, f"credentials rejected, {doing}"
        if self.expiring(now):
            left = self.expires_at - now
            when = f"expires in {left:.0f} s" if left > 0 else "has expired"
            doing = "being refreshed" if self.refreshing else "not refreshed"
            return AccountState.COOLING, f"credential {when}, {doing}"
        if self.circuit_opens and self.circuit_open_until > now:
            return AccountState.CIRCUIT_OPEN, f"{self.failure_streak} failures in a row"
        if self.cooldown_until > now:
            return AccountState.COOLING, self.cooldown_reason
        kinds = PLAN_KINDS if self.limits_scope else None
        if self.limits is not None and self.limits.exhausted_until(now, 0.0, kinds) > now:
            return AccountState.COOLING, "quota at zero (rate-limit headers) until reset"
        if self.limits is not None and self.limits.exhausted_until(now, self.reserve, kinds) > now:
            return AccountState.COOLING, f"under the reserve ({self.reserve:.0%}) of a quota window until its reset"
        for kind, window in [*self.windows.items(), *self.scope_windows.get("", {}).items()]:
            if window.used(now) >= window.limit:
                return AccountState.COOLING, f"configured {WINDOW_LABELS[kind]} limit reached"
        admission = self.admission
        if admission.probing is not None:
            leases = admission.probe_leases
            return AccountState.PROBING, (f"{admission.probing.value}: {leases} probe lease{'s' * (leases > 1)} "
                                          "until the upstream answers")
        if admission.cap:
            return AccountState.HEALTHY, f"slow start: at most {admission.cap} in flight"
        return AccountState.HEALTHY, ""

    def cooldown_remaining(self, now: float) -> float:
        ends = [self.cooldown_until, self.circuit_open_until if self.circuit_opens else 0.0]
        if self.limits is not None:
            ends.append(self.limits.exhausted_until(now))
        return max(0.0, max(ends) - now)

    # -- leases ----------------------------------------------------------------------------------------------------

    def _minute_windows(self, scope: str) -> dict[str, _Window]:
        """The per-minute windows a lease for ``scope`` counts in (created on first use, for at most MAX_SCOPES
        scopes: the least recently created one whose minute has passed makes room)."""
        windows = self.scope_windows.get(scope)
        if windows is None:
            if len(self.scope_windows) >= MAX_SCOPES:
                idle = next((s for s, ws in self.scope_windows.items() if not any(w.pending for w in ws.values())),
                            next(iter(self.scope_windows)))
                del self.scope_windows[idle]
            windows = self.scope_windows[scope] = {kind: _Window(limit) for kind, limit in self.minute_limits.items()}
        return windows

    def full_scopes(self, now: float) -> frozenset[str]:
        """The model scopes whose configured per-minute caps are reached now."""
        if not self.scope_windows:
            return frozenset()
        return frozenset(scope for scope, windows in self.scope_windows.items()
                         if scope and _full_until(windows, now))

    def acquire(self, now: float, light: bool = False, scope: str = "") -> int:
        """Count a new lease; returns its probe id when it is a probe (granted while the account's health is
        unknown), else 0. A light lease (token counting) counts in neither the concurrency nor the request rate:
        providers meter those calls apart; it is still a probe when the account's health is unknown."""
        self.requests_total += 1
        if not light:
            self.in_flight += 1
            for kind in ("requests", "requests_day"):
                if kind in self.windows:
                    self.windows[kind].add(now, 1)
            if "requests" in self.minute_limits:
                self._minute_windows(scope)["requests"].add(now, 1)
        return self.admission.admit(now)

    def release(self, probe_id: int, light: bool = False) -> None:
        if not light:
            self.in_flight = max(0, self.in_flight - 1)
        self.admission.returned(probe_id)

    # -- outcomes --------------------------------------------------------------------------------------------------

    def answered(self, report: OutcomeReport, epoch: int, now: float, scope: str = "", scope_epoch: int = 0,
                 model: str = "") -> StateChange:
        """The upstream's early answer to a lease (a 2xx status and its rate-limit headers, before the body): a
        fresh one proves the account (and the lease's model scope) as a success does, without counting a finished
        request."""
        change = StateChange(self.account_id)
        self._learn_limits(report, now, scope, model)
        if report.outcome is Outcome.SUCCESS:
            self._proven(epoch, change)
            self._scope_succeeded(scope, scope_epoch, change)
        self._scope_at_zero(scope, now, change)
        return change

    def apply(
        self, report: OutcomeReport, epoch: int, granted_at: float, now: float, pool: PoolConfig, rng: random.Random,
        renew: Callable[[], bool] | None = None, rules: Sequence[Rule] = (), scope: str = "", scope_epoch: int = 0,
        model: str = "",
    ) -> StateChange:
        """Apply an attempt's outcome to this account; return what must be persisted (maybe nothing).

        ``epoch`` is the admission epoch the lease was granted in: a lease granted before the account's health last
        changed counts in the totals, but neither steps a backoff or a circuit again nor vouches for the account.
        ``renew`` is asked when the upstream rejected the credential: it starts a refresh and returns True when the
        credential can be renewed, and the account then waits for the new one instead of being disabled.
        ``rules`` are the pool's ``classify:`` rules (:mod:`.classify`); ``scope`` is the model scope the lease was
        for (``scope_epoch`` its rest's epoch then): a 429 rests only that scope (:mod:`.scopes`)."""
        change = StateChange(self.account_id)
        outcome = report.outcome
        self._learn_limits(report, now, scope, model)
        self.input_tokens_total += max(0, report.input_tokens)
        self.output_tokens_total += max(0, report.output_tokens)
        minute = self._minute_windows(scope) if self.minute_limits else self.windows
        if "input_tokens" in minute:
            minute["input_tokens"].add(now, report.input_tokens)
        if "output_tokens" in minute:
            minute["output_tokens"].add(now, report.output_tokens)
        if "tokens_day" in self.windows:
            self.windows["tokens_day"].add(now, max(0, report.input_tokens) + max(0, report.output_tokens))
        error_class, rest = classify(report, rules)
        if outcome is Outcome.CANCELLED or error_class is ErrorClass.REQUEST_ERROR:
            self._scope_at_zero(scope, now, change)
            return change  # not the account's fault: health unchanged
        failed = outcome is not Outcome.SUCCESS
        # The share of recent outcomes that failed: a plain average of the first 1/EWMA_ALPHA outcomes (so 3
        # failures of 3 read 1.0), then exponentially weighted, the latest outcome counting EWMA_ALPHA.
        self.error_samples += 1
        self.error_rate += max(EWMA_ALPHA, 1.0 / self.error_samples) * ((1.0 if failed else 0.0) - self.error_rate)
        fresh = self.admission.fresh(epoch)
        if outcome is Outcome.SUCCESS:
            self._succeeded(report, fresh, epoch, granted_at, change)
            self._scope_succeeded(scope, scope_epoch, change)
        elif error_class is ErrorClass.RATE_LIMITED and scope:
            self._scope_rate_limited(scope, scope_epoch, report, now, pool, rng, change, rest)
        elif error_class is ErrorClass.RATE_LIMITED:
            self._rate_limited(report, fresh, now, pool, rng, change, rest)
        elif error_class is ErrorClass.QUOTA_EXHAUSTED:
            self._out_of_quota(report, fresh, now, pool, change, rest)
        elif error_class is ErrorClass.AUTH:
            self._auth_failed(report, fresh, granted_at, change, renew)
        else:  # server errors, network errors, timeouts, an overloaded provider: the circuit breaker's
            self._failed(fresh, now, pool, change)
        self._scope_at_zero(scope, now, change)
        return change

    def _learn_limits(self, report: OutcomeReport, now: float, scope: str = "", model: str = "") -> None:
        if report.rate_limit_headers:
            snapshot = parse_headers(report.rate_limit_headers, now)
            if snapshot.limits:
                self.limits = snapshot
                self.limits_scope = scope
                if scope and model:
                    models = self.model_limits
                    models.pop(model, None)
                    models[model] = snapshot
                    if len(models) > MAX_SCOPES:
                        del models[next(iter(models))]

    def _scope_at_zero(self, scope: str, now: float, change: StateChange) -> None:
        """Rate-limit headers of a model's answer at zero (or under the reserve): that model rests until their reset.
        A plan's windows stay the account's (see :meth:`blocked_until`)."""
        if not scope or self.limits is None or self.limits_scope != scope:
            return
        until = self.limits.exhausted_until(now, self.reserve, MODEL_KINDS)
        if until <= now:
            return
        rest = self.scopes.get(scope)
        if rest is not None and rest.until >= until:
            return
        reason = f"quota at zero (rate-limit headers) for {scope} until reset"
        if rest is None:
            rest = self.scopes[scope] = ScopeRest(until, reason, streak=0)
        else:
            rest.until, rest.reason, rest.probe_since = until, reason, 0.0
            rest.epoch += 1
        change.scope_rests[scope] = (rest.until, rest.reason, rest.streak)

    def _succeeded(
        self, report: OutcomeReport, fresh: bool, epoch: int, granted_at: float, change: StateChange
    ) -> None:
        self.successes_total += 1
        if granted_at >= self.credential_since:
            self.rejection_refreshed = False  # the current credential works: a later rejection may refresh again
        if report.latency_ms > 0:
            latency = float(report.latency_ms)
            self.recent_latency_ms = latency if not self.recent_latency_ms else (
                self.recent_latency_ms + EWMA_ALPHA * (latency - self.recent_latency_ms))
        # Only a lease granted after the last bad news proves the account is fine again; an older in-flight success
        # says nothing about a 429 that came later.
        if self.failure_streak and (fresh or not self.circuit_opens):
            self.failure_streak = 0
            change.reset_failure_streak = True
        if fresh:
            self._proven(epoch, change)

    def _proven(self, epoch: int, change: StateChange) -> None:
        """A lease of ``epoch`` succeeded: if it is fresh, the account is known to be fine."""
        if not self.admission.fresh(epoch):
            return
        self.admission.proven(epoch)
        if self.rate_limit_streak:
            self.rate_limit_streak = 0
            change.reset_rate_limit_streak = True
        if self.cooldown_until:
            self.cooldown_until, self.cooldown_reason = 0.0, ""
            change.clear_cooldown = True
        if self.circuit_opens:
            self.circuit_opens, self.circuit_open_until = 0, 0.0
            change.circuit_opens, change.circuit_open_until = 0, 0.0

    def _rate_limited(
        self, report: OutcomeReport, fresh: bool, now: float, pool: PoolConfig, rng: random.Random,
        change: StateChange, rest: float | None = None,
    ) -> None:
        self.rate_limited_total += 1
        change.rate_limited_delta = 1
        retry_after = rest if rest is not None else _retry_after(report, now)
        if not fresh and retry_after is None:
            return  # the same piece of news as the 429 that already rested the account: one step, not another
        if fresh:
            self.rate_limit_streak += 1
            change.rate_limit_streak_delta = 1
        # A stale 429 with its own Retry-After may still lengthen the rest (never shorten it), at the same step.
        seconds = rate_limit_cooldown(pool.cooldown, retry_after, max(1, self.rate_limit_streak), rng)
        until = now + seconds
        if until > self.cooldown_until:  # a new cooldown never shortens a longer one in force
            status = report.http_status or 429
            self.cooldown_until = until
            self.cooldown_reason = f"rate limited ({status}), cooling {seconds:.0f} s"
            change.extend_cooldown_until = until
            change.cooldown_reason = self.cooldown_reason
        if fresh:
            self.admission.distrust(Probing.AFTER_COOLDOWN)

    def _out_of_quota(
        self, report: OutcomeReport, fresh: bool, now: float, pool: PoolConfig, change: StateChange,
        rest: float | None,
    ) -> None:
        """Out of credit or of a plan's window: no backoff from one second, which would call an empty account again
        and again, but one rest until the quota's reset (when the upstream says it), else the rule's or the pool's
        ``quota_rest``; then one probe."""
        self.rate_limited_total += 1
        change.rate_limited_delta = 1
        said = _retry_after(report, now)
        seconds = rest if rest is not None else said if said is not None else pool.quota_rest
        seconds = min(max(0.0, seconds), MAX_QUOTA_REST)
        until = now + seconds
        if until > self.cooldown_until:
            kind = report.error_code or report.error_type or str(report.http_status or "")
            self.cooldown_until = until
            self.cooldown_reason = f"out of quota ({kind}), resting {seconds:.0f} s"
            change.extend_cooldown_until = until
            change.cooldown_reason = self.cooldown_reason
        if fresh:
            self.admission.distrust(Probing.AFTER_COOLDOWN)

    def _auth_failed(
        self, report: OutcomeReport, fresh: bool, granted_at: float, change: StateChange,
        renew: Callable[[], bool] | None,
    ) -> None:
        self.auth_failures_total += 1
        change.auth_failures_delta = 1
        if self.awaiting_refresh or granted_at < self.credential_since:
            return  # a refresh is under way, or the rejected credential has been replaced since the lease was granted
        if not self.disabled and renew is not None and not self.rejection_refreshed and renew():
            # An OAuth token revoked or expired early: one refresh before giving up on the account.
            self.awaiting_refresh = self.rejection_refreshed = True
            self.admission.distrust(Probing.NEW_CREDENTIAL)
            return
        if not self.disabled:
            # Scrubbed here too: a client in another language may pass on an upstream message that echoes the key.
            detail = scrub_text(report.detail.strip(), self.credential.value)[:200]
            status = report.http_status or 401
            self.disabled = True
            self.disabled_reason = f"credentials rejected ({status})" + (f": {detail}" if detail else "")
            change.disabled, change.disabled_reason = True, self.disabled_reason
            self.admission.distrust(Probing.OPERATOR)

    def _failed(self, fresh: bool, now: float, pool: PoolConfig, change: StateChange) -> None:
        self.failures_total += 1
        change.failures_delta = 1
        if not fresh:
            return  # granted before the circuit last opened (or other news): counted, but not another step
        self.failure_streak += 1
        change.failure_streak_delta = 1
        settings = pool.circuit
        if self.circuit_opens and self.circuit_open_until <= now:
            self.circuit_opens += 1  # the half-open probe failed: reopen, for longer
        elif not self.circuit_opens and self.failure_streak >= settings.failures:
            self.circuit_opens = 1
        else:
            return
        self.circuit_open_until = now + circuit_cooldown(settings, self.circuit_opens)
        change.circuit_opens, change.circuit_open_until = self.circuit_opens, self.circuit_open_until
        self.admission.distrust(Probing.HALF_OPEN)

    # -- operator actions ------------------------------------------------------------------------------------------

    def disable(self, reason: str) -> StateChange:
        self.disabled, self.disabled_reason = True, reason
        self.admission.distrust(Probing.OPERATOR)
        return StateChange(self.account_id, disabled=True, disabled_reason=reason)

    def reset(self) -> StateChange:
        """Forget cooldowns, streaks and an open circuit (the quota came back early); a disable stays."""
        self.cooldown_until, self.cooldown_reason = 0.0, ""
        self.rate_limit_streak = self.failure_streak = self.circuit_opens = 0
        self.circuit_open_until = 0.0
        self.limits = None
        self.model_limits = {}
        for window in self.windows.values():
            window.clear()
        self.scope_windows = {}
        cleared: dict[str, tuple[float, str, int] | None] = dict.fromkeys(self.scopes)
        self.scopes = {}
        self.admission.distrust(Probing.OPERATOR)  # the operator's word is not the upstream's: probe first
        return StateChange(
            self.account_id, reset_rate_limit_streak=True, reset_failure_streak=True, clear_cooldown=True,
            circuit_open_until=0.0, circuit_opens=0, scope_rests=cleared,
        )

    def enable(self) -> StateChange:
        """Re-enable and forget every failure (an operator's word)."""
        change = self.reset()
        self.disabled, self.disabled_reason = False, ""
        self.awaiting_refresh = self.rejection_refreshed = False
        change.disabled, change.disabled_reason = False, ""
        return change


MAX_QUOTA_REST = 31 * 86400.0
"""The longest an account out of quota rests on the upstream's word (a monthly plan's reset)."""


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


def _full_until(windows: Mapping[str, Window], now: float) -> float:
    """When the fullest of ``windows`` frees up, if one is at its limit; 0.0 when none is."""
    until = 0.0
    for window in windows.values():
        if window.used(now) >= window.limit:
            until = max(until, window.frees_at())
    return until


def _room(windows: Mapping[str, Window]) -> float:
    """The share left on the tightest of ``windows`` (1.0 when there is none)."""
    return min((max(0.0, 1.0 - window.total / window.limit) for window in windows.values()), default=1.0)
