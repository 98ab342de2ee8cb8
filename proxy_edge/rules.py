"""``routes:`` rules at request time: what a request is (system prompt, headers, client key, model) and the first
rule that matches it.

The client key is only ever compared with a rule's reference (its redacted tail or a digest prefix); it is never
logged or kept.
"""

from __future__ import annotations

import fnmatch
import hashlib
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from poolgate.config.routes import RouteRule, key_matches, pattern_matches
from proxy_edge.auth import presented_key

log = logging.getLogger("poolgate.edge.routes")


def system_parts(data: Mapping[str, Any]) -> list[str]:
    """The system prompt's parts, in any API's shape: Anthropic ``system`` (a string or text blocks), OpenAI system
    and developer messages (chat ``messages``, responses ``input``) and responses ``instructions``."""
    parts: list[str] = []
    _add_text(parts, data.get("system"))
    if isinstance(data.get("instructions"), str):
        parts.append(data["instructions"])
    for name in ("messages", "input"):
        items = data.get(name)
        if isinstance(items, list):
            for item in items:
                if isinstance(item, dict) and item.get("role") in ("system", "developer"):
                    _add_text(parts, item.get("content"), join=True)
    return parts


def _add_text(parts: list[str], content: Any, join: bool = False) -> None:
    if isinstance(content, str):
        parts.append(content)
    elif isinstance(content, list):
        texts = [str(b.get("text", "")) for b in content if isinstance(b, dict) and isinstance(b.get("text"), str)]
        if join:
            parts.append("".join(texts))
        else:
            parts.extend(texts)


@dataclass(slots=True)
class RequestFacts:
    """What rules look at, computed once per request and only as far as a rule needs it."""

    data: Mapping[str, Any]
    headers: Mapping[str, str]
    _parts: list[str] | None = None
    _text: str | None = None
    _hashes: frozenset[str] | None = None
    _key: tuple[str | None] | None = field(default=None)

    @property
    def system_text(self) -> str:
        if self._text is None:
            if self._parts is None:
                self._parts = system_parts(self.data)
            self._text = "\n\n".join(self._parts)
        return self._text

    @property
    def system_hashes(self) -> frozenset[str]:
        """SHA-256 of the whole system prompt (parts joined by a blank line) and of each part."""
        if self._hashes is None:
            text = self.system_text
            assert self._parts is not None
            self._hashes = frozenset(_sha256(t) for t in [text, *self._parts])
        return self._hashes

    @property
    def client_key(self) -> str | None:
        if self._key is None:
            self._key = (presented_key(self.headers),)
        return self._key[0]


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Rule:
    label: str
    """``routes[N]`` or the rule's name, for logs and the response header."""
    rule: RouteRule
    model: re.Pattern[str] | None

    def matches(self, model: str, facts: RequestFacts) -> bool:
        match = self.rule.match
        if self.model is not None and not self.model.match(model):
            return False
        for name, pattern in match.header.items():
            value = facts.headers.get(name)
            if value is None or not pattern_matches(pattern, value):
                return False
        if match.system_contains and match.system_contains not in facts.system_text:
            return False
        if match.system_sha256 and match.system_sha256 not in facts.system_hashes:
            return False
        if match.client_key:
            key = facts.client_key
            if key is None or not key_matches(match.client_key, key):
                return False
        return True


class RuleSet:
    """The ``routes:`` rules, in order."""

    def __init__(self, rules: list[RouteRule]) -> None:
        self._rules = [
            Rule(rule.name or f"routes[{i}]", rule, re.compile(fnmatch.translate(rule.match.model))
                 if rule.match.model else None)
            for i, rule in enumerate(rules)
        ]

    def __bool__(self) -> bool:
        return bool(self._rules)

    def first_match(self, model: str, facts: RequestFacts) -> Rule | None:
        """The first rule ``facts`` satisfy, or None."""
        if log.isEnabledFor(logging.DEBUG):
            log.debug("request for %s: system prompt sha256 %s", model, ", ".join(sorted(facts.system_hashes)))
        for rule in self._rules:
            if rule.matches(model, facts):
                log.debug("request for %s: rule %s matches, to %s", model, rule.label, rule.rule.to)
                return rule
        return None
