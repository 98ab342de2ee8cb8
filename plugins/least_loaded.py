"""``least_loaded``: the candidate with the fewest requests in flight relative to its capacity."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from selector_service.plugin import AccountView, Candidates, SelectionRequest, check_keys


def load(account: AccountView) -> float:
    """``in_flight / max_concurrency``, or plain ``in_flight`` for an account without a concurrency limit."""
    if account.max_concurrency > 0:
        return account.in_flight / account.max_concurrency
    return float(account.in_flight)


class LeastLoaded:
    """Lowest load; ties go to more headroom, then to config order.

    Looks at every candidate, so a pick is O(n): fine for pools of tens or hundreds of accounts; for very large
    pools ``p2c`` gives most of the benefit in O(1).
    """

    def select(self, candidates: Candidates, request: SelectionRequest) -> AccountView:
        # min() keeps the first of equal keys, and candidates iterate in config order.
        return min(candidates, key=lambda account: (load(account), -account.headroom))


def least_loaded(options: Mapping[str, Any]) -> LeastLoaded:
    """No options."""
    check_keys("least_loaded", options, ())
    return LeastLoaded()
