"""HTTP handlers: the forwarded API endpoints, the model list, account stats and health checks."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.compression_utils import HAS_BROTLI, HAS_ZSTD
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from proxy_edge.attempts import Forwarder
from proxy_edge.auth import Authenticator, Client
from proxy_edge.client_input import MAX_MODEL_LENGTH, InputError, header_text
from proxy_edge.endpoints import COUNT_TOKENS, FORWARDED, Endpoint, Job, parse_job
from proxy_edge.errors import ApiShape, error_response, param_error, unauthorized
from proxy_edge.model_catalog import ModelCatalog
from proxy_edge.selector_client import SelectorClient, SelectorError
from proxy_edge.token_estimate import ESTIMATE_HEADER, ESTIMATOR, estimate_input_tokens
from proxy_edge.topology import ROUTING, NotRouted
from proxy_edge.tracing import TRACE

log = logging.getLogger("poolgate.edge")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

FORWARDER = web.AppKey("forwarder", Forwarder)
SELECTOR = web.AppKey("selector", SelectorClient)
CATALOG = web.AppKey("catalog", ModelCatalog)
AUTH = web.AppKey("auth", Authenticator)
BODY_LIMIT = web.AppKey("body_limit", int)
__all__ = ["AUTH", "BODY_LIMIT", "CATALOG", "FORWARDER", "ROUTING", "SELECTOR", "account_stats", "forward_handler",
           "get_model", "healthz", "list_models", "readyz", "root", "unexpected_errors", "unknown_routes"]

DECODED_ENCODINGS = frozenset({"gzip", "deflate", *(["br"] if HAS_BROTLI else []), *(["zstd"] if HAS_ZSTD else [])})
"""The request ``Content-Encoding`` values aiohttp decodes on arrival (the body the handler reads is plain)."""
_PLAIN = frozenset({"", "identity"})
UNKNOWN_DATE = "1970-01-01T00:00:00Z"
"""``created_at`` of a model in Anthropic's shape: the edge does not know when a model was released."""
_SHAPES = {endpoint.client_path: endpoint.shape for endpoint in (*FORWARDED, COUNT_TOKENS)}


def _too_large(shape: ApiShape, limit: int) -> web.Response:
    return error_response(shape, 413, (
        f"the request body is larger than the edge's limit of {limit} bytes (edge.body_limit)"), "request_too_large")


def forward_handler(endpoint: Endpoint) -> Handler:
    """The handler for one forwarded endpoint: authenticate, read and check the body, route, forward."""
    shape = endpoint.shape

    async def handle(request: web.Request) -> web.StreamResponse:
        app = request.app
        client = app[AUTH].identify(request.headers)
        if client is None:
            return unauthorized(shape)
        limit = app[BODY_LIMIT]
        if request.content_length is not None and request.content_length > limit:
            return _too_large(shape, limit)
        encoding = request.headers.get("Content-Encoding", "").strip().lower()
        if encoding not in _PLAIN and encoding not in DECODED_ENCODINGS:
            accepted = ", ".join(sorted(DECODED_ENCODINGS))
            return error_response(shape, 415, (
                f"the edge cannot decode Content-Encoding {header_text(encoding)[:40]!r}: send the body "
                f"uncompressed or as one of {accepted}"), "unsupported_content_encoding")
        try:
            raw = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return _too_large(shape, limit)
        except web.RequestPayloadError:
            # The server's parser has given up on this body: mark it ended, or the server would try to drain it
            # again after the answer and log the decoding error; the rest of it may still be on the connection.
            request.content.feed_eof()
            response = error_response(shape, 400, (
                f"the request body could not be read as its Content-Encoding ({encoding or 'none'}) says: send a "
                "complete body, compressed as the header says or uncompressed without the header"),
                "invalid_content_encoding")
            response.force_close()
            return response
        routing = app[ROUTING]
        try:
            # The routing is there but for the edge's first moments: no coroutine for the wait on every request.
            router = routing.current.router if routing.current is not None else await routing.wait_router()
            job = parse_job(raw, endpoint, router, request.headers)
        except NotRouted:
            return not_routed(shape, routing.problem)
        except InputError as exc:
            return error_response(shape, exc.status, exc.message, exc.code)
        if client.name:
            permitted = for_client(job, client)
            if isinstance(permitted, str):
                return error_response(shape, 403, permitted, "client_not_permitted")
            job = permitted
            if client.name in app[AUTH].names and TRACE in request:
                request[TRACE].client_label = client.name
        if job.local_count:
            return _estimated_count(job)
        return await app[FORWARDER].forward(request, job)

    return handle


def for_client(job: Job, client: Client) -> Job | str:
    """``job`` as ``client`` may have it: its targets on pools the client may use (a fallback chain skips the
    others), each carrying the client; or why the client may not have it at all (the 403's message)."""
    if not client.may_ask_for(job.requested_model):
        return (f"client {client.name!r} may not use model {job.requested_model!r}; it may use models matching "
                f"{', '.join(client.models)} (edge.clients[].models)")
    targets = [target for target in (job, *job.fallbacks) if client.may_use(target.route.pool)]
    if not targets:
        return (f"client {client.name!r} may not use pool {job.route.pool!r}, which serves model "
                f"{job.requested_model!r}; it may use pools {', '.join(client.pools)} (edge.clients[].pools)")
    for target in targets:
        target.client = client.limits
    first = targets[0]
    first.fallbacks = tuple(targets[1:])
    return first


def _estimated_count(job: Job) -> web.Response:
    """``count_tokens`` for a model whose pool cannot count: the edge's estimate, marked as one."""
    tokens = estimate_input_tokens(json.loads(job.body))
    return web.json_response({"input_tokens": tokens}, headers={**job.response_headers, ESTIMATE_HEADER: ESTIMATOR})


@web.middleware
async def unexpected_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """An exception no handler expected becomes a 500 in the client's API shape naming the request id (never
    aiohttp's own page), logged once with its traceback. When the response had already begun, the connection is
    closed instead: the client sees an incomplete answer, not a complete-looking one."""
    try:
        return await handler(request)
    except (web.HTTPException, asyncio.CancelledError):
        raise
    except Exception:
        log.exception("unexpected error serving %s %s", request.method, request.path)
        trace = request[TRACE] if TRACE in request else None
        if trace is not None and trace.response is not None:
            if request.transport is not None:
                request.transport.close()
            return trace.response
        request_id = f" (request id {trace.request_id})" if trace is not None else ""
        return error_response(_SHAPES.get(request.path, ApiShape.OPENAI), 500, (
            f"the edge failed while serving this request{request_id}; the error is in its log: retry, and report the "
            "request id if it happens again"), "internal_error")


def shape_of(request: web.Request) -> ApiShape:
    """The API a request speaks: its endpoint's, else Anthropic's when it sends ``anthropic-version``."""
    shape = _SHAPES.get(request.path)
    if shape is not None:
        return shape
    return ApiShape.ANTHROPIC if "anthropic-version" in request.headers else ApiShape.OPENAI


@web.middleware
async def unknown_routes(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A path the edge does not serve, or a method a path does not take, is an error in the client's API shape (not
    aiohttp's plain text), so SDKs and agents show its message; a retry cannot fix it."""
    unmatched = request.match_info.http_exception
    if unmatched is None:
        return await handler(request)  # a route's own 404 (an unknown dashboard file) stays its own
    if isinstance(unmatched, web.HTTPMethodNotAllowed):
        allowed = ", ".join(sorted(unmatched.allowed_methods))
        return error_response(shape_of(request), 405, (
            f"{request.path} does not take {request.method}; use {allowed}"), "method_not_allowed",
            {"Allow": allowed})
    return error_response(shape_of(request), 404, (
        f"the edge serves no {request.path[:200]!r}: the API endpoints are /v1/chat/completions, /v1/responses, "
        "/v1/embeddings, /v1/messages, /v1/messages/count_tokens, /v1/models and /v1/models/{model}"), "not_found")


async def root(_request: web.Request) -> web.Response:
    """``GET /`` and ``HEAD /``: 200, so that clients checking the base URL (Claude Code's preconnect) find it."""
    return web.json_response({"service": "poolgate", "api": "/v1", "dashboard": "/dashboard"})


async def list_models(request: web.Request) -> web.Response:
    """The models a client can ask for, in OpenAI's list shape, or Anthropic's for a client sending
    ``anthropic-version``: every name ``models:`` gives, and for a glob pattern the names its pool's upstream lists
    (or the config names) that it serves."""
    shape = shape_of(request)
    if not request.app[AUTH].check(request.headers):
        return unauthorized(shape)
    try:
        router = await request.app[ROUTING].wait_router()
    except NotRouted:
        return not_routed(shape, request.app[ROUTING].problem)
    pools = router.pattern_pools()
    upstream = await request.app[CATALOG].names(pools) if pools else {}
    listed = router.listed(upstream)
    if shape is ApiShape.ANTHROPIC:
        data = [_anthropic_model(name) for name, _pool in listed]
        return web.json_response({"data": data, "has_more": False, "first_id": data[0]["id"] if data else None,
                                  "last_id": data[-1]["id"] if data else None})
    return web.json_response({"object": "list", "data": [_openai_model(name, pool) for name, pool in listed]})


async def get_model(request: web.Request) -> web.Response:
    """One model by name (``GET /v1/models/{model}``), in the client's API shape; 404 when nothing serves it."""
    shape = shape_of(request)
    if not request.app[AUTH].check(request.headers):
        return unauthorized(shape)
    name = request.match_info["model"]
    try:
        router = await request.app[ROUTING].wait_router()
    except NotRouted:
        return not_routed(shape, request.app[ROUTING].problem)
    route = router.resolve(name) if name and len(name) <= MAX_MODEL_LENGTH else None
    if route is None:
        return error_response(shape, 404, (
            f"model {name[:MAX_MODEL_LENGTH]!r} is not served here; {router.describe_served()}"), "model_not_found")
    if shape is ApiShape.ANTHROPIC:
        return web.json_response(_anthropic_model(name))
    return web.json_response(_openai_model(name, route.pool))


def not_routed(shape: ApiShape, problem: SelectorError | None) -> web.Response:
    """503 before the selector has sent the pools: the edge just started, the selector is not up yet, or it refused
    the edge (``problem``)."""
    if problem is not None:
        return error_response(shape, problem.status, problem.message, problem.code, headers={"Retry-After": "1"})
    return error_response(shape, 503, "the edge has not received the pools from the selector yet: start the "
                          "selector (poolgate selector), or retry in a moment", "selector_unavailable",
                          headers={"Retry-After": "1"})


def _openai_model(name: str, pool: str) -> dict[str, object]:
    return {"id": name, "object": "model", "created": 0, "owned_by": pool}


def _anthropic_model(name: str) -> dict[str, object]:
    return {"type": "model", "id": name, "display_name": name, "created_at": UNKNOWN_DATE}


async def account_stats(request: web.Request) -> web.Response:
    """Per pool and account, what the selector's ListAccounts reports (credentials only in redacted form)."""
    if not request.app[AUTH].check(request.headers):
        return unauthorized(ApiShape.OPENAI)
    try:
        listing = await request.app[SELECTOR].list_accounts(request.query.get("pool", ""))
    except SelectorError as exc:
        return query_error_response(exc)
    return web.Response(body=json.dumps(message_dict(listing), indent=1).encode(), content_type="application/json")


def query_error_response(exc: SelectorError) -> web.Response:
    """A failed query (stats, usage) in OpenAI's error shape; an unknown pool names ``pool`` as the parameter."""
    if exc.status == 404:
        return param_error("pool", exc.message, exc.code, 404)
    return error_response(ApiShape.OPENAI, exc.status, exc.message, exc.code)


def message_dict(message: Message) -> dict[str, object]:
    """Every field of ``message`` by its proto name, numbers as JSON numbers and enums by name."""
    out: dict[str, object] = {}
    for field in message.DESCRIPTOR.fields:
        value = getattr(message, field.name)
        if field.type == FieldDescriptor.TYPE_MESSAGE:
            out[field.name] = [message_dict(v) for v in value] if field.is_repeated else message_dict(value)
        elif field.type == FieldDescriptor.TYPE_ENUM:
            names = field.enum_type.values_by_number
            out[field.name] = [names[v].name for v in value] if field.is_repeated else names[value].name
        else:
            out[field.name] = list(value) if field.is_repeated else value
    return out



async def healthz(_request: web.Request) -> web.Response:
    """Liveness: the process serves HTTP (nothing else is checked; a restart is the only cure for a failure)."""
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Readiness: the selector answers ``ListAccounts`` and the routing is loaded (the router, and pools the selector
    serves). Accounts available now are in the body (``available``, per pool) but do not decide the status: while a
    pool cools down, clients should get its 429 with ``Retry-After``, not lose the edge from the load balancer."""
    routing = request.app[ROUTING].current
    if routing is None:
        return web.json_response({"status": "not ready", "reason": "no routing from the selector yet"}, status=503)
    try:
        listing = await request.app[SELECTOR].list_accounts()
    except SelectorError as exc:
        return web.json_response({"status": "not ready", "reason": exc.message}, status=503)
    available = {pool.name: pool.available for pool in listing.pools}
    if not available:
        return web.json_response({"status": "not ready", "reason": "the selector serves no pools"}, status=503)
    return web.json_response({"status": "ready", "routing": routing.version, "available": available})
