"""How an attempt went, in the selector's terms, and whether the pool's failover settings retry it."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

from poolgate.config.schema import FailoverSettings


class Outcome(IntEnum):
    """How an attempt ended; the numbers are the contract's ``Outcome`` values (the report carries them as they are)."""

    SUCCESS = 1
    RATE_LIMITED = 2
    AUTH_FAILED = 3
    SERVER_ERROR = 4
    NETWORK_ERROR = 5
    TIMEOUT = 6
    CLIENT_ERROR = 7
    CANCELLED = 8


SUCCESS = Outcome.SUCCESS
RATE_LIMITED = Outcome.RATE_LIMITED
AUTH_FAILED = Outcome.AUTH_FAILED
SERVER_ERROR = Outcome.SERVER_ERROR
NETWORK_ERROR = Outcome.NETWORK_ERROR
TIMEOUT = Outcome.TIMEOUT
CLIENT_ERROR = Outcome.CLIENT_ERROR
CANCELLED = Outcome.CANCELLED


def outcome_for_status(status: int) -> int:
    """2xx success; 429/529 rate limited; 401/403 auth failed; 5xx server error; other 4xx the client's fault."""
    if 200 <= status < 300:
        return SUCCESS
    if status in (429, 529):
        return RATE_LIMITED
    if status in (401, 403):
        return AUTH_FAILED
    if 400 <= status < 500:
        return CLIENT_ERROR
    return SERVER_ERROR


@dataclass(frozen=True, slots=True)
class PoolPolicy:
    """A pool's ``failover`` settings in the form the attempt loop checks."""

    max_attempts: int = 3
    statuses: frozenset[int] = field(default_factory=frozenset)
    network: bool = True
    timeout: bool = True

    @classmethod
    def from_failover(cls, failover: FailoverSettings) -> PoolPolicy:
        retry_on = failover.retry_on
        return cls(
            max_attempts=failover.max_attempts,
            statuses=frozenset(item for item in retry_on if isinstance(item, int)),
            network="network" in retry_on,
            timeout="timeout" in retry_on,
        )

    def retries(self, outcome: int, status: int) -> bool:
        """Whether an attempt that ended so is retried on another account."""
        if outcome == NETWORK_ERROR:
            return self.network
        if outcome == TIMEOUT:
            return self.timeout
        return status in self.statuses


def describe(outcome: int, status: int, retry_after_ms: int) -> str:
    """A few words for the failover log line: "rate limited, retry in 30 s"."""
    if outcome == RATE_LIMITED:
        text = "overloaded (529)" if status == 529 else "rate limited"
        return f"{text}, retry in {retry_after_ms / 1000:g} s" if retry_after_ms else text
    if outcome == AUTH_FAILED:
        return f"credentials rejected ({status})"
    if outcome == SERVER_ERROR:
        return f"server error ({status})" if status else "server error"
    if outcome == NETWORK_ERROR:
        return "network error"
    if outcome == TIMEOUT:
        return "timed out"
    if outcome == CLIENT_ERROR:
        return f"client error ({status})"
    if outcome == CANCELLED:
        return "cancelled by the client"
    return "succeeded"
