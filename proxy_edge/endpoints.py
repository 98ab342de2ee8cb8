"""The forwarded endpoints and how a client's request body becomes an upstream job.

The body is parsed once for what the edge needs (model, stream, session key) and forwarded as received, unless the
edge has to change it: another upstream model name, or asking an OpenAI upstream for stream usage. What the body
must be to be parsed at all is checked in :mod:`proxy_edge.client_input`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from poolgate.config.schema import FORMAT_APIS
from proxy_edge.client_input import (
    InputError,
    bounded_session_key,
    check_model,
    header_text,
    header_value,
    parse_body,
)
from proxy_edge.errors import ApiShape
from proxy_edge.json_codec import encode
from proxy_edge.leases import ClientLimits
from proxy_edge.routing import Route, Router
from proxy_edge.rules import RequestFacts
from proxy_edge.streaming import StreamKind
from proxy_edge.translate import TranslationError
from proxy_edge.translate.bridge import DROPPED_HEADER, Translation, translate_request


@dataclass(frozen=True, slots=True)
class Endpoint:
    name: str
    client_path: str
    upstream_path: str
    """Appended to the pool's base URL (OpenAI base URLs end in /v1, Anthropic's do not)."""
    shape: ApiShape
    pool_format: str
    stream_kind: StreamKind | None
    """None when the endpoint does not stream."""
    light: bool = False
    """A light call (token counting): its lease counts in neither the account's concurrency nor its request rate."""


CHAT = Endpoint("chat", "/v1/chat/completions", "/chat/completions", ApiShape.OPENAI, "openai", StreamKind.CHAT)
RESPONSES = Endpoint("responses", "/v1/responses", "/responses", ApiShape.OPENAI, "openai", StreamKind.RESPONSES)
EMBEDDINGS = Endpoint("embeddings", "/v1/embeddings", "/embeddings", ApiShape.OPENAI, "openai", None)
MESSAGES = Endpoint("messages", "/v1/messages", "/v1/messages", ApiShape.ANTHROPIC, "anthropic", StreamKind.ANTHROPIC)
COUNT_TOKENS = Endpoint("count_tokens", "/v1/messages/count_tokens", "/v1/messages/count_tokens", ApiShape.ANTHROPIC,
                        "anthropic", None, light=True)
FORWARDED = (CHAT, RESPONSES, EMBEDDINGS, MESSAGES)
BY_API = {endpoint.name: endpoint for endpoint in (*FORWARDED, COUNT_TOKENS)}
TRANSLATIONS: dict[str, tuple[str, ...]] = {
    "chat": ("messages",), "messages": ("chat", "responses"), "responses": ("messages", "chat")}
"""For each client API, the upstream APIs it can be translated to, in order of preference (the first one the pool's
upstream speaks is used)."""
TARGET_HEADER = "x-poolgate-target"
"""Response header naming the ``pool/model`` that served."""
__all__ = ["BY_API", "CHAT", "COUNT_TOKENS", "EMBEDDINGS", "FORWARDED", "MESSAGES", "RESPONSES", "TARGET_HEADER",
           "TRANSLATIONS", "Endpoint", "InputError", "Job", "parse_job", "session_key"]


@dataclass(slots=True)
class Job:
    """One client request, ready to forward to whichever account the selector leases."""

    endpoint: Endpoint
    route: Route
    requested_model: str
    body: bytes
    stream: bool
    strip_usage: bool
    """The edge added ``stream_options.include_usage``; the usage-only chunk is not passed to the client."""
    session_key: str
    """Requests with the same key stay on one account (see :func:`session_key`)."""
    translation: Translation | None = None
    """Set when the pool speaks the other API: how its answers are brought back to the client's shape."""
    upstream_endpoint: Endpoint | None = None
    """The endpoint called upstream when it is not the client's (a translated request)."""
    fallbacks: tuple[Job, ...] = ()
    """Further targets of a fallback chain, tried in order when this one's pool cannot serve."""
    via: str = ""
    """The rule or chain that chose the target (for logs); empty for a plain ``models:`` entry."""
    response_headers: dict[str, str] = dataclasses.field(default_factory=dict)
    conversation: bool = False
    """The session key names a coding agent's conversation."""
    local_count: bool = False
    """A count_tokens request for a pool whose upstream cannot count: the edge estimates (no upstream call)."""
    client: ClientLimits | None = None
    """The client the request comes from, sent with each selection (None: no client)."""

    @property
    def upstream(self) -> Endpoint:
        """The endpoint called upstream: the client's, or the one its request was translated to."""
        return self.upstream_endpoint or self.endpoint


def parse_job(raw: bytes, endpoint: Endpoint, router: Router, headers: Mapping[str, str] | None = None) -> Job:
    """Validate the body and route it; raises :class:`InputError` (400/404) in words the client can act on.

    ``headers`` (the client's) give the session key and serve ``routes:`` rules that look at headers or the key.
    """
    headers = headers if headers is not None else {}
    data = parse_body(raw)
    model = check_model(data)
    facts = RequestFacts(data, headers) if router.has_rules else None
    plan = router.plan(model, facts)
    if plan is None:
        raise InputError(404, f"model {model!r} is not served here; {router.describe_served()}", "model_not_found")
    stream = endpoint.stream_kind is not None and data.get("stream") is True
    session, conversation = session_key(data, headers)
    jobs = [_target(raw, data, endpoint, route, model, stream, session, plan.via) for route in plan.routes]
    for job in jobs:
        job.conversation = conversation
    jobs[0].fallbacks = tuple(jobs[1:])
    return jobs[0]


def _target(raw: bytes, data: dict[str, Any], endpoint: Endpoint, route: Route, model: str, stream: bool,
            session: str, via: str) -> Job:
    """The job for one target: the body as received, changed only where this pool needs it, or translated."""
    headers = {TARGET_HEADER: header_value(f"{route.pool}/{route.upstream_model}")}
    apis = route.apis or FORMAT_APIS[route.format]
    if endpoint is COUNT_TOKENS and endpoint.name not in apis:
        return Job(endpoint, route, model, raw, False, False, session, via=via, response_headers=headers,
                   local_count=True)
    if endpoint.name not in apis:
        return _translated(data, endpoint, route, apis, model, stream, session, via, headers)
    data = dict(data)
    changed = False
    if route.upstream_model != model:
        data["model"] = route.upstream_model
        changed = True
    strip_usage = False
    if stream and endpoint.stream_kind is StreamKind.CHAT:
        options = data.get("stream_options")
        if not (isinstance(options, dict) and options.get("include_usage") is True):
            data["stream_options"] = {**(options if isinstance(options, dict) else {}), "include_usage": True}
            strip_usage = changed = True
    body = encode(data) if changed else raw
    return Job(endpoint, route, model, body, stream, strip_usage, session, via=via, response_headers=headers)


def _translated(data: dict[str, Any], endpoint: Endpoint, route: Route, apis: Iterable[str], model: str,
                stream: bool, session: str, via: str, headers: dict[str, str]) -> Job:
    spoken = ", ".join(apis)
    served = f"model {model!r} is served by pool {route.pool!r}, whose upstream speaks {spoken}"
    upstream = next((BY_API[api] for api in TRANSLATIONS.get(endpoint.name, ()) if api in apis), None)
    if upstream is None:
        raise InputError(400, (
            f"{served}; {endpoint.client_path} cannot be translated to it: use a model served by a pool whose "
            f"upstream speaks {endpoint.name}, or call an API that pool speaks"), "untranslatable")
    try:
        body, translation = translate_request(endpoint.name, upstream.name, {**data, "model": route.upstream_model})
    except TranslationError as exc:
        raise InputError(400, f"{exc.message} ({served})", "untranslatable") from None
    encoded = encode(body)
    if translation.dropped:
        headers[DROPPED_HEADER] = header_value(", ".join(translation.dropped))
    return Job(endpoint, route, model, encoded, stream, False, session, translation, upstream, via=via,
               response_headers=headers)


SESSION_HEADER = "x-session-id"
"""A client's own session key: its requests stay on one account on pools with ``sticky_sessions``."""
CONVERSATION_HEADERS = ("x-claude-code-session-id", "session-id", "session_id")
"""Headers coding agents send that name one conversation (Claude Code; Codex CLI)."""


def session_key(data: dict[str, Any], headers: Mapping[str, str]) -> tuple[str, bool]:
    """The request's session key, and whether it names one agent conversation (which sticks to its account on every
    pool, for its prompt cache, unless the pool turns ``conversation_affinity`` off).

    In order: the ``x-session-id`` header (a plain session), the agents' conversation headers, ``prompt_cache_key``
    and Anthropic ``metadata.user_id`` (conversations), OpenAI ``user`` (a plain session). A long key is used as its
    digest (:func:`~proxy_edge.client_input.bounded_session_key`)."""
    own = headers.get(SESSION_HEADER)
    if own:
        return bounded_session_key(header_text(own)), False
    for name in CONVERSATION_HEADERS:
        value = headers.get(name)
        if value:
            return bounded_session_key(header_text(value)), True
    value = data.get("prompt_cache_key")
    if isinstance(value, str) and value:
        return bounded_session_key(value), True
    metadata = data.get("metadata")
    if isinstance(metadata, dict):
        value = metadata.get("user_id")
        if isinstance(value, str) and value:
            return bounded_session_key(value), True
    value = data.get("user")
    if isinstance(value, str) and value:
        return bounded_session_key(value), False
    return "", False
