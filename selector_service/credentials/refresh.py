"""Single-flight credential refresh with backoff.

However many requests notice that an account's token needs renewing, one refresh runs for it; the rest carry on
(with the current token while it is valid, or wait in the pool's queue when it is about to expire). A refresh that
fails without a verdict (network, 5xx) is tried again after a growing delay; a rejected one is reported once.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable

from selector_service.credentials.source import CredentialRejected, RefreshedCredential
from selector_service.domain.account import Account

log = logging.getLogger("poolgate.selector.credentials")

RETRY_BASE = 1.0
RETRY_MAX = 60.0

Job = Callable[[], Awaitable[RefreshedCredential]]


class Refresher:
    """Runs at most one refresh per account at a time, and spaces retries after failures."""

    def __init__(
        self,
        refreshed: Callable[[Account, RefreshedCredential], None],
        rejected: Callable[[Account, str], Awaitable[None]],
        settled: Callable[[Account], None],
        clock: Callable[[], float],
        retry_base: float = RETRY_BASE,
        retry_max: float = RETRY_MAX,
        rng: random.Random | None = None,
    ) -> None:
        self._refreshed, self._rejected, self._settled = refreshed, rejected, settled
        self._clock = clock
        self._base, self._max = retry_base, retry_max
        self._rng = rng or random.Random()
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._failures: dict[str, int] = {}
        self._retry_at: dict[str, float] = {}

    def request(self, account: Account, job: Job) -> bool:
        """Start a refresh of ``account`` unless one is running or a failed one is waiting out its backoff.

        Returns whether one was started. Never waits: safe on the selection path.
        """
        key = account.account_id
        if key in self._tasks or self._clock() < self._retry_at.get(key, 0.0):
            return False
        account.auth.refreshing = True
        self._tasks[key] = asyncio.create_task(self._run(account, job), name=f"poolgate-refresh-{key}")
        return True

    def in_flight(self, account_id: str) -> bool:
        return account_id in self._tasks

    def failures(self, account_id: str) -> int:
        """Failed attempts in a row (0 after a success)."""
        return self._failures.get(account_id, 0)

    async def settle(self) -> None:
        """Wait until no refresh is running."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks.values()), return_exceptions=True)

    async def close(self) -> None:
        for task in self._tasks.values():
            task.cancel()
        await asyncio.gather(*list(self._tasks.values()), return_exceptions=True)

    def _delay(self, failures: int) -> float:
        delay = min(self._max, self._base * 2.0 ** (failures - 1))
        return delay * self._rng.uniform(0.8, 1.0)  # spread, so accounts failing together do not retry together

    async def _run(self, account: Account, job: Job) -> None:
        key = account.account_id
        try:
            result = await job()
        except asyncio.CancelledError:
            raise
        except CredentialRejected as exc:
            self._failures.pop(key, None)
            self._retry_at.pop(key, None)
            await self._rejected(account, str(exc))
        except Exception as exc:
            failures = self._failures[key] = self._failures.get(key, 0) + 1
            delay = self._delay(failures)
            self._retry_at[key] = self._clock() + delay
            level = logging.WARNING if failures == 1 or failures % 10 == 0 else logging.DEBUG
            log.log(level, "refreshing the credential of %s failed (attempt %d): %s; trying again in %.1f s",
                    key, failures, _describe(exc), delay)
        else:
            self._failures.pop(key, None)
            self._retry_at.pop(key, None)
            self._refreshed(account, result)
        finally:
            account.auth.refreshing = False
            del self._tasks[key]
            self._settled(account)


def _describe(exc: Exception) -> str:
    text = str(exc)
    return text if text else type(exc).__name__
