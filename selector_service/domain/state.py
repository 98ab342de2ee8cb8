"""Persisted account health and the changes to it that must reach the database.

Counters and streaks change by increments and a cooldown only ever grows unless explicitly cleared, so a change can
be applied as ``n = n + delta`` / ``MAX(until, new)``: exact even with several writers.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class PersistedState:
    """An account's health as stored, loaded at start-up."""

    account_id: str
    credential_fingerprint: str = ""
    cooldown_until: float = 0.0
    cooldown_reason: str = ""
    rate_limit_streak: int = 0
    failure_streak: int = 0
    circuit_open_until: float = 0.0
    circuit_opens: int = 0
    disabled: bool = False
    disabled_reason: str = ""
    rate_limited_total: int = 0
    failures_total: int = 0
    auth_failures_total: int = 0
    scope_rests: dict[str, tuple[float, str, int]] = field(default_factory=dict)
    """Per-model rests: scope -> (until, reason, 429s in a row)."""
    version: int = 0
    """Bumped by every change written: tells replicas which rows they have already taken over."""


@dataclass(slots=True)
class StateChange:
    """One account's health change. ``None`` fields are unchanged."""

    account_id: str
    rate_limited_delta: int = 0
    failures_delta: int = 0
    auth_failures_delta: int = 0
    rate_limit_streak_delta: int = 0
    failure_streak_delta: int = 0
    reset_rate_limit_streak: bool = False
    reset_failure_streak: bool = False
    extend_cooldown_until: float | None = None
    cooldown_reason: str | None = None
    clear_cooldown: bool = False
    circuit_open_until: float | None = None
    circuit_opens: int | None = None
    disabled: bool | None = None
    disabled_reason: str | None = None
    scope_rests: dict[str, tuple[float, str, int] | None] = field(default_factory=dict)
    """Per-model rests to save: scope -> (until, reason, 429s in a row), merged as the longer rest and the longer
    streak; None clears the scope (a fresh success for it)."""

    @property
    def is_empty(self) -> bool:
        return self == StateChange(self.account_id)
