"""Protobuf <-> domain conversions. Nothing here decides anything."""

from __future__ import annotations

import weakref

from google.protobuf.timestamp_pb2 import Timestamp

from poolgate.v1 import selector_pb2 as pb
from selector_service.domain.account import Account
from selector_service.domain.admission import Probing
from selector_service.domain.clients import ClientLimits
from selector_service.domain.leases import Grant
from selector_service.domain.outcomes import AccountState, Outcome, OutcomeReport
from selector_service.domain.pool import AccountSnapshot, PoolSnapshot
from selector_service.domain.quota import Quota
from selector_service.domain.usage import UsageRollup
from selector_service.plugin.types import SelectionRequest

OUTCOMES = {
    pb.OUTCOME_SUCCESS: Outcome.SUCCESS,
    pb.OUTCOME_RATE_LIMITED: Outcome.RATE_LIMITED,
    pb.OUTCOME_AUTH_FAILED: Outcome.AUTH_FAILED,
    pb.OUTCOME_SERVER_ERROR: Outcome.SERVER_ERROR,
    pb.OUTCOME_NETWORK_ERROR: Outcome.NETWORK_ERROR,
    pb.OUTCOME_TIMEOUT: Outcome.TIMEOUT,
    pb.OUTCOME_CLIENT_ERROR: Outcome.CLIENT_ERROR,
    pb.OUTCOME_CANCELLED: Outcome.CANCELLED,
}
STATES = {
    AccountState.HEALTHY: pb.ACCOUNT_STATE_HEALTHY,
    AccountState.COOLING: pb.ACCOUNT_STATE_COOLING,
    AccountState.CIRCUIT_OPEN: pb.ACCOUNT_STATE_CIRCUIT_OPEN,
    AccountState.PROBING: pb.ACCOUNT_STATE_PROBING,
    AccountState.DISABLED: pb.ACCOUNT_STATE_DISABLED,
}
PROBE_REASONS = {
    Probing.NEW: pb.PROBE_REASON_NEW,
    Probing.AFTER_COOLDOWN: pb.PROBE_REASON_AFTER_COOLDOWN,
    Probing.HALF_OPEN: pb.PROBE_REASON_HALF_OPEN,
    Probing.OPERATOR: pb.PROBE_REASON_OPERATOR,
    Probing.RESTORED: pb.PROBE_REASON_RESTORED,
    Probing.NEW_CREDENTIAL: pb.PROBE_REASON_NEW_CREDENTIAL,
}
MAX_ERROR_FIELD = 100
FORMATS = {"openai": pb.API_FORMAT_OPENAI, "anthropic": pb.API_FORMAT_ANTHROPIC}


def selection_request(message: pb.SelectAccountRequest) -> SelectionRequest:
    return SelectionRequest(
        pool=message.pool,
        model=message.model,
        session_key=message.session_key,
        estimated_input_tokens=(
            message.estimated_input_tokens if message.HasField("estimated_input_tokens") else None
        ),
        conversation=message.conversation,
        light=message.light,
    )


def client_limits(message: pb.SelectAccountRequest) -> ClientLimits | None:
    """The selection's client, when it names one (checked by the domain when first seen)."""
    if not message.HasField("client"):
        return None
    client = message.client
    return ClientLimits(client.name, client.rpm_limit, client.tpm_limit, client.daily_budget_usd,
                        client.monthly_budget_usd, client.budget_timezone or "UTC")


def outcome_report(message: pb.ReportOutcomeRequest, outcome: Outcome) -> OutcomeReport:
    return OutcomeReport(
        lease_id=message.lease_id,
        outcome=outcome,
        http_status=message.http_status,
        retry_after_ms=message.retry_after_ms,
        latency_ms=message.latency_ms,
        time_to_first_token_ms=message.time_to_first_token_ms,
        input_tokens=message.input_tokens,
        output_tokens=message.output_tokens,
        rate_limit_headers={k.lower(): v for k, v in message.rate_limit_headers.items()},
        detail=message.detail,
        early=message.early,
        error_type=message.error_type[:MAX_ERROR_FIELD],
        error_code=message.error_code[:MAX_ERROR_FIELD],
    )


_LeaseSource = tuple[object, ...]
_LEASE_TEMPLATES: weakref.WeakKeyDictionary[Account, tuple[_LeaseSource, pb.Lease]] = weakref.WeakKeyDictionary()
"""Per account, what its leases share (account, pool, credential, proxy), built once: a lease copies it and adds its
own id, expiry and probe flag. Rebuilt when any of what it was built from is another object (a reload, a renewed
credential)."""


def _lease_template(grant: Grant) -> pb.Lease:
    account, pool = grant.lease.account, grant.pool
    config, credential = pool.config, account.auth.credential
    source = (credential, config, account.config, account.name, pool.name)
    cached = _LEASE_TEMPLATES.get(account)
    if cached is not None and all(a is b for a, b in zip(cached[0], source, strict=True)):
        return cached[1]
    template = pb.Lease(
        account_id=account.account_id,
        account_name=account.name,
        pool=pool.name,
        base_url=config.base_url,
        credential=pb.Header(name=credential.header, value=credential.value),
        extra_headers=[pb.Header(name=k, value=v) for k, v in credential.extra_headers],
        format=FORMATS[config.format],
        proxy=account.config.proxy or config.proxy,
    )
    _LEASE_TEMPLATES[account] = (source, template)
    return template


def fill_lease(message: pb.Lease, grant: Grant) -> None:
    """Write ``grant``'s lease into ``message`` (empty; such as a field of the answer being built)."""
    lease = grant.lease
    message.CopyFrom(_lease_template(grant))
    message.lease_id = lease.lease_id
    set_time(message.expires_at, lease.expires_at)
    message.probe = lease.probe


def lease_message(grant: Grant) -> pb.Lease:
    message = pb.Lease()
    fill_lease(message, grant)
    return message


def _headroom(quota: Quota, now: float) -> pb.RateLimitHeadroom:
    limits = quota.limits.limits if quota.limits is not None else {}

    def pair(kind: str) -> tuple[int, int]:
        if kind in limits:
            return limits[kind].remaining, limits[kind].limit
        window = quota.windows.get(kind)
        if window is not None:
            return max(0, window.limit - window.total), window.limit
        return -1, 0

    resets = [lim.reset_at for lim in limits.values() if lim.reset_at]
    requests, input_tokens, output_tokens = pair("requests"), pair("input_tokens"), pair("output_tokens")
    return pb.RateLimitHeadroom(
        requests_remaining=requests[0], requests_limit=requests[1],
        input_tokens_remaining=input_tokens[0], input_tokens_limit=input_tokens[1],
        output_tokens_remaining=output_tokens[0], output_tokens_limit=output_tokens[1],
        reset_in_ms=int(max(0.0, min(resets) - now) * 1000) if resets else 0,
        fraction=quota.headroom,
    )


def account_status(item: AccountSnapshot, now: float) -> pb.AccountStatus:
    a = item.account
    load, health = a.load, a.health
    return pb.AccountStatus(
        account_id=a.account_id, name=a.name, state=STATES[item.state], reason=item.reason,
        cooldown_remaining_ms=int(item.cooldown_remaining * 1000), in_flight=load.in_flight,
        max_concurrency=a.max_concurrency, priority=a.priority, weight=a.weight,
        requests_total=load.requests_total, successes_total=load.successes_total,
        failures_total=health.failures_total, rate_limited_total=health.rate_limited_total,
        input_tokens_total=load.input_tokens_total, output_tokens_total=load.output_tokens_total,
        consecutive_failures=health.failure_streak, recent_latency_ms=load.recent_latency_ms,
        error_rate=load.error_rate, headroom=_headroom(a.quota, now), credential_redacted=a.auth.redacted,
        probe_reason=_probe_reason(a) if item.state is AccountState.PROBING else pb.PROBE_REASON_UNSPECIFIED,
        model_cooldowns=[
            pb.ModelCooldown(scope=scope, remaining_ms=int(max(0.0, rest.until - now) * 1000), reason=rest.reason,
                             probing=rest.until <= now)
            for scope, rest in sorted(a.rests.rests.items())],
    )


def _probe_reason(account: Account) -> pb.ProbeReason:
    probing = account.admission.probing
    return PROBE_REASONS[probing] if probing is not None else pb.PROBE_REASON_UNSPECIFIED


def single_account_status(account: Account, now: float) -> pb.AccountStatus:
    state, reason = account.state(now)
    return account_status(AccountSnapshot(account, state, reason, account.cooldown_remaining(now)), now)


def pool_status(snapshot: PoolSnapshot) -> pb.PoolStatus:
    return pb.PoolStatus(
        name=snapshot.name, format=FORMATS[snapshot.config.format], strategy=snapshot.config.strategy,
        base_url=snapshot.config.base_url,
        accounts=[account_status(item, snapshot.taken_at) for item in snapshot.accounts],
        available=snapshot.available, waiting=snapshot.waiting,
    )


def set_time(stamp: Timestamp, seconds: float) -> None:
    """Write epoch ``seconds`` into ``stamp`` (a field of a message being built, or a new one)."""
    stamp.seconds, stamp.nanos = divmod(int(seconds * 1e9), 1_000_000_000)


def timestamp(seconds: float) -> Timestamp:
    stamp = Timestamp()
    set_time(stamp, seconds)
    return stamp


INT64_MAX = 2**63 - 1
"""Token sums are capped here: a usage log written before reports were bounded may hold larger ones."""


def usage_row(rollup: UsageRollup) -> pb.UsageRow:
    p50, p95, p99 = rollup.percentiles(50, 95, 99)
    return pb.UsageRow(
        bucket_start=timestamp(rollup.bucket_start), pool=rollup.pool, account_id=rollup.account_id,
        account_name=rollup.account_name, requests=rollup.requests, successes=rollup.successes,
        errors=rollup.errors, rate_limited=rollup.rate_limited, input_tokens=min(rollup.input_tokens, INT64_MAX),
        output_tokens=min(rollup.output_tokens, INT64_MAX), cost=rollup.cost, latency_p50_ms=p50,
        latency_p95_ms=p95, latency_p99_ms=p99, ttft_p50_ms=rollup.percentiles(50, ttft=True)[0],
        client=rollup.client,
    )
