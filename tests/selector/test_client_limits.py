"""A selection's client limits in the selector's core (controlled clock, real SQLite file): tpm over a sliding
minute, daily and monthly budgets in the client's time zone that reset at its midnights, spend kept in the database
across a restart, limits that cannot be used refused naming the field; a usage log from before clients migrated."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from selector_service.domain.clients import ClientLimits
from selector_service.domain.errors import ClientLimitError, InvalidRequestError, NoAccountAvailableError
from selector_service.domain.outcomes import Outcome, OutcomeReport
from selector_service.domain.selector import SelectorCore
from selector_service.domain.usage import UsageRecord
from selector_service.plugin.types import SelectionRequest
from selector_service.storage import StateRepository
from tests.selector.conftest import CoreFactory, FakeClock, config_from, open_accounts

# The clock starts at 1_800_000_000: 2027-01-15 08:00 UTC, 00:00 in Los Angeles.
CONFIG = """
prices:
  m: {input: 10000, output: 0}
pools:
  p:
    accounts:
      - {name: a, key: sk-test-client-limits-0001}
"""
"""One input token of model m costs one cent."""


async def serve(core: SelectorCore, client: ClientLimits, tokens: int = 0) -> None:
    grant = await core.select(SelectionRequest(pool="p", model="m"), (), timeout=0, client=client)
    assert grant.lease.client == client
    await core.report(OutcomeReport(grant.lease.lease_id, Outcome.SUCCESS, http_status=200, input_tokens=tokens))


async def test_tpm_limit_holds_a_client_for_the_rest_of_the_minute(make_core: CoreFactory, clock: FakeClock) -> None:
    core = await make_core(config_from(CONFIG))
    await open_accounts(core)
    client = ClientLimits("alice", tpm_limit=100)
    await serve(core, client, 60)
    clock.advance(30)
    await serve(core, client, 50)
    with pytest.raises(ClientLimitError) as caught:
        await serve(core, client)
    assert caught.value.cause == "client_rate_limited" and caught.value.retry_after == pytest.approx(30)
    assert "'alice' has used its limit of 100 tokens per minute" in str(caught.value)
    await serve(core, ClientLimits("bob", tpm_limit=100))  # another client is not held
    clock.advance(30)
    await serve(core, client)  # the first 60 tokens have aged out


async def test_rpm_limit_counts_waiting_selections_and_takes_back_those_that_get_no_lease(
    make_core: CoreFactory,
) -> None:
    core = await make_core(config_from(CONFIG.replace("0001}", "0001, max_concurrency: 1}")))
    await open_accounts(core)
    client = ClientLimits("alice", rpm_limit=2)
    request = SelectionRequest(pool="p", model="m")
    held = await core.select(request, (), timeout=0, client=client)
    waiting = asyncio.ensure_future(core.select(request, (), timeout=5, client=client))
    await asyncio.sleep(0)  # it waits in the queue for the one slot, and holds the client's second place
    with pytest.raises(ClientLimitError):
        await core.select(request, (), timeout=5, client=client)
    await core.report(OutcomeReport(held.lease.lease_id, Outcome.SUCCESS, http_status=200))
    second = await waiting
    with pytest.raises(NoAccountAvailableError) as caught:  # the slot is taken: no lease, so nothing counted
        await core.select(request, (), timeout=0, client=ClientLimits("bob", rpm_limit=1))
    assert not isinstance(caught.value, ClientLimitError)
    await core.report(OutcomeReport(second.lease.lease_id, Outcome.SUCCESS, http_status=200))
    await serve(core, ClientLimits("bob", rpm_limit=1))  # bob's failed selection was taken back
    with pytest.raises(ClientLimitError):
        await serve(core, client)


async def test_budgets_reset_at_the_clients_midnights_and_survive_a_restart(
    make_core: CoreFactory, clock: FakeClock, tmp_path: Path
) -> None:
    core = await make_core(config_from(CONFIG))
    await open_accounts(core)
    client = ClientLimits("team", daily_budget=0.5, monthly_budget=1.0, timezone="America/Los_Angeles")
    await serve(core, client, 50)  # $0.50: the day's budget
    with pytest.raises(ClientLimitError) as caught:
        await serve(core, client)
    assert caught.value.cause == "client_budget"
    assert caught.value.retry_after == pytest.approx(86400)  # until the next midnight in Los Angeles
    assert "daily budget of $0.50" in str(caught.value) and "2027-01-16T00:00-08:00" in str(caught.value)

    await core.stop()  # writes the spend; a new core on the same file reads it back
    core = await make_core(config_from(CONFIG), database=tmp_path / "state.db")
    await open_accounts(core)
    with pytest.raises(ClientLimitError):
        await serve(core, client)

    clock.advance(86400)
    await serve(core, client, 50)  # a new day; the month has now spent $1.00
    with pytest.raises(ClientLimitError) as caught:
        await serve(core, client)
    assert "monthly budget of $1.00" in str(caught.value) and "2027-02-01T00:00-08:00" in str(caught.value)
    assert caught.value.retry_after == pytest.approx(16 * 86400)


async def test_limits_that_cannot_be_used_are_refused_naming_the_field(make_core: CoreFactory) -> None:
    core = await make_core(config_from(CONFIG))
    for client, field in ((ClientLimits(""), "client.name"), (ClientLimits("a", rpm_limit=-1), "client.rpm_limit"),
                          (ClientLimits("a", timezone="Mars/Olympus"), "client.budget_timezone")):
        with pytest.raises(InvalidRequestError) as caught:
            core.try_select(SelectionRequest(pool="p", model="m"), (), client)
        assert caught.value.field == field


async def test_a_usage_log_from_before_clients_gains_the_client_column(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE usage_events (id INTEGER PRIMARY KEY AUTOINCREMENT, at FLOAT NOT NULL, pool VARCHAR "
                   "NOT NULL, account_id VARCHAR NOT NULL, account_name VARCHAR NOT NULL, model VARCHAR NOT NULL, "
                   "outcome VARCHAR NOT NULL, http_status INTEGER NOT NULL, latency_ms INTEGER NOT NULL, ttft_ms "
                   "INTEGER NOT NULL, input_tokens INTEGER NOT NULL, output_tokens INTEGER NOT NULL, cost FLOAT NOT "
                   "NULL)")
        db.execute("INSERT INTO usage_events (at, pool, account_id, account_name, model, outcome, http_status, "
                   "latency_ms, ttft_ms, input_tokens, output_tokens, cost) VALUES "
                   "(100, 'p', 'p/a', 'a', 'm', 'success', 200, 5, 0, 1, 2, 0.5)")
    repository = StateRepository.open(str(path))
    try:
        await repository.create_schema()
        await repository.append_usage([UsageRecord(200, "p", "p/a", "a", "m", "success", 200, 5, 0, 3, 4, 1.0,
                                                    "alice")])
        rows = await repository.usage_between(0, 300)
        assert [(row.at, row.client) for row in rows] == [(100, ""), (200, "alice")]
        assert [row.at for row in await repository.usage_between(0, 300, client="alice")] == [200]
    finally:
        await repository.close()
