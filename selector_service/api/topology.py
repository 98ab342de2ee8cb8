"""``WatchTopology``: the pools' public shape (:mod:`poolgate.config.topology`), sent at once and after every change.

The document is built from the config the selector serves, again only when that config object changes (a reload
replaces it). A reload through the Admin service wakes the watchers at once; any other (SIGHUP, an account source)
is seen within :data:`CHECK_EVERY` seconds.
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

CHECK_EVERY = 1.0


class TopologyFeed:
    """The current topology message of one selector, and a wake-up for those watching it."""

    def __init__(self, core: SelectorCore) -> None:
        self._core = core
        self._config: Config | None = None
        self._message = pb.Topology()
        self._changed = asyncio.Event()

    def current(self) -> pb.Topology:
        """The topology of the config served now (built again only when that config changed)."""
        config = self._core.config
        if config is not self._config:
            self._config = config
            document = Topology.of(config.pools, config.models, config.routes).document()
            version = Topology.version_of(document)
            if version != self._message.version:
                self._message = pb.Topology(version=version, document=document)
                changed, self._changed = self._changed, asyncio.Event()
                changed.set()
        return self._message

    def notify(self) -> None:
        """The config may have changed: wake the watchers now if it did."""
        self.current()

    async def watch(self, known_version: str) -> AsyncIterator[pb.Topology]:
        """The current topology unless it is ``known_version``, then each new one, until the caller stops."""
        while True:
            message = self.current()
            if message.version != known_version:
                known_version = message.version
                yield message
                continue
            changed = self._changed
            try:
                await asyncio.wait_for(changed.wait(), CHECK_EVERY)
            except TimeoutError:
                pass
