"""How an attempt went, in the selector's terms, and whether the pool's failover settings retry it."""

from __future__ import annotations

from dataclasses import dataclass, field

from poolgate.config.schema import PoolConfig
from poolgate.v1 import selector_pb2 as pb

SUCCESS = pb.OUTCOME_SUCCESS
RATE_LIMITED = pb.OUTCOME_RATE_LIMITED
AUTH_FAILED = pb.OUTCOME_AUTH_FAILED
SERVER_ERROR = pb.OUTCOME_SERVER_ERROR
NETWORK_ERROR = pb.OUTCOME_NETWORK_ERROR
TIMEOUT = pb.OUTCOME_TIMEOUT
CLIENT_ERROR = pb.OUTCOME_CLIENT_ERROR
CANCELLED = pb.OUTCOME_CANCELLED


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
    def from_config(cls, pool: PoolConfig) -> PoolPolicy:
        retry_on = pool.failover.retry_on
        return cls(
            max_attempts=pool.failover.max_attempts,
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
