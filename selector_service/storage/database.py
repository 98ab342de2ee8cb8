"""Which database a config names, and an engine for it: URLs, drivers, and SQLite's settings for many writers.

SQLite runs in WAL mode with ``synchronous=NORMAL`` and every write transaction starts with ``BEGIN IMMEDIATE``, so
concurrent writers (several processes on one file) queue for the write lock instead of failing or losing updates;
reads begin a deferred transaction, a snapshot that neither waits for a writer nor blocks one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from selector_service.storage.core_engine import READ_ONLY, CoreEngine, UnusableDatabase


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


def open_engine(database: str) -> CoreEngine:
    """The engine for the config's ``database``; :class:`UnusableDatabase` if its URL cannot be used."""
    engine = _engine(database, database_url(database))
    if engine.dialect.name == "sqlite":
        _configure_sqlite(engine)
    return engine


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
