"""How the config's ``database`` becomes a SQLAlchemy URL: every form served through an asyncio driver."""

from __future__ import annotations

from pathlib import Path

import pytest

from selector_service.storage import StateRepository, database_url
from selector_service.storage.database import describe_database


@pytest.mark.parametrize(("database", "url"), [
    ("postgresql://u@db/poolgate", "postgresql+asyncpg://u@db/poolgate"),
    ("postgres://u@db/poolgate", "postgresql+asyncpg://u@db/poolgate"),
    ("sqlite:////var/lib/poolgate.db", "sqlite+aiosqlite:////var/lib/poolgate.db"),
    ("sqlite+aiosqlite:///state.db", "sqlite+aiosqlite:///state.db"),
    ("postgresql+psycopg://u@db/poolgate", "postgresql+psycopg_async://u@db/poolgate"),
])
def test_urls_get_an_asyncio_driver(database: str, url: str) -> None:
    assert database_url(database) == url


def test_a_path_is_a_sqlite_file_made_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert database_url("state.db") == f"sqlite+aiosqlite:///{tmp_path / 'state.db'}"


def test_descriptions_hide_the_password() -> None:
    assert describe_database("postgresql://operator:hunter2@db/poolgate") == "postgresql+asyncpg://operator:***@db/poolgate"


async def test_an_in_memory_database_serves_without_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    repository = StateRepository.open("sqlite://")
    try:
        saved = await repository.load([("p/a", "p", "a", "…1111", "fp")])
        assert list(saved) == ["p/a"]
    finally:
        await repository.close()
    assert list(tmp_path.iterdir()) == []
