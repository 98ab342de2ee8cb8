"""The forwarded endpoints and how a client's request body becomes an upstream job.

The body is parsed once for what the edge needs (model, stream, session key) and forwarded as received, unless the
edge has to change it: another upstream model name, or asking an OpenAI upstream for stream usage. What the body
must be to be parsed at all is checked in :mod:`proxy_edge.client_input`.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from proxy_edge.client_input import InputError, bounded_session_key, check_model, header_value, parse_body
from proxy_edge.errors import ApiShape
from proxy_edge.routing import Route, Router
from proxy_edge.rules import RequestFacts
from proxy_edge.streaming import StreamKind
from proxy_edge.translate import TranslationError
from proxy_edge.translate.bridge import Translation, translate_request


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


CHAT = Endpoint("chat", "/v1/chat/completions", "/chat/completions", ApiShape.OPENAI, "openai", StreamKind.CHAT)
RESPONSES = Endpoint("responses", "/v1/responses", "/responses", ApiShape.OPENAI, "openai", StreamKind.RESPONSES)
EMBEDDINGS = Endpoint("embeddings", "/v1/embeddings", "/embeddings", ApiShape.OPENAI, "openai", None)
MESSAGES = Endpoint("messages", "/v1/messages", "/v1/messages", ApiShape.ANTHROPIC, "anthropic", StreamKind.ANTHROPIC)
FORWARDED = (CHAT, RESPONSES, EMBEDDINGS, MESSAGES)
_ENDPOINT_FOR_FORMAT = {"openai": CHAT.client_path, "anthropic": MESSAGES.client_path}
# The endpoint a request is translated to when its model is served by a pool of the other format.
_TRANSLATED_TO = {("chat", "anthropic"): MESSAGES, ("messages", "openai"): CHAT}
TARGET_HEADER = "x-poolgate-target"
"""Response header naming the ``pool/model`` that served."""
__all__ = ["CHAT", "EMBEDDINGS", "FORWARDED", "MESSAGES", "RESPONSES", "TARGET_HEADER", "Endpoint", "InputError",
           "Job", "parse_job", "session_key"]


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
    translation: Translation | None = None
    """Set when the pool speaks the other API: how its answers are brought back to the client's shape."""
    upstream_endpoint: Endpoint | None = None
    """The endpoint called upstream when it is not the client's (a translated request)."""
    fallbacks: tuple[Job, ...] = ()
    """Further targets of a fallback chain, tried in order when this one's pool cannot serve."""
    via: str = ""
    """The rule or chain that chose the target (for logs); empty for a plain ``models:`` entry."""
    response_headers: dict[str, str] = dataclasses.field(default_factory=dict)

    @property
    def upstream(self) -> Endpoint:
        """The endpoint called upstream: the client's, or the one its request was translated to."""
        return self.upstream_endpoint or self.endpoint


def parse_job(raw: bytes, endpoint: Endpoint, router: Router, session_header: str | None,
              headers: Mapping[str, str] | None = None) -> Job:
    """Validate the body and route it; raises :class:`InputError` (400/404) in words the client can act on.

    ``headers`` (the client's) are needed only by ``routes:`` rules that look at headers or the client key.
    """
    data = parse_body(raw)
    model = check_model(data)
    facts = RequestFacts(data, headers or {}) if router.has_rules else None
    plan = router.plan(model, facts)
    if plan is None:
        raise InputError(404, f"model {model!r} is not served here; {router.describe_served()}", "model_not_found")
    stream = endpoint.stream_kind is not None and data.get("stream") is True
    session = session_key(data, session_header)
    jobs = [_target(raw, data, endpoint, route, model, stream, session, plan.via) for route in plan.routes]
    jobs[0].fallbacks = tuple(jobs[1:])
    return jobs[0]


def _target(raw: bytes, data: dict[str, Any], endpoint: Endpoint, route: Route, model: str, stream: bool,
            session: str, via: str) -> Job:
    """The job for one target: the body as received, changed only where this pool needs it, or translated."""
    headers = {TARGET_HEADER: header_value(f"{route.pool}/{route.upstream_model}")}
    if route.format != endpoint.pool_format:
        return _translated(data, endpoint, route, model, stream, session, via, headers)
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
    body = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode() if changed else raw
    return Job(endpoint, route, model, body, stream, strip_usage, session, via=via, response_headers=headers)


def _translated(data: dict[str, Any], endpoint: Endpoint, route: Route, model: str, stream: bool, session: str,
                via: str, headers: dict[str, str]) -> Job:
    served = f"model {model!r} is served by pool {route.pool!r}, which speaks the {route.format} API"
    upstream = _TRANSLATED_TO.get((endpoint.name, route.format))
    if upstream is None:
        hint = _ENDPOINT_FOR_FORMAT[endpoint.pool_format]
        raise InputError(400, (
            f"{served}; {endpoint.client_path} cannot be translated to it (only chat completions and messages "
            f"can): call {hint} instead, or use a model served by an {endpoint.pool_format}-format pool"
        ), "untranslatable")
    try:
        body, translation = translate_request(endpoint.pool_format, route.format,
                                              {**data, "model": route.upstream_model})
    except TranslationError as exc:
        raise InputError(400, f"{exc.message} ({served})", "untranslatable") from None
    encoded = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    return Job(endpoint, route, model, encoded, stream, False, session, translation, upstream, via=via,
               response_headers=headers)


def session_key(data: dict[str, Any], session_header: str | None) -> str:
    """``x-session-id`` header, else OpenAI ``user`` / ``prompt_cache_key``, else Anthropic ``metadata.user_id``
    (a long one as its digest: see :func:`~proxy_edge.client_input.bounded_session_key`)."""
    if session_header:
        return bounded_session_key(session_header)
    for field in ("user", "prompt_cache_key"):
        value = data.get(field)
        if isinstance(value, str) and value:
            return bounded_session_key(value)
    metadata = data.get("metadata")
    if isinstance(metadata, dict):
        value = metadata.get("user_id")
        if isinstance(value, str) and value:
            return bounded_session_key(value)
    return ""
