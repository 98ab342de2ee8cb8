"""Which headers cross the edge in each direction, and what the upstream's rate-limit headers say."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping

from multidict import CIMultiDict

from poolgate.rate_limit_times import parse_retry_after
from proxy_edge.client_input import header_text

# Hop-by-hop headers (RFC 9110 §7.6.1) never cross a proxy.
HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection",
    "te", "trailer", "transfer-encoding", "upgrade",
})
# Client headers that are not forwarded upstream: the client's own credentials (the edge's keys), what the HTTP
# client sets itself, and account-bound identity, which comes from the account (Lease.extra_headers) instead. The
# body was decoded on arrival (a Content-Encoding the edge cannot decode is refused), so it goes up plain.
_DROP_REQUEST = HOP_BY_HOP | frozenset({
    "authorization", "x-api-key", "api-key", "x-goog-api-key", "host", "content-length", "accept-encoding",
    "content-encoding", "cookie", "openai-organization", "openai-project", "x-session-id",
})
# Upstream response headers not passed to the client: framing the edge redoes, and the body may be decoded.
_DROP_RESPONSE = HOP_BY_HOP | frozenset({"content-length", "content-encoding", "set-cookie", "server", "date"})
# Headers the client's request is written for; an account's default does not override them.
CLIENT_WINS = frozenset({"anthropic-version", "anthropic-beta"})
DEFAULT_ANTHROPIC_VERSION = "2023-06-01"
MAX_RETRY_AFTER_MS = 10**12
"""The largest wait a report may carry (the proto bounds report times to 0..10^12); a date far ahead is capped."""
_RATE_LIMIT_PREFIXES = ("x-ratelimit-", "anthropic-ratelimit-", "retry-after")


def upstream_request_headers(
    client_headers: Iterable[tuple[str, str]],
    credential: tuple[str, str],
    extra_headers: Iterable[tuple[str, str]],
    anthropic: bool,
) -> CIMultiDict[str]:
    """Headers for the upstream call: the client's relevant ones (bytes that were not UTF-8 written as ``\\xNN``),
    then the account's credential and headers."""
    out: CIMultiDict[str] = CIMultiDict()
    for name, value in client_headers:
        if name.lower() not in _DROP_REQUEST:
            out.add(header_text(name), header_text(value))
    for name, value in extra_headers:
        if name.lower() in CLIENT_WINS and name in out:
            continue
        out[name] = value
    name, value = credential
    if name:
        out[name] = value
    if anthropic and "anthropic-version" not in out:
        out["anthropic-version"] = DEFAULT_ANTHROPIC_VERSION
    if "content-type" not in out:
        out["Content-Type"] = "application/json"
    return out


def client_response_headers(upstream_headers: Iterable[tuple[str, str]]) -> CIMultiDict[str]:
    """The upstream response's headers the client gets (framing headers are the edge's own; bytes that were not
    UTF-8 written as ``\\xNN``)."""
    out: CIMultiDict[str] = CIMultiDict()
    for name, value in upstream_headers:
        if name.lower() not in _DROP_RESPONSE:
            out.add(header_text(name), header_text(value))
    return out


def rate_limit_headers(upstream_headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    """``x-ratelimit-*``, ``anthropic-ratelimit-*`` and ``retry-after*`` headers, with lower-case names."""
    out: dict[str, str] = {}
    for name, value in upstream_headers:
        lower = name.lower()
        if lower.startswith(_RATE_LIMIT_PREFIXES):
            out[lower] = value
    return out


def retry_after_ms(headers: Mapping[str, str], now: float | None = None) -> int:
    """Milliseconds the upstream asks to wait (see :func:`poolgate.rate_limit_times.parse_retry_after`); 0 when absent
    or unreadable. ``headers`` has lower-case names (as from :func:`rate_limit_headers`)."""
    seconds = parse_retry_after(headers, time.time() if now is None else now)
    return 0 if seconds is None else min(MAX_RETRY_AFTER_MS, round(seconds * 1000))


def format_retry_after(ms: int) -> str:
    """A ``Retry-After`` value in whole seconds, rounded up (never 0 when there is a wait)."""
    return str(max(1, -(-ms // 1000)))
