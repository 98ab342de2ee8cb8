"""Calls waiting for an account: FIFO per pool, each until its own deadline.

A waiting call is woken when a lease returns, an operator frees an account, or a cooldown ends (a timer is set for
the earliest one while anyone waits); freed accounts go to the oldest call that can use them. Nothing busy-loops.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from selector_service.domain.account import Account
from selector_service.domain.errors import SelectorError
from selector_service.domain.leases import Grant, Lease
from selector_service.domain.pool import Pool, Waiter
from selector_service.plugin.types import SelectionRequest

GrantFn = Callable[[Pool, Account, SelectionRequest, float], Grant]
ExhaustedFn = Callable[[Pool, frozenset[str], float, str], SelectorError]
ReleaseFn = Callable[[Lease, str], None]


def _future(waiter: Waiter) -> asyncio.Future[Grant]:
    future: asyncio.Future[Grant] = waiter.future  # type: ignore[assignment]
    return future


class WaitQueue:
    """The waiting calls of every pool (each pool holds its own deque; this owns the timers and the rules)."""

    def __init__(
        self, clock: Callable[[], float], grant: GrantFn, exhausted: ExhaustedFn, release: ReleaseFn
    ) -> None:
        self._clock = clock
        self._grant = grant
        self._exhausted = exhausted
        self._release = release
        self._timers: dict[str, asyncio.TimerHandle] = {}

    async def wait(self, pool: Pool, request: SelectionRequest, excluded: frozenset[str], deadline: float) -> Grant:
        """Queue behind earlier calls until an account can serve this one, or raise the pool's shortage error."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Grant] = loop.create_future()
        waiter = Waiter(request, excluded, future)
        pool.waiters.append(waiter)
        queued_at = self._clock()
        timer = loop.call_later(max(0.0, deadline - queued_at), self._time_out, pool, waiter)
        self._schedule_wakeup(pool)
        try:
            grant = await future
            grant.waited = self._clock() - queued_at
            return grant
        except asyncio.CancelledError:
            if future.done() and not future.cancelled() and future.exception() is None:
                self._release(future.result().lease, "the caller went away")  # granted just as it was cancelled
            raise
        finally:
            timer.cancel()
            if waiter in pool.waiters:
                pool.waiters.remove(waiter)

    def serve(self, pool: Pool) -> None:
        """Hand freed accounts to queued calls, oldest first."""
        if not pool.waiters:
            return
        now = self._clock()
        pool.process_due(now)
        for waiter in list(pool.waiters):
            if not pool.available_count:
                break
            future = _future(waiter)
            if future.done():
                continue
            account = pool.choose(waiter.request, waiter.excluded, now)
            if account is not None:
                pool.waiters.remove(waiter)
                future.set_result(self._grant(pool, account, waiter.request, now))
        self._schedule_wakeup(pool)

    def fail_all(self, pool: Pool, error: SelectorError) -> None:
        """End every call waiting on ``pool`` with ``error`` (the pool was removed, or the selector stops)."""
        self._cancel_timer(pool)
        while pool.waiters:
            future = _future(pool.waiters.popleft())
            if not future.done():
                future.set_exception(error)

    def _time_out(self, pool: Pool, waiter: Waiter) -> None:
        future = _future(waiter)
        if not future.done():
            pool.waiters.remove(waiter)
            future.set_exception(self._exhausted(pool, waiter.excluded, self._clock(),
                                                 pool.scope_of(waiter.request)))

    def _cancel_timer(self, pool: Pool) -> None:
        handle = self._timers.pop(pool.name, None)
        if handle is not None:
            handle.cancel()

    def _schedule_wakeup(self, pool: Pool) -> None:
        """While calls wait, wake up when the next cooldown ends (a returned lease wakes them directly)."""
        self._cancel_timer(pool)
        when = pool.next_wakeup()
        if pool.waiters and when is not None:
            delay = max(0.0, when - self._clock()) + 0.001
            self._timers[pool.name] = asyncio.get_running_loop().call_later(delay, self.serve, pool)
