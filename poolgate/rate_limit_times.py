"""The times in providers' rate-limit headers, read one way for the edge and the selector.

A reset or a wait comes as a bare number of seconds (``30``), a Go-style duration (OpenAI's ``6m0s``, ``20ms``), an
RFC 3339 time (Anthropic's ``2027-01-15T08:00:30Z``) or an HTTP date (``retry-after``). A time without a zone is UTC,
as HTTP dates are by definition.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from functools import lru_cache

_GO_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|us|µs|ns|h|m|s)")
_UNIT = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}


@lru_cache(maxsize=4096)
def parse_header_duration(text: str) -> float | None:
    """``"6m0s"`` / ``"20ms"`` / ``"1.5s"`` / ``"30"`` -> seconds; None when it is not a duration.

    Cached: every report carries reset durations, and providers repeat a small set of them (``"0s"``, ``"6ms"``,
    ``"1m0s"``), and a cache hit costs about a twentieth of a parse."""
    text = text.strip()
    try:
        return _finite(float(text))
    except ValueError:
        pass
    parts = _GO_DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        return None
    return sum(float(n) * _UNIT[u] for n, u in parts)


def _finite(seconds: float) -> float | None:
    """``seconds``, at least 0; None for infinity and NaN (``"inf"`` reads as a float, but is no wait)."""
    return max(0.0, seconds) if math.isfinite(seconds) else None


def parse_reset(text: str, now: float) -> float:
    """A reset header value -> epoch seconds (duration from now, RFC 3339 time, or HTTP date); 0.0 if unreadable."""
    seconds = parse_header_duration(text)
    if seconds is not None:
        return now + seconds
    text = text.strip()
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return 0.0
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


def parse_retry_after(headers: Mapping[str, str], now: float) -> float | None:
    """Seconds the upstream asks to wait: ``retry-after-ms``, else ``retry-after``; None when neither is readable.

    ``headers`` has lower-case names. A time already past is a wait of 0.
    """
    if (ms := headers.get("retry-after-ms")) is not None:
        try:
            seconds = _finite(float(ms) / 1000.0)
        except ValueError:
            seconds = None
        if seconds is not None:
            return seconds
    if (value := headers.get("retry-after")) is not None:
        reset = parse_reset(value, now)
        if reset:
            return max(0.0, reset - now)
    return None
