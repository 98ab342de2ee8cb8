"""Which pool serves a requested model, and under which upstream model name.

Resolution order: the first matching rule of ``routes:``, then an exact name in ``models:``, then the glob patterns
in the order written, then the explicit ``pool/model`` form (``gemini/gemini-2.0-flash`` sends ``gemini-2.0-flash``
to pool ``gemini``). A ``models:`` value may be an alias (another model name) or a fallback chain (a list).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from poolgate.config.routes import AliasLoop, ModelTable, Target
from poolgate.config.schema import Config
from poolgate.config.topology import Topology
from proxy_edge.rules import RequestFacts, RuleSet

_CACHE_LIMIT = 4096
OTHER_MODEL = "other"
"""The metrics label of a requested model the config does not name."""


@dataclass(frozen=True, slots=True)
class Route:
    pool: str
    format: str
    """The pool's API format: "openai" or "anthropic"."""
    upstream_model: str
    """The model name sent upstream (may differ from the name the client asked for)."""
    apis: tuple[str, ...] = ()
    """The APIs the pool's upstream speaks (``chat``, ``responses``, ``embeddings``, ``messages``,
    ``count_tokens``); empty means every API of its format."""


@dataclass(frozen=True, slots=True)
class Plan:
    """Where one request goes: one route, or several tried in order (a fallback chain)."""

    routes: tuple[Route, ...]
    via: str = ""
    """The rule or chain that decided (``routes[2]``, ``chain smart``); empty for a plain ``models:`` entry."""


class Router:
    """Resolves requested model names to routes; results are cached (models repeat, globs are not free)."""

    def __init__(self, config: Config | Topology) -> None:
        self._formats = {name: pool.format for name, pool in config.pools.items()}
        self._apis = {name: tuple(pool.apis) for name, pool in config.pools.items()}
        self._table = ModelTable(config.pools, config.models)
        self._rules = RuleSet(config.routes)
        self._cache: dict[str, tuple[Route, ...] | None] = {}
        self._labels: dict[str, str] = {}
        values = [*config.models.values(), *(rule.to for rule in config.routes)]
        self._named = frozenset(name for name, _value, is_pattern in self._table.entries() if not is_pattern) | (
            frozenset(_target_models(values, self._formats)))

    def metric_model(self, model: str) -> str:
        """The ``model`` label for a request for ``model``: the name itself when the config names it (an exact name
        in ``models:``, or a model a ``models:`` value or a rule's ``to`` names), else the ``models:`` pattern that
        serves it (``gpt-*``), else ``other``. Clients choose the names a pattern accepts, so those never become
        labels: the labels are bounded by the config."""
        if model in self._named:
            return model
        label = self._labels.get(model)
        if label is None:
            entry = self._table.lookup(model)
            label = entry[0] if entry is not None else OTHER_MODEL
            if len(self._labels) >= _CACHE_LIMIT:
                self._labels.clear()
            self._labels[model] = label
        return label

    @property
    def has_rules(self) -> bool:
        return bool(self._rules)

    def resolve(self, model: str) -> Route | None:
        """The (first) route for ``model``, or None when no entry serves it."""
        routes = self.resolve_all(model)
        return routes[0] if routes else None

    def resolve_all(self, model: str) -> tuple[Route, ...] | None:
        """Every route for ``model`` in order (more than one for a fallback chain), or None."""
        try:
            return self._cache[model]
        except KeyError:
            pass
        try:
            routes = self._routes(self._table.resolve(model))
        except AliasLoop:  # refused by the config check; here only for safety
            routes = None
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        self._cache[model] = routes
        return routes

    def plan(self, model: str, facts: RequestFacts | None = None) -> Plan | None:
        """Where a request for ``model`` goes: the first matching ``routes:`` rule, else ``models:``."""
        if facts is not None and self._rules:
            rule = self._rules.first_match(model, facts)
            if rule is not None:
                routes = self._routes(self._table.targets(rule.rule.to, model))
                if routes:
                    return Plan(routes, rule.label)
        routes = self.resolve_all(model)
        if routes is None:
            return None
        return Plan(routes, f"chain {model}" if len(routes) > 1 else "")

    def _routes(self, targets: tuple[Target, ...] | None) -> tuple[Route, ...] | None:
        if not targets:
            return None
        return tuple(Route(pool, self._formats[pool], model, self._apis[pool]) for pool, model in targets)

    def served(self) -> list[tuple[str, str, bool]]:
        """``(model or pattern, pool, is_pattern)`` for every entry, in config order (exact names first); a chain
        or an alias is listed with the pool it tries first."""
        out = []
        for name, value, is_pattern in self._table.entries():
            first = value[0] if isinstance(value, list) else value
            try:
                targets = self._table.targets(first, name) or ()
            except AliasLoop:
                targets = ()
            out.append((name, targets[0][0] if targets else "", is_pattern))
        return out

    def pattern_pools(self) -> list[str]:
        """The pools behind ``models:`` glob patterns: what their upstreams list decides which names a pattern
        lists."""
        return list(dict.fromkeys(pool for _name, pool, is_pattern in self.served() if is_pattern and pool))

    def listed(self, upstream_models: Mapping[str, Iterable[str]]) -> list[tuple[str, str]]:
        """``(model, pool)`` for every concrete name a client can ask for: the exact names of ``models:`` (aliases and
        chains too), then, for each glob pattern, the names the config or the pattern's pool's upstream
        (``upstream_models``, by pool) list that this pattern serves. Patterns themselves are never listed."""
        out: dict[str, str] = {}
        patterns: dict[str, str] = {}
        for name, pool, is_pattern in self.served():
            if is_pattern:
                patterns[name] = pool
            else:
                out.setdefault(name, pool)
        if patterns:
            for pattern, pool in patterns.items():
                for name in [*sorted(self._named), *upstream_models.get(pool, ())]:
                    entry = self._table.lookup(name)
                    if name not in out and entry is not None and entry[0] == pattern:
                        out[name] = pool
        return list(out.items())

    def describe_served(self) -> str:
        """A one-line list of what is served, for "unknown model" errors."""
        parts = [name for name, _pool, _is_pattern in self.served()]
        pools = ", ".join(f"{pool}/<model>" for pool in self._formats)
        if parts:
            return f"served models: {', '.join(parts)}; or name a pool explicitly: {pools}"
        return f"no models are configured; name a pool explicitly: {pools}"


def _target_models(values: Iterable[str | list[str]], pools: Iterable[str]) -> set[str]:
    """The model names ``models:`` values and rules' ``to`` name: ``pool/model`` gives ``model``, an alias its own
    name; a bare pool names none."""
    pool_names = frozenset(pools)
    out: set[str] = set()
    for value in values:
        for item in [value] if isinstance(value, str) else value:
            pool, slash, rest = item.partition("/")
            if slash and pool in pool_names:
                out.add(rest)
            elif item not in pool_names:
                out.add(item)
    return out


