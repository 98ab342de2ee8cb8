"""A real PostgreSQL server for the replica tests: its URL comes from ``POOLGATE_TEST_POSTGRES_URL``, which
``make test`` sets after starting one with ``scripts/postgres-for-tests.sh``. Each test gets a database of its own."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
from sqlalchemy.engine import make_url

ENV = "POOLGATE_TEST_POSTGRES_URL"


@pytest.fixture(scope="session")
def postgres_url() -> str:
    url = os.environ.get(ENV, "")
    if not url:
        pytest.fail(
            f"{ENV} is not set, so the PostgreSQL tests have no server. Run the suite with `make test` (it starts "
            f"one), or start one with `scripts/postgres-for-tests.sh` and `export {ENV}=<the URL it prints>`.",
            pytrace=False,
        )
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


def _with_database(url: str, name: str) -> str:
    return make_url(url).set(database=name).render_as_string(hide_password=False)


@pytest.fixture
async def postgres_database(postgres_url: str) -> AsyncIterator[str]:
    """The URL of a new, empty database, dropped after the test."""
    name = f"poolgate_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(postgres_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    yield _with_database(postgres_url, name)
    admin = await asyncpg.connect(postgres_url)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()
