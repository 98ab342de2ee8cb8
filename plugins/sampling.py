"""``random`` and ``p2c``: strategies that look at one or two random candidates, so a pick is O(1)."""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

from selector_service.plugin import AccountView, Candidates, SelectionRequest, check_keys, rng_option


class UniformRandom:
    """A candidate drawn uniformly at random."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng

    def select(self, candidates: Candidates, request: SelectionRequest) -> AccountView:
        return candidates.sample(1, self._rng)[0]


class PowerOfTwoChoices:
    """Two random candidates; the one with more rate-limit headroom for the request's model, then the one with fewer
    requests in flight.

    Sampling two instead of scanning all keeps a pick O(1) while still steering load away from accounts close to
    their limits.
    """

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng

    def select(self, candidates: Candidates, request: SelectionRequest) -> AccountView:
        picked = candidates.sample(2, self._rng)
        if len(picked) == 1:
            return picked[0]
        first, second = picked
        model = request.model
        first_room, second_room = first.headroom_for(model), second.headroom_for(model)
        if second_room != first_room:
            return second if second_room > first_room else first
        return second if second.in_flight < first.in_flight else first


def uniform_random(options: Mapping[str, Any]) -> UniformRandom:
    """Options: ``seed`` (int)."""
    check_keys("random", options, {"seed"})
    return UniformRandom(rng_option("random", options))


def p2c(options: Mapping[str, Any]) -> PowerOfTwoChoices:
    """Options: ``seed`` (int)."""
    check_keys("p2c", options, {"seed"})
    return PowerOfTwoChoices(rng_option("p2c", options))
