"""An example poolgate strategy plugin: ``lowest_latency``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from selector_service.plugin import AccountView, Candidates, RegisterStrategy, SelectionRequest, hookimpl


class LowestLatency:
    """The candidate with the lowest recent latency.

    An account with no latency yet (``recent_latency_ms == 0.0``) counts as the fastest, so new accounts get tried;
    ties go to fewer requests in flight, then to config order. Looks at every candidate, so a pick is O(n).
    """

    def select(self, candidates: Candidates, request: SelectionRequest) -> AccountView:
        # min() keeps the first of equal keys, and candidates iterate in config order.
        return min(candidates, key=lambda account: (account.recent_latency_ms, account.in_flight))


def lowest_latency(options: Mapping[str, Any]) -> LowestLatency:
    """The factory poolgate calls once per pool that uses the strategy; this strategy takes no options."""
    if options:
        raise ValueError(f"strategy 'lowest_latency' takes no options, got {', '.join(map(str, options))}")
    return LowestLatency()


@hookimpl
def register_strategies(register: RegisterStrategy) -> None:
    register("lowest_latency", lowest_latency)
