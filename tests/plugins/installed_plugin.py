"""What the fake distributions of ``test_entry_points`` install: their entry points name this module, or one of its
objects (``module:object``), as a real package's would."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from selector_service.plugin import AccountView, Candidates, RegisterStrategy, SelectionRequest, hookimpl


class FirstCandidate:
    def select(self, candidates: Candidates, request: SelectionRequest) -> AccountView:
        return next(iter(candidates))


def first_candidate(options: Mapping[str, Any]) -> FirstCandidate:
    return FirstCandidate()


@hookimpl
def register_strategies(register: RegisterStrategy) -> None:
    register("first_candidate", first_candidate)


class _SameName:
    """A second package's plugin taking the strategy name this module's hook registers."""

    @hookimpl
    def register_strategies(self, register: RegisterStrategy) -> None:
        register("first_candidate", first_candidate)


class _Misspelt:
    @hookimpl
    def register_strategys(self, register: RegisterStrategy) -> None:
        raise AssertionError("never called: loading fails on the misspelt hook")


same_name = _SameName()
misspelt = _Misspelt()
