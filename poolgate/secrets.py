"""Scrubbing credentials out of text that leaves the process or is stored.

A credential may come back in what an upstream says about it: whole, in part, or in the provider's own masked
form (OpenAI's 401 reads ``Incorrect API key provided: sk-proj-********…abcd``). :func:`scrub_text` and
:func:`scrub_bytes` remove both before such text reaches a client, a log line, the selector or its database:

- every run of 8 or more characters that is a substring of the credential;
- masked echoes of any key (``sk-…`` followed by a run of ``*``, ``...`` or ``…`` and a visible tail).

What is left in their place is the only form in which a credential may be shown, ``…abcd`` (its last four
characters, :func:`poolgate.config.schema.redact`).
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

__all__ = ["MIN_PART", "Scrubber", "redact_url", "scrub_bytes", "scrub_text"]

MIN_PART = 8
"""The shortest part of a credential that is removed (shorter runs are too common to mean anything)."""

_TOKEN = re.compile(r"[A-Za-z0-9_\-*.…\xe2\x80\xa6]{6,}")
"""Runs of the characters a key or its masked echo is made of: each run is looked at once (linear in the text).
(``\xe2\x80\xa6`` is ``…`` in UTF-8 bytes read as latin-1, as :meth:`Scrubber.bytes` reads them.)"""
_KEY_PREFIXES = ("sk-", "rk-", "pk-")
_MASKS = ("**", "...", "…", "\xe2\x80\xa6")
_ELLIPSIS_BYTES = "…".encode().decode("latin-1")


def redact(secret: str) -> str:
    """The only form in which a credential may be shown: its last four characters."""
    return "…" + secret[-4:] if len(secret) > 8 else "…"


def _token(credential: str) -> str:
    return credential.removeprefix("Bearer ").strip()


class Scrubber:
    """Scrubs text of one credential (built once per credential: it indexes the credential's 8-character parts)."""

    __slots__ = ("_grams", "_redacted", "_token")

    def __init__(self, credential: str) -> None:
        self._token = _token(credential)
        token = self._token
        self._grams = frozenset(token[i:i + MIN_PART] for i in range(len(token) - MIN_PART + 1))
        self._redacted = redact(token)

    def text(self, text: str) -> str:
        """``text`` without any masked key echo, nor any part of the credential of 8+ characters."""
        return self._scrub(text, "…")

    def bytes(self, data: bytes) -> bytes:
        """:meth:`text` for UTF-8 (or ASCII) bytes; the redacted form is written in UTF-8."""
        # latin-1 maps every byte to one character and back, so positions and non-ASCII bytes survive.
        return self._scrub(data.decode("latin-1"), _ELLIPSIS_BYTES).encode("latin-1")

    def _scrub(self, text: str, ellipsis: str) -> str:
        if "-" in text:
            text = _TOKEN.sub(lambda match: _unmasked(match.group(), ellipsis), text)
        if self._grams and len(text) >= MIN_PART:
            text = self._without_parts(text, ellipsis + self._redacted[1:])
        return text

    def _without_parts(self, text: str, redacted: str) -> str:
        # One C-speed search per 8-character part: linear in the text for a given credential.
        spans: list[tuple[int, int]] = []
        for gram in self._grams:
            at = text.find(gram)
            while at >= 0:
                spans.append((at, at + MIN_PART))
                at = text.find(gram, at + 1)
        if not spans:
            return text
        spans.sort()
        out: list[str] = []
        at = 0
        run_start, run_end = spans[0]
        for start, end in spans[1:]:
            if start <= run_end:
                run_end = max(run_end, end)
                continue
            out += (text[at:run_start], redacted)
            at, run_start, run_end = run_end, start, end
        out += (text[at:run_start], redacted, text[run_end:])
        return "".join(out)


def _unmasked(token: str, ellipsis: str) -> str:
    """A provider's masked echo of a key (``sk-proj-****…abcd``, ``sk-...abcd``) as ``…abcd``; other text as it is."""
    if not token.startswith(_KEY_PREFIXES) or not any(mask in token for mask in _MASKS):
        return token
    body = token.rstrip(".")
    tail = len(body)
    while tail > len(body) - 4 and body[tail - 1].isascii() and body[tail - 1].isalnum():
        tail -= 1
    return ellipsis + body[tail:] + token[len(body):]


def scrub_text(text: str, credential: str) -> str:
    """``text`` scrubbed of ``credential`` (see the module's docstring)."""
    return Scrubber(credential).text(text)


def scrub_bytes(data: bytes, credential: str) -> bytes:
    """``data`` scrubbed of ``credential`` (see the module's docstring)."""
    return Scrubber(credential).bytes(data)


def redact_url(url: str) -> str:
    """``url`` without the credentials in its authority: ``http://user:pass@proxy:3128`` -> ``http://…@proxy:3128``.

    The user name goes too (it is often half of the secret). Text that does not parse as a URL with an authority is
    cut at its last ``@``, so that what was before it is never shown either."""
    try:
        parts = urlsplit(url)
    except ValueError:
        parts = None
    if parts is None or not parts.netloc:
        return "…@" + url.rpartition("@")[2] if "@" in url else url
    if "@" not in parts.netloc:
        return url
    host = parts.netloc.rpartition("@")[2]
    return parts._replace(netloc=f"…@{host}").geturl()
