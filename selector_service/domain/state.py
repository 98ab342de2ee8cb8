"""Account health that persists: one definition, :class:`Health`, from which everything else is derived.

Each field of :class:`Health` says how a change to it merges (:class:`Merge`); the account's record in memory is a
:class:`Health`, :class:`PersistedState` (a saved row) is one, a :class:`StateChange` names fields of it, and the
storage layer derives the table's columns and its increments from :data:`HEALTH_FIELDS`. Counters and streaks
change by increments and a cooldown only ever grows unless explicitly cleared, so a change can be applied as
``n = n + delta`` / ``MAX(until, new)``: exact even with several writers.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, fields
from typing import Any


class Merge(enum.Enum):
    """How a change to a health field is applied, in memory and in the database alike."""

    COUNT = "count"
    """A total: grows by the change's amount."""
    STREAK = "streak"
    """Grows by the change's amount, or restarts from a value."""
    LONGER = "longer"
    """An end time that only a later end replaces (:func:`extends`), its reason with it. Only an explicit clear
    (:meth:`StateChange.set`) brings it back."""
    REASON = "reason"
    """The reason of the ``LONGER`` field it follows: kept with whichever end wins."""
    SET = "set"
    """Replaced by the change's value."""


def _health_field(default: Any, merge: Merge, follows: str = "") -> Any:
    return field(default=default, metadata={"merge": merge, "follows": follows})


@dataclass(slots=True)
class Health:
    """An account's persisted health: the one definition of its fields and how each merges."""

    cooldown_until: float = _health_field(0.0, Merge.LONGER)
    cooldown_reason: str = _health_field("", Merge.REASON, follows="cooldown_until")
    rate_limit_streak: int = _health_field(0, Merge.STREAK)
    failure_streak: int = _health_field(0, Merge.STREAK)
    circuit_open_until: float = _health_field(0.0, Merge.SET)
    circuit_opens: int = _health_field(0, Merge.SET)
    disabled: bool = _health_field(False, Merge.SET)
    disabled_reason: str = _health_field("", Merge.SET)
    rate_limited_total: int = _health_field(0, Merge.COUNT)
    failures_total: int = _health_field(0, Merge.COUNT)
    auth_failures_total: int = _health_field(0, Merge.COUNT)

    def take(self, saved: Health) -> None:
        """Become ``saved`` (health read back from the database)."""
        for spec in HEALTH_FIELDS:
            setattr(self, spec.name, getattr(saved, spec.name))

    def copy(self) -> Health:
        return Health(**{spec.name: getattr(self, spec.name) for spec in HEALTH_FIELDS})

    def extend_cooldown(self, until: float, reason: str, change: StateChange) -> bool:
        """Rest the account until ``until`` unless a longer cooldown is in force (:data:`Merge.LONGER`); returns
        whether it did, and records it in ``change``."""
        if not extends(self.cooldown_until, until):
            return False
        self.cooldown_until, self.cooldown_reason = until, reason
        change.extend("cooldown_until", until, reason)
        return True


@dataclass(frozen=True, slots=True)
class HealthField:
    """One persisted health field: its name, its Python type, how it merges, its value for a clean account."""

    name: str
    type: type
    merge: Merge
    default: Any
    follows: str = ""
    """For a ``REASON`` field: the ``LONGER`` field it is the reason of."""


_TYPES = {"float": float, "int": int, "str": str, "bool": bool}
HEALTH_FIELDS: tuple[HealthField, ...] = tuple(
    HealthField(spec.name, _TYPES[str(spec.type)], spec.metadata["merge"], spec.default, spec.metadata["follows"])
    for spec in fields(Health)
)
MERGES = {spec.name: spec.merge for spec in HEALTH_FIELDS}


def extends(current_until: float, until: float) -> bool:
    """Whether a rest until ``until`` replaces one until ``current_until``: a cooldown never shortens a longer one in
    force (the later end wins, and its reason with it). The storage layer writes the same rule in SQL for
    :data:`Merge.LONGER` fields."""
    return until > current_until


ScopeRestRow = tuple[float, str, int]
"""A per-model rest as saved: (until, reason, 429s in a row)."""


def merge_scope_rests(
    rests: dict[str, ScopeRestRow], changes: dict[str, ScopeRestRow | None]
) -> dict[str, ScopeRestRow]:
    """``rests`` with ``changes`` applied: a rest is extended as a cooldown is (:func:`extends`, its reason kept with
    the longer rest), the streak is the larger; None removes the scope (a fresh success for it)."""
    merged = dict(rests)
    for scope, change in changes.items():
        if change is None:
            merged.pop(scope, None)
            continue
        until, reason, streak = change
        old = merged.get(scope)
        if old is None:
            merged[scope] = change
        elif extends(old[0], until):
            merged[scope] = (until, reason, max(streak, old[2]))
        else:
            merged[scope] = (old[0], old[1], max(streak, old[2]))
    return merged


@dataclass(slots=True, kw_only=True)
class PersistedState(Health):
    """An account's health as stored, loaded at start-up and read back from other replicas' writes."""

    account_id: str
    credential_fingerprint: str = ""
    scope_rests: dict[str, ScopeRestRow] = field(default_factory=dict)
    """Per-model rests: scope -> (until, reason, 429s in a row)."""
    version: int = 0
    """Bumped by every change written: tells replicas which rows they have already taken over."""


class Edit(enum.Enum):
    """What a :class:`StateChange` does to one field."""

    ADD = "add"
    RESTART = "restart"
    EXTEND = "extend"
    SET = "set"


@dataclass(slots=True)
class StateChange:
    """One account's health change: per field of :class:`Health`, what to do to it (fields not named are unchanged).

    Built through :meth:`add`, :meth:`restart`, :meth:`extend` and :meth:`set`, which check each edit against the
    field's :class:`Merge`; nothing is allocated for a change that stays empty.
    """

    account_id: str
    edits: dict[str, tuple[Edit, Any]] | None = None
    scope_rests: dict[str, ScopeRestRow | None] | None = None
    """Per-model rests to save, merged by :func:`merge_scope_rests`; None clears the scope."""

    @property
    def is_empty(self) -> bool:
        return not self.edits and not self.scope_rests

    def add(self, name: str, amount: int = 1) -> StateChange:
        """Grow a ``COUNT`` or ``STREAK`` field by ``amount`` (after a restart: from the restarted value)."""
        _check(name, Merge.COUNT, Merge.STREAK)
        edits = self._edits()
        kind, value = edits.get(name, (Edit.ADD, 0))
        edits[name] = (kind, value + amount)
        return self

    def restart(self, name: str, value: int = 0) -> StateChange:
        """Restart a ``STREAK`` field from ``value``."""
        _check(name, Merge.STREAK)
        self._edits()[name] = (Edit.RESTART, value)
        return self

    def extend(self, name: str, until: float, reason: str) -> StateChange:
        """Extend a ``LONGER`` field to ``until`` (never shortening it), with the reason of its ``REASON`` field."""
        _check(name, Merge.LONGER)
        edits = self._edits()
        edits[name] = (Edit.EXTEND, until)
        edits[_REASON_OF[name]] = (Edit.EXTEND, reason)
        return self

    def set(self, name: str, value: Any) -> StateChange:
        """Replace a field's value (for a ``LONGER`` field and its reason: clear it)."""
        _check(name, Merge.SET, Merge.LONGER, Merge.REASON)
        self._edits()[name] = (Edit.SET, value)
        return self

    def rest_scope(self, scope: str, rest: ScopeRestRow | None) -> None:
        """Save a per-model rest (None: clear it)."""
        if self.scope_rests is None:
            self.scope_rests = {}
        self.scope_rests[scope] = rest

    def _edits(self) -> dict[str, tuple[Edit, Any]]:
        if self.edits is None:
            self.edits = {}
        return self.edits


_REASON_OF = {spec.follows: spec.name for spec in HEALTH_FIELDS if spec.merge is Merge.REASON}


def _check(name: str, *allowed: Merge) -> None:
    if MERGES.get(name) not in allowed:
        raise ValueError(f"{name!r} is not a health field that merges as {' or '.join(m.value for m in allowed)}")
