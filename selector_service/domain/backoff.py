"""How long an account rests after a failure: pure functions of the settings and the streak."""

from __future__ import annotations

import random

from poolgate.config import CircuitSettings, CooldownSettings


def rate_limit_cooldown(
    settings: CooldownSettings, retry_after: float | None, streak: int, rng: random.Random
) -> float:
    """Seconds to cool an account after its ``streak``-th 429 in a row (1 for the first).

    The upstream's retry-after wins (capped by ``max_retry_after``); otherwise exponential backoff from ``base`` to
    ``max``, with up to ``jitter`` of random spread on top.
    """
    if retry_after is not None and retry_after > 0:
        return float(min(retry_after, settings.max_retry_after))
    backoff = min(settings.base * (2 ** max(0, min(streak - 1, 30))), settings.max)
    return float(min(backoff * (1.0 + settings.jitter * rng.random()), settings.max))


def circuit_cooldown(settings: CircuitSettings, opens: int) -> float:
    """How long the circuit stays open the ``opens``-th time in a row (1 for the first)."""
    return float(min(settings.cooldown * (2 ** max(0, min(opens - 1, 30))), settings.max_cooldown))
