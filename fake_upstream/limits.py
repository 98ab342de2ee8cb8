"""The rate-limit headers of the fake's answers: per-minute limits, or the subscription window a key's ``windowN`` /
``lowwindow`` words describe, in OpenAI's and Anthropic's real names and formats."""

from __future__ import annotations

import re
import time
import uuid
from datetime import UTC, datetime, timedelta

OPENAI_REQUESTS_LIMIT = 10000
"""``x-ratelimit-limit-requests`` of OpenAI answers: requests per minute (``limitN`` in a key's words sets N)."""
ANTHROPIC_REQUESTS_LIMIT = 4000
"""``anthropic-ratelimit-requests-limit`` of Anthropic answers (``limitN`` too)."""
LIMIT_WORD = re.compile(r"limit(\d+)")
LOW_WINDOW = ("allowed_warning", 0.95, 3600)
"""``lowwindow``: the window's status, utilization and seconds to its reset."""
WINDOW_WORD = re.compile(r"window(\d+)")
"""``windowN`` in a key's words: a spent subscription window that resets in N seconds."""


def ratelimit_headers(anthropic: bool, used: int, reset_in: float, words: str) -> dict[str, str]:
    """The rate-limit headers of an answer: the per-minute limits (``used`` requests so far in the key's minute,
    which ends in ``reset_in`` seconds), or the subscription window ``windowN`` / ``lowwindow`` in ``words``
    describe. The fake only reports its limits; it does not enforce them (the ``ratelimited`` words do that)."""
    quota = _window(words)
    custom = LIMIT_WORD.search(words)
    if anthropic:
        if quota is not None:  # a subscription account: the unified window headers instead of the per-minute ones
            return {**_unified_headers(*quota), "request-id": f"req_{uuid.uuid4().hex[:24]}"}
        limit = int(custom.group(1)) if custom else ANTHROPIC_REQUESTS_LIMIT
        reset = (datetime.now(UTC) + timedelta(seconds=reset_in)).strftime("%Y-%m-%dT%H:%M:%SZ")
        return {
            "anthropic-ratelimit-requests-limit": str(limit),
            "anthropic-ratelimit-requests-remaining": str(max(0, limit - used)),
            "anthropic-ratelimit-requests-reset": reset,
            "anthropic-ratelimit-input-tokens-limit": "400000",
            "anthropic-ratelimit-input-tokens-remaining": "399000",
            "anthropic-ratelimit-input-tokens-reset": reset,
            "anthropic-ratelimit-output-tokens-limit": "80000",
            "anthropic-ratelimit-output-tokens-remaining": "79000",
            "anthropic-ratelimit-output-tokens-reset": reset,
            "request-id": f"req_{uuid.uuid4().hex[:24]}",
        }
    limit = int(custom.group(1)) if custom else OPENAI_REQUESTS_LIMIT
    remaining = max(0, limit - used)
    # OpenAI writes a reset under a second in milliseconds ("120ms"), longer ones as Go durations ("59s").
    reset_requests = f"{max(1, round(reset_in * 1000))}ms" if reset_in < 1 else go_duration(round(reset_in))
    if quota is not None:
        status, _utilization, reset_window = quota
        remaining = 0 if status == "rejected" else limit * 5 // 100
        reset_requests = go_duration(reset_window)
    return {
        "x-ratelimit-limit-requests": str(limit),
        "x-ratelimit-remaining-requests": str(remaining),
        "x-ratelimit-reset-requests": reset_requests,
        "x-ratelimit-limit-tokens": "2000000",
        "x-ratelimit-remaining-tokens": "1999000",
        "x-ratelimit-reset-tokens": "30ms",
        "x-request-id": f"req_{uuid.uuid4().hex[:24]}",
    }


def _window(words: str) -> tuple[str, float, int] | None:
    """The subscription window ``words`` script (status, utilization, seconds to its reset); None for none."""
    exhausted = WINDOW_WORD.search(words)
    if exhausted:
        return "rejected", 1.0, int(exhausted.group(1))
    return LOW_WINDOW if "lowwindow" in words else None


def _unified_headers(status: str, utilization: float, reset_in: int) -> dict[str, str]:
    """Anthropic's subscription-window headers, as its API sends them to Claude subscription (OAuth) accounts: the
    five-hour window is the representative claim, at ``status`` (allowed, allowed_warning, rejected) and
    ``utilization``, resetting in ``reset_in`` seconds; the seven-day window is allowed; overage is off."""
    now = int(time.time())
    reset = str(now + reset_in)
    headers = {
        "anthropic-ratelimit-unified-status": status,
        "anthropic-ratelimit-unified-reset": reset,
        "anthropic-ratelimit-unified-representative-claim": "five_hour",
        "anthropic-ratelimit-unified-5h-status": status,
        "anthropic-ratelimit-unified-5h-reset": reset,
        "anthropic-ratelimit-unified-5h-utilization": str(utilization),
        "anthropic-ratelimit-unified-7d-status": "allowed",
        "anthropic-ratelimit-unified-7d-reset": str(now + 4 * 24 * 3600),
        "anthropic-ratelimit-unified-7d-utilization": "0.4",
        "anthropic-ratelimit-unified-fallback-percentage": "0.5",
        "anthropic-ratelimit-unified-overage-status": "rejected",
        "anthropic-ratelimit-unified-overage-disabled-reason": "org_level_disabled",
    }
    if status != "allowed":
        headers["anthropic-ratelimit-unified-5h-surpassed-threshold"] = "1.0" if status == "rejected" else "0.9"
    return headers


def go_duration(seconds: int) -> str:
    """``90`` -> ``1m30s``: a whole number of seconds as OpenAI writes its reset times (Go's ``time.Duration``)."""
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    return f"{minutes}m{secs}s" if minutes else f"{secs}s"
