"""Cooldowns per model: a 429 rests an account for the model (or model group) it was for, and the account keeps
serving the others; after the rest, one probe per model. Through the selector core with a controlled clock and a
real SQLite file."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from selector_service.domain.errors import NoAccountAvailableError
from selector_service.domain.leases import Grant
from selector_service.domain.outcomes import AccountState, Outcome, OutcomeReport
from selector_service.domain.scopes import ModelRests
from selector_service.domain.selector import SelectorCore
from selector_service.domain.state import StateChange
from selector_service.domain.writer import StateWriter
from selector_service.plugin.types import SelectionRequest
from tests.selector.conftest import CoreFactory, FakeClock, open_accounts, pool_config

TWO = """
- {name: a, key: sk-test-aaaaaaaa1111}
- {name: b, key: sk-test-bbbbbbbb2222}
"""
ONE = "- {name: a, key: sk-test-aaaaaaaa1111}"
SETTINGS = {"strategy": "fill_first", "cooldown": "{base: 10s, jitter: 0}"}


async def lease(core: SelectorCore, model: str, timeout: float = 0) -> Grant:
    return await core.select(SelectionRequest(pool="p", model=model), (), timeout=timeout)


async def report(core: SelectorCore, grant: Grant, outcome: Outcome = Outcome.SUCCESS, early: bool = False,
                 **fields: object) -> None:
    status = 429 if outcome is Outcome.RATE_LIMITED else 200
    result = await core.report(OutcomeReport(grant.lease.lease_id, outcome, http_status=status, early=early,
                                             **fields))  # type: ignore[arg-type]
    assert result.recorded


def account(core: SelectorCore, name: str = "a"):  # type: ignore[no-untyped-def]
    return core.pools["p"].accounts[f"p/{name}"]


async def test_a_429_for_one_model_leaves_the_account_serving_the_others(make_core: CoreFactory,
                                                                         clock: FakeClock) -> None:
    core = await make_core(pool_config(TWO, **SETTINGS))
    await open_accounts(core)
    first = await lease(core, "gpt-4o")
    assert first.lease.account.name == "a"
    await report(core, first, Outcome.RATE_LIMITED)
    assert account(core).state(clock())[0] is AccountState.HEALTHY
    assert list(account(core).rests.rests) == ["gpt-4o"]
    for _ in range(5):  # another model: still the first account; the limited model: the other one
        other_model = await lease(core, "gpt-4o-mini")
        same_model = await lease(core, "gpt-4o")
        assert (other_model.lease.account.name, same_model.lease.account.name) == ("a", "b")
        await report(core, other_model)
        await report(core, same_model)
    clock.advance(10.01)
    probe = await lease(core, "gpt-4o")
    assert probe.lease.account.name == "a" and probe.lease.probe  # the model's one probe after its rest
    assert (await lease(core, "gpt-4o")).lease.account.name == "b"  # not a second one while it is out
    await report(core, probe, early=True)  # the upstream answered 2xx: the model is served again
    assert account(core).rests.rests == {}
    assert (await lease(core, "gpt-4o")).lease.account.name == "a"


async def test_a_burst_of_429s_for_a_model_is_one_backoff_step(make_core: CoreFactory, clock: FakeClock) -> None:
    core = await make_core(pool_config(ONE, **SETTINGS))
    await open_accounts(core)
    burst = [await lease(core, "m") for _ in range(10)]
    for grant in burst:
        await report(core, grant, Outcome.RATE_LIMITED)
    rest = account(core).rests.rests["m"]
    assert rest.streak == 1 and rest.until == pytest.approx(clock() + 10)
    clock.advance(10.01)
    probe = await lease(core, "m")
    await report(core, probe, Outcome.RATE_LIMITED)  # fresh news: the next step
    rest = account(core).rests.rests["m"]
    assert rest.streak == 2 and rest.until == pytest.approx(clock() + 20)


async def test_models_of_a_group_rest_together(make_core: CoreFactory) -> None:
    core = await make_core(pool_config(ONE, model_groups="['claude-opus-*']", **SETTINGS))
    await open_accounts(core)
    await report(core, await lease(core, "claude-opus-4-1"), Outcome.RATE_LIMITED)
    assert list(account(core).rests.rests) == ["claude-opus-*"]
    with pytest.raises(NoAccountAvailableError, match="cooling for this model") as caught:
        await lease(core, "claude-opus-4-6")
    assert caught.value.cause == "rate_limited" and caught.value.retry_after == pytest.approx(10, abs=0.1)
    await report(core, await lease(core, "claude-sonnet-4-6"))


async def test_cooldown_scope_account_rests_the_whole_account(make_core: CoreFactory, clock: FakeClock) -> None:
    core = await make_core(pool_config(ONE, cooldown_scope="account", **SETTINGS))
    await open_accounts(core)
    await report(core, await lease(core, "gpt-4o"), Outcome.RATE_LIMITED)
    assert account(core).state(clock())[0] is AccountState.COOLING and account(core).rests.rests == {}
    with pytest.raises(NoAccountAvailableError):
        await lease(core, "gpt-4o-mini")


async def test_a_call_waiting_for_one_model_does_not_hold_up_another(make_core: CoreFactory,
                                                                     clock: FakeClock) -> None:
    core = await make_core(pool_config(ONE, strategy="fill_first", cooldown="{base: 0.2s, jitter: 0}"))
    await open_accounts(core)
    await report(core, await lease(core, "m"), Outcome.RATE_LIMITED)
    waiting = asyncio.create_task(core.select(SelectionRequest(pool="p", model="m"), (), timeout=5))
    await asyncio.sleep(0)
    assert core.pools["p"].waiters  # queued for its model's rest
    other = await lease(core, "n")  # another model is served at once, not queued behind it
    await report(core, other)
    assert not waiting.done()
    clock.advance(0.25)
    grant = await asyncio.wait_for(waiting, 2)  # woken when the model's rest ends: its probe
    assert grant.lease.probe
    await report(core, grant)


async def test_model_rests_survive_a_restart_and_an_operators_reset_clears_them(
        make_core: CoreFactory, clock: FakeClock, tmp_path: Path) -> None:
    database = tmp_path / "shared.db"
    core = await make_core(pool_config(ONE, **SETTINGS), database=database)
    await open_accounts(core)
    await report(core, await lease(core, "gpt-4o"), Outcome.RATE_LIMITED, retry_after_ms=60_000)
    again = await make_core(pool_config(ONE, **SETTINGS), database=database)
    rest = account(again).rests.rests["gpt-4o"]
    assert rest.until == pytest.approx(clock() + 60) and rest.reason.startswith("rate limited (429) for gpt-4o")
    with pytest.raises(NoAccountAvailableError):
        await lease(again, "gpt-4o")
    await again.reset("p", "a")
    assert account(again).rests.rests == {}


async def test_a_models_limit_at_zero_rests_that_model_until_its_reset(make_core: CoreFactory,
                                                                        clock: FakeClock) -> None:
    core = await make_core(pool_config(TWO, **SETTINGS))
    await open_accounts(core)
    first = await lease(core, "gpt-4o")
    await report(core, first, rate_limit_headers={  # a 200 whose headers say the model's requests are used up
        "x-ratelimit-limit-requests": "500", "x-ratelimit-remaining-requests": "0",
        "x-ratelimit-reset-requests": "20s"})
    rest = account(core).rests.rests["gpt-4o"]
    assert rest.until == pytest.approx(clock() + 20) and rest.reason.startswith("quota at zero")
    assert account(core).state(clock())[0] is AccountState.HEALTHY
    assert (await lease(core, "gpt-4o-mini")).lease.account.name == "a"  # other models: still served
    assert (await lease(core, "gpt-4o")).lease.account.name == "b"
    clock.advance(19)
    core.pools["p"].process_due(clock())
    assert (await lease(core, "gpt-4o")).lease.account.name == "b"
    clock.advance(1.01)
    core.pools["p"].process_due(clock())
    probe = await lease(core, "gpt-4o")
    assert probe.lease.account.name == "a" and probe.lease.probe


async def test_a_rest_shorter_than_a_second_stays_in_memory_and_still_gets_one_probe(
        make_core: CoreFactory, clock: FakeClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A provider near its limit can say "at zero, resets in 300 ms" on many answers a second: the model rests and
    then gets one probe, as for any rest, but nothing is written for it (a restart would outlast it)."""
    writes: list[StateChange] = []
    submit = StateWriter.submit
    monkeypatch.setattr(StateWriter, "submit", lambda self, change: writes.append(change) or submit(self, change))
    database = tmp_path / "state.db"
    core = await make_core(pool_config(TWO, **SETTINGS), database=database)
    await open_accounts(core)
    for grant in [await lease(core, "gpt-4o") for _ in range(2)]:  # both accounts answered: nothing left to learn
        await report(core, grant)
    writes.clear()
    zero = {"x-ratelimit-limit-requests": "500", "x-ratelimit-remaining-requests": "0",
            "x-ratelimit-reset-requests": "300ms"}
    await report(core, await lease(core, "gpt-4o"), rate_limit_headers=zero)
    assert account(core).rests.rests["gpt-4o"].until == pytest.approx(clock() + 0.3)
    assert (await lease(core, "gpt-4o")).lease.account.name == "b"  # the model rests on a
    assert account(await make_core(pool_config(TWO, **SETTINGS), database=database)).rests.rests == {}
    clock.advance(0.31)
    core.pools["p"].process_due(clock())
    probe = await lease(core, "gpt-4o")
    assert probe.lease.account.name == "a" and probe.lease.probe
    assert (await lease(core, "gpt-4o")).lease.account.name == "b"  # one probe, not a burst
    await report(core, probe)
    assert account(core).rests.rests == {}
    assert [change for change in writes if change.scope_rests] == []  # neither the rest nor its end was written

    await report(core, await lease(core, "gpt-4o"), rate_limit_headers={**zero, "x-ratelimit-reset-requests": "20s"})
    saved = account(await make_core(pool_config(TWO, **SETTINGS), database=database)).rests.rests
    assert saved["gpt-4o"].until == pytest.approx(clock() + 20)  # a rest that outlasts a restart is saved


async def test_a_plans_window_at_its_limit_rests_the_whole_account(make_core: CoreFactory, clock: FakeClock) -> None:
    core = await make_core(pool_config(ONE, **SETTINGS))
    await open_accounts(core)
    reset = clock() + 300
    await report(core, await lease(core, "claude-opus-4-6"), rate_limit_headers={
        "anthropic-ratelimit-unified-status": "rejected", "anthropic-ratelimit-unified-reset": f"{reset:.0f}"})
    assert account(core).state(clock())[0] is AccountState.COOLING and account(core).rests.rests == {}
    with pytest.raises(NoAccountAvailableError):
        await lease(core, "claude-sonnet-4-6")


async def test_a_call_waits_for_a_models_probe_rather_than_fail(make_core: CoreFactory, clock: FakeClock) -> None:
    core = await make_core(pool_config(ONE, **SETTINGS))
    await open_accounts(core)
    await report(core, await lease(core, "m"), Outcome.RATE_LIMITED)
    clock.advance(10.01)
    probe = await lease(core, "m")
    assert probe.lease.probe
    waiting = asyncio.create_task(lease(core, "m", timeout=5))  # the probe may answer any moment: worth waiting
    await asyncio.sleep(0)
    assert not waiting.done()
    await report(core, probe)
    grant = await asyncio.wait_for(waiting, 2)
    assert grant.lease.account.name == "a" and not grant.lease.probe
    await report(core, grant)


async def test_headroom_is_learned_per_model(make_core: CoreFactory, clock: FakeClock) -> None:
    core = await make_core(pool_config(ONE, **SETTINGS))
    await open_accounts(core)
    await report(core, await lease(core, "gpt-4o"), rate_limit_headers={
        "x-ratelimit-limit-requests": "100", "x-ratelimit-remaining-requests": "10",
        "x-ratelimit-reset-requests": "30s"})
    await report(core, await lease(core, "gpt-4o-mini"), rate_limit_headers={
        "x-ratelimit-limit-requests": "100", "x-ratelimit-remaining-requests": "90",
        "x-ratelimit-reset-requests": "30s"})
    a = account(core).view
    assert a.headroom_for("gpt-4o") == pytest.approx(0.1) and a.headroom_for("gpt-4o-mini") == pytest.approx(0.9)
    assert a.headroom_for("never-asked") == a.headroom  # the latest answer's, for a model with none of its own
    clock.advance(31)
    core.pools["p"].process_due(clock())
    assert a.headroom_for("gpt-4o") == 1.0  # past its reset: full again


async def test_configured_per_minute_caps_count_per_model(make_core: CoreFactory, clock: FakeClock) -> None:
    core = await make_core(pool_config("- {name: a, key: sk-test-aaaaaaaa1111, rpm_limit: 3}", strategy="fill_first"))
    await open_accounts(core)  # a request naming no model: counted apart
    for _ in range(3):
        await report(core, await lease(core, "gpt-4o"))
    with pytest.raises(NoAccountAvailableError, match="cooling for this model") as caught:
        await lease(core, "gpt-4o")
    assert caught.value.retry_after == pytest.approx(60, abs=0.1)
    for _ in range(3):  # another model has a minute of its own
        await report(core, await lease(core, "gpt-4o-mini"))
    assert account(core).state(clock())[0] is AccountState.HEALTHY
    clock.advance(60.01)
    core.pools["p"].process_due(clock())
    await report(core, await lease(core, "gpt-4o"))  # its minute has passed (a cap reached is not bad news: no probe)


async def test_with_account_wide_cooldowns_the_caps_are_the_accounts(make_core: CoreFactory, clock: FakeClock) -> None:
    core = await make_core(pool_config("- {name: a, key: sk-test-aaaaaaaa1111, rpm_limit: 3}",
                                       cooldown_scope="account"))
    await open_accounts(core)
    for model in ("gpt-4o", "gpt-4o-mini"):
        await report(core, await lease(core, model))
    state, reason = account(core).state(clock())
    assert state is AccountState.COOLING and reason == "configured requests per minute limit reached"


def test_news_from_the_database_keeps_a_short_rest_it_cannot_know_of() -> None:
    """Another replica's write makes this one take the account's saved rests: a short rest held only in memory here
    is not among them, and must not be taken as ended by a success."""
    rests = ModelRests()
    rests.at_zero("gpt-4o", 100.5, 100.0, StateChange("p/a"))
    rests.restore({})
    assert rests.rests["gpt-4o"].until == 100.5 and not rests.rests["gpt-4o"].saved
    rests.restore({"gpt-4o": (130.0, "rate limited (429) for gpt-4o, cooling 30 s", 1)})
    assert rests.rests["gpt-4o"].until == 130.0 and rests.rests["gpt-4o"].saved  # now in the database
    rests.restore({})
    assert rests.rests == {}  # cleared by a success elsewhere
