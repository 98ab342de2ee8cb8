"""Validation of ``strategy_options``, for every strategy factory (public through :mod:`selector_service.plugin`).

A factory rejects unknown keys and badly typed values up front, with a ValueError naming the strategy and the option,
which stops start-up (or a reload) with that message."""

from __future__ import annotations

import math
import random
from collections.abc import Collection, Mapping
from typing import Any


def check_keys(strategy: str, options: Mapping[str, Any], allowed: Collection[str]) -> None:
    """Raise ValueError when ``options`` has a key ``strategy`` does not know."""
    if not isinstance(options, Mapping):
        raise ValueError(f"strategy {strategy!r}: strategy_options must be a mapping, got {type(options).__name__}")
    unknown = sorted(str(key) for key in options if key not in allowed)
    if unknown:
        known = ", ".join(sorted(allowed)) or "none"
        raise ValueError(f"strategy {strategy!r}: unknown option(s) {', '.join(unknown)}; allowed options: {known}")


def int_option(strategy: str, options: Mapping[str, Any], key: str, default: int, minimum: int) -> int:
    """An integer option of at least ``minimum`` (booleans are not integers here)."""
    value = options.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"strategy {strategy!r}: option {key!r} must be an integer >= {minimum}, got {value!r}")
    return value


def weight_option(strategy: str, options: Mapping[str, Any], key: str, default: float) -> float:
    """A finite, non-negative number."""
    value = options.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise ValueError(f"strategy {strategy!r}: option {key!r} must be a finite number >= 0, got {value!r}")
    return float(value)


def rng_option(strategy: str, options: Mapping[str, Any]) -> random.Random:
    """The strategy's own random source; seeded when the ``seed`` option is set (for reproducible runs)."""
    if "seed" not in options:
        return random.Random()
    seed = options["seed"]
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"strategy {strategy!r}: option 'seed' must be an integer, got {seed!r}")
    return random.Random(seed)
