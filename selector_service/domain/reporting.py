"""ReportOutcome: applying what became of a lease to its account, at once in memory and, for health changes, in
the database (a failure's report is acknowledged once its change is durable; a success never waits)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from functools import partial

from selector_service.domain.account import Account
from selector_service.domain.admission import NO_EPOCH
from selector_service.domain.clients import ClientBook
from selector_service.domain.errors import InvalidRequestError
from selector_service.domain.leasing import CredentialHooks, Leasing
from selector_service.domain.outcomes import AccountState, Outcome, OutcomeReport, ReportResult
from selector_service.domain.pool import Pool
from selector_service.domain.registry import PoolRegistry
from selector_service.domain.usage import PriceTable, UsageRecord, UsageRecorder
from selector_service.domain.writer import StateWriter

MAX_REPORTED = 10**12
"""The largest token count or time in milliseconds a report may carry: more than any request uses or waits, and small
enough that totals and usage sums stay within 64 bits."""


def consume(future: asyncio.Future[None]) -> None:
    """Retrieve a write's outcome nobody waits for (the writer has logged a failure already)."""
    if not future.cancelled():
        future.exception()


class Reporter:
    """Applies reports to the accounts of the registry's pools."""

    def __init__(
        self, registry: PoolRegistry, leasing: Leasing, writer: StateWriter, clock: Callable[[], float],
        rng: random.Random, hooks: CredentialHooks, usage: UsageRecorder | None, prices: PriceTable,
        clients: ClientBook | None = None,
    ) -> None:
        self._registry = registry
        self._leasing = leasing
        self._writer = writer
        self._clock = clock
        self._rng = rng
        self._hooks = hooks
        self.usage = usage
        self.clients = clients
        self.prices = prices
        """What the models cost (replaced by a reload)."""
        self.transitions: dict[tuple[str, str, str], int] = {}
        """(pool, from, to): state transitions caused by reports."""

    async def report(self, report: OutcomeReport) -> ReportResult:
        """Apply a report (:meth:`record`) and, for a failure, wait until its health change is durable."""
        result, durable = self.record(report)
        if durable is not None:
            try:
                await asyncio.shield(durable)
            except Exception as exc:
                return ReportResult(True, f"recorded, but saving the account's state failed: {exc}", result.state)
        return result

    def record(self, report: OutcomeReport) -> tuple[ReportResult, asyncio.Future[None] | None]:
        """Apply a report to the accounts in memory at once, so that every selection decided after this call sees
        it; returns the result and, for a failure whose change must be durable before it is acknowledged, the
        database write to wait for (successes never wait on the database)."""
        _check(report)
        now = self._clock()
        leasing = self._leasing
        leasing.expire(now)
        if report.early:
            return self._answered(report, now), None
        lease = leasing.leases.close(report.lease_id, "already reported")
        if lease is None:
            return self._not_recorded(report.lease_id), None
        account = lease.account
        pool = self._registry.pool_of(account)
        leasing.returned(lease)
        before = account.state(now)[0]
        renew = None
        on_rejected = self._hooks.on_credential_rejected
        if report.outcome is Outcome.AUTH_FAILED and on_rejected is not None:
            renew = partial(on_rejected, account)
        # A lease whose 2xx answer was reported early has vouched for the account already: not a second step.
        epoch = NO_EPOCH if lease.answered and report.outcome is Outcome.SUCCESS else lease.epoch
        change = account.apply(report, epoch, lease.granted_at, now, pool.config, self._rng, renew, pool.rules,
                               lease.scope, lease.scope_epoch, lease.model)
        client = lease.client
        if self.usage is not None or client is not None:
            cost = self.prices.cost(lease.model, report.input_tokens, report.output_tokens)
            if client is not None and self.clients is not None:
                self.clients.reported(client, report.input_tokens + report.output_tokens, cost, now)
            if self.usage is not None:
                self.usage.record(UsageRecord(
                    now, account.pool, account.account_id, account.name, lease.model, report.outcome.value,
                    report.http_status, report.latency_ms, report.time_to_first_token_ms, report.input_tokens,
                    report.output_tokens, cost, client.name if client is not None else "",
                ))
        state, reason = self._changed(pool, account, before, now)
        durable: asyncio.Future[None] | None = None
        if not change.is_empty:
            durable = self._writer.submit(change)
            if report.outcome is Outcome.SUCCESS:
                durable.add_done_callback(consume)  # the hot path never waits on the database
                durable = None
        return ReportResult(True, reason or "recorded", state), durable

    def _answered(self, report: OutcomeReport, now: float) -> ReportResult:
        """An early report: the upstream answered a lease still held (its headers arrived)."""
        if report.outcome is not Outcome.SUCCESS:
            raise InvalidRequestError("outcome", "an early report carries OUTCOME_SUCCESS (the upstream answered 2xx);"
                                                 " report a failure as the final report, with early unset")
        lease = self._leasing.leases.get(report.lease_id)
        if lease is None:
            return self._not_recorded(report.lease_id)
        account = lease.account
        before = account.state(now)[0]
        change = account.answered(report, NO_EPOCH if lease.answered else lease.epoch, now, lease.scope,
                                  NO_EPOCH if lease.answered else lease.scope_epoch, lease.model)
        lease.answered = True
        state, reason = self._changed(self._registry.pool_of(account), account, before, now)
        if not change.is_empty:
            self._writer.submit(change).add_done_callback(consume)
        return ReportResult(True, reason or "recorded", state)

    def _not_recorded(self, lease_id: str) -> ReportResult:
        why = self._leasing.leases.why_closed(lease_id) or "unknown lease (never issued, or forgotten)"
        return ReportResult(False, f"not recorded: {why}")

    def _changed(self, pool: Pool, account: Account, before: AccountState, now: float) -> tuple[AccountState, str]:
        """Re-derive the account's availability after a report, serve waiting calls, count a state transition."""
        pool.refresh(account, now)
        self._leasing.queue.serve(pool)
        state, reason = account.state(now)
        if state is not before:
            key = (account.pool, before.value, state.value)
            self.transitions[key] = self.transitions.get(key, 0) + 1
        return state, reason


def _check(report: OutcomeReport) -> None:
    if not report.lease_id:
        raise InvalidRequestError("lease_id", "required: pass the lease_id SelectAccount returned")
    for name in ("latency_ms", "time_to_first_token_ms", "input_tokens", "output_tokens", "retry_after_ms"):
        value = getattr(report, name)
        if value < 0:
            raise InvalidRequestError(name, "must not be negative")
        if value > MAX_REPORTED:
            raise InvalidRequestError(name, f"must be at most {MAX_REPORTED:,}, got {value:,}")
    if not 0 <= report.http_status <= 999:
        raise InvalidRequestError("http_status", f"must be 0 or an HTTP status, got {report.http_status}")
