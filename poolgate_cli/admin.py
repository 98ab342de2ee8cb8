"""``poolgate accounts …`` and ``poolgate reload``: operator commands, as a plain gRPC client of the selector."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc

from poolgate import selector_channel
from poolgate.addresses import loopback_for_wildcard
from poolgate.config import ClientTLS, ConfigError
from poolgate.config.loader import load_selector_access
from poolgate.v1 import selector_pb2 as pb
from poolgate.v1 import selector_pb2_grpc

TIMEOUT = 10.0
STATE_NAMES = {
    pb.ACCOUNT_STATE_HEALTHY: "healthy", pb.ACCOUNT_STATE_COOLING: "cooling",
    pb.ACCOUNT_STATE_CIRCUIT_OPEN: "circuit open", pb.ACCOUNT_STATE_PROBING: "probing",
    pb.ACCOUNT_STATE_DISABLED: "disabled",
}


def add_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    accounts = commands.add_parser("accounts", help="list and steer accounts of a running selector")
    actions = accounts.add_subparsers(dest="action", required=True, metavar="ACTION")

    def target(parser: argparse.ArgumentParser, account: bool = True) -> None:
        parser.add_argument("--config", help="config file (to find the selector's address)")
        parser.add_argument("--selector", help="selector address (overrides the config)")
        parser.add_argument("pool")
        if account:
            parser.add_argument("account", help="account name")

    listing = actions.add_parser("list", help="every account's state")
    listing.add_argument("--config", help="config file (to find the selector's address)")
    listing.add_argument("--selector", help="selector address (overrides the config)")
    listing.add_argument("pool", nargs="?", default="")
    target(actions.add_parser("enable", help="re-enable a disabled account"))
    disable = actions.add_parser("disable", help="take an account out of service")
    target(disable)
    disable.add_argument("--reason", default="", help="shown in the account's state")
    target(actions.add_parser("reset", help="clear cooldowns and failures (the quota reset early)"))
    add = actions.add_parser("add", help="add an account at run time")
    target(add)
    credential = add.add_mutually_exclusive_group(required=True)
    credential.add_argument("--key-env", metavar="VAR",
                            help="name of the environment variable holding the key, read in the selector's "
                                 "environment (where the selector runs), not this shell's")
    credential.add_argument("--key-stdin", action="store_true", help="read the key from standard input")
    add.add_argument("--weight", type=int, default=0)
    add.add_argument("--priority", type=int, choices=[0, 1, 2])
    add.add_argument("--rpm-limit", type=int, default=0)
    add.add_argument("--max-concurrency", type=int, default=0)
    target(actions.add_parser("remove", help="remove an account (its leases drain)"))

    reload = commands.add_parser("reload", help="make a running selector re-read its config file")
    reload.add_argument("--config", help="config file (to find the selector's address)")
    reload.add_argument("--selector", help="selector address (overrides the config); replicas as A,B,…: each is "
                                           "reloaded")


@dataclass
class _Connection:
    address: str
    tls: ClientTLS
    token: str


def _connection(args: argparse.Namespace) -> _Connection:
    """Where the selector is and how to reach it: from the config, the selector's address (selector.listen), TLS
    settings (edge.selector_tls) and admin token; or ``--selector``. The token may also come
    from POOLGATE_ADMIN_TOKEN. Only these settings are read: the pools' keys need not be in this shell's
    environment."""
    token = os.environ.get("POOLGATE_ADMIN_TOKEN", "")
    if args.config:
        selector, edge = load_selector_access(args.config)
        auth = selector.auth
        token = token or (auth.admin_tokens or auth.tokens or [""])[0]
        address = args.selector or loopback_for_wildcard(selector.listen)
        return _Connection(address, edge.selector_tls, token)
    if args.selector:
        return _Connection(str(args.selector), ClientTLS(), token)
    raise ConfigError("command line", ["give --config FILE or --selector ADDR to find the selector"])


class _Bearer(grpc.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    """Adds the admin token to every call."""

    def __init__(self, token: str) -> None:
        self._metadata = selector_channel.metadata(token) or ()

    def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        details = details._replace(metadata=tuple(details.metadata or ()) + self._metadata)
        return continuation(details, request)


def _format_status(account: pb.AccountStatus) -> str:
    state = STATE_NAMES.get(account.state, "?")
    if account.cooldown_remaining_ms:
        state += f" ({account.cooldown_remaining_ms / 1000:.0f} s left)"
    limit = str(account.max_concurrency) if account.max_concurrency else "∞"
    errors = f"{account.error_rate * 100:.0f}%"
    latency = f"{account.recent_latency_ms:.0f} ms" if account.recent_latency_ms else "-"
    line = (f"  {account.name:<20} {state:<26} {account.in_flight:>3}/{limit:<4} {account.requests_total:>8} "
            f"{errors:>6} {latency:>9} {account.input_tokens_total:>10} {account.output_tokens_total:>10}  "
            f"{account.credential_redacted}")
    if account.reason:
        line += f"\n  {'':<20} {account.reason}"
    for cooldown in account.model_cooldowns:
        left = "one probe" if cooldown.probing else f"{cooldown.remaining_ms / 1000:.0f} s left"
        line += f"\n  {'':<20} model {cooldown.scope}: {left} ({cooldown.reason})"
    return line


def _print_pools(response: pb.ListAccountsResponse) -> None:
    for pool in response.pools:
        print(f"{pool.name} ({pool.strategy}, {pool.available}/{len(pool.accounts)} available, "
              f"{pool.waiting} waiting)")
        print(f"  {'account':<20} {'state':<26} {'in flight':>8} {'requests':>8} {'errors':>6} {'latency':>9} "
              f"{'tokens in':>10} {'tokens out':>10}  credential")
        for account in pool.accounts:
            print(_format_status(account))


def run_accounts_command(args: argparse.Namespace) -> int:
    return run_with_selector(args, _accounts_action)


def run_reload_command(args: argparse.Namespace) -> int:
    """``poolgate reload``: one selector, or each replica of ``--selector A,B,…`` in turn (replicas each read their
    own file; every one must be told). 1 when any of them failed, after trying them all."""
    replicas = selector_channel.split_addresses(args.selector) if args.selector else []

    def reload(channel: grpc.Channel, args: argparse.Namespace) -> None:
        answer = selector_pb2_grpc.AdminStub(channel).Reload(pb.ReloadRequest(), timeout=TIMEOUT)
        changes = [f"{label}: {', '.join(items)}" for label, items in (
            ("pools added", answer.pools_added), ("pools removed", answer.pools_removed),
            ("accounts added", answer.accounts_added), ("accounts removed", answer.accounts_removed)) if items]
        where = f"{args.selector}: " if len(replicas) > 1 else ""
        print(where + "reloaded" + (": " + "; ".join(changes) if changes else " (no pool or account changes)"))

    if len(replicas) <= 1:
        return run_with_selector(args, reload)
    return max(run_with_selector(argparse.Namespace(**{**vars(args), "selector": one}), reload) for one in replicas)


def _accounts_action(channel: grpc.Channel, args: argparse.Namespace) -> None:
    admin = selector_pb2_grpc.AdminStub(channel)
    ref = pb.AccountRef(pool=getattr(args, "pool", ""), account=getattr(args, "account", ""))
    if args.action == "list":
        _print_pools(selector_pb2_grpc.SelectorStub(channel).ListAccounts(
            pb.ListAccountsRequest(pool=args.pool), timeout=TIMEOUT))
        return
    if args.action == "enable":
        status = admin.EnableAccount(ref, timeout=TIMEOUT)
    elif args.action == "disable":
        status = admin.DisableAccount(pb.DisableAccountRequest(pool=args.pool, account=args.account,
                                                               reason=args.reason), timeout=TIMEOUT)
    elif args.action == "reset":
        status = admin.ResetAccount(ref, timeout=TIMEOUT)
    elif args.action == "add":
        key = sys.stdin.readline().strip() if args.key_stdin else ""
        request = pb.AddAccountRequest(pool=args.pool, name=args.account, key=key, key_env=args.key_env or "",
                                       weight=args.weight, rpm_limit=args.rpm_limit,
                                       max_concurrency=args.max_concurrency)
        if args.priority is not None:
            request.priority = args.priority
        status = admin.AddAccount(request, timeout=TIMEOUT)
    elif args.action == "remove":
        removed = admin.RemoveAccount(ref, timeout=TIMEOUT)
        print(f"removed {removed.account_id} ({removed.draining_leases} lease(s) draining)")
        return
    else:
        raise AssertionError(args.action)
    print(f"{args.pool}/{status.name}: {STATE_NAMES.get(status.state, '?')}"
          + (f" ({status.reason})" if status.reason else ""))


def run_with_selector(args: argparse.Namespace, action: Callable[[grpc.Channel, argparse.Namespace], None]) -> int:
    """Run ``action`` on a channel to the selector ``args`` name (``--config``, ``--selector``); 0, or 1 with the
    selector's error on stderr, or 2 when the selector cannot be found."""
    try:
        connection = _connection(args)
        raw = selector_channel.open_channel(connection.address, connection.tls)
    except (ConfigError, ValueError) as exc:
        print("\n".join(exc.errors) if isinstance(exc, ConfigError) else str(exc), file=sys.stderr)
        return 2
    address = connection.address
    channel = grpc.intercept_channel(raw, _Bearer(connection.token)) if connection.token else raw
    with raw:
        try:
            action(channel, args)
        except grpc.RpcError as exc:
            code = exc.code() if isinstance(exc, grpc.Call) else None
            details = exc.details() if isinstance(exc, grpc.Call) else str(exc)
            if code == grpc.StatusCode.UNAVAILABLE:
                print(f"poolgate: no selector answers at {address}; is it running? ({details})", file=sys.stderr)
            else:
                print(f"poolgate: {details}", file=sys.stderr)
                if getattr(args, "key_env", None) and args.key_env in (details or ""):
                    print(f"poolgate: --key-env names a variable of the selector's environment, not this shell's: "
                          f"set {args.key_env} where the selector runs and restart it, or give the key with "
                          f"--key-stdin", file=sys.stderr)
            return 1
    return 0
