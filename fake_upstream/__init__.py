"""A local fake of the OpenAI and Anthropic HTTP APIs, for the demo, tests and load tests. Not part of the product:
no product module imports it; ``poolgate fake-upstream``, ``up`` and ``demo`` run it as a program of its own.

``python -m fake_upstream [--listen 127.0.0.1:9090] [--latency SECONDS]`` serves ``/v1/chat/completions``,
``/v1/embeddings``, ``/v1/responses``, ``/v1/messages`` and ``/v1/messages/count_tokens``, streaming and not, with
realistic ``usage``, SSE event sequences and rate-limit headers, and ``/v1/models`` and ``/v1/models/{id}`` (in
Anthropic's shape when the request carries ``anthropic-version``). What an account gets depends on words in its API
key (on every endpoint but the model list):

- ``ratelimited`` / ``ratelimitedN``: 429 with ``retry-after: 30`` (or N seconds)
- ``throttled`` / ``throttledN``: 429 without a retry-after (always, or only for the first N ms after the key's first
  request: an account that recovers)
- ``overloaded``: 529 (Anthropic ``overloaded_error``; the OpenAI endpoints answer 503)
- ``unauthorized``: 401; ``forbidden``: 403; ``broken``: 500
- ``midstream``: the connection drops after the first stream event (non-stream: halfway through the body)
- ``errorevent``: a 200 stream whose first event is an error event (non-stream: a normal answer)
- ``lateerror``: a 200 stream with an error event after the first content event
- ``slow`` / ``slowN``: the answer starts after N ms (default 2000); ``dripN``: N ms between stream events
- ``silent``: the request is read and never answered; ``stall``: status and headers, then nothing
- ``hangup``: the connection is closed without an answer
- ``echokey``: 401 in OpenAI's real shape, echoing the key masked (``Incorrect API key provided:
  sk-proj-****…abcd``); ``leakkey``: 500 whose message quotes 16 characters from the middle of the key
- ``hugeevent`` / ``hugeeventN``: a 200 stream whose second event is N MiB long (default 100), in 64 KiB writes
- ``hugebody`` / ``hugebodyN``: a 200 non-stream answer of N MiB (default 100; valid JSON, no content-length)
- ``notjson``: a 200 ``application/json`` answer that is not JSON (stream requests too)
- ``jsonstream``: a stream request answered with the non-stream JSON body (``application/json``)
- ``chatonly``: ``/v1/responses`` answers 404, as an upstream without the Responses API (Gemini's OpenAI endpoint)
- ``flaky``: at random, 10 % rate limited (429, ``retry-after: 1``), 2 % server errors (500), the rest served
- ``nocredit``: out of credit, not a passing limit: OpenAI's 429 ``insufficient_quota``; Anthropic's 400
  ``invalid_request_error`` "Your credit balance is too low …"
- ``contextlimit``: the prompt is too long for the model, the client's fault: OpenAI's 400
  ``context_length_exceeded`` (param ``messages``; ``input`` on ``/v1/responses``); Anthropic's 400 "prompt is too
  long: N tokens > 200000 maximum"
- ``gemini429``: Gemini's OpenAI-compatible endpoint out of quota: 429 whose body is a list holding one
  ``RESOURCE_EXHAUSTED`` error, without rate-limit headers
- ``windowN``: a spent subscription window that resets in N seconds: Anthropic's 429 ``rate_limit_error`` with the
  ``anthropic-ratelimit-unified-*`` headers (``-status: rejected``, ``-reset``: the Unix time N s from now) and
  ``retry-after: N``; OpenAI's 429 ``rate_limit_exceeded`` (requests per day) with ``x-ratelimit-remaining-requests:
  0`` and ``x-ratelimit-reset-requests`` N s (``1h0m0s``)
- ``lowwindow``: normal answers whose headers say the window is nearly spent: Anthropic's unified ``-status:
  allowed_warning`` at utilization 0.95, resetting in an hour; OpenAI's ``x-ratelimit-remaining-requests`` at 5 % of
  the limit
- ``limitN``: the per-minute request limit the rate-limit headers report (default 10,000 for OpenAI, 4,000 for
  Anthropic). Every answer reports the key's requests in its current minute (a window that starts with the first
  request after the last one ended) and the time until that minute ends, as providers do; the fake does not enforce
  the limit
- ``persecond``: with ``limitN``, the limit is per second instead (OpenAI's headers then give the reset in
  milliseconds, as it does for a reset under a second)
- anything else: a normal answer, at once (``--latency`` adds a delay to every answer)

Requests that offer tools and ask to "use the tool" get a tool call (``use the tool Bash with {"command": "echo
hi"}`` names the tool and its input; Responses answers ``function_call`` items, or ``custom_tool_call`` for custom
tools); a tool result gets text quoting it (:mod:`fake_upstream.tools`).

Anthropic's error bodies carry the ``request-id`` header as ``request_id``, as the real API's do.

Every API answer sets a cookie, as the CDN in front of OpenAI's and Anthropic's APIs does (``set-cookie: __cf_bm=…``,
a new value per answer). The real ones are ``Secure`` and name the API's domain; the fake's are host-only and not
``Secure``, since it serves plain HTTP on a test host. ``GET /_fake/stats`` counts the requests that came with a
``Cookie`` header (``with_cookie``): a gateway that keeps one account's cookie and sends it with another's requests
links the accounts.

``GET /_fake/stats`` counts requests per key (and per key and path, and per key and the model asked), and requests
the caller abandoned (``cancelled``). A test running the fake in its own process can re-script a key while serving
(:meth:`FakeUpstream.script`; from another process ``POST /_fake/script`` with ``{"key": ..., "words": ...}``,
``"words": null`` to undo), e.g. to make a healthy account start answering 429, then recover; the scripted words
stand for the key's own in everything it answers. With ``"model": ...`` the words script only the key's requests for
that model (its other models answer as before), and win over a key-wide script for it; ``"words": null`` with the
model undoes only that model's script.
"""

from fake_upstream.server import FakeUpstream, create_fake_app, start_fake_upstream
from fake_upstream.state import FakeStats

__all__ = ["FakeStats", "FakeUpstream", "create_fake_app", "start_fake_upstream"]
