"""The dashboard's operator actions as calls to the selector's Admin service, always with the operator's own token.

The edge holds no admin power of its own: every call carries the admin token the operator typed into the page, and
the selector checks it (``selector.auth.admin_tokens``, in constant time). A selector with no tokens configured
answers Admin calls from anyone on its machine; the edge must not turn that into an open door for whoever can reach
the dashboard, so before each action it asks the selector whether Admin calls need a token at all (a call without
one, for a pool no config can name: refused unheard when tokens are configured, "unknown pool" otherwise, a no-op
either way) and refuses the action when they do not.
"""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass
from typing import TypeVar

import grpc

from poolgate import selector_channel
from poolgate.v1 import selector_pb2 as pb
from poolgate.v1 import selector_pb2_grpc
from proxy_edge.dashboard.feed import state_name

ACTION_TIMEOUT = 10.0
"""Seconds an action may take at the selector (a reload reads and applies the whole config)."""
_NO_POOL = pb.AccountRef(pool="/", account="/")
"""Pool names cannot contain '/' (poolgate.config.schema), so this names no account anywhere."""

T = TypeVar("T")

OPEN_ADMIN = (
    "the selector's Admin service takes no token (selector.auth.admin_tokens is empty), so the dashboard will not "
    "change accounts: anyone who can reach the dashboard could. Set selector.auth.admin_tokens in the selector's "
    "config, restart the selector, and enter one of those tokens here")

# gRPC status -> (HTTP status, error code, what the operator should do); the selector's own message is added.
_STATUSES: dict[grpc.StatusCode, tuple[int, str, str]] = {
    grpc.StatusCode.UNAUTHENTICATED: (401, "admin_token_rejected",
                                      "the selector did not accept this admin token; enter one of "
                                      "selector.auth.admin_tokens"),
    grpc.StatusCode.PERMISSION_DENIED: (403, "admin_token_forbidden",
                                        "this token may not administer the selector; enter one of "
                                        "selector.auth.admin_tokens"),
    grpc.StatusCode.NOT_FOUND: (404, "not_found", "no such pool or account"),
    grpc.StatusCode.INVALID_ARGUMENT: (400, "invalid_request", "the selector refused the request"),
    grpc.StatusCode.ALREADY_EXISTS: (409, "conflict", "the selector refused the request"),
    grpc.StatusCode.FAILED_PRECONDITION: (409, "failed_precondition", "the selector cannot do this"),
    grpc.StatusCode.UNAVAILABLE: (503, "selector_unavailable", "the selector cannot be reached; try again"),
    grpc.StatusCode.DEADLINE_EXCEEDED: (504, "selector_timeout",
                                        f"the selector did not answer within {ACTION_TIMEOUT:g} s; check its "
                                        "state before trying again"),
}


class AdminActionError(Exception):
    """An action that did not happen; ``status``/``code``/``message`` are what the page gets."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def _error(exc: grpc.aio.AioRpcError) -> AdminActionError:
    status, code, advice = _STATUSES.get(exc.code(), (502, "selector_error", "the selector failed"))
    details = (exc.details() or "").strip()
    return AdminActionError(status, code, f"{advice}: {details}" if details else advice)


@dataclass(frozen=True, slots=True)
class AccountResult:
    """An account as an action left it."""

    account_id: str
    state: str
    reason: str

    def to_json(self) -> dict[str, str]:
        return {"id": self.account_id, "state": self.state, "reason": self.reason}


class AdminLink:
    """Admin calls over the edge's one channel to the selector."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self._stub = selector_pb2_grpc.AdminStub(channel)

    async def require_admin_tokens(self) -> None:
        """Raise AdminActionError unless the selector demands a token for Admin calls."""
        try:
            await self._stub.EnableAccount(_NO_POOL, timeout=ACTION_TIMEOUT)
        except grpc.aio.AioRpcError as exc:
            if exc.code() is grpc.StatusCode.UNAUTHENTICATED:
                return
            if exc.code() not in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT):
                raise _error(exc) from None
        raise AdminActionError(403, "admin_tokens_not_configured", OPEN_ADMIN)

    async def enable(self, token: str, pool: str, account: str) -> AccountResult:
        ref = pb.AccountRef(pool=pool, account=account)
        return _result(await self._call(self._stub.EnableAccount(ref, **_options(token))))

    async def disable(self, token: str, pool: str, account: str, reason: str) -> AccountResult:
        request = pb.DisableAccountRequest(pool=pool, account=account, reason=reason)
        return _result(await self._call(self._stub.DisableAccount(request, **_options(token))))

    async def reset(self, token: str, pool: str, account: str) -> AccountResult:
        ref = pb.AccountRef(pool=pool, account=account)
        return _result(await self._call(self._stub.ResetAccount(ref, **_options(token))))

    async def reload(self, token: str) -> dict[str, list[str]]:
        """What the reload changed: pools and accounts added and removed."""
        summary = await self._call(self._stub.Reload(pb.ReloadRequest(), **_options(token)))
        return {"pools_added": list(summary.pools_added), "pools_removed": list(summary.pools_removed),
                "accounts_added": list(summary.accounts_added), "accounts_removed": list(summary.accounts_removed)}

    @staticmethod
    async def _call(call: Awaitable[T]) -> T:
        try:
            return await call
        except grpc.aio.AioRpcError as exc:
            raise _error(exc) from None


def _options(token: str) -> dict[str, object]:
    return {"metadata": selector_channel.metadata(token), "timeout": ACTION_TIMEOUT}


def _result(status: pb.AccountStatus) -> AccountResult:
    return AccountResult(status.account_id, state_name(status.state), status.reason)
