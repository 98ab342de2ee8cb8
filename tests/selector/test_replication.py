"""Replicas on one database (here a SQLite file, the same code as PostgreSQL): each takes over what the others wrote,
exactly once, without undoing its own changes not yet written."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from sqlalchemy import event

from selector_service.domain.outcomes import AccountState, Outcome, OutcomeReport
from selector_service.domain.replication import Replicator
from selector_service.domain.selector import SelectorCore
from selector_service.domain.state import StateChange
from selector_service.plugin.manager import StrategyRegistry
from selector_service.plugin.types import SelectionRequest
from selector_service.storage import StateRepository
from tests.selector.conftest import pool_config

ACCOUNTS = "- {name: a, key: sk-test-shared-aaaa1111}\n- {name: b, key: sk-test-shared-bbbb2222}"

Node = tuple[SelectorCore, Replicator]


@pytest.fixture
async def nodes(tmp_path: Path, registry: StrategyRegistry) -> AsyncIterator[Callable[[], Awaitable[Node]]]:
    started: list[tuple[SelectorCore, StateRepository]] = []

    async def start() -> Node:
        repository = StateRepository.open(str(tmp_path / "shared.db"))
        core = SelectorCore(pool_config(ACCOUNTS, strategy="fill_first"), registry, repository)
        await core.start()
        started.append((core, repository))
        return core, Replicator(core, repository)  # polled by hand: no timing in these tests

    yield start
    for core, repository in started:
        await core.stop()
        await repository.close()


async def lease(core: SelectorCore) -> tuple[str, str]:
    grant = await core.select(SelectionRequest(pool="p"), (), 0)
    return grant.lease.lease_id, grant.lease.account.account_id


async def test_a_429_on_one_node_cools_the_account_on_the_other_once(nodes: Callable[[], Awaitable[Node]]) -> None:
    (one, _), (other, replicator) = await nodes(), await nodes()
    await replicator.poll()  # the first poll takes over every row
    early_lease, account_id = await lease(other)  # granted before the 429 elsewhere
    lease_id, same = await lease(one)
    assert same == account_id == "p/a"
    await one.report(OutcomeReport(lease_id, Outcome.RATE_LIMITED, 429, retry_after_ms=60_000))

    assert await replicator.poll() == 1
    account = other.account("p", "a")
    assert account.state(time.time())[0] is AccountState.COOLING
    assert account.health.rate_limited_total == 1 and account.health.rate_limit_streak == 1
    assert await replicator.poll() == 0  # seen already: nothing is taken over (or counted) twice
    assert account.health.rate_limited_total == 1
    assert (await lease(other))[1] == "p/b"

    # A success on a lease granted before the 429 says nothing about it: the cooldown stays, here and in the file.
    result = await other.report(OutcomeReport(early_lease, Outcome.SUCCESS, 200))
    assert result.recorded and account.state(time.time())[0] is AccountState.COOLING
    await replicator.poll()
    assert account.state(time.time())[0] is AccountState.COOLING


async def test_changes_not_yet_written_are_not_undone(nodes: Callable[[], Awaitable[Node]]) -> None:
    (one, replicator_one), (other, replicator) = await nodes(), await nodes()
    await replicator.poll()
    lease_id, _ = await lease(other)
    async with other.state_lock:  # the writer cannot write: the 429 stays pending in memory
        report = asyncio.create_task(other.report(OutcomeReport(lease_id, Outcome.RATE_LIMITED, 429,
                                                                retry_after_ms=60_000)))
        await asyncio.sleep(0.01)
        assert not report.done()
        _, rows = await one._store.changed_since(None)  # type: ignore[attr-defined]
        skipped = other.apply_external(rows)  # rows without the pending 429
    assert skipped == {"p/a"}
    assert other.account("p", "a").state(time.time())[0] is AccountState.COOLING
    assert (await report).recorded
    await replicator_one.poll()
    assert one.account("p", "a").state(time.time())[0] is AccountState.COOLING


async def test_disable_and_enable_travel_both_ways(nodes: Callable[[], Awaitable[Node]]) -> None:
    (one, replicator_one), (other, replicator) = await nodes(), await nodes()
    await other.disable("p", "b", "maintenance")
    await replicator_one.poll()
    assert one.account("p", "b").disabled and one.account("p", "b").disabled_reason == "maintenance"
    await one.enable("p", "b")
    await replicator.poll()
    assert not other.account("p", "b").disabled


async def test_a_database_from_an_older_version_is_upgraded(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as db:
        db.execute("""CREATE TABLE account_state (account_id VARCHAR PRIMARY KEY, pool VARCHAR NOT NULL,
            name VARCHAR NOT NULL, credential_redacted VARCHAR NOT NULL, credential_fingerprint VARCHAR NOT NULL,
            cooldown_until FLOAT NOT NULL, cooldown_reason VARCHAR NOT NULL, rate_limit_streak INTEGER NOT NULL,
            failure_streak INTEGER NOT NULL, circuit_open_until FLOAT NOT NULL, circuit_opens INTEGER NOT NULL,
            disabled BOOLEAN NOT NULL, disabled_reason VARCHAR NOT NULL, rate_limited_total INTEGER NOT NULL,
            failures_total INTEGER NOT NULL, auth_failures_total INTEGER NOT NULL, updated_at FLOAT NOT NULL)""")
        db.execute("INSERT INTO account_state VALUES ('p/a', 'p', 'a', '…1111', 'fp', 0, '', 0, 0, 0, 0, 1, "
                   "'revoked', 0, 0, 1, 0)")
    db.close()
    repository = StateRepository.open(str(path))
    try:
        saved = await repository.load([("p/a", "p", "a", "…1111", "fp")])
        assert saved["p/a"].disabled and saved["p/a"].disabled_reason == "revoked" and saved["p/a"].version == 0
        _, rows = await repository.changed_since(None)
        assert [row.account_id for row in rows] == ["p/a"]
    finally:
        await repository.close()


async def test_load_returns_the_given_accounts_only_in_batches(tmp_path: Path) -> None:
    """A reload that adds one account reads that account's row, not every row ever saved (more than one batch of
    ids is read in several queries)."""
    repository = StateRepository.open(str(tmp_path / "state.db"))
    reads: list[int] = []  # bound ids of each SELECT on the account table

    @event.listens_for(repository.engine.sync_engine, "before_cursor_execute")
    def _count(_conn: object, _cursor: object, statement: str, parameters: object, *_: object) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "FROM account_state" in statement:
            reads.append(len(parameters) if isinstance(parameters, (tuple, list)) else 0)

    try:
        rows = [(f"p/a{i}", "p", f"a{i}", "…0000", f"fp{i}") for i in range(1200)]
        assert len(await repository.load(rows)) == 1200
        assert reads == [500, 500, 200]  # three batches of ids
        await repository.apply([StateChange("p/a1100").set("disabled", True).set("disabled_reason", "revoked")])
        reads.clear()
        saved = await repository.load([rows[1100], ("p/new", "p", "new", "…1111", "fp-new")])
        assert reads == [2]  # the two ids asked for, not the table
        assert sorted(saved) == ["p/a1100", "p/new"]
        assert saved["p/a1100"].disabled and not saved["p/new"].disabled
    finally:
        await repository.close()


async def test_reads_neither_wait_for_nor_block_a_writer(tmp_path: Path) -> None:
    """Replicas sharing one SQLite file poll for changes twice a second; a poll must not queue behind another
    process's write transaction (nor hold the write lock itself)."""
    path = tmp_path / "shared.db"
    repository = StateRepository.open(str(path))
    try:
        await repository.load([("p/a", "p", "a", "…1111", "fp")])
        writer = sqlite3.connect(path, timeout=0.5, isolation_level=None)
        try:
            writer.execute("BEGIN IMMEDIATE")  # another process is in the middle of a write
            writer.execute("UPDATE account_state SET failures_total = 7")
            _, rows = await asyncio.wait_for(repository.changed_since(None), timeout=3)
            assert [(row.account_id, row.failures_total) for row in rows] == [("p/a", 0)]  # the committed state
            writer.execute("COMMIT")
            fetched = await repository.fetch("p/a")
            assert fetched is not None and fetched.failures_total == 7
        finally:
            writer.close()
    finally:
        await repository.close()


class Outage:
    """A store whose writes fail while ``writes_fail`` is set (the database is down for writes, reads still work)."""

    def __init__(self, inner: StateRepository) -> None:
        self.inner = inner
        self.writes_fail = False
        self.writes = 0

    async def load(self, accounts: list[tuple[str, str, str, str, str]]) -> dict[str, object]:
        return await self.inner.load(accounts)  # type: ignore[return-value]

    async def apply(self, changes: list[object]) -> None:
        if self.writes_fail:
            raise OSError("connection refused (test outage)")
        self.writes += 1
        await self.inner.apply(changes)  # type: ignore[arg-type]

    async def changed_since(self, watermark: float | None) -> tuple[float, list[object]]:
        return await self.inner.changed_since(watermark)  # type: ignore[return-value]


async def test_a_change_made_during_an_outage_is_kept_and_saved_later(
    tmp_path: Path, registry: StrategyRegistry,
) -> None:
    repository = StateRepository.open(str(tmp_path / "outage.db"))
    store = Outage(repository)
    core = SelectorCore(pool_config(ACCOUNTS, strategy="fill_first"), registry, store)  # type: ignore[arg-type]
    await core.start()
    replicator = Replicator(core, store)  # type: ignore[arg-type]
    try:
        await replicator.poll()
        lease_id, account_id = await lease(core)
        store.writes_fail = True
        result = await core.report(OutcomeReport(lease_id, Outcome.RATE_LIMITED, 429, retry_after_ms=60_000))
        assert result.recorded and "saving the account's state failed" in result.detail
        account = core.account("p", "a")
        # Meanwhile another replica records a failure on the account: its row changes, without our 429.
        await repository.apply([StateChange(account_id).add("failures_total").add("failure_streak")])
        assert await replicator.poll() == 0  # this replica's unsaved change stays in force, the row is not taken
        assert account.state(time.time())[0] is AccountState.COOLING
        store.writes_fail = False
        for _ in range(40):  # retried within about a second
            saved = await repository.fetch(account_id)
            if saved is not None and saved.rate_limited_total:
                break
            await asyncio.sleep(0.05)
        assert saved is not None and saved.rate_limited_total == 1 and saved.cooldown_until > time.time() + 50
        assert saved.failures_total == 1  # both replicas' changes, merged
        assert await replicator.poll() == 1
        assert account.state(time.time())[0] is AccountState.COOLING and account.health.rate_limited_total == 1
        assert account.health.failure_streak == 1
    finally:
        await core.stop()
        await repository.close()
