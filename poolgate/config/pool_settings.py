"""The settings a pool has and may inherit from ``defaults:``: strategy, cooldowns, circuit breaker, failover,
error classes, limits."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from poolgate.config.durations import Duration, TimeZoneName
from poolgate.config.section import Section

DEFAULT_STRATEGY = "round_robin"
DEFAULT_BASE_URLS = {"openai": "https://api.openai.com/v1", "anthropic": "https://api.anthropic.com"}
# Outcomes the edge retries on another account; numbers are HTTP statuses.
DEFAULT_RETRY_ON: tuple[int | str, ...] = (429, 529, 500, 502, 503, 504, 401, 403, "network", "timeout")
RETRY_ON_WORDS = ("network", "timeout")
PRIORITY_WORDS = {"low": 0, "normal": 1, "high": 2}

ApiFormatName = Literal["openai", "anthropic"]
ApiName = Literal["chat", "responses", "embeddings", "messages", "count_tokens"]
FORMAT_APIS: dict[str, tuple[str, ...]] = {
    "openai": ("chat", "responses", "embeddings"), "anthropic": ("messages", "count_tokens")}
"""The APIs an upstream of each format may speak, and speaks unless the pool's ``apis:`` says otherwise."""
CHAT_ONLY_HOSTS = ("generativelanguage.googleapis.com",)
"""Upstreams known to lack the Responses API (Gemini's OpenAI-compatible endpoint): ``apis`` defaults to chat and
embeddings there."""


class CooldownSettings(Section):
    """How long a rate-limited (429) account rests."""

    base: Duration = 1.0
    """First backoff when the upstream gives no retry-after; doubles on each further 429 in a row."""
    max: Duration = 300.0
    """Longest backoff computed without a retry-after."""
    max_retry_after: Duration = 900.0
    """Cap on an upstream's retry-after (a misbehaving upstream cannot park an account for a day)."""
    jitter: float = Field(default=0.2, ge=0.0, le=1.0)
    """Fraction of random spread added to computed backoffs, so accounts do not all return at once."""


class CircuitSettings(Section):
    """The per-account circuit breaker for 5xx, network errors and timeouts."""

    failures: int = Field(default=5, ge=1)
    """Consecutive failures that open the circuit."""
    cooldown: Duration = 30.0
    """How long an open circuit stays open the first time; doubles each time a probe fails."""
    max_cooldown: Duration = 600.0


ErrorClassName = Literal["rate_limited", "quota_exhausted", "auth", "overloaded", "request_error", "server_error",
                         "network", "timeout"]
RESTING_CLASSES = ("rate_limited", "quota_exhausted")


class ClassifyMatch(Section):
    """What an upstream error must have for a ``classify:`` rule to apply (every field given must match)."""

    status: int | list[int] | None = None
    type: str = ""
    """The provider's error type (OpenAI ``error.type``, Anthropic ``error.type``, Gemini ``error.status``)."""
    code: str = ""
    message: str = ""
    """A part of the error message (case does not matter)."""

    @model_validator(mode="after")
    def _something(self) -> ClassifyMatch:
        if self.status is None and not (self.type or self.code or self.message):
            raise ValueError("match needs at least one of status, type, code, message")
        for status in self.statuses:
            if not 400 <= status <= 599:
                raise ValueError(f"status must be an HTTP error status (400 to 599), got {status}")
        return self

    @property
    def statuses(self) -> list[int]:
        if self.status is None:
            return []
        return self.status if isinstance(self.status, list) else [self.status]


class ClassifyRule(Section):
    """Upstream errors matching ``match`` are of class ``class`` (``rest``: how long the account rests, for
    rate_limited and quota_exhausted)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    match: ClassifyMatch
    error_class: ErrorClassName = Field(alias="class")
    rest: Duration | None = None

    @model_validator(mode="after")
    def _rest_rests(self) -> ClassifyRule:
        if self.rest is not None and self.error_class not in RESTING_CLASSES:
            raise ValueError(f"rest applies only to the classes {' and '.join(RESTING_CLASSES)}, not "
                             f"{self.error_class}")
        return self


class FailoverSettings(Section):
    """What the edge retries on another account, and how often."""

    retry_on: list[int | str] = Field(default_factory=lambda: list(DEFAULT_RETRY_ON))
    max_attempts: int = Field(default=3, ge=1, le=20)

    @field_validator("retry_on")
    @classmethod
    def _known_outcomes(cls, value: list[int | str]) -> list[int | str]:
        for item in value:
            if isinstance(item, int) and 100 <= item <= 599:
                continue
            if isinstance(item, str) and item in RETRY_ON_WORDS:
                continue
            words = ", ".join(RETRY_ON_WORDS)
            raise ValueError(f"entries must be HTTP statuses (e.g. 429) or one of {words}, got {item!r}")
        return value


class PoolSettings(Section):
    """Settings a pool inherits from ``defaults:`` unless it sets them itself."""

    strategy: str = DEFAULT_STRATEGY
    strategy_options: dict[str, Any] = Field(default_factory=dict)
    cooldown: CooldownSettings = Field(default_factory=CooldownSettings)
    circuit: CircuitSettings = Field(default_factory=CircuitSettings)
    failover: FailoverSettings = Field(default_factory=FailoverSettings)
    lease_ttl: Duration = 900.0
    """A lease not reported within this time is released (long streams need it long)."""
    queue_timeout: Duration = 30.0
    """Longest a SelectAccount call waits for an account when the caller set no deadline."""
    sticky_sessions: bool = False
    """Every request with a session key stays on one account while it is healthy."""
    conversation_affinity: bool = True
    """A coding agent's conversation (Claude Code's session id, Codex's session id or prompt_cache_key, Anthropic
    ``metadata.user_id``) stays on one account while it is healthy, so its prompt cache is reused, even with
    sticky_sessions off."""
    session_ttl: Duration = 3600.0
    probe_leases: int = Field(default=1, ge=1, le=1000)
    """Leases in flight at most on an account whose health is unknown (new, after a cooldown, half-open, re-enabled)
    until the upstream answers one of them; other requests go to known accounts or wait."""
    probe_timeout: Duration = 30.0
    """A probe not answered within this time (a long non-stream generation, or an edge that died holding it) gives
    up its slot, and the account admits another probe."""
    cooldown_scope: Literal["model", "account"] = "model"
    """What a 429 rests: the account for the model it was for (providers limit per model), or the whole account.
    Quota, credentials, the circuit breaker and operators' actions are always account-wide."""
    model_groups: list[str] = Field(default_factory=list)
    """Globs naming models that share one limit (``claude-opus-*``): a 429 for one rests the group."""
    classify: list[ClassifyRule] = Field(default_factory=list)
    """Rules for upstream errors, tried before the built-in table (docs/health.md)."""
    quota_rest: Duration = 3600.0
    quota_timezone: TimeZoneName = "UTC"
    """The time zone whose midnight starts the day of rpd_limit and tpd_limit (an IANA name such as
    America/Los_Angeles)."""
    reserve: float = Field(default=0.0, ge=0.0, lt=1.0)
    """Stop using an account while a learned rate-limit or quota window has less than this share left (e.g. 0.1 for
    owners who also use their account by hand), until that window resets."""
    """How long an account out of quota rests when the upstream does not say when its quota comes back."""
    slow_start: int = Field(default=0, ge=0, le=1_000_000)
    """0: a probe's success opens the account fully. N: it then takes 2, 4, 8 … leases in flight, doubling per
    success, until the step passes N."""

