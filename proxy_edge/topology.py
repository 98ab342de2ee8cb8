"""The edge's routing, taken from the selector and followed at run time.

The selector owns the pools. :class:`TopologyFollower` keeps a ``WatchTopology`` stream open (on a channel of its
own, so the lease traffic never waits behind it) and swaps in a new :class:`Routing` — the router, the failover
policies, the pools' formats — whenever the selector's topology changes (a ``poolgate reload``, a SIGHUP). A request
takes the routing of the moment it arrives; one that is in flight when a pool goes away finishes where it started.
When the stream breaks the edge keeps the last routing it had and reconnects.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TypeVar

import grpc
from aiohttp import web

from poolgate import selector_channel
from poolgate.config import ClientTLS
from poolgate.config.topology import Topology, TopologyError
from poolgate.exchange_client import SelectError
from poolgate.v1 import selector_pb2 as pb
from poolgate.v1 import selector_pb2_grpc as pb_grpc
from proxy_edge.outcomes import PoolPolicy
from proxy_edge.routing import Router
from proxy_edge.selector_errors import SelectorError, selection_error

log = logging.getLogger("poolgate.edge")

RETRY_FIRST = 0.1
RETRY_MAX = 2.0
"""Seconds between attempts to reopen a topology stream the selector ended or refused: doubling from RETRY_FIRST up
to RETRY_MAX. (While the selector is unreachable the stream waits for the channel, which reconnects within 250 ms of
its return.)"""
DEFAULT_POLICY = PoolPolicy()
V = TypeVar("V")


class NotRouted(Exception):
    """The edge has no routing yet: the selector has not answered since the edge started."""


@dataclass(frozen=True, slots=True)
class Routing:
    """Everything the edge derives from one topology."""

    version: str
    topology: Topology
    router: Router
    policies: dict[str, PoolPolicy]
    formats: dict[str, str]

    @classmethod
    def of(cls, topology: Topology, version: str) -> Routing:
        return cls(version, topology, Router(topology),
                   {name: PoolPolicy.from_failover(pool.failover) for name, pool in topology.pools.items()},
                   {name: pool.format for name, pool in topology.pools.items()})


class RoutingState:
    """The routing the edge serves now (None until the selector has sent its topology)."""

    def __init__(self, patience: float = 0.0) -> None:
        self.patience = patience
        """How long a request that arrives before the first routing waits for it (``timeouts.selector_unavailable``,
        as a selection waits for an unreachable selector)."""
        self.current: Routing | None = None
        self.loaded = asyncio.Event()
        self.problem: SelectorError | None = None
        """Why the selector refused the topology stream last (its answer to clients until a routing arrives)."""
        self.policies: Mapping[str, PoolPolicy] = _Live(self, lambda routing: routing.policies, DEFAULT_POLICY)
        """Each pool's failover policy in the routing of the moment (the default for a pool that went away)."""
        self.formats: Mapping[str, str] = _Live(self, lambda routing: routing.formats)
        """Each pool's API format in the routing of the moment."""

    @property
    def router(self) -> Router:
        """The current router; raises :class:`NotRouted` before the first topology."""
        current = self.current
        if current is None:
            raise NotRouted
        return current.router

    async def wait_router(self) -> Router:
        """The current router, waiting up to :attr:`patience` for the first; raises :class:`NotRouted`."""
        current = self.current
        if current is not None:
            return current.router
        try:
            async with asyncio.timeout(self.patience):
                await self.loaded.wait()
        except TimeoutError:
            raise NotRouted from None
        return self.router

    def apply(self, routing: Routing) -> None:
        previous, self.current, self.problem = self.current, routing, None
        self.loaded.set()
        if previous is None:
            log.info("routing %s from the selector: %d pool(s) (%s)", routing.version, len(routing.formats),
                     ", ".join(routing.formats))
            return
        added = sorted(set(routing.formats) - set(previous.formats))
        removed = sorted(set(previous.formats) - set(routing.formats))
        log.info("routing %s from the selector: %d pool(s)%s%s", routing.version, len(routing.formats),
                 f", added {', '.join(added)}" if added else "", f", removed {', '.join(removed)}" if removed else "")


class _Live(Mapping[str, V]):
    """A read-only mapping that reads one table of the routing of the moment (``default`` for a missing key,
    when given: a pool that went away while its request was in flight)."""

    def __init__(self, state: RoutingState, table: Callable[[Routing], dict[str, V]], default: V | None = None) -> None:
        self._state = state
        self._table = table
        self._default = default

    def _current(self) -> dict[str, V]:
        current = self._state.current
        return self._table(current) if current is not None else {}

    def __getitem__(self, pool: str) -> V:
        found = self._current().get(pool, self._default)
        if found is None:
            raise KeyError(pool)
        return found

    def __iter__(self) -> Iterator[str]:
        return iter(self._current())

    def __len__(self) -> int:
        return len(self._current())


ROUTING = web.AppKey("routing", RoutingState)


class TopologyFollower:
    """Follows the selector's topology into a :class:`RoutingState`."""

    def __init__(self, state: RoutingState, address: str, token: str, tls: ClientTLS | None = None) -> None:
        self._state = state
        self._addresses = selector_channel.split_addresses(address) or [address]
        self._metadata = selector_channel.metadata(token)
        self._tls = tls or ClientTLS()
        self._channels: dict[str, grpc.aio.Channel] = {}
        self._turn = 0
        self._task: asyncio.Task[None] | None = None
        self._refused = ""

    def _stub(self, address: str) -> pb_grpc.SelectorStub:
        channel = self._channels.get(address)
        if channel is None:
            channel = self._channels[address] = selector_channel.open_aio_channel(address, self._tls)
        return pb_grpc.SelectorStub(channel)

    async def start(self, wait: float) -> None:
        """Start following; wait up to ``wait`` seconds for the first topology (the edge serves either way, and
        answers 503 until it has one)."""
        self._task = asyncio.create_task(self._follow(), name="poolgate-topology")
        try:
            async with asyncio.timeout(wait):
                await self._state.loaded.wait()
        except TimeoutError:
            log.warning("no routing from the selector at %s after %g s; requests get 503 until it answers",
                        ", ".join(self._addresses), wait)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        for channel in self._channels.values():
            await channel.close()

    async def _follow(self) -> None:
        """One stream at a time, to one replica (any: replicas with the same config send the same topology); when
        it breaks, the next replica. With a single address the call waits for the channel to connect."""
        delay = RETRY_FIRST
        broken = False
        alone = len(self._addresses) == 1
        while True:
            address = self._addresses[self._turn % len(self._addresses)]
            known = self._state.current.version if self._state.current is not None else ""
            call = self._stub(address).WatchTopology(pb.WatchTopologyRequest(known_version=known),
                                                     metadata=self._metadata, wait_for_ready=alone)
            try:
                async for message in call:
                    if broken:
                        log.info("topology stream to the selector at %s open again", address)
                        broken = False
                    delay = RETRY_FIRST
                    self._take(message)
            except grpc.aio.AioRpcError as exc:
                self._state.problem = self._problem(exc, address)
                if exc.code() is not grpc.StatusCode.UNAVAILABLE or not broken:
                    level = logging.ERROR if exc.code() is not grpc.StatusCode.UNAVAILABLE else logging.WARNING
                    log.log(level, "topology stream to the selector at %s: %s (%s); keeping the routing %s and "
                            "trying again", address, exc.code().name, exc.details(),
                            self._state.current.version if self._state.current is not None else "(none yet)")
                broken = True
            finally:
                call.cancel()
            self._turn += 1
            await asyncio.sleep(delay)
            delay = min(RETRY_MAX, delay * 2)

    @staticmethod
    def _problem(exc: grpc.aio.AioRpcError, address: str) -> SelectorError:
        if exc.code() is grpc.StatusCode.UNIMPLEMENTED:
            return SelectorError(503, "selector_outdated", (
                f"the selector at {address} does not send its pools (WatchTopology): it is older than this edge; "
                "upgrade the selector"))
        return selection_error(SelectError(exc.code(), exc.details() or ""), "", address, 0)

    def _take(self, message: pb.Topology) -> None:
        try:
            topology = Topology.parse(message.document)
        except TopologyError as exc:
            if self._refused != message.version:
                self._refused = message.version
                log.error("the selector's topology %s cannot be used (%s); keeping the routing %s", message.version,
                          exc, self._state.current.version if self._state.current is not None else "(none yet)")
            return
        self._state.apply(Routing.of(topology, message.version))
