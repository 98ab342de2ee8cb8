"""Admission by knowledge, driven through the selector core with a controlled clock: probes, early answers, stale
news, slow start, lapsed probes, and waiters at a cooldown's end."""

from __future__ import annotations

import asyncio

import pytest

from selector_service.domain.admission import Probing
from selector_service.domain.errors import NoAccountAvailableError
from selector_service.domain.leases import Grant
from selector_service.domain.outcomes import AccountState, Outcome, OutcomeReport
from selector_service.domain.selector import SelectorCore
from selector_service.plugin.types import SelectionRequest
from tests.selector.conftest import CoreFactory, FakeClock, open_accounts, pool_config

ONE = "- {name: a, key: sk-test-aaaaaaaa1111}"
TWO = """
- {name: a, key: sk-test-aaaaaaaa1111}
- {name: b, key: sk-test-bbbbbbbb2222}
"""


async def lease(core: SelectorCore, timeout: float = 0) -> Grant:
    return await core.select(SelectionRequest(pool="p"), (), timeout=timeout)


async def report(core: SelectorCore, grant: Grant, outcome: Outcome, early: bool = False, **fields: object) -> None:
    result = await core.report(OutcomeReport(grant.lease.lease_id, outcome, early=early, **fields))  # type: ignore[arg-type]
    assert result.recorded


def account(core: SelectorCore, name: str = "a"):  # type: ignore[no-untyped-def]
    return core.pools["p"].accounts[f"p/{name}"]


async def test_a_new_account_takes_one_probe_until_it_answers(make_core: CoreFactory) -> None:
    core = await make_core(pool_config(ONE))
    probe = await lease(core)
    assert probe.lease.probe and account(core).state(0)[0] is AccountState.PROBING
    with pytest.raises(NoAccountAvailableError, match="1 probe in flight") as caught:
        await lease(core)
    assert caught.value.cause == "busy"  # its answer may come any moment: worth waiting
    await report(core, probe, Outcome.SUCCESS, early=True, http_status=200)
    assert account(core).admission.probing is None
    others = [await lease(core) for _ in range(5)]
    assert not any(g.lease.probe for g in others) and account(core).in_flight == 6


async def test_probe_leases_and_the_reason_shown(make_core: CoreFactory, clock: FakeClock) -> None:
    core = await make_core(pool_config(ONE, probe_leases=3))
    probes = [await lease(core) for _ in range(3)]
    assert all(g.lease.probe for g in probes)
    state, reason = account(core).state(clock())
    assert state is AccountState.PROBING and reason == "new: 3 probe leases until the upstream answers"
    with pytest.raises(NoAccountAvailableError):
        await lease(core)


async def test_a_failed_probe_rests_the_account_and_probes_again_after(make_core: CoreFactory,
                                                                       clock: FakeClock) -> None:
    core = await make_core(pool_config(TWO, strategy="fill_first", cooldown="{base: 1s, jitter: 0}"))
    probe = await lease(core)
    assert probe.lease.account.name == "a"
    await report(core, probe, Outcome.RATE_LIMITED, http_status=429)
    assert account(core).state(clock())[0] is AccountState.COOLING
    assert (await lease(core)).lease.account.name == "b"
    clock.advance(1.01)
    state, reason = account(core).state(clock())
    assert state is AccountState.PROBING and reason.startswith("after cooldown")
    again = await lease(core)
    assert again.lease.account.name == "a" and again.lease.probe


async def test_waiters_at_a_cooldowns_end_leave_one_at_a_time(make_core: CoreFactory, clock: FakeClock) -> None:
    core = await make_core(pool_config(ONE, cooldown="{base: 1s, jitter: 0}"))
    await open_accounts(core)
    await report(core, await lease(core), Outcome.RATE_LIMITED, http_status=429)
    waiters = [asyncio.create_task(lease(core, timeout=30)) for _ in range(8)]
    await asyncio.sleep(0)
    clock.advance(1.01)
    core.queue.serve(core.pools["p"])  # what the cooldown's timer does
    await asyncio.sleep(0)
    done = [t for t in waiters if t.done()]
    assert len(done) == 1 and done[0].result().lease.probe  # only the probe left; the others wait for its answer
    await report(core, done[0].result(), Outcome.SUCCESS, early=True, http_status=200)
    await asyncio.sleep(0)
    assert all(t.done() for t in waiters)
    assert not any(t.result().lease.probe for t in waiters if t is not done[0])


async def test_stale_server_errors_do_not_step_the_circuit_again(make_core: CoreFactory, clock: FakeClock) -> None:
    core = await make_core(pool_config(ONE, circuit="{failures: 2, cooldown: 10s}"))
    await open_accounts(core)
    grants = [await lease(core) for _ in range(6)]
    for grant in grants:  # six failures in flight together: the circuit opens once, at its threshold
        await report(core, grant, Outcome.SERVER_ERROR, http_status=502)
    a = account(core)
    assert (a.health.circuit_opens, a.health.failure_streak, a.health.failures_total) == (1, 2, 6)
    assert a.cooldown_remaining(clock()) == pytest.approx(10.0)
    clock.advance(10.01)
    probe = await lease(core)
    assert probe.lease.probe and a.admission.probing is Probing.HALF_OPEN
    await report(core, probe, Outcome.TIMEOUT)
    assert a.health.circuit_opens == 2 and a.cooldown_remaining(clock()) == pytest.approx(20.0)


async def test_a_stale_429_may_lengthen_the_rest_but_not_step_it(make_core: CoreFactory, clock: FakeClock) -> None:
    core = await make_core(pool_config(ONE, cooldown="{base: 1s, jitter: 0}"))
    await open_accounts(core)
    first, second, third = await lease(core), await lease(core), await lease(core)
    await report(core, first, Outcome.RATE_LIMITED)
    await report(core, second, Outcome.RATE_LIMITED)  # no retry-after: the same news, no second step
    a = account(core)
    assert a.health.rate_limit_streak == 1 and a.health.rate_limited_total == 2
    assert a.cooldown_remaining(clock()) == pytest.approx(1.0)
    await report(core, third, Outcome.RATE_LIMITED, retry_after_ms=20_000)  # its own wait is honoured
    assert a.health.rate_limit_streak == 1 and a.cooldown_remaining(clock()) == pytest.approx(20.0)


async def test_slow_start_doubles_per_success(make_core: CoreFactory) -> None:
    core = await make_core(pool_config(ONE, slow_start=8))
    await report(core, await lease(core), Outcome.SUCCESS)
    held = []
    for cap in (2, 4, 8):
        held += [await lease(core) for _ in range(cap - len(held))]
        with pytest.raises(NoAccountAvailableError, match="1 at max concurrency"):
            await lease(core)
        await report(core, held.pop(), Outcome.SUCCESS)  # one success: the next step
    held += [await lease(core) for _ in range(20)]  # past slow_start: fully open
    assert account(core).admission.cap == 0


async def test_an_unanswered_probe_gives_up_its_slot_after_probe_timeout(make_core: CoreFactory,
                                                                         clock: FakeClock) -> None:
    core = await make_core(pool_config(ONE, probe_timeout="5s"))
    stuck = await lease(core)
    with pytest.raises(NoAccountAvailableError):
        await lease(core)
    clock.advance(5.01)
    second = await lease(core)
    assert second.lease.probe and account(core).admission.probes_in_flight == 1
    await report(core, stuck, Outcome.CANCELLED)  # the lapsed probe's late report changes nothing
    assert account(core).admission.probes_in_flight == 1
    await report(core, second, Outcome.SUCCESS)
    assert account(core).state(clock())[0] is AccountState.HEALTHY


async def test_an_early_answer_then_the_final_report_count_one_success(make_core: CoreFactory) -> None:
    core = await make_core(pool_config(ONE, slow_start=8))
    probe = await lease(core)
    await report(core, probe, Outcome.SUCCESS, early=True, http_status=200,
                 rate_limit_headers={"x-ratelimit-remaining-requests": "7", "x-ratelimit-limit-requests": "10"})
    a = account(core)
    assert a.admission.cap == 2 and a.successes_total == 0 and a.in_flight == 1
    assert a.quota.limits is not None and a.quota.limits.limits["requests"].remaining == 7
    await report(core, probe, Outcome.SUCCESS)
    assert a.admission.cap == 2 and a.successes_total == 1 and a.in_flight == 0  # not a second step
    late = await core.report(OutcomeReport(probe.lease.lease_id, Outcome.SUCCESS, early=True))
    assert not late.recorded and late.detail == "not recorded: already reported"


async def test_an_operators_reset_and_enable_probe_first(make_core: CoreFactory, clock: FakeClock) -> None:
    core = await make_core(pool_config(ONE))
    await report(core, await lease(core), Outcome.AUTH_FAILED, http_status=401)
    assert account(core).state(clock())[0] is AccountState.DISABLED
    await core.enable("p", "a")
    assert account(core).admission.probing is Probing.OPERATOR
    probe = await lease(core)
    assert probe.lease.probe
    with pytest.raises(NoAccountAvailableError):
        await lease(core)
