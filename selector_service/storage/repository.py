"""All of poolgate's SQL: the account-state table, read at start-up and updated in exact, transactional increments.

Two engines, one code path: SQLite (the embedded default) and PostgreSQL (several selector replicas sharing one
database). Where they differ (the upsert, the scalar maximum, how a write transaction starts, the clock) the
dialect decides, here and nowhere else.

SQLite runs in WAL mode with ``synchronous=NORMAL`` and every write transaction starts with ``BEGIN IMMEDIATE``, so
concurrent writers (several processes on one file) queue for the write lock instead of failing or losing updates;
reads begin a deferred transaction, a snapshot that neither waits for a writer nor blocks one.
PostgreSQL needs no such care: ``n = n + delta`` and ``GREATEST(until, new)`` lock the row and read its latest
committed value under READ COMMITTED, so concurrent replicas lose nothing.

Every change bumps the row's ``version`` and stamps ``updated_at`` with the database's clock, so replicas can ask
"what changed lately" (:meth:`StateRepository.changed_since`) without trusting each other's clocks.
Credentials are never stored: only the account's id, a redacted form and a one-way fingerprint.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    case,
    cast,
    delete,
    event,
    func,
    inspect,
    literal_column,
    select,
    text,
    update,
)
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError
from sqlalchemy.sql.elements import ColumnElement

from selector_service.domain.state import PersistedState, StateChange
from selector_service.domain.usage import UsageRecord
from selector_service.private_files import create_private_file
from selector_service.storage.core_engine import READ_ONLY, CoreEngine, UnusableDatabase

if TYPE_CHECKING:
    from sqlalchemy.dialects.postgresql.dml import Insert as PostgresqlInsert
    from sqlalchemy.dialects.sqlite.dml import Insert as SqliteInsert

metadata = MetaData()

account_state = Table(
    "account_state",
    metadata,
    Column("account_id", String, primary_key=True),
    Column("pool", String, nullable=False),
    Column("name", String, nullable=False),
    Column("credential_redacted", String, nullable=False, default=""),
    Column("credential_fingerprint", String, nullable=False, default=""),
    Column("cooldown_until", Float, nullable=False, default=0.0),
    Column("cooldown_reason", String, nullable=False, default=""),
    Column("rate_limit_streak", Integer, nullable=False, default=0),
    Column("failure_streak", Integer, nullable=False, default=0),
    Column("circuit_open_until", Float, nullable=False, default=0.0),
    Column("circuit_opens", Integer, nullable=False, default=0),
    Column("disabled", Boolean, nullable=False, default=False),
    Column("disabled_reason", String, nullable=False, default=""),
    Column("rate_limited_total", Integer, nullable=False, default=0),
    Column("failures_total", Integer, nullable=False, default=0),
    Column("auth_failures_total", Integer, nullable=False, default=0),
    Column("scope_rests", String, nullable=False, default="{}", server_default="{}"),
    Column("updated_at", Float, nullable=False, default=0.0),
    Column("version", Integer, nullable=False, default=0, server_default="0"),
    Index("ix_account_state_updated_at", "updated_at"),
)

CHANGE_LOOKBACK = 5.0
"""Seconds :meth:`StateRepository.changed_since` looks back before its watermark: a row stamped just before a poll
may commit just after it, and must still be seen. Rows seen twice are told apart by their ``version``."""
ID_BATCH = 500
"""Account ids per ``IN (…)`` query: well under every driver's limit on bound parameters."""
SCHEMA_LOCK = 0x706F6F6C  # PostgreSQL advisory lock id: replicas starting together create the tables one at a time


usage_events = Table(
    "usage_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", Float, nullable=False, index=True),
    Column("pool", String, nullable=False),
    Column("account_id", String, nullable=False),
    Column("account_name", String, nullable=False),
    Column("model", String, nullable=False),
    Column("outcome", String, nullable=False),
    Column("http_status", Integer, nullable=False),
    Column("latency_ms", Integer, nullable=False),
    Column("ttft_ms", Integer, nullable=False),
    Column("input_tokens", Integer, nullable=False),
    Column("output_tokens", Integer, nullable=False),
    Column("cost", Float, nullable=False),
)
USAGE_COLUMNS = tuple(c.name for c in usage_events.columns if c.name != "id")


def database_url(database: str) -> str:
    """A SQLAlchemy URL from the config's ``database`` (a URL, or a path to a SQLite file).

    ``postgresql://`` and ``postgres://`` URLs get the asyncpg driver (a password may also come from ``PGPASSWORD``),
    ``sqlite://`` URLs aiosqlite, and ``postgresql+psycopg://`` psycopg's asyncio side.
    """
    if "://" not in database:
        return f"sqlite+aiosqlite:///{Path(database).expanduser().resolve()}"
    scheme, rest = database.split("://", 1)
    if scheme in ("postgresql", "postgres"):
        return f"postgresql+asyncpg://{rest}"
    if scheme == "sqlite":
        return f"sqlite+aiosqlite://{rest}"
    if scheme == "postgresql+psycopg":
        return f"postgresql+psycopg_async://{rest}"
    return database


def describe_database(database: str) -> str:
    """The database for log lines and messages: the URL without its password."""
    if "://" not in database:
        return database
    try:
        return make_url(database_url(database)).render_as_string(hide_password=True)
    except Exception:  # unparsable: say only which kind it is
        return database.split("://", 1)[0] + "://…"


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
        url = database_url(database)
        engine = _engine(database, url)
        if engine.dialect.name == "sqlite":
            _configure_sqlite(engine)
        return cls(engine)

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
            for col, default in (
                ("cooldown_until", 0.0), ("cooldown_reason", ""), ("rate_limit_streak", 0), ("failure_streak", 0),
                ("circuit_open_until", 0.0), ("circuit_opens", 0), ("disabled", False), ("disabled_reason", ""),
                ("scope_rests", "{}"), ("version", c.version + 1), ("updated_at", self._clock()),
            )
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
                saved.update((row["account_id"], _persisted(row)) for row in conn.execute(query).mappings())
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
            return now, [_persisted(row) for row in conn.execute(query).mappings()]

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
            values: dict[str, Any] = {"updated_at": clock, "version": c.version + 1}
            if change.rate_limited_delta:
                values["rate_limited_total"] = c.rate_limited_total + change.rate_limited_delta
            if change.failures_delta:
                values["failures_total"] = c.failures_total + change.failures_delta
            if change.auth_failures_delta:
                values["auth_failures_total"] = c.auth_failures_total + change.auth_failures_delta
            if change.reset_rate_limit_streak:
                values["rate_limit_streak"] = change.rate_limit_streak_delta
            elif change.rate_limit_streak_delta:
                values["rate_limit_streak"] = c.rate_limit_streak + change.rate_limit_streak_delta
            if change.reset_failure_streak:
                values["failure_streak"] = change.failure_streak_delta
            elif change.failure_streak_delta:
                values["failure_streak"] = c.failure_streak + change.failure_streak_delta
            if change.clear_cooldown:
                values["cooldown_until"] = 0.0
                values["cooldown_reason"] = ""
            if change.extend_cooldown_until is not None:
                # A cooldown never shortens a longer one already in force.
                longer = c.cooldown_until >= change.extend_cooldown_until
                values["cooldown_until"] = self._max(c.cooldown_until, change.extend_cooldown_until)
                values["cooldown_reason"] = case((longer, c.cooldown_reason), else_=change.cooldown_reason or "")
            if change.circuit_open_until is not None:
                values["circuit_open_until"] = change.circuit_open_until
            if change.circuit_opens is not None:
                values["circuit_opens"] = change.circuit_opens
            if change.disabled is not None:
                values["disabled"] = change.disabled
            if change.disabled_reason is not None:
                values["disabled_reason"] = change.disabled_reason
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
                merged[index] = merge_scope_rests(current, change.scope_rests)
            for index, statement in enumerate(statements):
                if index in merged:
                    statement = statement.values(scope_rests=merged[index])
                conn.execute(statement)

        await self.engine.transaction(write)

    async def append_usage(self, records: list[UsageRecord]) -> None:
        """Write a batch of usage records in one transaction.

        Rows go to the driver as plain tuples: building SQLAlchemy parameter dicts per row cost more than the insert.
        """
        rows = [tuple(getattr(record, name) for name in USAGE_COLUMNS) for record in records]
        statement = self._usage_insert()
        await self.engine.transaction(lambda conn: conn.exec_driver_sql(statement, rows))

    def _usage_insert(self) -> str:
        style = self.engine.dialect.paramstyle
        marks = ", ".join("?" if style == "qmark" else f"${i + 1}" if style == "numeric_dollar" else "%s"
                          for i in range(len(USAGE_COLUMNS)))
        return f"INSERT INTO usage_events ({', '.join(USAGE_COLUMNS)}) VALUES ({marks})"

    async def usage_between(
        self, since: float, until: float, pool: str = "", account_id: str = ""
    ) -> list[UsageRecord]:
        query = select(*(usage_events.c[name] for name in USAGE_COLUMNS)).where(
            usage_events.c.at >= since, usage_events.c.at < until)
        if pool:
            query = query.where(usage_events.c.pool == pool)
        if account_id:
            query = query.where(usage_events.c.account_id == account_id)
        ordered = query.order_by(usage_events.c.at)
        return await self.engine.read(lambda conn: [UsageRecord(*row) for row in conn.execute(ordered)])

    async def prune_usage(self, before: float) -> int:
        statement = delete(usage_events).where(usage_events.c.at < before)
        return await self.engine.transaction(lambda conn: int(conn.execute(statement).rowcount or 0))

    async def fetch(self, account_id: str) -> PersistedState | None:
        query = select(account_state).where(account_state.c.account_id == account_id)

        def read(conn: Connection) -> PersistedState | None:
            row = conn.execute(query).mappings().first()
            return None if row is None else _persisted(row)

        return await self.engine.read(read)


def check_database(database: str) -> None:
    """Raise :class:`UnusableDatabase` if the selector could not use ``database`` (connects to nothing, creates
    nothing)."""
    _engine(database, database_url(database)).sync_engine.dispose()


def _engine(database: str, url: str) -> CoreEngine:
    try:
        if url.startswith("sqlite"):
            return CoreEngine(url, connect_args={"isolation_level": None})
        # Pre-ping: a replica outlives a database restart or failover without failing its next write. A short
        # connect timeout: an unreachable database is reported in seconds, not after a minute.
        return CoreEngine(url, pool_pre_ping=True, connect_args={"timeout": 10} if "+asyncpg" in url else {})
    except (ArgumentError, NoSuchModuleError, ImportError, UnusableDatabase) as exc:
        if isinstance(exc, ImportError) and exc.name == "asyncpg":  # optional: SQLAlchemy imports it only here
            raise UnusableDatabase(
                f"cannot use the database {describe_database(database)}: PostgreSQL needs the asyncpg driver, which "
                "is not installed; install it with: pip install 'poolgate[postgres]'") from None
        raise UnusableDatabase(
            f"cannot use the database {describe_database(database)}: {exc}. Give a SQLite file path, or a "
            "postgresql:// URL (served through asyncpg)") from None
    except ValueError:  # its text may quote a part of the URL, the password included
        raise UnusableDatabase(
            f"cannot use the database {describe_database(database)}: the URL cannot be read; check its host, "
            "port and database name") from None


def _upsert_insert(dialect: str) -> Callable[[Table], PostgresqlInsert | SqliteInsert]:
    """The dialect's INSERT (the one with ON CONFLICT), imported only for the dialect in use: PostgreSQL's dialect
    package loads every PostgreSQL driver's module, a megabyte or two a SQLite selector would carry for nothing."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as postgresql_insert

        return postgresql_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert


def _persisted(row: Any) -> PersistedState:
    fields = {k: row[k] for k in PersistedState.__dataclass_fields__ if k != "scope_rests"}
    return PersistedState(**fields, scope_rests=read_scope_rests(row["scope_rests"]))


def read_scope_rests(text_value: str | None) -> dict[str, tuple[float, str, int]]:
    """The ``scope_rests`` column: a JSON object, scope -> [until, reason, streak] (anything unreadable: none)."""
    try:
        data = json.loads(text_value or "{}")
    except ValueError:
        return {}
    out: dict[str, tuple[float, str, int]] = {}
    if isinstance(data, dict):
        for scope, item in data.items():
            if (isinstance(item, list) and len(item) == 3 and isinstance(item[0], (int, float))
                    and isinstance(item[1], str) and isinstance(item[2], int)):
                out[str(scope)] = (float(item[0]), item[1], item[2])
    return out


def merge_scope_rests(current: str | None, changes: dict[str, tuple[float, str, int] | None]) -> str:
    """``current`` (the column's JSON) with ``changes`` applied: a rest is extended (never shortened, its reason
    kept with the longer rest), the streak is the larger; None removes the scope."""
    rests = read_scope_rests(current)
    for scope, change in changes.items():
        if change is None:
            rests.pop(scope, None)
            continue
        until, reason, streak = change
        old = rests.get(scope)
        if old is None or until > old[0]:
            rests[scope] = (until, reason, max(streak, old[2] if old else 0))
        else:
            rests[scope] = (old[0], old[1], max(streak, old[2]))
    return json.dumps({scope: list(rest) for scope, rest in rests.items()}, ensure_ascii=False,
                      separators=(",", ":"))


def _add_missing_columns(conn: Connection) -> None:
    """Bring a database made by an older poolgate up to date (new columns only; nothing is ever dropped)."""
    present = {column["name"] for column in inspect(conn).get_columns("account_state")}
    if "version" not in present:
        conn.execute(text("ALTER TABLE account_state ADD COLUMN version INTEGER NOT NULL DEFAULT 0"))
    if "scope_rests" not in present:
        conn.execute(text("ALTER TABLE account_state ADD COLUMN scope_rests VARCHAR NOT NULL DEFAULT '{}'"))
    if "ix_account_state_updated_at" not in {index["name"] for index in inspect(conn).get_indexes("account_state")}:
        conn.execute(text("CREATE INDEX IF NOT EXISTS ix_account_state_updated_at ON account_state (updated_at)"))


def _configure_sqlite(engine: CoreEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(conn: Any) -> None:
        if conn.get_execution_options().get(READ_ONLY):
            conn.exec_driver_sql("BEGIN")  # a snapshot (WAL): reads neither wait for nor block a writer
            return
        # Take the write lock up front: plain BEGIN lets two writers both read, then one fails "database is locked".
        conn.exec_driver_sql("BEGIN IMMEDIATE")
