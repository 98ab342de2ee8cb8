"""The public API for poolgate plugins.

A strategy plugin is a module with a ``register_strategies`` hook::

    from selector_service.plugin import hookimpl, Candidates, SelectionRequest, AccountView

    class LowestLatency:
        def select(self, candidates: Candidates, request: SelectionRequest) -> AccountView:
            return min(candidates, key=lambda a: a.recent_latency_ms)

    @hookimpl
    def register_strategies(register):
        register("lowest_latency", lambda options: LowestLatency())

and is made known to poolgate by an entry point in its package's ``pyproject.toml``::

    [project.entry-points.poolgate]
    my_strategies = "my_package.strategies"

After ``pip install``, ``strategy: lowest_latency`` in a pool's config selects it.
"""

from selector_service.plugin.spec import hookimpl
from selector_service.plugin.types import (
    AccountView,
    Candidates,
    RegisterStrategy,
    SelectionRequest,
    Strategy,
    StrategyFactory,
)

__all__ = [
    "AccountView",
    "Candidates",
    "RegisterStrategy",
    "SelectionRequest",
    "Strategy",
    "StrategyFactory",
    "hookimpl",
]
