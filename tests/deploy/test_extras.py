"""The optional dependencies: ``poolgate[postgres]`` and ``poolgate[otel]``; without asyncpg a PostgreSQL database
is refused with the command that installs it."""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from poolgate_cli.main import main
from selector_service.storage.database import UnusableDatabase, check_database
from tests.support import ROOT

PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def names(requirements: list[str]) -> set[str]:
    return {Requirement(requirement).name for requirement in requirements}


def test_asyncpg_is_optional() -> None:
    assert "asyncpg" not in names(PROJECT["dependencies"])
    assert names(PROJECT["optional-dependencies"]["postgres"]) == {"asyncpg"}
    assert names(PROJECT["optional-dependencies"]["otel"]) == {"opentelemetry-sdk",
                                                               "opentelemetry-exporter-otlp-proto-http"}


def test_dev_installs_every_extra() -> None:
    """The tests need asyncpg (tests/postgres): ``pip install -e '.[dev]'`` brings every extra."""
    assert "poolgate[postgres,otel]" in PROJECT["optional-dependencies"]["dev"]


def test_postgresql_without_asyncpg_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "asyncpg", None)  # import asyncpg now fails as when it is not installed
    with pytest.raises(UnusableDatabase) as error:
        check_database("postgresql://poolgate:hunter2@db.internal/poolgate")
    assert "pip install 'poolgate[postgres]'" in str(error.value)
    assert "hunter2" not in str(error.value)


def test_check_reports_the_missing_driver(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "asyncpg", None)
    config = tmp_path / "poolgate.yaml"
    config.write_text("selector:\n  database: postgresql://poolgate@db.internal/poolgate\n"
                      "pools:\n  openai:\n    api_keys: [sk-test-first-key-aaaa]\n")
    assert main(["check", str(config)]) == 1
    captured = capsys.readouterr()
    assert "pip install 'poolgate[postgres]'" in captured.out + captured.err
