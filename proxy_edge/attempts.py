"""The failover loop: lease an account, attempt, and on a retryable failure try another account.

One retry budget per request (the pool's ``failover.max_attempts``); accounts already tried are excluded. When the
budget or the accounts run out, the client gets the last upstream error, or a 503 in its API shape.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from aiohttp import web

from proxy_edge import outcomes as oc
from proxy_edge.endpoints import Job
from proxy_edge.errors import error_response
from proxy_edge.headers import format_retry_after
from proxy_edge.leases import Lease
from proxy_edge.outcomes import PoolPolicy
from proxy_edge.selector_client import SelectorClient, SelectorError
from proxy_edge.tracing import trace_for
from proxy_edge.upstream import Failure, Upstream

log = logging.getLogger("poolgate.edge")


class Forwarder:
    """Serves forwarded requests through the selector's leases, failing over between accounts."""

    def __init__(self, upstream: Upstream, selector: SelectorClient, policies: Mapping[str, PoolPolicy]) -> None:
        self._upstream = upstream
        self._selector = selector
        self._policies = policies

    @property
    def upstream(self) -> Upstream:
        return self._upstream

    async def forward(self, request: web.Request, job: Job) -> web.StreamResponse:
        """Answer ``request`` from the first account that serves it, along the fallback chain if there is one."""
        targets = (job, *job.fallbacks)
        trace = trace_for(request, job.route.pool, job.requested_model)  # the request line and metrics (tracing.py)
        client_headers = tuple(request.headers.items())
        budget = attempt_budget(targets, self._policies)
        failure: Failure | None = None
        failed_job = job
        failed_account = ""
        response: web.StreamResponse | None = None
        selector_error: SelectorError | None = None
        attempt = 0
        for index, target in enumerate(targets):
            pool = target.route.pool
            policy = self._policies[pool]
            headers = client_headers if target.translation is None else without_other_api_headers(client_headers)
            exclude: list[str] = []
            previous: Lease | None = None  # the target's last lease: its retry asks the replica that granted it
            selector_error = None
            final = False  # a failure that is not retried goes to the client as it is
            while len(exclude) < policy.max_attempts and attempt < budget:
                try:
                    lease = await self._selector.select(pool, target.route.upstream_model, target.session_key,
                                                        exclude, len(target.body) // 4, target.upstream.light,
                                                        target.conversation, near=previous,
                                                        client=target.client)
                except SelectorError as exc:
                    selector_error = exc
                    if failure is not None and failed_job is target:
                        log.warning("%s %s; no other account available (%s)", failed_account,
                                    oc.describe(failure.outcome, failure.status, failure.retry_after_ms), exc.message)
                    break
                attempt += 1
                if failure is not None:
                    log.warning("%s %s; trying %s, attempt %d/%d", failed_account,
                                oc.describe(failure.outcome, failure.status, failure.retry_after_ms),
                                lease.account_id, attempt, budget)
                exclude.append(lease.account_id)
                previous = lease
                if index:
                    target.response_headers[FALLBACKS_HEADER] = str(index)
                result = await self._upstream.attempt(request, target, lease, trace.attempt_headers(
                    lease, target.route.upstream_model, target.route.format, headers))
                trace.attempted(lease, result)
                if not isinstance(result, Failure):
                    response = result
                    break
                failure, failed_account, failed_job = result, lease.account_id, target
                if not policy.retries(failure.outcome, failure.status):
                    final = True
                    break
            if response is not None or final:
                break
            movable = selector_error is None or selector_error.code in _MOVE_ON
            if index + 1 < len(targets) and attempt < budget and movable:
                nxt = targets[index + 1].route
                why = _why(selector_error, failure if failed_job is target else None)
                log.warning("%s: %s/%s %s; moving to %s/%s, target %d/%d", target.via or "chain", pool,
                            target.route.upstream_model, why, nxt.pool, nxt.upstream_model, index + 2, len(targets))
                continue
            if selector_error is None and failure is not None and attempt > 1:
                log.warning("%s %s; giving up after %d attempts", failed_account,
                            oc.describe(failure.outcome, failure.status, failure.retry_after_ms), attempt)
            break
        if response is None:
            response = final_response(failed_job, failure, failed_account, selector_error)
        return response


_MOVE_ON = frozenset({"no_account_available", "selector_timeout"})
"""Selector answers after which a fallback chain moves to its next target (others concern every pool alike)."""
FALLBACKS_HEADER = "x-poolgate-fallbacks"
"""Response header: how many targets of a fallback chain were passed over before the one that served."""


def attempt_budget(targets: tuple[Job, ...], policies: Mapping[str, PoolPolicy]) -> int:
    """The request's one budget of attempts: the largest ``failover.max_attempts`` among its targets' pools, plus
    one for each further target of a chain, so that every target gets at least one try. Each target also stays
    within its own pool's ``max_attempts``."""
    return max(policies[t.route.pool].max_attempts for t in targets) + len(targets) - 1


def _why(selector_error: SelectorError | None, failure: Failure | None) -> str:
    if selector_error is not None:
        return f"has no account available ({selector_error.message})"
    if failure is not None:
        return f"used up its attempts ({oc.describe(failure.outcome, failure.status, failure.retry_after_ms)})"
    return "cannot serve"


def without_other_api_headers(headers: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
    """The client's headers minus those of its own API (``anthropic-*``, ``openai-*``), for a translated request:
    they name the client API's versions and features, which the other API does not have."""
    return tuple((k, v) for k, v in headers if not k.lower().startswith(("anthropic-", "openai-")))


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
        return error_response(shape, selector_error.status, selector_error.message, selector_error.code, headers,
                              selector_error.retry)
    if failure.outcome == oc.AUTH_FAILED:
        # Not passed on as a 401/403: the client's own key to the edge is fine, the pool's accounts are not.
        return error_response(shape, 503, (
            f"the upstream rejected the credentials of account {account} ({failure.detail}); "
            "no other account could serve: check the keys in the config"), "upstream_auth_failed", retry=False)
    if failure.body is not None:
        body = failure.body if job.translation is None else job.translation.error(failure.status, failure.body)
        response = web.Response(status=failure.status, body=body, headers=failure.headers)
        if failure.headers is None:
            response.content_type = "application/json"
        if selector_error is not None and selector_error.retry_after_ms and "Retry-After" not in response.headers:
            response.headers["Retry-After"] = format_retry_after(selector_error.retry_after_ms)
        return response
    return error_response(shape, 503, (
        f"the upstream could not be reached with account {account} ({oc.describe(failure.outcome, 0, 0)}: "
        f"{failure.detail}) and no other account could serve; retry later"), "upstream_unavailable")
