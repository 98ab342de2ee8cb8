"""All of poolgate's SQL: the account-state table, read at start-up and updated in exact, transactional increments;
the usage log; clients' spend per day and month (increments too).

Two engines, one code path: SQLite (the embedded default) and PostgreSQL (several selector replicas sharing one
database). Where they differ (the upsert, the scalar maximum, how a write transaction starts, the clock) the
dialect decides, here and nowhere else.

SQLite's settings for concurrent writers are in :mod:`.database`; PostgreSQL needs no such care: ``n = n + delta``
and ``GREATEST(until, new)`` lock the row and read its latest committed value under READ COMMITTED, so concurrent
replicas lose nothing. The health columns and how a change updates them come from :mod:`.tables`.

Every change bumps the row's ``version`` and stamps ``updated_at`` with the database's clock, so replicas can ask
"what changed lately" (:meth:`StateRepository.changed_since`) without trusting each other's clocks.
Credentials are never stored: only the account's id, a redacted form and a one-way fingerprint.
"""

from __future__ import annotations

import operator
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Float, Table, case, cast, delete, func, inspect, literal_column, select, text, update
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from selector_service.domain.state import PersistedState, StateChange
from selector_service.domain.usage import UsageRecord
from selector_service.private_files import create_private_file
from selector_service.storage.core_engine import CoreEngine
from selector_service.storage.database import open_engine
from selector_service.storage.tables import (
    CLEARED_FOR_NEW_CREDENTIAL,
    USAGE_COLUMNS,
    account_state,
    client_spend,
    health_updates,
    merged_scope_rests,
    metadata,
    persisted,
    usage_events,
)

if TYPE_CHECKING:
    from sqlalchemy.dialects.postgresql.dml import Insert as PostgresqlInsert
    from sqlalchemy.dialects.sqlite.dml import Insert as SqliteInsert

CHANGE_LOOKBACK = 5.0
"""Seconds :meth:`StateRepository.changed_since` looks back before its watermark: a row stamped just before a poll
may commit just after it, and must still be seen. Rows seen twice are told apart by their ``version``."""
ID_BATCH = 500
"""Account ids per ``IN (…)`` query: well under every driver's limit on bound parameters."""
SCHEMA_LOCK = 0x706F6F6C  # PostgreSQL advisory lock id: replicas starting together create the tables one at a time
_USAGE_ROW = operator.attrgetter(*USAGE_COLUMNS)
"""A usage record as the row the driver writes (one C call, where a generator per record cost more than the insert)."""


class StateRepository:
    """The account-state and usage tables. Implements the domain's ``StateStore`` and ``UsageStore``."""

    def __init__(self, engine: CoreEngine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        """``sqlite`` or ``postgresql``."""
        self._insert = _upsert_insert(self.dialect)
        self._schema_ready = False

    @classmethod
    def open(cls, database: str) -> StateRepository:
        """The repository for the config's ``database``; :class:`UnusableDatabase` if its URL cannot be used."""
        return cls(open_engine(database))

    def _max(self, current: Any, new: float) -> ColumnElement[Any]:
        """The larger of a column and a value: SQLite's scalar MAX(), PostgreSQL's GREATEST()."""
        return func.greatest(current, new) if self.dialect == "postgresql" else func.max(current, new)

    def _clock(self) -> ColumnElement[Any]:
        """The database's time in Unix seconds, when the statement runs (one clock for every replica)."""
        if self.dialect == "postgresql":
            return cast(func.extract("epoch", func.clock_timestamp()), Float)
        return literal_column("((julianday('now') - 2440587.5) * 86400.0)", Float)

    async def create_schema(self) -> None:
        """The tables, if missing. A SQLite file is created first, readable by its owner only."""
        path = self.engine.sync_engine.url.database
        if self.dialect == "sqlite" and path and path != ":memory:":
            create_private_file(Path(path))  # the database holds account state

        def create(conn: Connection) -> None:
            if self.dialect == "postgresql":
                conn.execute(text(f"SELECT pg_advisory_xact_lock({SCHEMA_LOCK})"))
            metadata.create_all(conn)
            _add_missing_columns(conn)

        await self.engine.transaction(create)

    async def close(self) -> None:
        await self.engine.dispose()

    async def load(self, accounts: list[tuple[str, str, str, str, str]]) -> dict[str, PersistedState]:
        """Register configured accounts (new rows for new ones) and return their saved states.

        An account whose credential changed (new fingerprint) starts clean: a new key is not disabled by the old
        one's 401.
        """
        if not self._schema_ready:  # once per process: reloads call load() again
            await self.create_schema()
            self._schema_ready = True
        now = time.time()
        new_row = self._insert(account_state)
        c = account_state.c
        changed = c.credential_fingerprint != new_row.excluded.credential_fingerprint
        reset: dict[str, Any] = {
            col: case((changed, default), else_=c[col])
            for col, default in (*CLEARED_FOR_NEW_CREDENTIAL.items(), ("scope_rests", "{}"),
                                 ("version", c.version + 1), ("updated_at", self._clock()))
        }
        upsert = new_row.on_conflict_do_update(
            index_elements=[c.account_id],
            set_={**reset, **{col: new_row.excluded[col] for col in (
                "pool", "name", "credential_redacted", "credential_fingerprint")}},
        )
        params = [
            {"account_id": account_id, "pool": pool, "name": name, "credential_redacted": redacted,
             "credential_fingerprint": fingerprint, "updated_at": now}
            # In key order, so two replicas registering the same accounts lock their rows in the same order.
            for account_id, pool, name, redacted, fingerprint in sorted(accounts)
        ]
        ids = [row["account_id"] for row in params]

        def register(conn: Connection) -> dict[str, PersistedState]:
            if params:
                conn.execute(upsert, params)
            saved: dict[str, PersistedState] = {}
            for start in range(0, len(ids), ID_BATCH):  # only these accounts' rows, not every row ever saved
                query = select(account_state).where(c.account_id.in_(ids[start:start + ID_BATCH]))
                saved.update((row["account_id"], persisted(row)) for row in conn.execute(query).mappings())
            return saved

        return await self.engine.transaction(register)

    async def changed_since(self, watermark: float | None) -> tuple[float, list[PersistedState]]:
        """Rows changed since ``watermark`` (every row for None), and the watermark for the next call.

        Looks back :data:`CHANGE_LOOKBACK` seconds more, so a row that committed late is not missed; callers tell rows
        they have already seen by ``version``.
        """
        query = select(account_state)
        if watermark is not None:
            query = query.where(account_state.c.updated_at > watermark - CHANGE_LOOKBACK)

        def read(conn: Connection) -> tuple[float, list[PersistedState]]:
            now = float(conn.execute(select(self._clock())).scalar_one())
            return now, [persisted(row) for row in conn.execute(query).mappings()]

        return await self.engine.read(read)

    async def apply(self, changes: list[StateChange]) -> None:
        """Apply each change in order, in one transaction, as increments and MAX()es (exact under concurrency).

        Changes are applied in account order (stable, so each account's own changes keep theirs): two replicas
        writing the same accounts then lock rows in the same order and cannot deadlock.
        """
        c = account_state.c
        clock = self._clock()
        statements: list[Any] = []
        scoped: list[tuple[str, int, StateChange]] = []
        for change in sorted(changes, key=lambda change: change.account_id):
            values: dict[str, Any] = {"updated_at": clock, "version": c.version + 1,
                                      **health_updates(change, self._max)}
            if change.scope_rests:
                scoped.append((change.account_id, len(statements), change))
            statements.append(update(account_state).where(c.account_id == change.account_id).values(**values))
        locked = select(c.scope_rests).with_for_update()

        def write(conn: Connection) -> None:
            merged: dict[int, str] = {}
            for account_id, index, change in scoped:
                # Read under the row's lock (PostgreSQL; SQLite holds the write lock already), merge, write back:
                # the longer rest and the longer streak win, as for the account's own cooldown.
                current = conn.execute(locked.where(c.account_id == account_id)).scalar()
                merged[index] = merged_scope_rests(current, change.scope_rests or {})
            for index, statement in enumerate(statements):
                if index in merged:
                    statement = statement.values(scope_rests=merged[index])
                conn.execute(statement)

        await self.engine.transaction(write)

    async def append_usage(self, records: list[UsageRecord]) -> None:
        """Write a batch of usage records in one transaction.

        Rows go to the driver as plain tuples: building SQLAlchemy parameter dicts per row cost more than the insert.
        """
        rows = list(map(_USAGE_ROW, records))
        statement = self._usage_insert()
        await self.engine.transaction(lambda conn: conn.exec_driver_sql(statement, rows))

    def _usage_insert(self) -> str:
        style = self.engine.dialect.paramstyle
        marks = ", ".join("?" if style == "qmark" else f"${i + 1}" if style == "numeric_dollar" else "%s"
                          for i in range(len(USAGE_COLUMNS)))
        return f"INSERT INTO usage_events ({', '.join(USAGE_COLUMNS)}) VALUES ({marks})"

    async def usage_between(
        self, since: float, until: float, pool: str = "", account_id: str = "", client: str = ""
    ) -> list[UsageRecord]:
        query = select(*(usage_events.c[name] for name in USAGE_COLUMNS)).where(
            usage_events.c.at >= since, usage_events.c.at < until)
        if pool:
            query = query.where(usage_events.c.pool == pool)
        if account_id:
            query = query.where(usage_events.c.account_id == account_id)
        if client:
            query = query.where(usage_events.c.client == client)
        ordered = query.order_by(usage_events.c.at)
        return await self.engine.read(lambda conn: [UsageRecord(*row) for row in conn.execute(ordered)])

    async def prune_usage(self, before: float) -> int:
        statement = delete(usage_events).where(usage_events.c.at < before)
        return await self.engine.transaction(lambda conn: int(conn.execute(statement).rowcount or 0))

    async def sync_client_spend(self, increments: list[tuple[str, str, float, float]],
                                now: float) -> list[tuple[str, str, float]]:
        """Add each (client, period, period end, USD) to the client's spend, then read every (client, period,
        spent) whose period ends after ``now``: one transaction, so the spend read back holds this replica's
        increments and every other replica's committed ones (``spent = spent + delta`` adds up exactly)."""
        c = client_spend.c
        new_row = self._insert(client_spend)
        upsert = new_row.on_conflict_do_update(
            index_elements=[c.client, c.period], set_={"spent_usd": c.spent_usd + new_row.excluded.spent_usd})
        params = [{"client": client, "period": period, "ends_at": ends, "spent_usd": usd}
                  for client, period, ends, usd in sorted(increments)]  # key order: replicas lock rows alike
        current = select(c.client, c.period, c.spent_usd).where(c.ends_at > now)

        def sync(conn: Connection) -> list[tuple[str, str, float]]:
            if params:
                conn.execute(upsert, params)
            return [(row[0], row[1], float(row[2])) for row in conn.execute(current)]

        if params:
            return await self.engine.transaction(sync)
        return await self.engine.read(sync)

    async def fetch(self, account_id: str) -> PersistedState | None:
        query = select(account_state).where(account_state.c.account_id == account_id)

        def read(conn: Connection) -> PersistedState | None:
            row = conn.execute(query).mappings().first()
            return None if row is None else persisted(row)

        return await self.engine.read(read)


def _upsert_insert(dialect: str) -> Callable[[Table], PostgresqlInsert | SqliteInsert]:
    """The dialect's INSERT (the one with ON CONFLICT), imported only for the dialect in use: PostgreSQL's dialect
    package loads every PostgreSQL driver's module, a megabyte or two a SQLite selector would carry for nothing."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as postgresql_insert

        return postgresql_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert


def _add_missing_columns(conn: Connection) -> None:
    """Bring a database made by an older poolgate up to date (new columns only; nothing is ever dropped)."""
    present = {column["name"] for column in inspect(conn).get_columns("account_state")}
    if "version" not in present:
        conn.execute(text("ALTER TABLE account_state ADD COLUMN version INTEGER NOT NULL DEFAULT 0"))
    if "scope_rests" not in present:
        conn.execute(text("ALTER TABLE account_state ADD COLUMN scope_rests VARCHAR NOT NULL DEFAULT '{}'"))
    if "client" not in {column["name"] for column in inspect(conn).get_columns("usage_events")}:
        conn.execute(text("ALTER TABLE usage_events ADD COLUMN client VARCHAR NOT NULL DEFAULT ''"))
    if "ix_account_state_updated_at" not in {index["name"] for index in inspect(conn).get_indexes("account_state")}:
        conn.execute(text("CREATE INDEX IF NOT EXISTS ix_account_state_updated_at ON account_state (updated_at)"))
