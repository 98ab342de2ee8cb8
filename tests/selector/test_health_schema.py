"""One health schema: the table's columns, the change records and the merges all come from ``Health``; and what
strategies receive is a read-only view of an account."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from selector_service.domain.pool import Pool, StrategyContractError
from selector_service.domain.state import HEALTH_FIELDS, Health, Merge, StateChange, merge_scope_rests
from selector_service.domain.view import AccountReadView
from selector_service.plugin.types import AccountView, Candidates, SelectionRequest
from selector_service.storage import StateRepository
from tests.selector.conftest import pool_config

COLUMNS_ON_DISK = [
    "account_id", "pool", "name", "credential_redacted", "credential_fingerprint", "cooldown_until",
    "cooldown_reason", "rate_limit_streak", "failure_streak", "circuit_open_until", "circuit_opens", "disabled",
    "disabled_reason", "rate_limited_total", "failures_total", "auth_failures_total", "scope_rests", "updated_at",
    "version",
]
"""The account_state table as every earlier poolgate created it: existing files and databases must still fit."""


@pytest.fixture
async def repository(tmp_path: Path) -> AsyncIterator[StateRepository]:
    repository = StateRepository.open(str(tmp_path / "state.db"))
    await repository.load([("p/a", "p", "a", "…1111", "fp")])
    yield repository
    await repository.close()


async def test_the_table_is_derived_from_the_schema_and_unchanged_on_disk(
    repository: StateRepository, tmp_path: Path
) -> None:
    with sqlite3.connect(tmp_path / "state.db") as db:
        columns = [row[1] for row in db.execute("PRAGMA table_info(account_state)")]
        defaults = db.execute("SELECT * FROM account_state WHERE account_id = 'p/a'").fetchone()
    db.close()
    assert columns == COLUMNS_ON_DISK
    row = dict(zip(columns, defaults, strict=True))
    assert {spec.name: row[spec.name] for spec in HEALTH_FIELDS} == {
        spec.name: spec.default for spec in HEALTH_FIELDS}  # SQLite reads a boolean back as 0/1, equal to False


async def test_a_cooldown_never_shortens_in_memory_or_in_the_database(repository: StateRepository) -> None:
    health = Health()
    change = StateChange("p/a")
    assert health.extend_cooldown(100.0, "long", change)
    assert not health.extend_cooldown(50.0, "short", change)
    assert (health.cooldown_until, health.cooldown_reason) == (100.0, "long")

    await repository.apply([StateChange("p/a").extend("cooldown_until", 100.0, "long"),
                            StateChange("p/a").extend("cooldown_until", 50.0, "short")])
    saved = await repository.fetch("p/a")
    assert saved is not None and (saved.cooldown_until, saved.cooldown_reason) == (100.0, "long")
    await repository.apply([StateChange("p/a").extend("cooldown_until", 200.0, "longer")])
    saved = await repository.fetch("p/a")
    assert saved is not None and (saved.cooldown_until, saved.cooldown_reason) == (200.0, "longer")
    await repository.apply([StateChange("p/a").set("cooldown_until", 0.0).set("cooldown_reason", "")])
    saved = await repository.fetch("p/a")
    assert saved is not None and (saved.cooldown_until, saved.cooldown_reason) == (0.0, "")


async def test_counts_add_up_and_streaks_restart(repository: StateRepository) -> None:
    await repository.apply([StateChange("p/a").add("failures_total").add("failure_streak"),
                            StateChange("p/a").add("failures_total", 2).add("failure_streak", 2),
                            StateChange("p/a").add("rate_limit_streak", 4)])
    await repository.apply([StateChange("p/a").restart("rate_limit_streak").add("rate_limit_streak"),
                            StateChange("p/a").set("disabled", True).set("disabled_reason", "revoked")])
    saved = await repository.fetch("p/a")
    assert saved is not None
    assert (saved.failures_total, saved.failure_streak, saved.rate_limit_streak) == (3, 3, 1)
    assert saved.disabled and saved.disabled_reason == "revoked" and saved.version == 5


async def test_a_new_credential_clears_all_but_the_totals(repository: StateRepository) -> None:
    await repository.apply([StateChange("p/a").add("failures_total", 7).add("failure_streak", 7)
                            .extend("cooldown_until", time.time() + 60, "cooling").set("disabled", True)])
    saved = await repository.load([("p/a", "p", "a", "…2222", "another-fingerprint")])
    cleared = {spec.name for spec in HEALTH_FIELDS if spec.merge is not Merge.COUNT}
    assert cleared == {"cooldown_until", "cooldown_reason", "rate_limit_streak", "failure_streak",
                       "circuit_open_until", "circuit_opens", "disabled", "disabled_reason"}
    assert all(getattr(saved["p/a"], name) == getattr(Health(), name) for name in cleared)
    assert saved["p/a"].failures_total == 7


def test_a_change_is_checked_against_its_fields_merge() -> None:
    change = StateChange("p/a")
    assert change.is_empty and change.edits is None and change.scope_rests is None  # nothing allocated
    for wrong in (lambda: change.add("disabled"), lambda: change.restart("failures_total"),
                  lambda: change.extend("circuit_open_until", 1.0, "x"), lambda: change.set("failures_total", 0),
                  lambda: change.add("no_such_field")):
        with pytest.raises(ValueError, match="is not a health field that merges as"):
            wrong()
    assert change.is_empty


def test_saved_model_rests_merge_as_the_accounts_cooldown() -> None:
    saved = {"gpt-4o": (100.0, "long", 3), "o3": (10.0, "o3 rests", 1)}
    merged = merge_scope_rests(saved, {"gpt-4o": (50.0, "short", 5), "o3": None, "new": (20.0, "new", 1)})
    assert merged == {"gpt-4o": (100.0, "long", 5), "new": (20.0, "new", 1)}
    assert merge_scope_rests(merged, {"gpt-4o": (150.0, "longer", 1)})["gpt-4o"] == (150.0, "longer", 5)


class _Recording:
    """A strategy that keeps what it was given, and returns ``answer(candidates)``."""

    def __init__(self, answer: object = None) -> None:
        self.seen: list[AccountView] = []
        self._answer = answer

    def select(self, candidates: Candidates, request: SelectionRequest) -> AccountView:
        self.seen = [*candidates, *candidates.ordered, *candidates.sample(2, __import__("random").Random(1))]
        picked = next(iter(candidates))
        return picked if self._answer is None else self._answer  # type: ignore[return-value]


def _pool(strategy: object) -> Pool:
    config = pool_config("- {name: a, key: sk-test-aaaaaaaa1111}\n- {name: b, key: sk-test-bbbbbbbb2222}")
    pool = Pool("p", config.pools["p"], strategy)  # type: ignore[arg-type]
    pool.refresh_all(0.0)
    return pool


def test_strategies_get_read_only_views_of_live_accounts() -> None:
    strategy = _Recording()
    pool = _pool(strategy)
    account = pool.choose(SelectionRequest("p"), frozenset(), 0.0)
    assert account is pool.accounts["p/a"]
    assert strategy.seen and all(isinstance(seen, AccountReadView) for seen in strategy.seen)
    view = account.view
    members = {name for name in vars(AccountView) if not name.startswith("_")}
    assert members == {"account_id", "name", "index", "weight", "priority", "in_flight", "max_concurrency",
                       "headroom", "headroom_for", "window_reset_at", "recent_latency_ms", "error_rate",
                       "requests_total"}
    assert all(hasattr(view, name) for name in members)
    account.acquire(0.0)
    assert (view.in_flight, view.requests_total) == (1, 1)  # the view reads the account's live state
    for name in ("in_flight", "weight", "account_id", "error_rate", "anything"):
        with pytest.raises(AttributeError):
            setattr(view, name, 0)
    assert not any(hasattr(view, name) for name in ("apply", "acquire", "release", "disable", "enable", "reset",
                                                     "set_credential", "health", "load", "quota", "auth"))


def test_a_strategy_returning_anything_but_a_candidates_view_is_refused() -> None:
    account_itself = _pool(_Recording()).accounts["p/b"]
    pool = _pool(_Recording(answer=account_itself))
    with pytest.raises(StrategyContractError, match="not a candidate"):
        pool.choose(SelectionRequest("p"), frozenset(), 0.0)
