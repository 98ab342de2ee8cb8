"""``reset_soonest``: spend first the quota that refreshes first."""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from typing import Any

from selector_service.plugin import AccountView, Candidates, SelectionRequest, check_keys, int_option, rng_option

DEFAULT_SAMPLE_SIZE = 16


class ResetSoonest:
    """Among a random sample of at most ``sample_size`` candidates (every candidate has headroom: the selector only
    offers those), the one whose learned rate-limit or quota window resets soonest; accounts with no known window
    come last, ties go to fewer requests in flight. Capacity about to be refreshed is used before capacity that
    must last: an account whose 5-hour window resets in ten minutes serves before one whose window has just begun.
    """

    def __init__(self, sample_size: int, rng: random.Random) -> None:
        self._sample_size = sample_size
        self._rng = rng

    def select(self, candidates: Candidates, request: SelectionRequest) -> AccountView:
        sampled = candidates.sample(self._sample_size, self._rng)
        return min(sampled, key=lambda account: (account.window_reset_at or math.inf, account.in_flight))


def reset_soonest(options: Mapping[str, Any]) -> ResetSoonest:
    """Options: ``sample_size`` (int >= 1) and ``seed`` (int)."""
    check_keys("reset_soonest", options, {"sample_size", "seed"})
    return ResetSoonest(int_option("reset_soonest", options, "sample_size", DEFAULT_SAMPLE_SIZE, 1),
                        rng_option("reset_soonest", options))
