"""What an upstream's error says about the account: one rule table, the pool's own ``classify:`` rules first.

A client reports the HTTP status, the provider's error type and code, and a scrubbed excerpt of its message; the
outcome it sends (rate limited, auth failed …) is read from the status alone. The rules refine it: a 429 of type
``insufficient_quota`` is an account out of credit, which no short backoff fixes; a 529 is the provider overloaded,
not this account limited; a 400 whose message says the prompt is too long is the client's request. The table of
built-in rules is in docs/health.md.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from poolgate.config.schema import PoolConfig
from selector_service.domain.outcomes import Outcome, OutcomeReport


class ErrorClass(enum.Enum):
    RATE_LIMITED = "rate_limited"
    """A passing limit: cool down (the upstream's retry-after, else an exponential backoff), then probe."""
    QUOTA_EXHAUSTED = "quota_exhausted"
    """Out of credit or of a plan's window: rest until the window's reset when known, else ``quota_rest``."""
    AUTH = "auth"
    """Credentials rejected: disable (after one refresh for an OAuth account)."""
    OVERLOADED = "overloaded"
    """The provider is overloaded (529, 503 overloaded): fail over; counts towards the circuit breaker only."""
    REQUEST_ERROR = "request_error"
    """The request's own fault (context too long, invalid request): no failover; the account's health is unchanged."""
    SERVER_ERROR = "server_error"
    NETWORK = "network"
    TIMEOUT = "timeout"


_BY_OUTCOME = {
    Outcome.RATE_LIMITED: ErrorClass.RATE_LIMITED, Outcome.AUTH_FAILED: ErrorClass.AUTH,
    Outcome.SERVER_ERROR: ErrorClass.SERVER_ERROR, Outcome.NETWORK_ERROR: ErrorClass.NETWORK,
    Outcome.TIMEOUT: ErrorClass.TIMEOUT, Outcome.CLIENT_ERROR: ErrorClass.REQUEST_ERROR,
}


@dataclass(frozen=True, slots=True)
class Rule:
    """Errors matching every given field are of ``error_class``; ``rest`` (seconds) overrides how long the account
    rests for rate_limited and quota_exhausted."""

    error_class: ErrorClass
    statuses: frozenset[int] = frozenset()
    error_type: str = ""
    """Compared without regard to case, as is ``code``."""
    code: str = ""
    message: str = ""
    """A part of the message, compared without regard to case."""
    rest: float | None = None

    def matches(self, report: OutcomeReport) -> bool:
        if self.statuses and report.http_status not in self.statuses:
            return False
        if self.error_type and self.error_type != report.error_type.lower():
            return False
        if self.code and self.code != report.error_code.lower():
            return False
        return not self.message or self.message in report.detail.lower()


def rule(error_class: ErrorClass, statuses: Iterable[int] = (), error_type: str = "", code: str = "",
         message: str = "", rest: float | None = None) -> Rule:
    """A rule, its texts lower-cased once."""
    return Rule(error_class, frozenset(statuses), error_type.lower(), code.lower(), message.lower(), rest)


BUILTIN_RULES: tuple[Rule, ...] = (
    # Out of credit or of a plan: OpenAI, Anthropic (API credit, subscription extra usage), generic billing words.
    rule(ErrorClass.QUOTA_EXHAUSTED, error_type="insufficient_quota"),
    rule(ErrorClass.QUOTA_EXHAUSTED, code="insufficient_quota"),
    rule(ErrorClass.QUOTA_EXHAUSTED, code="billing_hard_limit_reached"),
    rule(ErrorClass.QUOTA_EXHAUSTED, code="billing_not_active"),
    rule(ErrorClass.QUOTA_EXHAUSTED, message="credit balance is too low"),
    rule(ErrorClass.QUOTA_EXHAUSTED, message="extra usage"),
    rule(ErrorClass.QUOTA_EXHAUSTED, message="exceeded your current quota"),
    # The provider's own trouble.
    rule(ErrorClass.OVERLOADED, statuses=(529,)),
    rule(ErrorClass.OVERLOADED, error_type="overloaded_error"),
    rule(ErrorClass.OVERLOADED, statuses=(503,), message="overloaded"),
    # Rate limits by name (Gemini's OpenAI-compatible endpoint says RESOURCE_EXHAUSTED).
    rule(ErrorClass.RATE_LIMITED, error_type="rate_limit_error"),
    rule(ErrorClass.RATE_LIMITED, code="rate_limit_exceeded"),
    rule(ErrorClass.RATE_LIMITED, error_type="resource_exhausted"),
    # The request's own fault, whatever the status says.
    rule(ErrorClass.REQUEST_ERROR, code="context_length_exceeded"),
    rule(ErrorClass.REQUEST_ERROR, message="prompt is too long"),
    rule(ErrorClass.REQUEST_ERROR, message="maximum context length"),
)


def classify(report: OutcomeReport, rules: Sequence[Rule]) -> tuple[ErrorClass | None, float | None]:
    """The class of a final report's error and the rule's rest, if any; None for a success or a cancellation.

    ``rules`` (the pool's) are tried first, then :data:`BUILTIN_RULES`, then the outcome the client sent decides.
    """
    if report.outcome in (Outcome.SUCCESS, Outcome.CANCELLED):
        return None, None
    if report.http_status:
        for candidate in (*rules, *BUILTIN_RULES):
            if candidate.matches(report):
                return candidate.error_class, candidate.rest
    return _BY_OUTCOME[report.outcome], None


def pool_rules(config: PoolConfig) -> tuple[Rule, ...]:
    """A pool's ``classify:`` rules in the form :func:`classify` reads."""
    return tuple(
        rule(ErrorClass(item.error_class), item.match.statuses, item.match.type, item.match.code, item.match.message,
             item.rest)
        for item in config.classify)
