"""Calendar days in a time zone, for daily quotas (``rpd_limit``, ``tpd_limit``): when the day that holds a moment
ends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


@lru_cache(maxsize=64)
def time_zone(name: str) -> tzinfo:
    """The time zone ``name`` (``UTC``, or an IANA name); raises ValueError saying what to give."""
    if name.upper() in ("UTC", "Z", "ETC/UTC"):
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name[:60]!r}: give an IANA name such as Europe/Paris or "
                         "America/Los_Angeles (the system's tzdata must have it), or UTC") from None


def day_end(now: float, zone: tzinfo) -> float:
    """The Unix time of the next midnight in ``zone`` after ``now``."""
    tomorrow = (datetime.fromtimestamp(now, zone) + timedelta(days=1)).date()
    return datetime(tomorrow.year, tomorrow.month, tomorrow.day, tzinfo=zone).timestamp()
