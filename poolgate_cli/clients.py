"""``poolgate clients list --config FILE``: per client of the edge's file, its requests and tokens today, its spend
today and this month and the budget left, from the running selector's usage log (GetUsage). Never a key: clients
are named as the edge names them (``edge.clients`` names; a plain ``api_keys`` entry by its redacted form)."""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from datetime import datetime

import grpc

from poolgate.config.loader import load_edge_settings
from poolgate.day_windows import time_zone
from poolgate.secrets import redact
from poolgate.v1 import selector_pb2 as pb
from poolgate.v1 import selector_pb2_grpc
from poolgate_cli.admin import run_with_selector

TIMEOUT = 10.0


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    clients = commands.add_parser("clients", help="the edge's clients: usage and budgets from a running selector")
    actions = clients.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="per client: requests and tokens today, spend and budget left")
    listing.add_argument("--config", required=True, help="config file (the edge's clients, the selector's address)")
    listing.add_argument("--selector", help="selector address (overrides the config)")


@dataclass(frozen=True, slots=True)
class ClientLine:
    """One client as the file describes it (no key)."""

    name: str
    daily_budget: float = 0.0
    monthly_budget: float = 0.0
    timezone: str = "UTC"


def clients_of(config: str) -> list[ClientLine]:
    edge = load_edge_settings(config).edge
    return [*(ClientLine(c.name, c.budget.daily, c.budget.monthly, c.budget_timezone) for c in edge.clients),
            *(ClientLine(redact(key)) for key in edge.api_keys)]


def period_starts(now: float, zone_name: str) -> tuple[float, float]:
    """The start of the day and of the month that hold ``now`` in ``zone_name``."""
    moment = datetime.fromtimestamp(now, time_zone(zone_name))
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    return day.timestamp(), day.replace(day=1).timestamp()


def _usage(stub: selector_pb2_grpc.SelectorStub, client: str, since: float, until: float) -> list[pb.UsageRow]:
    request = pb.GetUsageRequest(client=client, by_client=True, bucket=pb.USAGE_BUCKET_DAY)
    request.since.FromNanoseconds(int(since * 1e9))
    request.until.FromNanoseconds(int(until * 1e9))
    return list(stub.GetUsage(request, timeout=TIMEOUT).rows)


def run_clients_command(args: argparse.Namespace) -> int:
    return run_with_selector(args, list_clients)


def _left(budget: float, spent: float) -> str:
    return f"${max(0.0, budget - spent):,.2f} of ${budget:,.2f}" if budget else "-"


def list_clients(channel: grpc.Channel, args: argparse.Namespace) -> None:
    stub = selector_pb2_grpc.SelectorStub(channel)
    now = time.time()
    print(f"{'client':<24} {'requests today':>14} {'tokens today':>13} {'spent today':>12} {'spent month':>12}  "
          f"{'daily budget left':<22} {'monthly budget left':<22}")
    for client in clients_of(args.config):
        day_start, month_start = period_starts(now, client.timezone)
        month = _usage(stub, client.name, month_start, now)
        today = _usage(stub, client.name, day_start, now)
        requests = sum(row.requests for row in today)
        tokens = sum(row.input_tokens + row.output_tokens for row in today)
        spent_today, spent_month = sum(row.cost for row in today), sum(row.cost for row in month)
        print(f"{client.name:<24} {requests:>14,} {tokens:>13,} {'$' + format(spent_today, ',.2f'):>12} "
              f"{'$' + format(spent_month, ',.2f'):>12}  {_left(client.daily_budget, spent_today):<22} "
              f"{_left(client.monthly_budget, spent_month):<22}")
