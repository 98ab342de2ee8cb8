"""The Admin gRPC service: operator actions on accounts, and config reload."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, NoReturn

import grpc

from poolgate.config import ConfigError
from poolgate.v1 import selector_pb2 as pb
from poolgate.v1 import selector_pb2_grpc
from selector_service.api.mapping import single_account_status
from selector_service.api.statuses import abort
from selector_service.domain.account import Account
from selector_service.domain.errors import SelectorError, UnknownAccountError, UnknownPoolError
from selector_service.domain.selector import ReloadSummary, SelectorCore
from selector_service.overlay import ConfigSource

log = logging.getLogger("poolgate.selector.admin")


class AdminServicer(selector_pb2_grpc.AdminServicer):
    def __init__(self, core: SelectorCore, source: ConfigSource | None) -> None:
        self.core = core
        self.source = source
        self._lock = asyncio.Lock()  # one config change at a time

    async def _status(self, account: Account) -> pb.AccountStatus:
        return single_account_status(account, time.time())

    async def EnableAccount(self, request: pb.AccountRef, context: Any) -> pb.AccountStatus:
        await self._require_ref(context, request)
        account = await self._act(context, self.core.enable(request.pool, request.account))
        log.info("account %s enabled by an operator", account.account_id)
        return await self._status(account)

    async def DisableAccount(self, request: pb.DisableAccountRequest, context: Any) -> pb.AccountStatus:
        await self._require_ref(context, request)
        account = await self._act(context, self.core.disable(request.pool, request.account, request.reason))
        log.info("account %s disabled by an operator: %s", account.account_id, account.disabled_reason)
        return await self._status(account)

    async def ResetAccount(self, request: pb.AccountRef, context: Any) -> pb.AccountStatus:
        await self._require_ref(context, request)
        account = await self._act(context, self.core.reset(request.pool, request.account))
        log.info("account %s reset by an operator (cooldowns and failures cleared)", account.account_id)
        return await self._status(account)

    async def AddAccount(self, request: pb.AddAccountRequest, context: Any) -> pb.AccountStatus:
        source = await self._source(context)
        if bool(request.key) == bool(request.key_env):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "key: give exactly one of key and key_env")
        if not request.name:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "name: required")
        account: dict[str, Any] = {"name": request.name, "key": request.key or f"${{{request.key_env}}}"}
        for field in ("weight", "rpm_limit", "itpm_limit", "otpm_limit", "max_concurrency"):
            if getattr(request, field):
                account[field] = getattr(request, field)
        if request.HasField("priority"):
            account["priority"] = request.priority
        async with self._lock:
            if request.pool not in self.core.pools:
                await self._abort_for(context, UnknownPoolError(request.pool, list(self.core.pools)))
            if f"{request.pool}/{request.name}" in self.core.pools[request.pool].accounts:
                await context.abort(grpc.StatusCode.ALREADY_EXISTS,
                                    f"pool {request.pool!r} already has an account {request.name!r}")
            try:
                config, overlay = source.add_account(self.core.config, request.pool, account)
            except (ConfigError, ValueError) as exc:
                await self._abort_for(context, exc)
            await self._reload(context, config)
            source.save(config, overlay)
        log.info("account %s/%s added by an operator", request.pool, request.name)
        return await self._status(self.core.account(request.pool, request.name))

    async def RemoveAccount(self, request: pb.AccountRef, context: Any) -> pb.RemoveAccountResponse:
        await self._require_ref(context, request)
        source = await self._source(context)
        async with self._lock:
            account = await self._act(context, _ready(self.core.account, request.pool, request.account))
            try:
                config, overlay = source.remove_account(self.core.config, request.pool, account.name)
            except ConfigError as exc:
                await self._abort_for(context, exc)
            await self._reload(context, config)
            source.save(config, overlay)
        log.info("account %s removed by an operator (%d lease(s) draining)", account.account_id, account.in_flight)
        return pb.RemoveAccountResponse(account_id=account.account_id, draining_leases=account.in_flight)

    async def Reload(self, request: pb.ReloadRequest, context: Any) -> pb.ReloadResponse:
        source = await self._source(context)
        async with self._lock:
            try:
                config = source.load()
            except ConfigError as exc:
                await self._abort_for(context, exc)
            summary = await self._reload(context, config)
        return pb.ReloadResponse(
            pools_added=summary.pools_added, pools_removed=summary.pools_removed,
            accounts_added=summary.accounts_added, accounts_removed=summary.accounts_removed,
        )

    # -- helpers ---------------------------------------------------------------------------------------------------

    async def _reload(self, context: Any, config: Any) -> ReloadSummary:
        try:
            summary = await self.core.reload(config)
        except ConfigError as exc:  # a strategy that cannot be built, a credentials_dir without usable files
            await self._abort_for(context, exc)
        log.info("config applied: %s", describe(summary))
        return summary

    async def _require_ref(self, context: Any, request: pb.AccountRef | pb.DisableAccountRequest) -> None:
        for field in ("pool", "account"):
            if not getattr(request, field):
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"{field}: required, the {field}'s name")

    async def _source(self, context: Any) -> ConfigSource:
        if self.source is None:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION,
                                "this selector was started without a config file; it cannot change its config")
        assert self.source is not None
        return self.source

    async def _act(self, context: Any, action: Any) -> Account:
        try:
            result: Account = await action
            return result
        except (UnknownPoolError, UnknownAccountError) as exc:
            await self._abort_for(context, exc)

    async def _abort_for(self, context: Any, exc: SelectorError | ConfigError | ValueError) -> NoReturn:
        if isinstance(exc, SelectorError):
            await abort(context, exc)
        if isinstance(exc, ConfigError):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                                "the new config was rejected; the running one stays:\n" + "\n".join(exc.errors))
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        raise AssertionError("abort returned")


async def _ready(function: Any, *args: Any) -> Any:
    return function(*args)


def describe(summary: ReloadSummary) -> str:
    parts = [f"{label} {', '.join(items)}" for label, items in (
        ("pools added:", summary.pools_added), ("pools removed:", summary.pools_removed),
        ("accounts added:", summary.accounts_added), ("accounts removed:", summary.accounts_removed)) if items]
    return "; ".join(parts) or "no pool or account changes"
