"""The built-in strategies for their tests; the fakes they are tested with come from the public
:mod:`selector_service.plugin.testing`, as a third-party strategy's would."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import poolgate_plugins.strategies

from selector_service.plugin import Strategy
from selector_service.plugin.testing import FakeAccount, strategies_of


def make_strategy(name: str, options: Mapping[str, Any] | None = None) -> Strategy:
    """A built-in strategy through a fresh registry holding only the built-ins."""
    return strategies_of(poolgate_plugins.strategies).create(name, options or {})


def weighted_accounts(weights: Sequence[int]) -> list[FakeAccount]:
    """Accounts a0, a1, ... in config order with the given weights."""
    return [FakeAccount(name=f"a{i}", index=i, weight=weight) for i, weight in enumerate(weights)]
