"""The gRPC status of each domain error (see ``selector_service.domain.errors``), for the unary RPCs, the Exchange
stream and the admin service alike."""

from __future__ import annotations

from typing import Any, NoReturn

import grpc

from selector_service.domain.errors import NoAccountAvailableError, SelectorError, UnknownAccountError, UnknownPoolError


def status_of(exc: SelectorError) -> grpc.StatusCode:
    """NOT_FOUND for an unknown pool or account, RESOURCE_EXHAUSTED when no account can serve, INVALID_ARGUMENT for
    anything else the caller got wrong."""
    if isinstance(exc, UnknownPoolError | UnknownAccountError):
        return grpc.StatusCode.NOT_FOUND
    if isinstance(exc, NoAccountAvailableError):
        return grpc.StatusCode.RESOURCE_EXHAUSTED
    return grpc.StatusCode.INVALID_ARGUMENT


def trailing_metadata(exc: SelectorError) -> tuple[tuple[str, str], ...]:
    """What a client needs to act on RESOURCE_EXHAUSTED: the cause, and when to retry."""
    if not isinstance(exc, NoAccountAvailableError):
        return ()
    metadata = [("poolgate-cause", exc.cause)]
    if exc.retry_after_ms is not None:
        metadata.append(("retry-after-ms", str(exc.retry_after_ms)))
    return tuple(metadata)


async def abort(context: Any, exc: SelectorError) -> NoReturn:
    """End the RPC with the error's status, message and metadata."""
    await context.abort(status_of(exc), str(exc), trailing_metadata=trailing_metadata(exc))
    raise AssertionError("abort returned")
