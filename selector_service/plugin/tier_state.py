"""Per-tier state that is rebuilt when the tier's accounts change (public through :mod:`selector_service.plugin`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from selector_service.plugin.types import Candidates

StateT = TypeVar("StateT")


class TierStates(Generic[StateT]):
    """One state object per priority tier, rebuilt by ``build`` whenever ``candidates.generation`` changes.

    One strategy instance serves one pool, but it is called with the candidates of whichever tier is selected,
    so a cursor or schedule must never be shared between tiers.
    """

    def __init__(self, build: Callable[[Candidates], StateT]) -> None:
        self._build = build
        self._states: dict[int, tuple[int, StateT]] = {}

    def get(self, candidates: Candidates) -> StateT:
        """The state of ``candidates.tier``, built afresh on first use and whenever the generation has changed."""
        tier, generation = candidates.tier, candidates.generation
        entry = self._states.get(tier)
        if entry is None or entry[0] != generation:
            entry = (generation, self._build(candidates))
            self._states[tier] = entry
        return entry[1]

    def rebuild(self, candidates: Candidates) -> StateT:
        """Drop the tier's state and build it afresh (e.g. after noticing a changed weight)."""
        self._states.pop(candidates.tier, None)
        return self.get(candidates)
