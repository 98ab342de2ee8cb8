"""The edge's one client of the selector: leases, outcome reports and account listings, over every replica it lists.

Protobuf stops here: a selection returns a :class:`~proxy_edge.leases.Lease`, a report takes an
:class:`~proxy_edge.leases.Outcome`, and every failure is a :class:`SelectorError` the handlers send as it is.

Each replica of ``edge.selector`` (one address, or several separated by commas) gets its own channel and link
(``edge.selector_transport``: one Exchange stream, or unary calls; :mod:`proxy_edge.selector_links`). Selections are
spread over the replicas that are up (:mod:`proxy_edge.replicas`); a lease's reports go to the replica that granted
it. A selection that finds its replica unreachable is retried on another at once; while every replica is unreachable
it waits at most ``unavailable`` seconds (``edge.timeouts.selector_unavailable``) for one to come back, and is then
answered 503 with Retry-After; a replica that comes back within that time serves it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

import grpc

from poolgate import selector_channel
from poolgate.config import ClientTLS
from poolgate.exchange_client import SelectError
from poolgate.v1 import selector_pb2 as pb
from poolgate.v1 import selector_pb2_grpc as pb_grpc
from proxy_edge.leases import ClientLimits, Lease, Outcome, client_pb, lease_from_pb
from proxy_edge.replicas import Replica, ReplicaSet
from proxy_edge.selector_errors import UNAVAILABLE_RETRY_AFTER_MS, SelectorError, query_error, selection_error
from proxy_edge.selector_links import call_error, open_link

__all__ = ["CLOSE_FLUSH_LIMIT", "UNAVAILABLE_RETRY_AFTER_MS", "SelectorClient", "SelectorError"]

log = logging.getLogger("poolgate.edge")

CLOSE_FLUSH_LIMIT = 2.0
"""Seconds a stopping edge waits at most for the selector to confirm the last outcome reports."""
_Answer = TypeVar("_Answer")


class SelectorClient:
    """Leases, outcome reports and account listings over one channel to each selector replica."""

    def __init__(
        self, address: str, timeout: float, token: str = "", tls: ClientTLS | None = None, transport: str = "stream",
        unavailable: float = 0.8,
    ) -> None:
        self.address = address
        self.timeout = timeout
        self.unavailable = unavailable
        self._metadata = selector_channel.metadata(token)  # a bearer token, when the selector requires one
        tls = tls or ClientTLS()
        replicas = []
        for index, one in enumerate(sorted(selector_channel.split_addresses(address))):
            channel = selector_channel.open_aio_channel(one, tls)
            replicas.append(Replica(index, one, channel, open_link(transport, channel, self._metadata, timeout, one)))
        self._replicas = ReplicaSet(replicas)

    def retime(self, timeout: float, unavailable: float) -> None:
        """Use these for the selections that start from now on (a reload's ``timeouts.selector`` and
        ``timeouts.selector_unavailable``; unary reports keep the deadline they started with)."""
        self.timeout, self.unavailable = timeout, unavailable

    @property
    def channel(self) -> grpc.aio.Channel:
        """A channel to a replica that is up (the first listed when none is), for the contract's other services (the
        dashboard's Admin calls)."""
        return self._replicas.in_order()[0].channel

    async def select(
        self, pool: str, model: str, session_key: str, exclude: list[str], estimated_input_tokens: int = 0,
        light: bool = False, conversation: bool = False, near: Lease | None = None,
        client: ClientLimits | None = None,
    ) -> Lease:
        """A lease on one account of ``pool``; raises :class:`SelectorError` when there is none. ``near``: the lease
        of the request's previous attempt, whose replica is asked again while it is up. ``client``: whom the
        selection is for (the selector enforces its limits and budgets).

        If the caller is cancelled (the client went away) while the selector is granting a lease, the lease is
        handed back as CANCELLED instead of staying in flight until it expires.
        """
        request = pb.SelectAccountRequest(pool=pool, model=model, session_key=session_key, exclude_account_ids=exclude,
                                          estimated_input_tokens=estimated_input_tokens, light=light,
                                          conversation=conversation,
                                          client=None if client is None else client_pb(client))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        give_up = loop.time() + min(self.unavailable, self.timeout)
        replicas = self._replicas
        near_index = None if near is None else near.replica
        failure = SelectError(grpc.StatusCode.UNAVAILABLE, "no replica answers")
        while True:
            replica = replicas.pick(session_key, near_index)
            if replica is None:
                if await replicas.wait_for_one(give_up):
                    continue
                raise selection_error(failure, pool, self.address, self.timeout)
            try:
                lease = await replica.link.select(request, max(0.05, deadline - loop.time()))
            except SelectError as exc:
                if exc.code is not grpc.StatusCode.UNAVAILABLE:
                    raise selection_error(exc, pool, self.address, self.timeout) from None
                # The replica went away (or was never there): another one, or the same once it is back.
                replica.failed(replicas)
                failure = exc
                if loop.time() >= deadline:
                    raise selection_error(exc, pool, self.address, self.timeout) from None
                continue
            replica.served()
            return lease_from_pb(lease, replica.index)

    def report_later(self, lease: Lease, outcome: Outcome) -> None:
        """Report ``outcome`` to the replica that granted ``lease``, in the background (the client's response does
        not wait for it; it survives cancellation)."""
        self._replicas.replicas[lease.replica].link.report(outcome.to_pb(lease.lease_id))

    async def report_before_next(self, lease: Lease, outcome: Outcome) -> None:
        """Report ``outcome`` so that it counts for the request's next selection (a failed attempt's)."""
        await self._replicas.replicas[lease.replica].link.report_before_next(outcome.to_pb(lease.lease_id))

    async def flush_reports(self, limit: float | None = None) -> None:
        """Wait (up to ``limit``, default the call timeout) until every replica has the reports sent to it so far."""
        limit = self.timeout if limit is None else limit
        await asyncio.gather(*(self._flush(replica, limit) for replica in self._replicas.replicas))

    @staticmethod
    async def _flush(replica: Replica, limit: float) -> None:
        try:
            await replica.link.flush(limit)
        except SelectError as exc:
            log.warning("could not confirm outcome reports with the selector at %s: %s", replica.address,
                        exc.message)

    async def close(self) -> None:
        """Wait briefly for reports still in flight, then close every replica's link and channel."""
        await self.flush_reports(min(self.timeout, CLOSE_FLUSH_LIMIT))
        await self._replicas.close()

    async def list_accounts(self, pool: str = "") -> pb.ListAccountsResponse:
        """Every account's state, per pool; raises :class:`SelectorError` when the selector cannot answer (404
        ``pool_not_found`` for a pool it does not have)."""
        request = pb.ListAccountsRequest(pool=pool)
        return await self._query(lambda stub, options: stub.ListAccounts(request, **options), pool)

    async def get_usage(self, request: pb.GetUsageRequest) -> pb.GetUsageResponse:
        """Usage rollups from the selector's usage log; bad arguments (the message starts with the field) are 400s,
        an unknown pool 404, the usage log turned off 503 ``usage_log_off``."""
        return await self._query(lambda stub, options: stub.GetUsage(request, **options), request.pool)

    async def _query(self, call: Callable[[pb_grpc.SelectorStub, dict[str, object]], Awaitable[_Answer]],
                     pool: str) -> _Answer:
        """``call`` on the replicas in turn until one answers (one that is unreachable is passed over)."""
        options: dict[str, object] = {"timeout": self.timeout, "metadata": self._metadata, "wait_for_ready": False}
        failure = SelectError(grpc.StatusCode.UNAVAILABLE, "no replica answers")
        for replica in self._replicas.in_order():
            try:
                answer = await call(replica.stub, options)
            except grpc.aio.AioRpcError as exc:
                failure = call_error(exc)
                if failure.code is grpc.StatusCode.UNAVAILABLE:
                    replica.failed(self._replicas)
                    continue
                break
            replica.served()
            return answer
        raise query_error(failure, pool, self.address, self.timeout)
