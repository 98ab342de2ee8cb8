"""The request lines, written in batches while the edge is busy.

While other requests are in flight, a request that ends only appends its trace to a list (well under a
microsecond); a moment later (at most :data:`FLUSH_DELAY` seconds, or every :data:`BATCH` requests) the event loop
turns the batch into log records, each with its request's id and the time the request ended. Formatting lines one
after another costs a fraction of formatting each amid its request's own work. When the edge goes idle the batch
goes to the log handler at once (a buffered handler, as ``configure_logging`` sets up, writes it within its own
``FLUSH_INTERVAL``). Warnings (failovers) are never held back.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from poolgate.logging_setup import BUFFER_LINES, log_record

if TYPE_CHECKING:
    from proxy_edge.tracing import RequestTrace

FLUSH_DELAY = 0.1
BATCH = BUFFER_LINES  # one batch fills the handler's buffer once


class RequestLog:
    """Collects finished requests' traces and logs them in batches to ``logger``."""

    def __init__(self, logger: logging.Logger) -> None:
        self._log = logger
        self._pending: list[tuple[int, RequestTrace]] = []
        self._timer: asyncio.TimerHandle | None = None

    def add(self, level: int, trace: RequestTrace, idle: bool) -> None:
        """Log ``trace``'s request line soon, or now (with the lines pending) when the edge is ``idle``; the caller
        has checked that ``level`` is enabled."""
        self._pending.append((level, trace))
        if idle or len(self._pending) >= BATCH:
            self.flush()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(FLUSH_DELAY, self.flush)

    def flush(self) -> None:
        """Log every pending line now."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        pending, self._pending = self._pending, []
        logger = self._log
        for level, trace in pending:
            message, args = trace.line()
            logger.handle(log_record(logger, level, message, args, trace.ended, trace.request_id, trace.log_fields))
