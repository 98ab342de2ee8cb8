"""``zenith``: the best-scoring of a random sample, scored on headroom, latency and errors."""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

from selector_service.plugin import (
    AccountView,
    Candidates,
    SelectionRequest,
    check_keys,
    int_option,
    rng_option,
    weight_option,
)

DEFAULT_WEIGHTS = {"headroom": 0.6, "latency": 0.3, "errors": 0.1}
DEFAULT_SAMPLE_SIZE = 16


class Zenith:
    """Scores ``w_h * headroom + w_l * latency_inverse + w_e * (1 - error_rate)``; the highest score wins, ties go
    to fewer requests in flight.

    ``latency_inverse`` is the fastest known ``recent_latency_ms`` among the scored accounts divided by this
    account's, and 1.0 for an account with no latency yet, so new accounts get tried. Only a random sample of at
    most ``sample_size`` candidates is scored, which keeps a pick flat however large the pool is.
    """

    def __init__(self, headroom: float, latency: float, errors: float, sample_size: int, rng: random.Random) -> None:
        self._headroom = headroom
        self._latency = latency
        self._errors = errors
        self._sample_size = sample_size
        self._rng = rng

    def select(self, candidates: Candidates, request: SelectionRequest) -> AccountView:
        scored = candidates.sample(self._sample_size, self._rng)
        known = [account.recent_latency_ms for account in scored if account.recent_latency_ms > 0]
        fastest = min(known) if known else 0.0
        model = request.model
        return max(scored, key=lambda account: (self.score(account, fastest, model), -account.in_flight))

    def score(self, account: AccountView, fastest_ms: float, model: str = "") -> float:
        """The account's score; its headroom for ``model`` (providers limit per model) when given."""
        latency_ms = account.recent_latency_ms
        latency_inverse = fastest_ms / latency_ms if latency_ms > 0 else 1.0
        return (
            self._headroom * account.headroom_for(model)
            + self._latency * latency_inverse
            + self._errors * (1.0 - account.error_rate)
        )


def zenith(options: Mapping[str, Any]) -> Zenith:
    """Options: ``headroom``, ``latency``, ``errors`` (weights >= 0, not all 0), ``sample_size`` (int >= 1) and
    ``seed`` (int)."""
    check_keys("zenith", options, {*DEFAULT_WEIGHTS, "sample_size", "seed"})
    weights = {key: weight_option("zenith", options, key, default) for key, default in DEFAULT_WEIGHTS.items()}
    if not any(weights.values()):
        raise ValueError("strategy 'zenith': options 'headroom', 'latency' and 'errors' must not all be 0")
    sample_size = int_option("zenith", options, "sample_size", DEFAULT_SAMPLE_SIZE, 1)
    return Zenith(**weights, sample_size=sample_size, rng=rng_option("zenith", options))
