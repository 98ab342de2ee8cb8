"""``models:`` aliases and fallback chains, and ``routes:`` rules: what the config accepts and how it says no."""

from __future__ import annotations

import hashlib
import json

import pytest

from poolgate.config import ConfigError, parse_config
from proxy_edge.endpoints import CHAT, MESSAGES, InputError, parse_job
from proxy_edge.routing import Router

POOLS = """
edge: {api_keys: [client-key-aaaa1111, client-key-bbbb2222]}
pools:
  a: {api_key: sk-test-aaaa}
  b: {format: anthropic, api_key: sk-test-bbbb}
"""
GOOD = POOLS + """
models:
  claude-*: b
  smart: b/claude-opus-4-6
  thrifty: smart
  named: claude-haiku-4-5
  combo: [b/claude-opus-4-6, a/gpt-4o-mini, a]
routes:
  - name: reviewer
    match: {{system_contains: "code reviewer", model: "claude-*"}}
    to: a/gpt-4o-mini
  - match: {{header: {{X-Agent: "sub-*"}}, client_key: "…1111"}}
    to: combo
  - match: {{client_key: "sha256:{}"}}
    to: a
""".format(hashlib.sha256(b"client-key-bbbb2222").hexdigest()[:10])


def errors_of(text: str) -> list[str]:
    with pytest.raises(ConfigError) as exc:
        parse_config(text)
    return exc.value.errors


def test_aliases_chains_and_rules_resolve() -> None:
    router = Router(parse_config(GOOD))
    assert [(r.pool, r.upstream_model) for r in router.resolve_all("combo") or ()] == [
        ("b", "claude-opus-4-6"), ("a", "gpt-4o-mini"), ("a", "combo")]
    assert router.resolve("thrifty") == router.resolve("smart")
    named = router.resolve("named")
    assert named is not None and (named.pool, named.upstream_model) == ("b", "claude-haiku-4-5")  # via the glob
    assert router.served()[-1] == ("claude-*", "b", True)


@pytest.mark.parametrize(("endpoint", "body", "headers", "expected"), [
    (MESSAGES, {"system": [{"type": "text", "text": "You are a code reviewer."}], "model": "claude-x"}, {},
     ("reviewer", ["a/gpt-4o-mini"])),
    (MESSAGES, {"system": "You are a code reviewer.", "model": "other"}, {}, None),  # the model glob must match too
    (CHAT, {"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}]},
     {"x-agent": "sub-2", "Authorization": "Bearer client-key-aaaa1111"},
     ("routes[1]", ["b/claude-opus-4-6", "a/gpt-4o-mini", "a/combo"])),
    (CHAT, {"model": "gpt-4o"}, {"x-agent": "sub-2", "x-api-key": "client-key-bbbb2222"}, ("routes[2]", ["a/gpt-4o"])),
    (CHAT, {"model": "gpt-4o"}, {"x-agent": "main", "x-api-key": "client-key-aaaa1111"}, None),
])
def test_rules_pick_the_target(endpoint: object, body: dict[str, object], headers: dict[str, str],
                               expected: tuple[str, list[str]] | None) -> None:
    router = Router(parse_config(GOOD + "  - match: {model: '*'}\n    to: a\n"))
    job = parse_job(json.dumps({"messages": [], **body}).encode(), endpoint, router, headers)  # type: ignore[arg-type]
    targets = [f"{j.route.pool}/{j.route.upstream_model}" for j in (job, *job.fallbacks)]
    if expected is None:
        assert job.via == "routes[3]"
    else:
        assert (job.via, targets) == expected


def test_a_request_no_rule_and_no_model_serves_is_a_404() -> None:
    with pytest.raises(InputError) as caught:
        parse_job(b'{"model": "llama"}', CHAT, Router(parse_config(GOOD)), {})
    assert caught.value.status == 404


@pytest.mark.parametrize(("text", "expected"), [
    ("models: {x: [a/m, nope/m]}",
     "(top level): models.x[1]: names pool 'nope', which is not configured (pools: a, b)"),
    ("models: {x: []}", "(top level): models.x: is an empty list: name at least one pool/model target"),
    ("models: {x: y, y: x}", "(top level): models.x: aliases form a loop (x -> y -> x); point one of them at a pool "
                             "or pool/model"),
    ("models: {x: nope/m}", "(top level): models.x: names pool 'nope', which is not configured (pools: a, b)"),
    ("routes: [{match: {model: m}, to: a}, {match: {model: m}, to: x/m}]",
     "(top level): routes[1].to: names pool 'x', which is not configured (pools: a, b)"),
    ("routes: [{match: {model: m}, to: ghost}]",
     "(top level): routes[0].to: 'ghost' is neither a pool (pools: a, b) nor a model that models: serves"),
    ("routes: [{match: {model: m}, to: [a/m, c/m]}]",
     "(top level): routes[0].to[1]: names pool 'c', which is not configured (pools: a, b)"),
    ("routes: [{match: {}, to: a}]", "routes[0].match: is empty: give at least one of system_contains, "
     "system_sha256, header, client_key, model (a rule without conditions would take every request)"),
    ("routes: [{match: {system_sha256: abc}, to: a}]", "routes[0].match.system_sha256: must be 64 hexadecimal "
     "digits: the SHA-256 of the system prompt (printf %s \"$PROMPT\" | sha256sum), or run the edge with "
     "--log-level debug to see the hashes of requests"),
    ("routes: [{match: {client_key: '…9999'}, to: a}]", "(top level): routes[0].match.client_key: names none of "
     "the edge's client keys (edge.api_keys, edge.clients): use the redacted form of one of them ('…' and its last "
     "four characters)"),
    ("routes: [{match: {header: {'bad name': x}}, to: a}]", "routes[0].match.header: 'bad name' is not a valid "
     "header name"),
    ("routes: [{match: {model: m, sytem: x}, to: a}]", "routes[0].match.sytem: unknown setting: remove it or check "
     "its spelling (see the README's config reference)"),
    ("routes: [{match: {model: m}, to: ''}]", "routes[0].to: is empty: name a model, an alias, a pool/model target "
     "or a list of them"),
])
def test_error_messages(text: str, expected: str) -> None:
    assert expected in errors_of(POOLS + text), errors_of(POOLS + text)


def test_a_client_key_written_in_a_rule_is_refused_and_never_echoed() -> None:
    errors = errors_of(POOLS + "routes: [{match: {client_key: client-key-aaaa1111}, to: a}]")
    assert errors == ["routes[0].match.client_key: must name a client key without writing it: its redacted form as "
                      "listed by the edge ('…abcd', the last four characters) or 'sha256:' and at least 8 hex digits "
                      "of its SHA-256"]
    assert not any("client-key-aaaa1111" in e for e in errors)


def test_a_redacted_reference_that_fits_two_keys_asks_for_the_digest() -> None:
    text = "edge: {api_keys: [one-key-00001234, two-key-00001234]}\npools:\n  a: {api_key: sk-test-aaaa}\n" \
           "routes: [{match: {client_key: '...1234'}, to: a}]"
    assert errors_of(text) == ["(top level): routes[0].match.client_key: names 2 of the edge's client keys: use "
                               "the 'sha256:' form to tell them apart"]


BOB_DIGEST = hashlib.sha256(b"bob-key-00009999").hexdigest()
CLIENTS = f"""
edge:
  api_keys: [client-key-aaaa1111]
  clients:
    - {{name: alice, key: alice-key-00005678}}
    - {{name: bob, key_sha256: {BOB_DIGEST}}}
pools:
  a: {{api_key: sk-test-aaaa}}
"""


@pytest.mark.parametrize("reference", ["…5678", "sha256:" + hashlib.sha256(b"alice-key-00005678").hexdigest()[:8],
                                       "sha256:" + hashlib.sha256(b"bob-key-00009999").hexdigest()[:8]])
def test_a_rule_may_name_a_named_clients_key(reference: str) -> None:
    parse_config(CLIENTS + f"routes: [{{match: {{client_key: '{reference}'}}, to: a}}]")


def test_a_digest_that_names_no_client_key_is_refused_when_every_key_is_known() -> None:
    assert errors_of(CLIENTS + "routes: [{match: {client_key: 'sha256:00000000'}, to: a}]") == [
        "(top level): routes[0].match.client_key: names none of the edge's client keys (edge.api_keys, "
        "edge.clients): use the redacted form of one of them ('…' and its last four characters)"]
    # A tail cannot be checked against a key known by its digest only: the edge matches it when a request comes.
    parse_config(CLIENTS + "routes: [{match: {client_key: '…0000'}, to: a}]")
