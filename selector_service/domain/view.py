"""What a strategy receives for an account: a read-only view (an ``AccountView``), made once per account.

Strategies see an account's identity, load and headroom, and nothing they could change: no setters, no lease or
health methods. The view reads the account's live state, so it is never rebuilt per request.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from selector_service.domain.account import Account
    from selector_service.domain.load import Load
    from selector_service.domain.quota import Quota


class AccountReadView:
    """One account as strategies see it (satisfies ``selector_service.plugin.AccountView``)."""

    __slots__ = ("_account", "_load", "_quota", "account_id", "name")

    def __init__(self, account: Account) -> None:
        self._load: Load = account.load
        self._quota: Quota = account.quota
        self.account_id: str = account.account_id  # an account's id and name never change (a new key is a new one)
        self.name: str = account.name
        self._account = account  # last: from here on the view is sealed (see __setattr__)

    def __setattr__(self, name: str, value: object) -> None:
        if hasattr(self, "_account"):
            raise AttributeError(f"an account's view is read-only; {name!r} cannot be set")
        object.__setattr__(self, name, value)

    def __repr__(self) -> str:
        return f"<account {self.account_id}>"

    @property
    def index(self) -> int:
        return self._account.index

    @property
    def weight(self) -> int:
        return self._account.weight

    @property
    def priority(self) -> int:
        return self._account.priority

    @property
    def max_concurrency(self) -> int:
        return self._account.max_concurrency

    @property
    def in_flight(self) -> int:
        return self._load.in_flight

    @property
    def requests_total(self) -> int:
        return self._load.requests_total

    @property
    def recent_latency_ms(self) -> float:
        return self._load.recent_latency_ms

    @property
    def error_rate(self) -> float:
        return self._load.error_rate

    @property
    def headroom(self) -> float:
        return self._quota.headroom

    def headroom_for(self, model: str) -> float:
        return self._quota.headroom_for(model)

    @property
    def window_reset_at(self) -> float:
        return self._quota.window_reset_at
