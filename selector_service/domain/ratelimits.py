"""Reading providers' rate-limit response headers into what is left and when it resets.

OpenAI sends ``x-ratelimit-{limit,remaining,reset}-{requests,tokens}`` (reset as a duration such as ``6m0s``);
Anthropic sends ``anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-{limit,remaining,reset}`` (reset as
an RFC 3339 time). Input and output tokens are kept apart; a combined token limit counts as both.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from poolgate.rate_limit_times import parse_reset

KINDS = ("requests", "input_tokens", "output_tokens")


@dataclass(slots=True)
class Limit:
    remaining: int
    limit: int
    reset_at: float  # epoch seconds; 0 when unknown


@dataclass(slots=True)
class RateLimitSnapshot:
    """What one response's headers said, per kind (requests, input_tokens, output_tokens)."""

    limits: dict[str, Limit]

    def exhausted_until(self, now: float) -> float:
        """The reset time of a limit known to be at zero, or 0.0 when none is."""
        until = 0.0
        for limit in self.limits.values():
            if limit.remaining <= 0 and limit.reset_at > now:
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


def parse_headers(headers: Mapping[str, str], now: float) -> RateLimitSnapshot:
    """Read whatever rate-limit headers are present (names must be lower-case)."""
    limits: dict[str, Limit] = {}

    def take(kind: str, remaining: str | None, limit: str | None, reset: str | None) -> None:
        rem = _int(remaining)
        if rem is None:
            return
        limits[kind] = Limit(rem, _int(limit) or 0, parse_reset(reset, now) if reset else 0.0)

    get = headers.get
    take("requests", get("x-ratelimit-remaining-requests"), get("x-ratelimit-limit-requests"),
         get("x-ratelimit-reset-requests"))
    take("requests", get("anthropic-ratelimit-requests-remaining"), get("anthropic-ratelimit-requests-limit"),
         get("anthropic-ratelimit-requests-reset"))
    for kind, prefix in (("input_tokens", "anthropic-ratelimit-input-tokens"),
                         ("output_tokens", "anthropic-ratelimit-output-tokens")):
        take(kind, get(f"{prefix}-remaining"), get(f"{prefix}-limit"), get(f"{prefix}-reset"))
    # A combined token limit (OpenAI's, or Anthropic's total) bounds input and output alike.
    for prefix_remaining, prefix_limit, prefix_reset in (
        ("x-ratelimit-remaining-tokens", "x-ratelimit-limit-tokens", "x-ratelimit-reset-tokens"),
        ("anthropic-ratelimit-tokens-remaining", "anthropic-ratelimit-tokens-limit",
         "anthropic-ratelimit-tokens-reset"),
    ):
        if prefix_remaining in headers:
            for kind in ("input_tokens", "output_tokens"):
                if kind not in limits:
                    take(kind, get(prefix_remaining), get(prefix_limit), get(prefix_reset))
    return RateLimitSnapshot(limits)
