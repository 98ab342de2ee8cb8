"""``models:`` resolution (names, globs, aliases, fallback chains) and ``routes:`` rules, shared by the config check
and the edge.

A ``models:`` value is a pool (the requested name is kept), ``pool/model``, another model name (an alias, resolved
through ``models:`` again), or a list of ``pool/model`` targets: a fallback chain, tried in order. A rule of
``routes:`` sends a request elsewhere by what it is (system prompt, header, client key, model); the first rule that
matches wins, before ``models:``.
"""

from __future__ import annotations

import fnmatch
import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from poolgate.config.durations import sha256_hex

_GLOB_CHARS = frozenset("*?[")
HEADER_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")
_HEX = re.compile(r"^[0-9a-f]+$")
Target = tuple[str, str]
"""(pool, upstream model name)."""


class AliasLoop(ValueError):
    """Aliases in ``models:`` that lead back to themselves."""


class RouteMatch(BaseModel):
    """What a request must have for a rule to apply; every condition given must hold."""

    model_config = ConfigDict(extra="forbid")

    system_contains: str = ""
    """Text the system prompt contains (case-sensitive)."""
    system_sha256: str = ""
    """SHA-256 (hex) of the whole system prompt, or of any one of its parts."""
    header: dict[str, str] = Field(default_factory=dict)
    """Header name -> value (a glob: ``*`` matches anything); names are case-insensitive."""
    client_key: str = ""
    """The client's edge key, by reference only: its redacted form ``…abcd`` or ``sha256:<first hex digits>``."""
    model: str = ""
    """The requested model name (a glob)."""

    @field_validator("system_sha256")
    @classmethod
    def _sha256(cls, value: str) -> str:
        return sha256_hex(value, "must be 64 hexadecimal digits: the SHA-256 of the system prompt (printf %s "
                                 "\"$PROMPT\" | sha256sum), or run the edge with --log-level debug to see the hashes "
                                 "of requests")

    @field_validator("client_key")
    @classmethod
    def _key_reference(cls, value: str) -> str:
        # Never echo the value: a mistake here is often the key itself.
        if value and not (key_reference_tail(value) or key_reference_digest(value)):
            raise ValueError("must name a client key without writing it: its redacted form as listed by the edge "
                             "('…abcd', the last four characters) or 'sha256:' and at least 8 hex digits of its "
                             "SHA-256")
        return value

    @field_validator("header")
    @classmethod
    def _header_names(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            if not HEADER_NAME.match(name):
                raise ValueError(f"{name!r} is not a valid header name")
        return {name.lower(): pattern for name, pattern in value.items()}

    @model_validator(mode="after")
    def _not_empty(self) -> RouteMatch:
        if not (self.system_contains or self.system_sha256 or self.header or self.client_key or self.model):
            raise ValueError("is empty: give at least one of system_contains, system_sha256, header, client_key, "
                             "model (a rule without conditions would take every request)")
        return self


class RouteRule(BaseModel):
    """One entry of ``routes:``: requests that match go ``to`` a model, an alias, ``pool/model`` or a chain."""

    model_config = ConfigDict(extra="forbid")

    name: str = ""
    """A label for logs; default ``routes[N]``."""
    match: RouteMatch
    to: str | list[str]

    @field_validator("to")
    @classmethod
    def _to_given(cls, value: str | list[str]) -> str | list[str]:
        if not value or (isinstance(value, str) and not value.strip()):
            raise ValueError("is empty: name a model, an alias, a pool/model target or a list of them")
        return value


def key_reference_tail(reference: str) -> str:
    """The last four characters a redacted reference (``…abcd`` or ``...abcd``) names; empty if it is not one."""
    for prefix in ("…", "..."):
        if reference.startswith(prefix) and len(reference) == len(prefix) + 4:
            return reference[len(prefix):]
    return ""


def key_reference_digest(reference: str) -> str:
    """The hex digest prefix a ``sha256:`` reference names; empty if it is not one."""
    digest = reference.removeprefix("sha256:").lower()
    if reference.startswith("sha256:") and len(digest) >= 8 and _HEX.match(digest) and len(digest) <= 64:
        return digest
    return ""


class ModelTable:
    """Resolves requested model names through ``models:``: exact names, then globs in order, then ``pool/model``."""

    def __init__(self, pools: Iterable[str], models: Mapping[str, str | list[str]]) -> None:
        self.pools = list(pools)
        self._pool_set = frozenset(self.pools)
        self._exact: dict[str, str | list[str]] = {}
        self._globs: list[tuple[re.Pattern[str], str, str | list[str]]] = []
        for pattern, value in models.items():
            if _GLOB_CHARS.intersection(pattern):
                self._globs.append((re.compile(fnmatch.translate(pattern)), pattern, value))
            else:
                self._exact[pattern] = value

    def entries(self) -> list[tuple[str, str | list[str], bool]]:
        """``(name or pattern, value, is_pattern)``: exact names first, then patterns, in config order."""
        return [(k, v, False) for k, v in self._exact.items()] + [(p, v, True) for _r, p, v in self._globs]

    def lookup(self, model: str) -> tuple[str, str | list[str]] | None:
        """The ``models:`` entry (key, value) that serves ``model``, if any."""
        if model in self._exact:
            return model, self._exact[model]
        for regex, pattern, value in self._globs:
            if regex.match(model):
                return pattern, value
        return None

    def resolve(self, model: str, seen: Sequence[str] = ()) -> tuple[Target, ...] | None:
        """The targets serving ``model``, or None; raises :class:`AliasLoop` for aliases that loop."""
        entry = self.lookup(model)
        if entry is not None:
            key, value = entry
            if key in seen:
                raise AliasLoop(" -> ".join([*seen, key]))
            return self.targets(value, model, (*seen, key))
        pool, slash, rest = model.partition("/")
        if slash and rest and pool in self._pool_set:
            return ((pool, rest),)
        return None

    def targets(self, value: str | list[str], model: str, seen: Sequence[str] = ()) -> tuple[Target, ...] | None:
        """What a ``models:`` value or a rule's ``to`` names, for a request for ``model``."""
        if isinstance(value, list):
            out = [self.target(item, model) for item in value]
            return tuple(t for t in out if t is not None) if all(out) else None
        direct = self.target(value, model)
        if direct is not None:
            return (direct,)
        if "/" in value:
            return None
        return self.resolve(value, seen)

    def target(self, item: str, model: str) -> Target | None:
        """``pool`` (keeps ``model``) or ``pool/model``; None when the pool is not configured."""
        pool, _slash, rest = item.partition("/")
        if pool not in self._pool_set:
            return None
        return pool, rest or model


def check_routing(pools: Sequence[str], models: Mapping[str, str | list[str]], routes: Sequence[RouteRule],
                  keys: ClientKeys | None = None) -> str | None:
    """The first problem with ``models:`` and ``routes:`` as ``path: what is wrong and what to do``; None if none."""
    table = ModelTable(pools, models)
    listed = ", ".join(pools)
    for key, value, _is_pattern in table.entries():
        problem = _value_problem(table, value, key, listed)
        if problem:
            return f"models.{key}{problem}"
    for i, rule in enumerate(routes):
        problem = _value_problem(table, rule.to, "", listed)
        if problem:
            return f"routes[{i}].to{problem}"
        problem = keys.problem(rule.match.client_key) if keys is not None else ""
        if problem:
            return f"routes[{i}].match.client_key: {problem}"
    return None


def _value_problem(table: ModelTable, value: str | list[str], key: str, listed: str) -> str:
    if isinstance(value, list):
        if not value:
            return ": is an empty list: name at least one pool/model target"
        for i, item in enumerate(value):
            if table.target(item, "") is None:
                return f"[{i}]: names pool {item.partition('/')[0]!r}, which is not configured (pools: {listed})"
        return ""
    if table.target(value, "") is not None:
        return ""
    if "/" in value:
        return f": names pool {value.partition('/')[0]!r}, which is not configured (pools: {listed})"
    try:
        resolved = table.resolve(value, (key,) if key else ())
    except AliasLoop as loop:
        return f": aliases form a loop ({loop}); point one of them at a pool or pool/model"
    if resolved is None:
        if key:
            return f": names pool {value!r}, which is not configured (pools: {listed})"
        return f": {value!r} is neither a pool (pools: {listed}) nor a model that models: serves"
    return ""


@dataclass(frozen=True)
class ClientKeys:
    """The edge's client keys as its file gives them, for checking the ``client_key`` of routes: the keys written
    out (``api_keys``, clients' ``key``), the SHA-256 of clients given by ``key_sha256``, and whether some key is
    known only where the edge runs (``key_env``)."""

    written: Sequence[str] = ()
    digests: Sequence[str] = ()
    from_environment: bool = False

    def problem(self, reference: str) -> str:
        if not reference:
            return ""
        matches = sum(1 for key in self.written if key_matches(reference, key))
        digest = key_reference_digest(reference)
        matches += sum(1 for known in self.digests if digest and known.startswith(digest))
        if matches > 1:
            return f"names {matches} of the edge's client keys: use the 'sha256:' form to tell them apart"
        # A reference by tail cannot be checked against a key known only by its digest or from the environment.
        unknowable = self.from_environment or (self.digests and not digest)
        if matches == 0 and (self.written or self.digests) and not unknowable:
            return ("names none of the edge's client keys (edge.api_keys, edge.clients): use the redacted form of "
                    "one of them ('…' and its last four characters)")
        return ""


def key_matches(reference: str, key: str) -> bool:
    """Whether the client ``key`` is the one ``reference`` names (its redacted tail or its digest prefix)."""
    tail = key_reference_tail(reference)
    if tail:
        return len(key) > 8 and key[-4:] == tail
    digest = key_reference_digest(reference)
    return bool(digest) and hashlib.sha256(key.encode()).hexdigest().startswith(digest)


def pattern_matches(pattern: str, value: str) -> bool:
    """Glob match (``fnmatchcase``) of ``value`` against ``pattern``."""
    return fnmatch.fnmatchcase(value, pattern)


def describe_value(value: Any) -> str:
    """A models: value or a rule's to, for messages and ``poolgate check``."""
    return ", then ".join(value) if isinstance(value, list) else str(value)
