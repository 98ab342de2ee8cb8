"""Clients' limits and budgets: a caller (the edge) names the client of each selection and sends its limits
(``SelectAccountRequest.client``); the selector enforces them here.

- ``rpm_limit`` / ``tpm_limit``: leases and reported tokens per client over a sliding minute, counted in memory on
  the lease and the report (as accounts' configured limits are, :mod:`.windows`); per selector replica. A selection
  that waits in a pool's queue counts from its admission (and is taken back if it gets no lease), so a burst of
  concurrent requests gets exactly ``rpm_limit`` leases. Tokens are known only when reported: requests admitted
  while the tpm window still had room may take it over the limit (by one request's tokens each).
- budgets: the cost of each report (the usage log's, from ``prices:``) is added to the client's spend of its day and
  month (midnights in ``budget_timezone``). Spend lives in the database: this replica's increments are written and
  every client's current spend read back in one transaction by :meth:`ClientBook.sync`, which the replication poller
  runs about twice a second, so replicas sharing a database add up exactly and see each other's spend within about
  a second. A client whose spend has reached a budget gets no lease until the period resets; requests already in
  flight when it is reached still finish (and count), which bounds the overspend.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Protocol, runtime_checkable

from poolgate.day_windows import day_end, time_zone
from selector_service.domain.errors import ClientLimitError, InvalidRequestError
from selector_service.domain.windows import MinuteWindow

log = logging.getLogger("poolgate.selector.clients")

MAX_CLIENT_NAME = 100
MAX_CHECKED = 10_000
"""Clients' limits remembered as valid (checked once each; forgotten all at once beyond this many)."""
PeriodKey = tuple[str, str]
"""(client name, period): a period is ``day 2026-12-05 UTC`` or ``month 2026-12 Europe/Paris``."""


@dataclass(frozen=True, slots=True)
class ClientLimits:
    """Whom a selection is for, and the limits the caller set for it (0: none)."""

    name: str
    rpm_limit: int = 0
    tpm_limit: int = 0
    daily_budget: float = 0.0
    monthly_budget: float = 0.0
    timezone: str = "UTC"

    def check(self) -> None:
        """Raise InvalidRequestError naming the field when the limits cannot be used."""
        if not self.name or len(self.name) > MAX_CLIENT_NAME:
            raise InvalidRequestError("client.name", f"required, at most {MAX_CLIENT_NAME} characters")
        for field in ("rpm_limit", "tpm_limit", "daily_budget", "monthly_budget"):
            if getattr(self, field) < 0:
                raise InvalidRequestError(f"client.{field}", "must not be negative (0 means no limit)")
        try:
            time_zone(self.timezone)
        except ValueError as exc:
            raise InvalidRequestError("client.budget_timezone", str(exc)) from None


@dataclass(frozen=True, slots=True)
class Periods:
    """The day and month that hold a moment in one time zone, and when each ends."""

    day: str
    day_ends: float
    month: str
    month_ends: float


def periods_at(now: float, zone_name: str) -> Periods:
    zone = time_zone(zone_name)
    moment = datetime.fromtimestamp(now, zone)
    first = datetime(moment.year + moment.month // 12, moment.month % 12 + 1, 1, tzinfo=zone)
    return Periods(f"day {moment.date().isoformat()} {zone_name}", day_end(now, zone),
                   f"month {moment.year:04d}-{moment.month:02d} {zone_name}", first.timestamp())


@runtime_checkable
class SpendStore(Protocol):
    """Where clients' spend is kept (implemented by the storage layer)."""

    async def sync_client_spend(self, increments: list[tuple[str, str, float, float]],
                                now: float) -> list[tuple[str, str, float]]:
        """Add each (client, period, period end, USD) in one transaction, then return every (client, period,
        spent) whose period has not ended at ``now``."""
        ...


class ClientBook:
    """Per client: its minute windows, and its spend per day and month (the database's plus this replica's
    increments not yet written)."""

    def __init__(self, store: SpendStore | None, clock: Callable[[], float]) -> None:
        self._store = store
        self._clock = clock
        self._requests: dict[str, MinuteWindow] = {}
        self._tokens: dict[str, MinuteWindow] = {}
        self._stored: dict[PeriodKey, float] = {}
        self._pending: dict[PeriodKey, tuple[float, float]] = {}  # key -> (period end, USD not yet written)
        self._writing: dict[PeriodKey, tuple[float, float]] = {}  # being written: counted until read back
        self._periods: dict[str, Periods] = {}
        self._checked: set[ClientLimits] = set()
        self._syncing: asyncio.Future[list[tuple[str, str, float]]] | None = None

    def periods(self, zone: str, now: float) -> Periods:
        """The current day and month in ``zone`` (cached until the day ends)."""
        periods = self._periods.get(zone)
        if periods is None or now >= periods.day_ends:
            periods = self._periods[zone] = periods_at(now, zone)
        return periods

    def spent(self, client: str, period: str) -> float:
        key = (client, period)
        pending, writing = self._pending.get(key), self._writing.get(key)
        return (self._stored.get(key, 0.0) + (pending[1] if pending is not None else 0.0)
                + (writing[1] if writing is not None else 0.0))

    def admit(self, client: ClientLimits, now: float) -> None:
        """Raise :class:`ClientLimitError` when ``client`` may not have a lease now (InvalidRequestError when its
        limits cannot be used)."""
        if client not in self._checked:
            client.check()
            if len(self._checked) >= MAX_CHECKED:
                self._checked.clear()
            self._checked.add(client)
        for limit, windows, what in ((client.rpm_limit, self._requests, "requests"),
                                     (client.tpm_limit, self._tokens, "tokens")):
            if not limit:
                continue
            window = windows.get(client.name)
            if window is not None and window.used(now) >= limit:
                wait = max(0.001, window.frees_at() - now)
                raise ClientLimitError(client.name, (
                    f"client {client.name!r} has used its limit of {limit:,} {what} per minute (edge.clients[]."
                    f"{'rpm' if what == 'requests' else 'tpm'}_limit); retry in {wait:.1f} s"),
                    wait, "client_rate_limited")
        if client.daily_budget or client.monthly_budget:
            periods = self.periods(client.timezone, now)
            # The month first: when both are spent, the month's reset is the one worth waiting for.
            for kind, budget, period, ends in (("monthly", client.monthly_budget, periods.month, periods.month_ends),
                                               ("daily", client.daily_budget, periods.day, periods.day_ends)):
                if budget and self.spent(client.name, period) >= budget:
                    resets = datetime.fromtimestamp(ends, time_zone(client.timezone)).isoformat(timespec="minutes")
                    raise ClientLimitError(client.name, (
                        f"client {client.name!r} has spent its {kind} budget of ${budget:,.2f} (spent "
                        f"${self.spent(client.name, period):,.2f}); it resets at {resets} ({client.timezone}), in "
                        f"{_duration(ends - now)}"), ends - now, "client_budget")

    def leased(self, client: ClientLimits, now: float) -> None:
        """Count a lease of ``client`` (its rpm window, while it has a limit): when it is granted, or when a selection
        that may wait is admitted, so that selections waiting in a queue hold their places in the limit."""
        if client.rpm_limit:
            self._window(self._requests, client.name).add(now, 1)

    def not_leased(self, client: ClientLimits, counted_at: float) -> None:
        """Take back what :meth:`leased` counted at ``counted_at`` for a selection that got no lease."""
        window = self._requests.get(client.name)
        if client.rpm_limit and window is not None:
            window.take_back(counted_at, 1)

    def reported(self, client: ClientLimits, tokens: int, cost: float, now: float) -> None:
        """Count a report of a lease of ``client``: its tokens (tpm window, while it has a limit) and cost (spend of
        its day and month)."""
        if client.tpm_limit:
            self._window(self._tokens, client.name).add(now, tokens)
        if cost > 0:
            periods = self.periods(client.timezone, now)
            for period, ends in ((periods.day, periods.day_ends), (periods.month, periods.month_ends)):
                key = (client.name, period)
                pending = self._pending.get(key)
                self._pending[key] = (ends, cost + (pending[1] if pending is not None else 0.0))

    async def sync(self) -> None:
        """Write this replica's spend increments and read back every client's current spend (one transaction).

        The write runs in a task of its own: a caller that gives up (the replication poll's timeout, shutdown) does
        not stop it, and the increments go back to pending only if the write itself failed, so none is written
        twice. Until it ends they count as being written; a sync that finds one still running waits for it first.
        """
        if self._store is None:
            return
        if self._syncing is not None:
            await asyncio.shield(self._syncing)
        batch, self._pending = self._pending, {}
        self._writing = batch
        increments = [(client, period, ends, usd) for (client, period), (ends, usd) in batch.items()]
        task = self._syncing = asyncio.ensure_future(self._store.sync_client_spend(increments, self._clock()))
        task.add_done_callback(partial(self._synced, batch))
        await asyncio.shield(task)

    def _synced(self, batch: dict[PeriodKey, tuple[float, float]],
                task: asyncio.Future[list[tuple[str, str, float]]]) -> None:
        self._syncing = None
        self._writing = {}
        if task.cancelled() or task.exception() is not None:
            for key, (ends, usd) in batch.items():  # not written: kept for the next sync
                pending = self._pending.get(key)
                self._pending[key] = (ends, usd + (pending[1] if pending is not None else 0.0))
            return
        self._stored = {(client, period): spent for client, period, spent in task.result()}

    @staticmethod
    def _window(windows: dict[str, MinuteWindow], name: str) -> MinuteWindow:
        window = windows.get(name)
        if window is None:
            window = windows[name] = MinuteWindow(0)
        return window

    def forget_idle(self, now: float) -> None:
        """Drop the windows of clients with nothing in the last minute (names come from callers: bound memory)."""
        for windows in (self._requests, self._tokens):
            for name in [name for name, window in windows.items() if not window.used(now)]:
                del windows[name]


def _duration(seconds: float) -> str:
    hours, rest = divmod(int(max(0.0, seconds)), 3600)
    return f"{hours} h {rest // 60} min" if hours else f"{rest // 60} min {rest % 60} s"
