"""The failover loop: lease an account, attempt, and on a retryable failure try another account.

One retry budget per request (the pool's ``failover.max_attempts``); accounts already tried are excluded. When the
budget or the accounts run out, the client gets the last upstream error, or a 503 in its API shape.
"""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from proxy_edge import outcomes as oc
from proxy_edge.endpoints import Job
from proxy_edge.errors import error_response
from proxy_edge.headers import format_retry_after
from proxy_edge.outcomes import PoolPolicy
from proxy_edge.selector_client import SelectorClient, SelectorError
from proxy_edge.tracing import trace_for
from proxy_edge.upstream import Failure, Upstream

log = logging.getLogger("poolgate.edge")


class Forwarder:
    """Serves forwarded requests through the selector's leases, failing over between accounts."""

    def __init__(self, upstream: Upstream, selector: SelectorClient, policies: dict[str, PoolPolicy]) -> None:
        self._upstream = upstream
        self._selector = selector
        self._policies = policies
        self._loop = asyncio.get_running_loop()

    async def forward(self, request: web.Request, job: Job) -> web.StreamResponse:
        """Answer ``request`` from the first account that serves it."""
        pool = job.route.pool
        policy = self._policies[pool]
        trace = trace_for(request, pool, job.requested_model)  # the request line and metrics (tracing.py)
        client_headers = tuple(request.headers.items())
        exclude: list[str] = []
        failure: Failure | None = None
        failed_account = ""
        response: web.StreamResponse | None = None
        selector_error: SelectorError | None = None
        attempt = 0
        while attempt < policy.max_attempts:
            try:
                lease = await self._selector.select(pool, job.route.upstream_model, job.session_key, exclude,
                                                    len(job.body) // 4)
            except SelectorError as exc:
                selector_error = exc
                if failure is not None:
                    log.warning("%s %s; no other account available (%s)", failed_account,
                                oc.describe(failure.outcome, failure.status, failure.retry_after_ms), exc.message)
                break
            attempt += 1
            if failure is not None:
                log.warning("%s %s; trying %s, attempt %d/%d", failed_account,
                            oc.describe(failure.outcome, failure.status, failure.retry_after_ms),
                            lease.account_id, attempt, policy.max_attempts)
            exclude.append(lease.account_id)
            result = await self._upstream.attempt(request, job, lease, client_headers)
            trace.attempted(lease, result)
            if not isinstance(result, Failure):
                response = result
                break
            failure, failed_account = result, lease.account_id
            if not policy.retries(failure.outcome, failure.status):
                break
        else:
            if failure is not None and policy.max_attempts > 1:
                log.warning("%s %s; giving up after %d attempts", failed_account,
                            oc.describe(failure.outcome, failure.status, failure.retry_after_ms), attempt)
        if response is None:
            response = final_response(job, failure, failed_account, selector_error)
        return response


def final_response(
    job: Job, failure: Failure | None, account: str, selector_error: SelectorError | None
) -> web.StreamResponse:
    """What the client gets when no attempt succeeded."""
    shape = job.endpoint.shape
    if failure is None:
        assert selector_error is not None
        headers = None
        if selector_error.retry_after_ms is not None:
            headers = {"Retry-After": format_retry_after(selector_error.retry_after_ms),
                       "retry-after-ms": str(selector_error.retry_after_ms)}
        return error_response(shape, selector_error.status, selector_error.message, selector_error.code, headers)
    if failure.outcome == oc.AUTH_FAILED:
        # Not passed on as a 401/403: the client's own key to the edge is fine, the pool's accounts are not.
        return error_response(shape, 503, (
            f"the upstream rejected the credentials of account {account} ({failure.detail}); "
            "no other account could serve: check the keys in the config"), "upstream_auth_failed")
    if failure.body is not None:
        response = web.Response(status=failure.status, body=failure.body, headers=failure.headers)
        if failure.headers is None:
            response.content_type = "application/json"
        if selector_error is not None and selector_error.retry_after_ms and "Retry-After" not in response.headers:
            response.headers["Retry-After"] = format_retry_after(selector_error.retry_after_ms)
        return response
    return error_response(shape, 503, (
        f"the upstream could not be reached with account {account} ({oc.describe(failure.outcome, 0, 0)}: "
        f"{failure.detail}) and no other account could serve; retry later"), "upstream_unavailable")
