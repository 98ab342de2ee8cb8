"""``fill_first``: the first account in config order that is a candidate."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from selector_service.plugin import AccountView, Candidates, SelectionRequest, check_keys


class FillFirst:
    """Uses the first account until it is unavailable (busy, limited, cooling down), then the second, and so on.

    Walks the tier in config order, so a pick costs as many steps as there are unavailable accounts before the
    first available one.
    """

    def select(self, candidates: Candidates, request: SelectionRequest) -> AccountView:
        for account in candidates.ordered:
            if account in candidates:
                return account
        return next(iter(candidates))  # not reached while ordered holds every candidate


def fill_first(options: Mapping[str, Any]) -> FillFirst:
    """No options."""
    check_keys("fill_first", options, ())
    return FillFirst()
