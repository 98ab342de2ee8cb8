"""Which pool serves a requested model, and under which upstream model name.

Resolution order: an exact name in ``models:``, then the glob patterns in the order written, then the explicit
``pool/model`` form (``gemini/gemini-2.0-flash`` sends ``gemini-2.0-flash`` to pool ``gemini``).
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass

from poolgate.config.schema import Config

_GLOB_CHARS = frozenset("*?[")
_CACHE_LIMIT = 4096


@dataclass(frozen=True, slots=True)
class Route:
    pool: str
    format: str
    """The pool's API format: "openai" or "anthropic"."""
    upstream_model: str
    """The model name sent upstream (may differ from the name the client asked for)."""


@dataclass(frozen=True, slots=True)
class _Target:
    pool: str
    model: str | None  # None: keep the requested name


class Router:
    """Resolves requested model names to routes; results are cached (models repeat, globs are not free)."""

    def __init__(self, config: Config) -> None:
        self._formats = {name: pool.format for name, pool in config.pools.items()}
        self._exact: dict[str, _Target] = {}
        self._globs: list[tuple[re.Pattern[str], str, _Target]] = []
        for pattern, target in config.models.items():
            pool, _, model = target.partition("/")
            parsed = _Target(pool, model or None)
            if _GLOB_CHARS.intersection(pattern):
                self._globs.append((re.compile(fnmatch.translate(pattern)), pattern, parsed))
            else:
                self._exact[pattern] = parsed
        self._cache: dict[str, Route | None] = {}

    def resolve(self, model: str) -> Route | None:
        """The route for ``model``, or None when no rule serves it."""
        try:
            return self._cache[model]
        except KeyError:
            pass
        route = self._resolve(model)
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        self._cache[model] = route
        return route

    def _resolve(self, model: str) -> Route | None:
        target = self._exact.get(model)
        if target is None:
            for regex, _pattern, candidate in self._globs:
                if regex.match(model):
                    target = candidate
                    break
        if target is not None:
            return Route(target.pool, self._formats[target.pool], target.model or model)
        pool, slash, rest = model.partition("/")
        if slash and rest and pool in self._formats:
            return Route(pool, self._formats[pool], rest)
        return None

    def served(self) -> list[tuple[str, str, bool]]:
        """``(model or pattern, pool, is_pattern)`` for every rule, in config order (exact names first)."""
        out = [(name, target.pool, False) for name, target in self._exact.items()]
        out += [(pattern, target.pool, True) for _regex, pattern, target in self._globs]
        return out

    def describe_served(self) -> str:
        """A one-line list of what is served, for "unknown model" errors."""
        parts = [name for name, _pool, _is_pattern in self.served()]
        pools = ", ".join(f"{pool}/<model>" for pool in self._formats)
        if parts:
            return f"served models: {', '.join(parts)}; or name a pool explicitly: {pools}"
        return f"no models are configured; name a pool explicitly: {pools}"
