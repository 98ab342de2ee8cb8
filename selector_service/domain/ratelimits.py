"""Reading providers' rate-limit response headers into what is left and when it resets.

OpenAI sends ``x-ratelimit-{limit,remaining,reset}-{requests,tokens}`` (reset as a duration such as ``6m0s``);
Anthropic sends ``anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-{limit,remaining,reset}`` (reset as
an RFC 3339 time). Input and output tokens are kept apart; a combined token limit counts as both.

Subscription plans announce their quota windows (Anthropic's 5-hour and weekly windows) as
``anthropic-ratelimit-unified-{window}-{utilization,reset,status}`` (a share used 0..1, a reset in epoch seconds,
``allowed``/``allowed_warning``/``rejected``), and the plan's verdict as ``anthropic-ratelimit-unified-status`` and
``-reset``. Each window is kept as a limit of :data:`WINDOW_SCALE` units (``window_5h``, ``window_7d`` …); a rejected
one is at zero until its reset. The ``overage`` window (paid extra usage beyond the plan) is not a limit of the plan.
"""

from __future__ import annotations

import math
import re
from collections.abc import Container, Mapping
from dataclasses import dataclass, replace

from poolgate.rate_limit_times import parse_reset

KINDS = ("requests", "input_tokens", "output_tokens")
MODEL_KINDS = frozenset(KINDS)
"""Limits a provider sets per model (requests and tokens per minute)."""
WINDOW_SCALE = 1000
"""Units of a plan's window, whose headers give only the share used."""
_UNIFIED = re.compile(r"anthropic-ratelimit-unified-(?P<window>[a-z0-9_-]+?)-(?:utilization|status)")
_UNIFIED_PREFIX = "anthropic-ratelimit-unified-"
_UNIFIED_STATUS = "anthropic-ratelimit-unified-status"
_EPOCH_FROM = 1e9
"""A reset value above this many seconds is a time (epoch seconds), not a wait."""


@dataclass(slots=True)
class Limit:
    remaining: int
    limit: int
    reset_at: float  # epoch seconds; 0 when unknown


@dataclass(slots=True)
class RateLimitSnapshot:
    """What one response's headers said, per kind (requests, input_tokens, output_tokens)."""

    limits: dict[str, Limit]

    def exhausted_until(self, now: float, reserve: float = 0.0, kinds: Container[str] | None = None) -> float:
        """The latest reset time of a limit known to be at zero, or with less than ``reserve`` (a share, 0..1) of it
        left; 0.0 when none is. ``kinds``: only those limits (``MODEL_KINDS``, :data:`PLAN_KINDS`)."""
        until = 0.0
        for kind, limit in self.limits.items():
            # Whether the limit is low first: most are not, and that answer costs no call.
            remaining = limit.remaining
            if remaining > 0 and not (reserve > 0 and limit.limit > 0 and remaining < reserve * limit.limit):
                continue
            if limit.reset_at > now and (kinds is None or kind in kinds):
                until = max(until, limit.reset_at)
        return until

    def expire(self, now: float) -> float:
        """Refill the limits whose reset time has come (full again, as the providers define reset); return the
        earliest reset still to come of a limit that is not full (``inf`` when there is none)."""
        rises_at = math.inf
        for limit in self.limits.values():
            if not limit.reset_at:
                continue
            if limit.reset_at <= now:
                limit.remaining, limit.reset_at = max(limit.remaining, limit.limit), 0.0
            elif limit.remaining < limit.limit:
                rises_at = min(rises_at, limit.reset_at)
        return rises_at

    def soonest_reset(self, now: float) -> float:
        """The earliest reset still to come of a limit that is partly used (0.0 when none is)."""
        resets = [lim.reset_at for lim in self.limits.values() if lim.reset_at > now and lim.remaining < lim.limit]
        return min(resets) if resets else 0.0

    def fraction(self) -> float:
        """Share of quota left on the tightest limit, 0..1 (1.0 when nothing is known)."""
        fractions = [lim.remaining / lim.limit for lim in self.limits.values() if lim.limit > 0]
        return max(0.0, min(1.0, min(fractions))) if fractions else 1.0


def _int(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        return int(float(text))
    except ValueError:
        return None


_SEPARATE = (
    ("requests", "x-ratelimit-remaining-requests", "x-ratelimit-limit-requests", "x-ratelimit-reset-requests"),
    ("requests", "anthropic-ratelimit-requests-remaining", "anthropic-ratelimit-requests-limit",
     "anthropic-ratelimit-requests-reset"),
    ("input_tokens", "anthropic-ratelimit-input-tokens-remaining", "anthropic-ratelimit-input-tokens-limit",
     "anthropic-ratelimit-input-tokens-reset"),
    ("output_tokens", "anthropic-ratelimit-output-tokens-remaining", "anthropic-ratelimit-output-tokens-limit",
     "anthropic-ratelimit-output-tokens-reset"),
)
"""(kind, remaining, limit, reset) header names of the limits that count one kind; a later one wins."""
_COMBINED = (
    ("x-ratelimit-remaining-tokens", "x-ratelimit-limit-tokens", "x-ratelimit-reset-tokens"),
    ("anthropic-ratelimit-tokens-remaining", "anthropic-ratelimit-tokens-limit", "anthropic-ratelimit-tokens-reset"),
)
"""Header names of a combined token limit (OpenAI's, or Anthropic's total): it bounds input and output alike, where
no separate limit is given."""


def _limit(remaining: str, limit: str | None, reset: str | None, now: float) -> Limit | None:
    rem = _int(remaining)
    if rem is None:
        return None
    return Limit(rem, _int(limit) or 0, parse_reset(reset, now) if reset else 0.0)


def parse_headers(headers: Mapping[str, str], now: float) -> RateLimitSnapshot:
    """Read whatever rate-limit headers are present (names must be lower-case). Runs on every report: a header that
    is absent costs one lookup."""
    limits: dict[str, Limit] = {}
    get = headers.get
    for kind, remaining_name, limit_name, reset_name in _SEPARATE:
        remaining = get(remaining_name)
        if remaining is not None and (limit := _limit(remaining, get(limit_name), get(reset_name), now)) is not None:
            limits[kind] = limit
    for remaining_name, limit_name, reset_name in _COMBINED:
        remaining = get(remaining_name)
        if remaining is None or (combined := _limit(remaining, get(limit_name), get(reset_name), now)) is None:
            continue
        for kind in ("input_tokens", "output_tokens"):
            if kind not in limits:
                limits[kind] = replace(combined)  # each refills on its own
    _unified_windows(headers, now, limits)
    return RateLimitSnapshot(limits)


class _PlanKinds(Container[str]):
    """A plan's windows (``window``, ``window_5h`` …): the account's, whatever model was asked for."""

    def __contains__(self, kind: object) -> bool:
        return isinstance(kind, str) and kind.startswith("window")


PLAN_KINDS = _PlanKinds()


def _unified_windows(headers: Mapping[str, str], now: float, limits: dict[str, Limit]) -> None:
    """A subscription plan's windows, and its overall verdict when it has rejected the request."""
    windows = {match["window"] for name in headers
               if name.startswith(_UNIFIED_PREFIX) and (match := _UNIFIED.fullmatch(name))}
    if not windows and _UNIFIED_STATUS not in headers:
        return
    for window in sorted(windows - {"overage"}):
        prefix = f"anthropic-ratelimit-unified-{window}"
        reset = _reset_time(headers.get(f"{prefix}-reset"), now)
        used = _share(headers.get(f"{prefix}-utilization"))
        if headers.get(f"{prefix}-status", "").strip().lower() == "rejected":
            used = 1.0
        if used is not None:
            limits[f"window_{window}"] = Limit(round((1.0 - used) * WINDOW_SCALE), WINDOW_SCALE, reset)
    if headers.get("anthropic-ratelimit-unified-status", "").strip().lower() == "rejected":
        reset = _reset_time(headers.get("anthropic-ratelimit-unified-reset"), now)
        if reset:
            limits["window"] = Limit(0, WINDOW_SCALE, reset)


def _share(text: str | None) -> float | None:
    try:
        value = float(text) if text is not None else None
    except ValueError:
        return None
    return None if value is None or not math.isfinite(value) else min(1.0, max(0.0, value))


def _reset_time(text: str | None, now: float) -> float:
    """An epoch-seconds reset (the unified headers'), or any other reset form; 0.0 when unreadable."""
    if not text:
        return 0.0
    try:
        value = float(text)
    except ValueError:
        return parse_reset(text, now)
    if not math.isfinite(value):
        return 0.0
    return value if value > _EPOCH_FROM else now + max(0.0, value)
