"""``WatchTopology``: the pools' public shape (:mod:`poolgate.config.topology`), sent at once and after every change.

The document is built when the selector starts and again after each reload (whatever asked for it: the Admin
service, SIGHUP, an account source); watchers are woken only when the document changed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from poolgate.config.topology import Topology
from poolgate.v1 import selector_pb2 as pb

if TYPE_CHECKING:
    from poolgate.config import Config
    from selector_service.domain.selector import SelectorCore


class TopologyFeed:
    """The current topology message of one selector, and a wake-up for those watching it."""

    def __init__(self, core: SelectorCore) -> None:
        self._message = pb.Topology()
        self._changed = asyncio.Event()
        self._take(core.config)
        core.on_reload.append(self._take)

    def current(self) -> pb.Topology:
        return self._message

    def _take(self, config: Config) -> None:
        document = Topology.of(config.pools, config.models, config.routes).document()
        version = Topology.version_of(document)
        if version != self._message.version:
            self._message = pb.Topology(version=version, document=document)
            changed, self._changed = self._changed, asyncio.Event()
            changed.set()

    async def watch(self, known_version: str) -> AsyncIterator[pb.Topology]:
        """The current topology unless it is ``known_version``, then each new one, until the caller stops."""
        while True:
            message = self._message
            if message.version != known_version:
                known_version = message.version
                yield message
                continue
            await self._changed.wait()
