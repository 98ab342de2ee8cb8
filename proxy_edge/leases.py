"""The edge's own model of the selector's answers: a :class:`Lease` granted, an :class:`Outcome` to report.

Protobuf stops at the selector client (:mod:`proxy_edge.selector_client`): it turns each ``pb.Lease`` into a
:class:`Lease` once, when it arrives, and each :class:`Outcome` into a ``ReportOutcomeRequest`` once, when it is sent.
Attempts, upstream calls, the model list and tracing read and fill these dataclasses only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

from poolgate.v1 import selector_pb2 as pb
from proxy_edge.outcomes import SUCCESS

__all__ = ["ClientLimits", "Lease", "Outcome", "client_pb", "early_outcome", "lease_from_pb"]


@dataclass(frozen=True, slots=True)
class ClientLimits:
    """The client a selection is made for, and the limits the selector enforces for it (0: none)."""

    name: str
    """Empty: no client (``edge.auth`` off); the selection carries none."""
    rpm_limit: int = 0
    tpm_limit: int = 0
    daily_budget_usd: float = 0.0
    monthly_budget_usd: float = 0.0
    budget_timezone: str = "UTC"


@lru_cache(maxsize=1024)
def client_pb(limits: ClientLimits) -> pb.ClientLimits | None:
    """``SelectAccountRequest.client`` for ``limits``, built once per client (None for no client)."""
    if not limits.name:
        return None
    return pb.ClientLimits(name=limits.name, rpm_limit=limits.rpm_limit, tpm_limit=limits.tpm_limit,
                           daily_budget_usd=limits.daily_budget_usd, monthly_budget_usd=limits.monthly_budget_usd,
                           budget_timezone=limits.budget_timezone)


@dataclass(frozen=True, slots=True)
class Lease:
    """One account of a pool, leased for one attempt; every lease gets a final :class:`Outcome` reported."""

    lease_id: str
    account_id: str
    """``pool/name``: the account's stable id (never a credential)."""
    account_name: str
    pool: str
    base_url: str
    credential: tuple[str, str]
    """The header that authenticates the account upstream, as (name, value). A secret: never logged or shown."""
    extra_headers: tuple[tuple[str, str], ...]
    """Further headers the account needs upstream (an API version, an organization id)."""
    probe: bool
    """The account's health is unknown and other requests wait for this answer: report early (:func:`early_outcome`)
    as soon as the upstream's headers arrive."""
    proxy: str
    """The egress proxy setting for the account's calls (its own ``proxy:``, else its pool's): a URL, ``direct``, or
    empty for the environment's. May carry a proxy password: never logged unredacted."""
    replica: int = field(default=0, compare=False, repr=False)
    """Which of the edge's selector replicas granted the lease: its reports must go there (no other knows it)."""


def lease_from_pb(lease: pb.Lease, replica: int) -> Lease:
    """The edge's :class:`Lease` for ``lease``, granted by replica number ``replica``."""
    credential = lease.credential
    return Lease(lease.lease_id, lease.account_id, lease.account_name, lease.pool, lease.base_url,
                 (credential.name, credential.value), tuple((h.name, h.value) for h in lease.extra_headers),
                 lease.probe, lease.proxy, replica)


@dataclass(slots=True)
class Outcome:
    """How an attempt with a lease went, as the edge reports it (the fields of ``ReportOutcomeRequest`` but the
    lease id, which the lease gives)."""

    outcome: int = 0
    """One of :mod:`proxy_edge.outcomes`' kinds (0 while not decided)."""
    http_status: int = 0
    retry_after_ms: int = 0
    latency_ms: int = 0
    time_to_first_token_ms: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    rate_limit_headers: dict[str, str] = field(default_factory=dict)
    detail: str = ""
    """A few words on why, without credentials (it becomes a disable's reason, a log line)."""
    early: bool = False
    """The upstream's headers arrived (2xx) and the body is still coming; the final report follows."""
    error_type: str = ""
    error_code: str = ""

    def to_pb(self, lease_id: str) -> pb.ReportOutcomeRequest:
        """The report of this outcome for lease ``lease_id``."""
        report = pb.ReportOutcomeRequest(
            lease_id=lease_id, outcome=self.outcome, http_status=self.http_status,  # type: ignore[arg-type]
            retry_after_ms=self.retry_after_ms, latency_ms=self.latency_ms,
            time_to_first_token_ms=self.time_to_first_token_ms, input_tokens=self.input_tokens,
            output_tokens=self.output_tokens, detail=self.detail, early=self.early, error_type=self.error_type,
            error_code=self.error_code)
        if self.rate_limit_headers:
            report.rate_limit_headers.update(self.rate_limit_headers)
        return report


def early_outcome(status: int, limits: dict[str, str]) -> Outcome:
    """The early report of a probe lease whose upstream answered ``status`` (2xx) with rate-limit headers ``limits``."""
    return Outcome(SUCCESS, status, rate_limit_headers=dict(limits), early=True)
