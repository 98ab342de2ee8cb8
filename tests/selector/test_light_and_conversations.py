"""Light leases (token counting) and agent conversations, through the selector core with a controlled clock."""

from __future__ import annotations

import pytest

from selector_service.domain.errors import NoAccountAvailableError
from selector_service.domain.leases import Grant
from selector_service.domain.outcomes import AccountState, Outcome, OutcomeReport
from selector_service.domain.selector import SelectorCore
from selector_service.plugin.types import SelectionRequest
from tests.selector.conftest import CoreFactory, FakeClock, open_accounts, pool_config

LIMITED = "- {name: a, key: sk-test-aaaaaaaa1111, max_concurrency: 1, rpm_limit: 2}"
THREE = """
- {name: a, key: sk-test-aaaaaaaa1111}
- {name: b, key: sk-test-bbbbbbbb2222}
- {name: c, key: sk-test-cccccccc3333}
"""


async def lease(core: SelectorCore, **fields: object) -> Grant:
    return await core.select(SelectionRequest(pool="p", **fields), (), timeout=0)  # type: ignore[arg-type]


async def report(core: SelectorCore, grant: Grant, outcome: Outcome = Outcome.SUCCESS, **fields: object) -> None:
    result = await core.report(OutcomeReport(grant.lease.lease_id, outcome, **fields))  # type: ignore[arg-type]
    assert result.recorded


async def test_light_leases_count_in_neither_concurrency_nor_request_rate(make_core: CoreFactory) -> None:
    core = await make_core(pool_config(LIMITED))
    await open_accounts(core)  # one request of the two a minute
    account = core.pools["p"].accounts["p/a"]
    counts = [await lease(core, light=True) for _ in range(5)]
    assert account.in_flight == 0 and all(g.lease.light for g in counts)
    generation = await lease(core)  # the concurrency slot and the second request of the minute are still free
    assert account.in_flight == 1
    with pytest.raises(NoAccountAvailableError):
        await lease(core, light=True)  # at its concurrency limit: not given a count either
    for grant in counts:
        await report(core, grant)
    await report(core, generation)
    assert account.in_flight == 0 and account.requests_total == 7


async def test_a_light_call_answered_429_cools_the_account_down(make_core: CoreFactory, clock: FakeClock) -> None:
    core = await make_core(pool_config(LIMITED))
    await open_accounts(core)
    await report(core, await lease(core, light=True), Outcome.RATE_LIMITED, http_status=429, retry_after_ms=5000)
    assert core.pools["p"].accounts["p/a"].state(clock())[0] is AccountState.COOLING
    with pytest.raises(NoAccountAvailableError):
        await lease(core, light=True)


async def test_a_conversation_stays_on_its_account_without_sticky_sessions(make_core: CoreFactory,
                                                                          clock: FakeClock) -> None:
    core = await make_core(pool_config(THREE, strategy="round_robin", cooldown="{base: 10s, jitter: 0}"))
    await open_accounts(core)
    first = await lease(core, session_key="conv-1", conversation=True)
    home = first.lease.account.name
    await report(core, first)
    for _ in range(5):
        again = await lease(core, session_key="conv-1", conversation=True)
        assert again.lease.account.name == home
        await report(core, again)
    plain = {(await lease(core, session_key="user-7")).lease.account.name for _ in range(3)}
    assert len(plain) > 1  # a plain session key sticks only on pools with sticky_sessions
    # The account is rate limited: the conversation moves once, then stays where it went.
    limited = await lease(core, session_key="conv-1", conversation=True)
    await report(core, limited, Outcome.RATE_LIMITED, http_status=429)
    moved = await lease(core, session_key="conv-1", conversation=True)
    assert moved.lease.account.name != home
    await report(core, moved)
    for _ in range(3):
        again = await lease(core, session_key="conv-1", conversation=True)
        assert again.lease.account.name == moved.lease.account.name
        await report(core, again)


async def test_a_pool_can_turn_conversation_affinity_off(make_core: CoreFactory) -> None:
    core = await make_core(pool_config(THREE, strategy="round_robin", conversation_affinity="false"))
    await open_accounts(core)
    names = set()
    for _ in range(3):
        grant = await lease(core, session_key="conv-1", conversation=True)
        names.add(grant.lease.account.name)
        await report(core, grant)
    assert len(names) == 3
