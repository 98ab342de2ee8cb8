"""The one map from the selector's failures to what the edge's client gets.

Both transports fail a call the same way (:class:`~poolgate.exchange_client.SelectError`: a gRPC status code, the
selector's message, its ``retry-after-ms`` and cause); :func:`selection_error` and :func:`query_error` turn it into
a :class:`SelectorError`, whose HTTP status, error code and message the handlers send in the client's API shape.
"""

from __future__ import annotations

import re

import grpc

from poolgate.exchange_client import SelectError

__all__ = ["UNAVAILABLE_RETRY_AFTER_MS", "SelectorError", "query_error", "selection_error"]

UNAVAILABLE_RETRY_AFTER_MS = 1000
"""What the client is told to wait (Retry-After) while the selector is unreachable: about one reconnect attempt."""
CLIENT_CAUSES = frozenset({"client_rate_limited", "client_budget"})
"""Causes of RESOURCE_EXHAUSTED that concern the request's client, not the pool: its error code is the cause."""
NEAR_RESET_MS = 3_600_000
"""A spent budget that resets within this time is worth retrying (``x-should-retry`` is not sent as false)."""
_RATE_LIMITED = re.compile(r"rate[- _]?limit|cooling|429", re.IGNORECASE)
"""For a selector too old to send a cause: whether its message says the accounts are rate limited."""


class SelectorError(Exception):
    """The selector gave no lease (or no answer); ``status``/``code``/``message`` are what the client gets."""

    def __init__(self, status: int, code: str, message: str, retry_after_ms: int | None = None,
                 retry: bool | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.retry_after_ms = retry_after_ms
        self.retry = retry
        """Whether a retry can help (``x-should-retry``); None: as the status says."""


def selection_error(exc: SelectError, pool: str, address: str, timeout: float) -> SelectorError:
    """A failed selection for ``pool`` from the selector at ``address`` (``timeout``: the selection's deadline)."""
    code, details = exc.code, exc.message
    if code is grpc.StatusCode.RESOURCE_EXHAUSTED and exc.cause in CLIENT_CAUSES:
        # The client's own limit or budget (the selector's message names it and when it frees up): no account is
        # tried, and a budget that resets more than an hour away tells the SDKs not to retry.
        wait = exc.retry_after_ms or None
        retry = None if exc.cause == "client_rate_limited" or (wait is not None and wait <= NEAR_RESET_MS) else False
        return SelectorError(429, exc.cause, details, wait, retry)
    if code is grpc.StatusCode.RESOURCE_EXHAUSTED:
        rate_limited = exc.cause == "rate_limited" if exc.cause else bool(_RATE_LIMITED.search(details))
        message = details or f"no account of pool {pool!r} can serve now"
        return SelectorError(429 if rate_limited else 503, "no_account_available", message,
                             exc.retry_after_ms or None)
    if code is grpc.StatusCode.DEADLINE_EXCEEDED:
        return SelectorError(503, "selector_timeout", (
            f"no lease for pool {pool!r} within {timeout:g} s: every account is busy, or the selector at "
            f"{address} is overloaded; retry later"))
    if code is grpc.StatusCode.UNAVAILABLE:
        return SelectorError(503, "selector_unavailable", (
            f"the selector at {address} is unreachable ({details or 'unavailable'}); "
            "check that `poolgate selector` is running; the edge reconnects by itself"), UNAVAILABLE_RETRY_AFTER_MS)
    if code in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
        return SelectorError(503, "selector_auth", (
            f"the selector at {address} refused the edge ({details}): the edge sends the first of "
            "selector.auth.tokens from its own file; put one of the selector's tokens there"))
    if code is grpc.StatusCode.NOT_FOUND:
        return SelectorError(503, "pool_not_found", (
            f"the selector no longer serves pool {pool!r} (a reload removed it); the edge follows the selector's "
            "pools within a second: retry"))
    return SelectorError(503, "selector_error", f"the selector failed: {code.name} {details}")


def query_error(exc: SelectError, pool: str, address: str, timeout: float) -> SelectorError:
    """A failed query (ListAccounts, GetUsage): the caller's mistakes as 4xx (a bad argument 400, its message
    starting with the field; an unknown pool 404; the usage log turned off 503 ``usage_log_off``), the rest as for
    selections."""
    if exc.code is grpc.StatusCode.INVALID_ARGUMENT:
        return SelectorError(400, "invalid_parameter", exc.message)
    if exc.code is grpc.StatusCode.NOT_FOUND:
        return SelectorError(404, "pool_not_found", exc.message or f"unknown pool {pool!r}")
    if exc.code is grpc.StatusCode.FAILED_PRECONDITION:
        return SelectorError(503, "usage_log_off", exc.message)
    return selection_error(exc, pool, address, timeout)
