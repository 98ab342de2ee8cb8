"""Applying a new config at run time: unchanged accounts keep state and leases, removed ones drain."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from poolgate.config import ConfigError, parse_config
from selector_service.domain.admission import Probing
from selector_service.domain.errors import UnknownPoolError
from selector_service.domain.outcomes import AccountState, Outcome, OutcomeReport
from selector_service.domain.state import PersistedState
from selector_service.plugin.manager import load_strategies
from selector_service.plugin.types import SelectionRequest
from tests.selector.conftest import CoreFactory, FakeClock, open_accounts

BEFORE = """
pools:
  p:
    strategy: fill_first
    accounts:
      - {name: a, key: sk-test-aaaaaaaa1111}
      - {name: b, key: sk-test-bbbbbbbb2222}
"""


async def test_unchanged_accounts_keep_state_and_leases(make_core: CoreFactory, clock: FakeClock) -> None:
    core = await make_core(parse_config(BEFORE))
    await open_accounts(core)
    held = await core.select(SelectionRequest("p"), (), 0)
    cooled = await core.select(SelectionRequest("p"), (), 0)
    await core.report(OutcomeReport(cooled.lease.lease_id, Outcome.RATE_LIMITED, retry_after_ms=60_000))
    summary = await core.reload(parse_config(BEFORE.replace("strategy: fill_first", "strategy: round_robin")
                                             + "      - {name: c, key: sk-test-cccccccc3333}\n"))
    assert summary.accounts_added == ["p/c"] and summary.accounts_removed == []
    pool = core.pools["p"]
    a = pool.accounts["p/a"]
    assert a is held.lease.account and a.in_flight == 1
    assert a.state(clock())[0] is AccountState.COOLING
    assert (await core.report(OutcomeReport(held.lease.lease_id, Outcome.SUCCESS))).recorded
    assert a.in_flight == 0


async def test_removed_account_drains(make_core: CoreFactory) -> None:
    core = await make_core(parse_config(BEFORE))
    first = await core.select(SelectionRequest("p"), (), 0)
    assert first.lease.account.name == "a"
    summary = await core.reload(parse_config(BEFORE.replace("      - {name: a, key: sk-test-aaaaaaaa1111}\n", "")))
    assert summary.accounts_removed == ["p/a"]
    for _ in range(3):
        grant = await core.select(SelectionRequest("p"), (), 0)
        assert grant.lease.account.name == "b"
        await core.report(OutcomeReport(grant.lease.lease_id, Outcome.SUCCESS))
    late = await core.report(OutcomeReport(first.lease.lease_id, Outcome.SUCCESS))
    assert late.recorded and first.lease.account.in_flight == 0
    assert [s.account.name for s in core.snapshots("p")[0].accounts] == ["b"]


async def test_changed_key_is_a_fresh_account(make_core: CoreFactory, clock: FakeClock) -> None:
    core = await make_core(parse_config(BEFORE))
    grant = await core.select(SelectionRequest("p"), (), 0)
    await core.report(OutcomeReport(grant.lease.lease_id, Outcome.AUTH_FAILED, http_status=401))
    await core.reload(parse_config(BEFORE.replace("sk-test-aaaaaaaa1111", "sk-test-rotated-9999")))
    rotated = core.pools["p"].accounts["p/a"]
    assert rotated.state(clock())[0] is AccountState.PROBING and rotated.admission.probing is Probing.NEW
    assert (await core.select(SelectionRequest("p"), (), 0)).lease.account.name == "a"


async def test_pools_added_and_removed(make_core: CoreFactory) -> None:
    core = await make_core(parse_config(BEFORE))
    held = await core.select(SelectionRequest("p"), (), 0)
    summary = await core.reload(parse_config("pools:\n  q: {api_key: sk-test-qqqqqqqq1111}\n"))
    assert (summary.pools_added, summary.pools_removed) == (["q"], ["p"])
    with pytest.raises(UnknownPoolError):
        await core.select(SelectionRequest("p"), (), 0)
    assert (await core.select(SelectionRequest("q"), (), 0)).lease.account.name == "key-1"
    assert (await core.report(OutcomeReport(held.lease.lease_id, Outcome.SUCCESS))).recorded


async def test_bad_strategy_changes_nothing(make_core: CoreFactory) -> None:
    core = await make_core(parse_config(BEFORE))
    with pytest.raises(ConfigError) as caught:
        await core.reload(parse_config(BEFORE.replace("fill_first", "fastest")
                                       + "      - {name: c, key: sk-test-cccccccc3333}\n"))
    [error] = caught.value.errors
    assert error.startswith("pools.p.strategy: unknown strategy 'fastest'; installed strategies: ")
    assert list(core.pools["p"].accounts) == ["p/a", "p/b"]
    assert core.pools["p"].config.strategy == "fill_first"


@pytest.mark.parametrize(("fault", "error"), [
    (TypeError("unexpected option 'speed'"), "pools.p.strategy_options: unexpected option 'speed'"),
    (RuntimeError("boom"), "pools.p.strategy: strategy 'broken' failed to build: RuntimeError: boom"),
])
async def test_a_strategy_whose_factory_raises_changes_nothing(
    make_core: CoreFactory, fault: Exception, error: str
) -> None:
    """A plugin's factory that raises anything is a reload error naming the pool; it never escapes the reload."""
    def broken(options: object) -> object:
        raise fault

    registry = load_strategies()
    registry.register("broken", broken, provider="tests")  # type: ignore[arg-type]
    core = await make_core(parse_config(BEFORE), strategies=registry)
    with pytest.raises(ConfigError) as caught:
        await core.reload(parse_config(BEFORE.replace("fill_first", "broken")))
    assert caught.value.errors == [error]
    assert core.pools["p"].config.strategy == "fill_first"
    assert (await core.select(SelectionRequest("p"), (), 0)).lease.account.name == "a"


async def test_selections_during_a_reload_are_served(make_core: CoreFactory) -> None:
    """While a reload waits for the saved health of its new accounts, the accounts it kept go on serving (the
    new one is not leased before its health is known)."""
    rotating = BEFORE.replace("fill_first", "round_robin")  # every available account takes its turn
    core = await make_core(parse_config(rotating))
    store = core._store
    loading = asyncio.Event()
    release = asyncio.Event()
    real_load = store.load

    async def slow_load(rows: list[tuple[str, str, str, str, str]]) -> dict[str, PersistedState]:
        loading.set()
        await release.wait()
        return await real_load(rows)

    store.load = slow_load  # type: ignore[method-assign]
    reload = asyncio.create_task(core.reload(parse_config(rotating + "      - {name: c, key: sk-test-cccccccc3333}\n")))
    await asyncio.wait_for(loading.wait(), 5)
    served = []
    for _ in range(6):
        grant = await core.select(SelectionRequest("p"), (), 0)
        served.append(grant.lease.account.name)
        await core.report(OutcomeReport(grant.lease.lease_id, Outcome.SUCCESS))
    assert set(served) == {"a", "b"}  # the kept accounts, in turn; never the new one
    release.set()
    assert (await reload).accounts_added == ["p/c"]
    assert core.pools["p"].available_count == 3


async def test_a_selector_with_a_bad_strategy_starts_nothing_and_creates_no_database(tmp_path: Path) -> None:
    from selector_service.app import start_selector

    with pytest.raises(ConfigError) as caught:
        await start_selector(parse_config(BEFORE.replace("fill_first", "fastest")), listen="127.0.0.1:0",
                             database=str(tmp_path / "state.db"))
    assert caught.value.errors[0].startswith("pools.p.strategy: unknown strategy 'fastest'")
    assert list(tmp_path.iterdir()) == []
