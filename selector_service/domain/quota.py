"""An account's quota: limits learned from rate-limit headers, and the configured per-minute and per-day caps."""

from __future__ import annotations

import math

from poolgate.config import AccountConfig, PoolConfig
from poolgate.day_windows import time_zone
from selector_service.domain.outcomes import OutcomeReport
from selector_service.domain.ratelimits import PLAN_KINDS, RateLimitSnapshot, parse_headers
from selector_service.domain.scopes import MAX_SCOPES
from selector_service.domain.windows import WINDOW_LABELS, DayWindow, MinuteWindow, Window, full_until, room


class Quota:
    """What is left of an account's limits, learned and configured."""

    __slots__ = ("counts_requests", "counts_tokens", "headroom_wakeup", "limits", "limits_scope", "minute_limits",
                 "model_limits", "reserve", "scope_windows", "windows")

    def __init__(self, pool: PoolConfig, config: AccountConfig) -> None:
        self.limits: RateLimitSnapshot | None = None
        self.limits_scope = ""
        """The model scope of the answer :attr:`limits` were read from ("" when cooldowns are account-wide)."""
        self.model_limits: dict[str, RateLimitSnapshot] = {}
        """The latest learned limits per model (at most MAX_SCOPES models), for :meth:`headroom_for`."""
        self.windows: dict[str, Window] = {}
        self.minute_limits: dict[str, int] = {}
        """The configured per-minute caps, counted per model scope (cooldown_scope: model); empty otherwise."""
        self.scope_windows: dict[str, dict[str, MinuteWindow]] = {}
        """Per model scope, the windows of :attr:`minute_limits` ("" for requests naming no model)."""
        self.headroom_wakeup = 0.0
        """When the pool re-checks the headroom of this account next (0: not scheduled)."""
        self.configure(pool, config)

    def configure(self, pool: PoolConfig, config: AccountConfig) -> None:
        """Take the caps from config (at start, and on reload: the counts so far stay)."""
        self.reserve = pool.reserve
        windows: dict[str, Window] = {}
        minute = {kind: limit for kind, limit in (("requests", config.rpm_limit), ("input_tokens", config.itpm_limit),
                                                  ("output_tokens", config.otpm_limit)) if limit}
        per_model = pool.cooldown_scope == "model"
        for kind, limit in ({} if per_model else minute).items():
            window = windows[kind] = self.windows.get(kind) or MinuteWindow(limit)
            window.limit = limit  # a reload may change the limit; the minute's counts stay
        # With per-model cooldowns the per-minute caps count per model, as providers' per-model limits do.
        self.minute_limits = minute if per_model else {}
        for scope, kinds in list(self.scope_windows.items()):
            if set(kinds) != set(self.minute_limits):
                del self.scope_windows[scope]  # the caps changed kind: that model's minute starts afresh
            else:
                for kind, scoped in kinds.items():
                    scoped.limit = self.minute_limits[kind]
        zone = time_zone(pool.quota_timezone)
        for kind, limit in (("requests_day", config.rpd_limit), ("tokens_day", config.tpd_limit)):
            if limit:
                day = self.windows.get(kind)
                if not isinstance(day, DayWindow) or day.zone != zone:
                    day = DayWindow(limit, zone)
                day.limit = limit  # the day's counts stay across a reload
                windows[kind] = day
        self.windows = windows
        counted = set(windows) | set(self.minute_limits)
        self.counts_requests = bool(counted & {"requests", "requests_day"})
        """Whether a lease counts in a configured cap (else :meth:`count_request` need not be called)."""
        self.counts_tokens = bool(counted & {"input_tokens", "output_tokens", "tokens_day"})
        """Whether an outcome's tokens count in a configured cap (else :meth:`count_tokens` need not be called)."""

    def learn(self, report: OutcomeReport, now: float, scope: str, model: str) -> None:
        """Take the limits an answer's rate-limit headers tell."""
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

    def count_request(self, now: float, scope: str) -> None:
        windows = self.windows
        for kind in ("requests", "requests_day"):
            if kind in windows:
                windows[kind].add(now, 1)
        if "requests" in self.minute_limits:
            self.minute_windows(scope)["requests"].add(now, 1)

    def count_tokens(self, report: OutcomeReport, now: float, scope: str) -> None:
        minute = self.minute_windows(scope) if self.minute_limits else self.windows
        if "input_tokens" in minute:
            minute["input_tokens"].add(now, report.input_tokens)
        if "output_tokens" in minute:
            minute["output_tokens"].add(now, report.output_tokens)
        if "tokens_day" in self.windows:
            self.windows["tokens_day"].add(now, max(0, report.input_tokens) + max(0, report.output_tokens))

    def minute_windows(self, scope: str) -> dict[str, MinuteWindow]:
        """The per-minute windows a lease for ``scope`` counts in (created on first use, for at most MAX_SCOPES
        scopes: the least recently created one whose minute has passed makes room)."""
        windows = self.scope_windows.get(scope)
        if windows is None:
            if len(self.scope_windows) >= MAX_SCOPES:
                idle = next((s for s, ws in self.scope_windows.items() if not any(w.pending for w in ws.values())),
                            next(iter(self.scope_windows)))
                del self.scope_windows[idle]
            windows = self.scope_windows[scope] = {kind: MinuteWindow(limit)
                                                   for kind, limit in self.minute_limits.items()}
        return windows

    def full_scopes(self, now: float) -> frozenset[str]:
        """The model scopes whose configured per-minute caps are reached now."""
        if not self.scope_windows:
            return frozenset()
        return frozenset(scope for scope, windows in self.scope_windows.items() if scope and full_until(windows, now))

    def scope_full_until(self, scope: str, now: float) -> float:
        """When ``scope``'s configured per-minute caps free up, if one is reached; 0.0 when none is."""
        windows = self.scope_windows.get(scope)
        return full_until(windows, now) if windows else 0.0

    def blocked_until(self, now: float) -> float:
        """0.0 when the account's quota lets it serve now; else when it frees up."""
        until = 0.0
        if self.limits is not None:
            # Learned from a model's answer (per-model scope): its own limits rest that model (ModelRests.at_zero);
            # a plan's windows are the whole account's.
            kinds = PLAN_KINDS if self.limits_scope else None
            until = self.limits.exhausted_until(now, self.reserve, kinds)
        until = max(until, full_until(self.windows, now))
        if self.minute_limits and "" in self.scope_windows:
            until = max(until, full_until(self.scope_windows[""], now))  # requests that name no model
        return until

    def why_blocked(self, now: float) -> str:
        """Why the quota keeps the account from serving now ("" when it does not)."""
        kinds = PLAN_KINDS if self.limits_scope else None
        if self.limits is not None and self.limits.exhausted_until(now, 0.0, kinds) > now:
            return "quota at zero (rate-limit headers) until reset"
        if self.limits is not None and self.limits.exhausted_until(now, self.reserve, kinds) > now:
            return f"under the reserve ({self.reserve:.0%}) of a quota window until its reset"
        for kind, window in [*self.windows.items(), *self.scope_windows.get("", {}).items()]:
            if window.used(now) >= window.limit:
                return f"configured {WINDOW_LABELS[kind]} limit reached"
        return ""

    def expire(self, now: float) -> float:
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
            for scoped in windows.values():
                scoped.used(now)
        if self.limits is not None:
            rises_at = min(rises_at, self.limits.expire(now))
        for snapshot in self.model_limits.values():
            snapshot.expire(now)
        return 0.0 if rises_at == math.inf else rises_at

    @property
    def headroom(self) -> float:
        """Share of quota left on the tightest limit, as of the pool's last :meth:`expire`."""
        fraction = self.limits.fraction() if self.limits is not None else 1.0
        return min(fraction, room(self.windows), room(self.scope_windows.get("", {})))

    def headroom_for(self, model: str) -> float:
        """:attr:`headroom` as the latest answer for ``model`` (or its group) tells it, with the account's own caps."""
        snapshot = self.model_limits.get(model) if model else None
        if snapshot is None:
            return self.headroom
        return min(snapshot.fraction(), room(self.windows), room(self.scope_windows.get(model, {})))

    @property
    def window_reset_at(self) -> float:
        """The soonest reset of a learned window that is partly used (0.0 when none is known)."""
        return self.limits.soonest_reset(0.0) if self.limits is not None else 0.0

    def clear(self) -> None:
        """Forget learned limits and every count (an operator's reset)."""
        self.limits = None
        self.model_limits = {}
        for window in self.windows.values():
            window.clear()
        self.scope_windows = {}
