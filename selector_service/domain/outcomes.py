"""The domain's own words for what happened to an attempt (independent of the gRPC enum)."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field


class Outcome(enum.Enum):
    SUCCESS = "success"
    RATE_LIMITED = "rate_limited"
    AUTH_FAILED = "auth_failed"
    SERVER_ERROR = "server_error"
    NETWORK_ERROR = "network_error"
    TIMEOUT = "timeout"
    CLIENT_ERROR = "client_error"
    CANCELLED = "cancelled"

    @property
    def counts_against_circuit(self) -> bool:
        return self in (Outcome.SERVER_ERROR, Outcome.NETWORK_ERROR, Outcome.TIMEOUT)


class AccountState(enum.Enum):
    HEALTHY = "healthy"
    COOLING = "cooling"
    CIRCUIT_OPEN = "circuit_open"
    PROBING = "probing"
    """Health unknown (new, after a cooldown, half-open circuit, re-enabled): only probe leases until it answers."""
    DISABLED = "disabled"


@dataclass(frozen=True, slots=True)
class OutcomeReport:
    """Everything a client tells about one attempt."""

    lease_id: str
    outcome: Outcome
    http_status: int = 0
    retry_after_ms: int = 0
    latency_ms: int = 0
    time_to_first_token_ms: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    rate_limit_headers: Mapping[str, str] = field(default_factory=dict)
    detail: str = ""
    early: bool = False
    """The upstream's answer status as soon as its headers arrived; the lease stays held until the final report."""
    error_type: str = ""
    """The provider's error type (``insufficient_quota``, ``overloaded_error``, ``RESOURCE_EXHAUSTED``), if any."""
    error_code: str = ""


@dataclass(frozen=True, slots=True)
class ReportResult:
    recorded: bool
    detail: str
    state: AccountState | None = None
