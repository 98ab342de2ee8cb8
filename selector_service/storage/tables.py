"""The tables, and the SQL form of the domain's health schema.

The ``account_state`` table's health columns are derived from :data:`~selector_service.domain.state.HEALTH_FIELDS`
(same names, types and defaults), and so is how a :class:`StateChange` updates them: each field's ``Merge`` has
one SQL form here (an increment, a restart, ``MAX()`` for a rest that never shortens, a replacement).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from sqlalchemy import Boolean, Column, Float, Index, Integer, MetaData, String, Table, case
from sqlalchemy.sql.elements import ColumnElement

from selector_service.domain.state import (
    HEALTH_FIELDS,
    Edit,
    Merge,
    PersistedState,
    ScopeRestRow,
    StateChange,
    merge_scope_rests,
)

metadata = MetaData()
_SQL_TYPES = {float: Float, int: Integer, str: String, bool: Boolean}

account_state = Table(
    "account_state",
    metadata,
    Column("account_id", String, primary_key=True),
    Column("pool", String, nullable=False),
    Column("name", String, nullable=False),
    Column("credential_redacted", String, nullable=False, default=""),
    Column("credential_fingerprint", String, nullable=False, default=""),
    *(Column(spec.name, _SQL_TYPES[spec.type], nullable=False, default=spec.default) for spec in HEALTH_FIELDS),
    Column("scope_rests", String, nullable=False, default="{}", server_default="{}"),
    Column("updated_at", Float, nullable=False, default=0.0),
    Column("version", Integer, nullable=False, default=0, server_default="0"),
    Index("ix_account_state_updated_at", "updated_at"),
)

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
    Column("client", String, nullable=False, server_default=""),
)
USAGE_COLUMNS = tuple(c.name for c in usage_events.columns if c.name != "id")

client_spend = Table(
    "client_spend",
    metadata,
    Column("client", String, primary_key=True),
    Column("period", String, primary_key=True),  # "day 2026-12-05 UTC", "month 2026-12 Europe/Paris"
    Column("ends_at", Float, nullable=False, index=True),
    Column("spent_usd", Float, nullable=False, default=0.0),
)

CLEARED_FOR_NEW_CREDENTIAL = {spec.name: spec.default for spec in HEALTH_FIELDS if spec.merge is not Merge.COUNT}
"""What an account whose credential changed starts with: everything but its totals (a new key is not disabled by
the old one's 401)."""


def health_updates(
    change: StateChange, greatest: Callable[[Any, float], ColumnElement[Any]]
) -> dict[str, Any]:
    """The SET clause of ``change``'s edits: each column's value as the SQL of its field's merge, computed from the
    row's values before the update (so several writers' increments add up). ``greatest`` is the dialect's
    scalar maximum."""
    c = account_state.c
    edits = change.edits or {}
    values: dict[str, Any] = {}
    for spec in HEALTH_FIELDS:
        edit = edits.get(spec.name)
        if edit is None:
            continue
        kind, value = edit
        column = c[spec.name]
        if kind is Edit.ADD:
            values[spec.name] = column + value
        elif kind is Edit.EXTEND and spec.merge is Merge.LONGER:
            values[spec.name] = greatest(column, value)  # a cooldown never shortens (domain.state.extends)
        elif kind is Edit.EXTEND:  # the reason follows the end that wins: kept when the stored end is as late
            ends = c[spec.follows]
            values[spec.name] = case((ends >= edits[spec.follows][1], column), else_=value)
        else:  # RESTART, SET
            values[spec.name] = value
    return values


def persisted(row: Any) -> PersistedState:
    """A row of ``account_state`` as the domain's saved state."""
    return PersistedState(
        account_id=row["account_id"], credential_fingerprint=row["credential_fingerprint"],
        scope_rests=read_scope_rests(row["scope_rests"]), version=row["version"],
        **{spec.name: row[spec.name] for spec in HEALTH_FIELDS},
    )


def read_scope_rests(text_value: str | None) -> dict[str, ScopeRestRow]:
    """The ``scope_rests`` column: a JSON object, scope -> [until, reason, streak] (anything unreadable: none)."""
    try:
        data = json.loads(text_value or "{}")
    except ValueError:
        return {}
    out: dict[str, ScopeRestRow] = {}
    if isinstance(data, dict):
        for scope, item in data.items():
            if (isinstance(item, list) and len(item) == 3 and isinstance(item[0], (int, float))
                    and isinstance(item[1], str) and isinstance(item[2], int)):
                out[str(scope)] = (float(item[0]), item[1], item[2])
    return out


def merged_scope_rests(current: str | None, changes: dict[str, ScopeRestRow | None]) -> str:
    """The ``scope_rests`` column ``current`` with ``changes`` merged into it (see :func:`merge_scope_rests`)."""
    rests = merge_scope_rests(read_scope_rests(current), changes)
    return json.dumps({scope: list(rest) for scope, rest in rests.items()}, ensure_ascii=False,
                      separators=(",", ":"))
