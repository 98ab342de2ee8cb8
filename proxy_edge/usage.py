"""``GET /v1/accounts/usage``: the selector's usage log (``GetUsage``), rolled up per account per bucket, as JSON.

``?pool=&account=&client=&by=account|client&since=&until=&bucket=minute|hour|day``; ``client`` keeps one client's
usage (its name in ``edge.clients``), ``by=client`` rolls up per client instead of per account; ``since``/``until``
take ISO 8601 (``2025-01-31T12:00Z``; no offset means UTC) or epoch seconds; the range defaults to the 24 hours
before ``until`` (default now), the bucket to ``hour``. Bad parameters are a 400 in OpenAI's error shape whose
``param`` names the parameter.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from aiohttp import web
from google.protobuf.timestamp_pb2 import Timestamp

from poolgate.v1 import selector_pb2 as pb
from proxy_edge.errors import param_error, unauthorized
from proxy_edge.handlers import AUTH, SELECTOR, message_dict, query_error_response
from proxy_edge.selector_client import SelectorError

PARAMS = ("pool", "account", "client", "by", "since", "until", "bucket")
BUCKETS = {"minute": pb.USAGE_BUCKET_MINUTE, "hour": pb.USAGE_BUCKET_HOUR, "day": pb.USAGE_BUCKET_DAY}
DEFAULT_RANGE = 86400.0
_EPOCH = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)")
_MAX_EPOCH = 253402300799.0  # 9999-12-31T23:59:59Z, the largest protobuf Timestamp


class ParamError(Exception):
    """A query parameter the edge cannot use; ``param`` names it."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(message)
        self.param = param
        self.message = message


@dataclass(frozen=True, slots=True)
class UsageQuery:
    pool: str
    account: str
    since: float
    until: float
    bucket: str
    client: str = ""
    by_client: bool = False

    def request(self) -> pb.GetUsageRequest:
        return pb.GetUsageRequest(pool=self.pool, account=self.account, since=timestamp(self.since),
                                  until=timestamp(self.until), bucket=BUCKETS[self.bucket], client=self.client,
                                  by_client=self.by_client)


def timestamp(seconds: float) -> Timestamp:
    stamp = Timestamp()
    stamp.FromNanoseconds(round(seconds * 1e9))
    return stamp


def iso(seconds: float) -> str:
    """``2025-01-31T12:00:00Z`` (fractions of a second only when there are any)."""
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


def parse_time(param: str, text: str) -> float:
    """Epoch seconds from ISO 8601 (no offset: UTC) or epoch seconds; raises :class:`ParamError`."""
    text = text.strip()
    if _EPOCH.fullmatch(text):
        value = float(text)
    else:
        try:
            # A '+' of an offset arrives as a space when the client did not escape it in the query string.
            moment = datetime.fromisoformat(text.replace(" ", "+") if text[10:11] == "T" else text)
        except ValueError:
            raise ParamError(param, f"{param}: {text!r} is not a time: use ISO 8601 (2025-01-31T12:00:00Z) or "
                                    "epoch seconds (1738324800)") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        value = moment.timestamp()
    if not math.isfinite(value) or not 0 <= value <= _MAX_EPOCH:
        raise ParamError(param, f"{param}: {text!r} is out of range (1970 to 9999)")
    return value


def parse_query(query: Mapping[str, str], now: float) -> UsageQuery:
    """The query's parameters, checked; raises :class:`ParamError` naming the first bad one."""
    for name in query:
        if name not in PARAMS:
            raise ParamError(name, f"{name}: unknown parameter; use {', '.join(PARAMS)}")
    bucket = query.get("bucket", "hour").strip().lower() or "hour"
    if bucket not in BUCKETS:
        raise ParamError("bucket", f"bucket: {query['bucket']!r} is not one of minute, hour, day")
    pool, account = query.get("pool", "").strip(), query.get("account", "").strip()
    if account and not pool and "/" not in account:
        raise ParamError("account", "account: give the pool too (pool=NAME), or the account id as pool/name")
    if account and not pool:
        pool = account.split("/", 1)[0]
    until = parse_time("until", query["until"]) if query.get("until") else now
    since = parse_time("since", query["since"]) if query.get("since") else until - DEFAULT_RANGE
    if since >= until:
        raise ParamError("since", f"since: {iso(since)} is not before until ({iso(until)})")
    by = query.get("by", "account").strip().lower() or "account"
    if by not in ("account", "client"):
        raise ParamError("by", f"by: {query['by'][:40]!r} is not one of account, client")
    return UsageQuery(pool, account, since, until, bucket, query.get("client", "").strip()[:100], by == "client")


def row_dict(row: pb.UsageRow) -> dict[str, object]:
    out = message_dict(row)
    out["bucket_start"] = iso(row.bucket_start.ToNanoseconds() / 1e9)
    return out


async def fetch_usage(request: web.Request, query: UsageQuery) -> list[dict[str, object]]:
    """The selector's rows for ``query``; raises SelectorError."""
    response = await request.app[SELECTOR].get_usage(query.request())
    return [row_dict(row) for row in response.rows]


async def usage_handler(request: web.Request) -> web.Response:
    """``GET /v1/accounts/usage``."""
    if not request.app[AUTH].check(request.headers):
        return unauthorized()
    try:
        query = parse_query(request.query, time.time())
    except ParamError as exc:
        return param_error(exc.param, exc.message)
    try:
        rows = await fetch_usage(request, query)
    except SelectorError as exc:
        if exc.status == 400:
            field = exc.message.partition(":")[0].strip()
            return param_error(field if field in PARAMS else None, exc.message)
        return query_error_response(exc)
    body = {"object": "usage", "bucket": query.bucket, "since": iso(query.since), "until": iso(query.until),
            "rows": rows}
    return web.Response(body=json.dumps(body, indent=1).encode(), content_type="application/json")
