"""Errors the selector's domain raises; the gRPC layer maps each to a status code.

SelectorError
 ├── UnknownPoolError        the pool is not configured               -> NOT_FOUND
 ├── UnknownAccountError     the pool has no such account             -> NOT_FOUND
 ├── InvalidRequestError     a request field is missing or bad        -> INVALID_ARGUMENT
 └── NoAccountAvailableError nothing can serve before the deadline    -> RESOURCE_EXHAUSTED (+ retry-after-ms)
      └── ClientLimitError    the request's client is over a limit      -> RESOURCE_EXHAUSTED (+ retry-after-ms)
"""

from __future__ import annotations


class SelectorError(Exception):
    """Base of the selector's domain errors."""


class UnknownPoolError(SelectorError):
    def __init__(self, pool: str, known: list[str]) -> None:
        self.pool = pool
        super().__init__(f"unknown pool {pool!r}; configured pools: {', '.join(sorted(known)) or 'none'}")


class UnknownAccountError(SelectorError):
    def __init__(self, pool: str, account: str, known: list[str]) -> None:
        self.pool = pool
        self.account = account
        super().__init__(f"pool {pool!r} has no account {account!r}; its accounts: {', '.join(known) or 'none'}")


class InvalidRequestError(SelectorError):
    """``field`` names the offending request field."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"{field}: {message}")


class NoAccountAvailableError(SelectorError):
    """No account of the pool can serve in time.

    ``retry_after`` is the number of seconds until the earliest account frees up, or None when none will by itself
    (every account disabled). ``cause`` is "rate_limited" when quota is the reason, "busy" when accounts are at their
    concurrency limit, "unavailable" otherwise (circuit open, disabled).
    """

    def __init__(self, pool: str, summary: str, retry_after: float | None, cause: str) -> None:
        self.pool = pool
        self.retry_after = retry_after
        self.cause = cause
        when = f"; earliest account frees up in {retry_after:.1f} s" if retry_after is not None else ""
        super().__init__(f"no account of pool {pool!r} can serve now ({summary}){when}")

    @property
    def retry_after_ms(self) -> int | None:
        """The retry time in whole milliseconds, at least 1 (None when no account frees up by itself)."""
        return max(1, int(self.retry_after * 1000)) if self.retry_after is not None else None


class ClientLimitError(NoAccountAvailableError):
    """The request's client (``SelectAccountRequest.client``) may not have a lease now: over its rpm or tpm limit
    (cause ``client_rate_limited``) or its daily or monthly budget spent (cause ``client_budget``). ``retry_after``:
    seconds until the limit frees up or the budget's period resets."""

    def __init__(self, client: str, message: str, retry_after: float, cause: str) -> None:
        SelectorError.__init__(self, message)
        self.pool = ""
        self.client = client
        self.retry_after = retry_after
        self.cause = cause
