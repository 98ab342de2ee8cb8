"""Daily caps: rpd_limit and tpd_limit count a calendar day in the pool's quota_timezone (controlled clock)."""

from __future__ import annotations

import pytest

from poolgate.config import ConfigError, parse_config
from selector_service.domain.errors import NoAccountAvailableError
from selector_service.domain.outcomes import AccountState, Outcome, OutcomeReport
from selector_service.domain.selector import SelectorCore
from selector_service.plugin.types import SelectionRequest
from tests.selector.conftest import CoreFactory, FakeClock, open_accounts, pool_config

# The clock starts at 1_800_000_000: 2027-01-15 08:00 UTC, 00:00 in Los Angeles.


async def serve(core: SelectorCore, tokens: int = 0) -> str:
    grant = await core.select(SelectionRequest(pool="p", model="m"), (), timeout=0)
    result = await core.report(OutcomeReport(grant.lease.lease_id, Outcome.SUCCESS, http_status=200,
                                             input_tokens=tokens))
    assert result.recorded
    return grant.lease.account.name


async def test_rpd_limit_stops_an_account_until_the_next_day(make_core: CoreFactory, clock: FakeClock) -> None:
    core = await make_core(pool_config("- {name: a, key: sk-test-aaaaaaaa1111, rpd_limit: 5}"))
    await open_accounts(core)  # the first of the day's five
    for _ in range(4):
        await serve(core)
    account = core.pools["p"].accounts["p/a"]
    state, reason = account.state(clock())
    assert state is AccountState.COOLING and reason == "configured requests per day limit reached"
    with pytest.raises(NoAccountAvailableError) as caught:
        await serve(core)
    assert caught.value.retry_after == pytest.approx(16 * 3600, abs=1)  # until midnight UTC
    clock.advance(16 * 3600 - 1)
    core.pools["p"].process_due(clock())
    with pytest.raises(NoAccountAvailableError):
        await serve(core)
    clock.advance(2)
    core.pools["p"].process_due(clock())
    assert await serve(core) == "a"  # a new day


async def test_days_follow_the_pools_time_zone_and_tokens_count_too(make_core: CoreFactory,
                                                                    clock: FakeClock) -> None:
    core = await make_core(pool_config("- {name: a, key: sk-test-aaaaaaaa1111, tpd_limit: 1000}",
                                       quota_timezone="America/Los_Angeles"))
    await open_accounts(core)
    await serve(core, tokens=1000)
    with pytest.raises(NoAccountAvailableError) as caught:
        await serve(core)
    assert caught.value.retry_after == pytest.approx(24 * 3600, abs=1)  # it is midnight in Los Angeles


def test_an_unknown_time_zone_is_refused() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config("pools:\n  p:\n    api_key: sk-test-a-0001\n    quota_timezone: Mars/Olympus\n")
    assert any("pools.p.quota_timezone" in e and "IANA" in e for e in caught.value.errors), caught.value.errors
    with pytest.raises(ConfigError) as caught:  # the defaults every pool inherits are checked too
        parse_config("defaults: {quota_timezone: Mars/Olympus}\npools:\n  p: {api_key: sk-test-a-0001}\n")
    assert any("defaults.quota_timezone" in e and "IANA" in e for e in caught.value.errors), caught.value.errors
