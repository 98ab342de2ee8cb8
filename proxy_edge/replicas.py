"""The selector replicas an edge lists (``edge.selector: a:50151,b:50151``): one channel and link to each, and which
one a selection goes to.

Selections are spread round-robin over the replicas that are up; one with a session key always goes to the same
replica while it is up (rendezvous hashing on the replica's address, so every edge listing the same replicas agrees,
and a replica going down moves only its own sessions), because stickiness is kept per replica. A replica that fails a
call with UNAVAILABLE is down: it is skipped until its channel is connected again, looked at after a pause that
doubles with each failure in a row (:data:`FIRST_PAUSE` to :data:`LONGEST_PAUSE`), so a replica that returns serves
again within about a second, and one that keeps failing is not called in a loop.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import zlib

import grpc

from poolgate.v1 import selector_pb2_grpc as pb_grpc
from proxy_edge.selector_links import SelectorLink

__all__ = ["FIRST_PAUSE", "LONGEST_PAUSE", "Replica", "ReplicaSet"]

log = logging.getLogger("poolgate.edge")

FIRST_PAUSE = 0.02
"""Seconds a replica that just failed is skipped at least (a stream that broke on a live replica is reopened soon)."""
LONGEST_PAUSE = 1.0
"""The longest pause between looks at a replica that keeps failing."""


class Replica:
    """One selector replica: its channel, its link (the transport), a stub for queries, and whether it is up."""

    def __init__(self, index: int, address: str, channel: grpc.aio.Channel, link: SelectorLink) -> None:
        self.index = index
        self.address = address
        self.channel = channel
        self.link = link
        self.stub = pb_grpc.SelectorStub(channel)
        self.up = True
        self._failures = 0
        self._watch: asyncio.Task[None] | None = None
        self._rank_seed = zlib.crc32(address.encode())

    def rank(self, session_key: bytes) -> int:
        """This replica's weight for ``session_key`` (the highest among the replicas that are up wins)."""
        return zlib.crc32(session_key, self._rank_seed)

    def served(self) -> None:
        """A call succeeded: the pauses start over."""
        self._failures = 0

    def failed(self, replicas: ReplicaSet) -> None:
        """A call found the replica unreachable: skip it until its channel is connected again."""
        if not self.up:
            return
        self.up = False
        self._failures += 1
        pause = min(LONGEST_PAUSE, FIRST_PAUSE * 2 ** (self._failures - 1))
        log.debug("selector replica %s is unreachable; looking again in %g s", self.address, pause)
        self._watch = asyncio.create_task(self._come_back(pause, replicas), name=f"poolgate-replica-{self.index}")

    async def _come_back(self, pause: float, replicas: ReplicaSet) -> None:
        await asyncio.sleep(pause)
        await self.channel.channel_ready()  # gRPC reconnects with its own backoff (at most a quarter second)
        self.up = True
        replicas.came_back()

    async def close(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
        await self.link.close()
        await self.channel.close()


class ReplicaSet:
    """The edge's replicas, in the order of their addresses; picks the one for each call."""

    def __init__(self, replicas: list[Replica]) -> None:
        if not replicas:
            raise ValueError("no selector address: set edge.selector (host:port, or several separated by commas)")
        self.replicas = replicas
        self._turn = itertools.count()
        self._back: asyncio.Future[None] | None = None

    def pick(self, session_key: str = "", near: int | None = None) -> Replica | None:
        """The replica for a selection (None while every one is down): replica number ``near`` if it is up (a
        failover's next attempt stays where its failure was reported), else the session's, else the next in turn."""
        replicas = self.replicas
        if len(replicas) == 1:
            return replicas[0] if replicas[0].up else None
        if near is not None and replicas[near].up:
            return replicas[near]
        up = [replica for replica in replicas if replica.up]
        if not up:
            return None
        if session_key:
            key = session_key.encode()
            return max(up, key=lambda replica: replica.rank(key))
        return up[next(self._turn) % len(up)]

    def in_order(self) -> list[Replica]:
        """Every replica, those that are up first (for queries, tried in this order)."""
        return sorted(self.replicas, key=lambda replica: not replica.up)

    def came_back(self) -> None:
        back, self._back = self._back, None
        if back is not None and not back.done():
            back.set_result(None)

    async def wait_for_one(self, until: float) -> bool:
        """Wait (up to loop time ``until``) for a replica to come back; False if none does."""
        if any(replica.up for replica in self.replicas):
            return True
        loop = asyncio.get_running_loop()
        remaining = until - loop.time()
        if remaining <= 0:
            return False
        if self._back is None:
            self._back = loop.create_future()
        done, _ = await asyncio.wait((self._back,), timeout=remaining)
        return bool(done)

    async def close(self) -> None:
        await asyncio.gather(*(replica.close() for replica in self.replicas))
