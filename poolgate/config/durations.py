"""Values as users write them in YAML: durations (``30``, ``1.5``, ``"500ms"``, ``"30s"``, ``"5m"``, ``"1h"``), sizes
(``32MiB``), time zone names and SHA-256 digests."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator

from poolgate.day_windows import time_zone

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|sec|secs|m|min|mins|h|hr|d)?\s*$", re.IGNORECASE)
_UNIT_SECONDS = {
    None: 1.0, "ms": 0.001, "s": 1.0, "sec": 1.0, "secs": 1.0,
    "m": 60.0, "min": 60.0, "mins": 60.0, "h": 3600.0, "hr": 3600.0, "d": 86400.0,
}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(b|kb|kib|mb|mib|gb|gib)?\s*$", re.IGNORECASE)
_UNIT_BYTES = {
    None: 1, "b": 1, "kb": 1000, "kib": 1024, "mb": 1000**2, "mib": 1024**2, "gb": 1000**3, "gib": 1024**3,
}


def parse_duration(value: Any) -> float:
    """Seconds from a number (seconds) or a string with a unit; raises ValueError with the accepted forms."""
    if isinstance(value, bool):
        raise ValueError(f"must be a duration such as 30s, 5m or 1h, got {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (match := _DURATION.match(value)):
        unit = match.group(2).lower() if match.group(2) else None
        seconds = float(match.group(1)) * _UNIT_SECONDS[unit]
    else:
        raise ValueError(f"must be a duration such as 30s, 5m or 1h, got {value!r}")
    if seconds < 0:
        raise ValueError(f"must not be negative, got {value!r}")
    return seconds


def parse_size(value: Any) -> int:
    """Bytes from a number or a string such as ``32MiB``."""
    if isinstance(value, bool):
        raise ValueError(f"must be a size such as 32MiB, got {value!r}")
    if isinstance(value, int):
        size = value
    elif isinstance(value, str) and (match := _SIZE.match(value)):
        unit = match.group(2).lower() if match.group(2) else None
        size = int(float(match.group(1)) * _UNIT_BYTES[unit])
    else:
        raise ValueError(f"must be a size such as 32MiB, got {value!r}")
    if size <= 0:
        raise ValueError(f"must be positive, got {value!r}")
    return size


Duration = Annotated[float, BeforeValidator(parse_duration)]
"""A duration in seconds, written as a number of seconds or with a unit."""

Size = Annotated[int, BeforeValidator(parse_size)]
"""A size in bytes, written as a number or with a unit."""


def check_time_zone(name: str) -> str:
    time_zone(name)  # raises ValueError naming what to give
    return name


TimeZoneName = Annotated[str, AfterValidator(check_time_zone)]
"""``UTC`` or an IANA time zone name the system's tzdata has (where calendar days start at midnight)."""


_SHA256 = re.compile(r"[0-9a-f]{64}")


def sha256_hex(value: str, refusal: str) -> str:
    """``value`` as a SHA-256 in lower-case hex ("" stays ""); ValueError(``refusal``) when it is not one."""
    value = value.strip().lower()
    if value and not _SHA256.fullmatch(value):
        raise ValueError(refusal)
    return value
