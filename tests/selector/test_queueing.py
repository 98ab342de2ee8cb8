"""Concurrency limits: calls queue in FIFO order until an account frees up, or give up at their deadline."""

from __future__ import annotations

import asyncio
import time

import pytest

from selector_service.domain.errors import NoAccountAvailableError
from selector_service.domain.outcomes import Outcome, OutcomeReport
from selector_service.plugin.types import SelectionRequest
from tests.selector.conftest import CoreFactory, pool_config
from tests.support import eventually

ONE_SLOT = "- {name: a, key: sk-test-aaaaaaaa1111, max_concurrency: 1}"


def request() -> SelectionRequest:
    return SelectionRequest(pool="p")


async def test_waiters_are_served_in_arrival_order(make_core: CoreFactory) -> None:
    core = await make_core(pool_config(ONE_SLOT), use_clock=False)
    holder = await core.select(request(), (), timeout=0)
    order: list[int] = []

    async def wait_then_release(i: int) -> None:
        grant = await core.select(request(), (), timeout=5)
        order.append(i)
        await asyncio.sleep(0)
        await core.report(OutcomeReport(grant.lease.lease_id, Outcome.SUCCESS))

    tasks = []
    for i in range(5):
        tasks.append(asyncio.create_task(wait_then_release(i)))
        await asyncio.sleep(0)  # let each call queue before the next arrives
    assert core.pools["p"].waiters and len(core.pools["p"].waiters) == 5
    await core.report(OutcomeReport(holder.lease.lease_id, Outcome.SUCCESS))
    await asyncio.wait_for(asyncio.gather(*tasks), 5)
    assert order == [0, 1, 2, 3, 4]
    assert core.pools["p"].accounts["p/a"].in_flight == 0


async def test_waiting_call_times_out_with_resource_exhausted(make_core: CoreFactory) -> None:
    core = await make_core(pool_config(ONE_SLOT), use_clock=False)
    await core.select(request(), (), timeout=0)
    started = time.monotonic()
    with pytest.raises(NoAccountAvailableError) as exc:
        await core.select(request(), (), timeout=0.3)
    waited = time.monotonic() - started
    assert 0.25 <= waited < 2.0
    assert exc.value.cause == "busy"
    assert not core.pools["p"].waiters  # the timed-out call left the queue


async def test_new_arrivals_queue_behind_waiters(make_core: CoreFactory) -> None:
    core = await make_core(pool_config(ONE_SLOT), use_clock=False)
    holder = await core.select(request(), (), timeout=0)
    first = asyncio.create_task(core.select(request(), (), timeout=5))
    await asyncio.sleep(0)
    await core.report(OutcomeReport(holder.lease.lease_id, Outcome.SUCCESS))
    # The freed slot went to the waiter, not to a call that arrives now.
    with pytest.raises(NoAccountAvailableError):
        await core.select(request(), (), timeout=0)
    assert (await first).lease.account.name == "a"


async def test_cancelled_waiter_leaves_the_queue(make_core: CoreFactory) -> None:
    core = await make_core(pool_config(ONE_SLOT), use_clock=False)
    holder = await core.select(request(), (), timeout=0)
    waiter = asyncio.create_task(core.select(request(), (), timeout=5))
    await eventually(lambda: len(core.pools["p"].waiters) == 1, what="the call queued")
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert not core.pools["p"].waiters
    await core.report(OutcomeReport(holder.lease.lease_id, Outcome.SUCCESS))
    assert core.pools["p"].accounts["p/a"].in_flight == 0


async def test_waiter_gets_account_when_cooldown_ends(make_core: CoreFactory) -> None:
    core = await make_core(pool_config("- {name: a, key: sk-test-aaaaaaaa1111}"), use_clock=False)
    grant = await core.select(request(), (), timeout=0)
    await core.report(OutcomeReport(grant.lease.lease_id, Outcome.RATE_LIMITED, retry_after_ms=300))
    started = time.monotonic()
    again = await core.select(request(), (), timeout=3)
    assert again.lease.account.name == "a"
    assert 0.25 <= time.monotonic() - started < 2.0


async def test_no_wait_when_nothing_can_free_up_before_the_deadline(make_core: CoreFactory) -> None:
    core = await make_core(pool_config("- {name: a, key: sk-test-aaaaaaaa1111}"), use_clock=False)
    grant = await core.select(request(), (), timeout=0)
    await core.report(OutcomeReport(grant.lease.lease_id, Outcome.RATE_LIMITED, retry_after_ms=60_000))
    started = time.monotonic()
    with pytest.raises(NoAccountAvailableError) as exc:
        await core.select(request(), (), timeout=10)
    assert time.monotonic() - started < 0.5  # answered at once: waiting could not help
    assert exc.value.cause == "rate_limited"
    assert exc.value.retry_after == pytest.approx(60, abs=1)


async def test_all_disabled_has_no_retry_time(make_core: CoreFactory) -> None:
    core = await make_core(pool_config("- {name: a, key: sk-test-aaaaaaaa1111}"), use_clock=False)
    grant = await core.select(request(), (), timeout=0)
    await core.report(OutcomeReport(grant.lease.lease_id, Outcome.AUTH_FAILED, http_status=401))
    with pytest.raises(NoAccountAvailableError) as exc:
        await core.select(request(), (), timeout=10)
    assert exc.value.retry_after is None and "1 disabled" in str(exc.value)


async def test_try_select_grants_at_once_and_never_overtakes_a_waiter(make_core: CoreFactory) -> None:
    """The stream's synchronous path: a lease when one is free, None (so the caller may wait) otherwise."""
    core = await make_core(pool_config(ONE_SLOT), use_clock=False)
    holder = core.try_select(request(), ())
    assert holder is not None and holder.lease.account.name == "a"
    assert core.try_select(request(), ()) is None  # the one slot is taken
    waiter = asyncio.create_task(core.select(request(), (), timeout=5))
    await eventually(lambda: len(core.pools["p"].waiters) == 1, what="the call queued")
    await core.report(OutcomeReport(holder.lease.lease_id, Outcome.SUCCESS))
    assert core.try_select(request(), ()) is None  # the freed slot went to the queued call
    grant = await asyncio.wait_for(waiter, 5)
    await core.report(OutcomeReport(grant.lease.lease_id, Outcome.SUCCESS))
    assert core.try_select(request(), ()) is not None
