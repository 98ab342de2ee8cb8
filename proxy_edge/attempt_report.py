"""One attempt's outcome in the making: filled as the upstream call goes, reported once to the selector.

An attempt that fails before the client got anything ends as a :class:`Failure` (the caller may try another
account); its report is sent so that the account's new state counts for that next lease.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from multidict import CIMultiDict

from poolgate.secrets import Scrubber
from proxy_edge import outcomes as oc
from proxy_edge.headers import retry_after_ms
from proxy_edge.leases import Lease, Outcome, early_outcome
from proxy_edge.selector_client import SelectorClient

__all__ = ["AttemptReport", "Failure"]


@dataclass(slots=True)
class Failure:
    """An attempt that ended before the client got anything."""

    outcome: int
    status: int
    """The upstream's HTTP status (or what an error event stands for); 0 when there was no answer."""
    retry_after_ms: int
    detail: str
    """Why, in a few words, without credentials."""
    body: bytes | None = None
    """The upstream's error body, scrubbed: what the client gets if this stays the last attempt."""
    headers: CIMultiDict[str] | None = None


class AttemptReport:
    """The outcome of one attempt with ``lease``, begun at loop time ``started``, and the scrubbing of its account's
    credential out of everything the upstream says."""

    __slots__ = ("_scrubber", "_selector", "lease", "outcome", "started")

    def __init__(self, selector: SelectorClient, lease: Lease, started: float) -> None:
        self._selector = selector
        self.lease = lease
        self.outcome = Outcome()
        self.started = started
        self._scrubber: Scrubber | None = None

    @property
    def reported(self) -> bool:
        """Whether the final outcome is decided (its report sent or on its way)."""
        return self.outcome.outcome != 0

    def scrubber(self) -> Scrubber:
        """Scrubs the account's credential (and masked key echoes) out of upstream text; built when first needed."""
        if self._scrubber is None:
            self._scrubber = Scrubber(self.lease.credential[1])
        return self._scrubber

    def scrub(self, data: bytes) -> bytes:
        return self.scrubber().bytes(data)

    def ms(self) -> int:
        """Milliseconds since the attempt began."""
        return int((asyncio.get_running_loop().time() - self.started) * 1000)

    def early(self, status: int, limits: dict[str, str]) -> None:
        """A probe lease's upstream answered (2xx headers): tell the selector now, not at the end of a generation
        that may take minutes (other requests wait for this account's answer)."""
        if self.lease.probe:
            self._selector.report_later(self.lease, early_outcome(status, limits))

    def _fill(self, outcome: int, status: int, limits: dict[str, str], detail: str) -> None:
        report = self.outcome
        report.outcome = outcome
        report.http_status = status
        report.latency_ms = self.ms()
        # What the upstream asks to wait only matters for a failure (the selector ignores it on a success).
        report.retry_after_ms = retry_after_ms(limits) if limits and outcome != oc.SUCCESS else 0
        if limits:
            report.rate_limit_headers.update(limits)
        if detail:
            # The detail becomes the selector's disabled_reason, a log line, a client's error message: no secrets.
            report.detail = self.scrubber().text(detail)

    def later(self, outcome: int, status: int, limits: dict[str, str], detail: str) -> None:
        """Decide the outcome and report it in the background (the client's answer does not wait)."""
        self._fill(outcome, status, limits, detail)
        self._selector.report_later(self.lease, self.outcome)

    async def fail(self, outcome: int, status: int, limits: dict[str, str], detail: str) -> Failure:
        """Decide a failure and report it before the request's next selection; the attempt's :class:`Failure`."""
        self._fill(outcome, status, limits, detail)
        await self._selector.report_before_next(self.lease, self.outcome)
        return Failure(outcome, status, self.outcome.retry_after_ms, self.outcome.detail)
