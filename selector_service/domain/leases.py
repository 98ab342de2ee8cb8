"""Leases: who holds which account, until when, and what became of leases already returned."""

from __future__ import annotations

import base64
import heapq
import os
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING

from selector_service.domain.account import Account
from selector_service.domain.clients import ClientLimits

if TYPE_CHECKING:
    from selector_service.domain.pool import Pool

RECENTLY_CLOSED = 10_000  # remembered so a second report is answered "already reported", not "unknown"
LEASE_ID_BYTES = 16


class LeaseIds:
    """Unguessable lease ids (16 random bytes, URL-safe base64, as ``secrets.token_urlsafe(16)``), drawn from the
    operating system's random source 256 at a time: one system call per lease was a measurable share of a
    selection."""

    __slots__ = ("_at", "_pool")

    BATCH = 256

    def __init__(self) -> None:
        self._pool = b""
        self._at = 0

    def next(self) -> str:
        at = self._at
        if at >= len(self._pool):
            self._pool, at = os.urandom(LEASE_ID_BYTES * self.BATCH), 0
        self._at = at + LEASE_ID_BYTES
        return base64.urlsafe_b64encode(self._pool[at:at + LEASE_ID_BYTES]).rstrip(b"=").decode()


@dataclass(slots=True)
class Lease:
    lease_id: str
    account: Account
    model: str
    granted_at: float
    expires_at: float
    probe_id: int = 0
    """Non-zero when granted while the account's health was unknown: its answer opens the account."""
    epoch: int = 0
    """The account's admission epoch when granted (see :mod:`.admission`)."""
    answered: bool = False
    """An early report has already told the upstream's 2xx answer."""
    light: bool = False
    """A light call (token counting): not counted in the account's concurrency."""
    scope: str = ""
    """The model scope the lease is for (:mod:`.scopes`); "" for the account as a whole."""
    scope_epoch: int = 0
    """The scope's rest epoch when granted (0: the scope was not resting)."""
    scope_probe: bool = False
    """The first lease for its scope after a rest: its answer ends the rest."""
    client: ClientLimits | None = None
    """The client the lease was granted for (its report counts in the client's windows and spend)."""

    @property
    def probe(self) -> bool:
        return bool(self.probe_id) or self.scope_probe


@dataclass(slots=True)
class Grant:
    """A lease handed out, with what the client needs to use it."""

    lease: Lease
    pool: Pool
    waited: float = 0.0
    """Seconds the call queued before it got the lease."""


class LeaseTable:
    def __init__(self) -> None:
        self._active: dict[str, Lease] = {}
        self._expiries: list[tuple[float, str]] = []
        self._closed: OrderedDict[str, str] = OrderedDict()
        self._ids = LeaseIds()

    def __len__(self) -> int:
        return len(self._active)

    def open(self, account: Account, model: str, now: float, ttl: float, probe_id: int, light: bool = False,
             scope: str = "", scope_epoch: int = 0, scope_probe: bool = False) -> Lease:
        lease = Lease(self._ids.next(), account, model, now, now + ttl, probe_id, account.admission.epoch,
                      light=light, scope=scope, scope_epoch=scope_epoch, scope_probe=scope_probe)
        self._active[lease.lease_id] = lease
        if len(self._expiries) > 2 * len(self._active) + 1024:
            # Reported leases leave their expiry behind; drop those so memory follows the active leases only.
            self._expiries = [(a.expires_at, a.lease_id) for a in self._active.values()]
            heapq.heapify(self._expiries)
        else:
            heapq.heappush(self._expiries, (lease.expires_at, lease.lease_id))
        return lease

    def close(self, lease_id: str, why: str) -> Lease | None:
        """Remove and return an active lease; None when unknown or already closed."""
        lease = self._active.pop(lease_id, None)
        if lease is None:
            return None
        self._closed[lease_id] = why
        while len(self._closed) > RECENTLY_CLOSED:
            self._closed.popitem(last=False)
        return lease

    def get(self, lease_id: str) -> Lease | None:
        """An active lease, without closing it."""
        return self._active.get(lease_id)

    def why_closed(self, lease_id: str) -> str | None:
        return self._closed.get(lease_id)

    def expire(self, now: float) -> list[Lease]:
        """Close and return every lease past its expiry."""
        expired = []
        expiries = self._expiries
        while expiries and expiries[0][0] <= now:
            _, lease_id = heapq.heappop(expiries)
            lease = self.close(lease_id, "expired before it was reported")
            if lease is not None:
                expired.append(lease)
        return expired
