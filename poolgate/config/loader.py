"""Reading a config file: YAML, then ``${VAR}`` expansion, then validation into :class:`Config`.

Every problem is collected, not just the first, and each is reported as ``path: what is wrong and what to do``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, TypeAdapter, ValidationError

from poolgate.config.routes import RouteRule, check_routing
from poolgate.config.schema import (
    DEFAULT_DATABASE_FILE,
    DEFAULT_OVERLAY_FILE,
    Config,
    EdgeSection,
    PoolConfig,
    SelectorSection,
)

# libyaml's loader when PyYAML was built with it: same documents, about six times faster, and less garbage left
# behind in the process (a config with 1,000 accounts is read in 17 ms instead of 97).
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_SECRET_KEYS = frozenset({"key", "api_key", "api_keys", "headers"})
_Model = TypeVar("_Model", bound=BaseModel)
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class ConfigError(Exception):
    """The config cannot be used; ``errors`` lists every problem as ``path: message``."""

    def __init__(self, source: str, errors: list[str]) -> None:
        self.source = source
        self.errors = errors
        super().__init__(f"{source}: {len(errors)} problem(s)\n" + "\n".join(f"  {e}" for e in errors))


def load_config(path: str | os.PathLike[str], environ: Mapping[str, str] | None = None) -> Config:
    """Read and validate the config file at ``path``; raises :class:`ConfigError` listing every problem."""
    file = Path(path)
    config = parse_config(_read_file(file), source=str(file), environ=environ)
    _place_files(config.selector, file)
    return config


@dataclass
class Sections:
    """The parts of a config file that are valid on their own (None, or left out of ``pools``, when not)."""

    selector: SelectorSection | None
    edge: EdgeSection | None
    pools: dict[str, PoolConfig]
    routing: str | None
    """The problem with ``models:`` and ``routes:`` against the pools the file names, when both are valid alone."""


def load_sections(path: str | os.PathLike[str], environ: Mapping[str, str] | None = None) -> Sections:
    """The sections of a file that :func:`load_config` refuses, each validated alone (each pool with the file's
    ``defaults:``), so that checks of later stages (strategies, database, edge keys) can still run on the valid
    ones and every problem is reported in one pass. Problems are not reported here: :func:`load_config` does."""
    file = Path(path)
    raw = _read_mapping(_read_file(file), str(file))
    expanded = expand_environment(raw, environ if environ is not None else os.environ, (), [])
    ignored: list[str] = []
    selector = _validate_section(SelectorSection, "selector", expanded.get("selector") or {}, ignored)
    if selector is not None:
        _place_files(selector, file)
    edge = _validate_section(EdgeSection, "edge", expanded.get("edge") or {}, ignored)
    pools: dict[str, PoolConfig] = {}
    given = expanded.get("pools")
    for name, pool in (given.items() if isinstance(given, dict) else ()):
        alone = _validate_section(Config, "pools", {"defaults": expanded.get("defaults") or {}, "pools": {name: pool}},
                                  ignored)
        if alone is not None:
            pools[name] = alone.pools[name]
    routing = None
    try:
        models = TypeAdapter(dict[str, str | list[str]]).validate_python(expanded.get("models") or {})
        routes = TypeAdapter(list[RouteRule]).validate_python(expanded.get("routes") or [])
    except ValidationError:
        pass  # reported by load_config
    else:
        names = list(given) if isinstance(given, dict) else []
        routing = check_routing(names, models, routes, edge.client_keys() if edge is not None else None)
    return Sections(selector, edge, pools, routing)


def _read_file(file: Path) -> str:
    try:
        return file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(str(file), [f"cannot read the file: {exc.strerror or exc}"]) from None


def _place_files(selector: SelectorSection, file: Path) -> None:
    """The database and overlay files default to, and relative paths mean, next to the config file, wherever the
    command is run from."""
    if not selector.database:
        selector.database = str(file.resolve().parent / DEFAULT_DATABASE_FILE)
    elif "://" not in selector.database and not Path(selector.database).expanduser().is_absolute():
        selector.database = str(file.resolve().parent / selector.database)
    if not selector.overlay:
        selector.overlay = str(file.resolve().parent / DEFAULT_OVERLAY_FILE)


ACCESS_SETTINGS: dict[str, tuple[str, ...] | None] = {"selector": ("listen", "auth"), "edge": ("selector_tls",)}
"""The settings a client of a running selector needs (its address, TLS and tokens), by section."""
EDGE_SETTINGS: dict[str, tuple[str, ...] | None] = {"selector": ("listen", "auth"), "edge": None}
"""What the edge reads: its own section, and the selector's address and tokens (the pools come from the selector)."""


@dataclass
class EdgeSettings:
    """The part of a config file the edge runs on."""

    edge: EdgeSection
    selector: SelectorSection


def load_selector_access(
    path: str | os.PathLike[str], environ: Mapping[str, str] | None = None
) -> tuple[SelectorSection, EdgeSection]:
    """Only what a client of a running selector needs from the config file (``ACCESS_SETTINGS``: the selector's
    listen address and tokens, the TLS settings for reaching it); everything else defaults.

    For the admin commands (``poolgate accounts``, ``reload``): only these settings have their ``${VAR}`` expanded,
    so the pools' keys may name variables that only the selector's environment has. Raises :class:`ConfigError`
    listing every problem in these settings."""
    selector, edge = _load_settings(path, environ, ACCESS_SETTINGS)
    return selector, edge


def load_edge_settings(path: str | os.PathLike[str], environ: Mapping[str, str] | None = None) -> EdgeSettings:
    """The ``edge:`` section and the selector's address and tokens (``EDGE_SETTINGS``); the rest of the file (pools,
    models, routes) is the selector's and is not read, so its ``${VAR}`` need not be set where the edge runs.
    Raises :class:`ConfigError` listing every problem in these settings."""
    selector, edge = _load_settings(path, environ, EDGE_SETTINGS)
    return EdgeSettings(edge, selector)


def _load_settings(path: str | os.PathLike[str], environ: Mapping[str, str] | None,
                   wanted: Mapping[str, tuple[str, ...] | None]) -> tuple[SelectorSection, EdgeSection]:
    file = Path(path)
    raw = _read_mapping(_read_file(file), str(file))
    missing: list[str] = []
    chosen: dict[str, dict[str, Any]] = {}
    for section, names in wanted.items():
        given = raw.get(section) or {}
        if not isinstance(given, dict):
            raise ConfigError(str(file), [f"{section}: must be a mapping of settings, got {type(given).__name__}"])
        picked = dict(given) if names is None else {name: given[name] for name in names if name in given}
        chosen[section] = expand_environment(picked, environ if environ is not None else os.environ, (section,),
                                             missing)
    errors: list[str] = []
    selector = _validate_section(SelectorSection, "selector", chosen["selector"], errors)
    edge = _validate_section(EdgeSection, "edge", chosen["edge"], errors)
    if missing or errors or selector is None or edge is None:
        raise ConfigError(str(file), missing + errors)
    return selector, edge


def _validate_section(model: type[_Model], name: str, value: dict[str, Any], errors: list[str]) -> _Model | None:
    """``value`` as the section ``name``; None, with its problems added to ``errors``, when it is not valid."""
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        errors += [_describe({**error, "loc": (name, *error["loc"])}) for error in exc.errors()]
        return None


def _read_mapping(text: str, source: str) -> dict[str, Any]:
    """The file's top-level mapping; ConfigError when it is not valid YAML, empty or not a mapping."""
    try:
        raw = load_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(source, [f"{where}not valid YAML: {problem}"]) from None
    if raw is None:
        raise ConfigError(source, ["the file is empty: add at least a pools: section"])
    if not isinstance(raw, dict):
        raise ConfigError(source, [f"the top level must be a mapping of sections, got {type(raw).__name__}"])
    return raw


def load_yaml(text: str) -> Any:
    """``yaml.safe_load``, with libyaml when available."""
    return yaml.load(text, Loader=_YAML_LOADER)


def parse_config(text: str, source: str = "<config>", environ: Mapping[str, str] | None = None) -> Config:
    """Validate config text; relative database paths are left as written."""
    raw = _read_mapping(text, source)
    missing: list[str] = []
    expanded = expand_environment(raw, environ if environ is not None else os.environ, (), missing)
    try:
        config = Config.model_validate(expanded)
    except ValidationError as exc:
        raise ConfigError(source, missing + [_describe(error) for error in exc.errors()]) from None
    if missing:
        raise ConfigError(source, missing)
    return config


def expand_environment(value: Any, environ: Mapping[str, str], path: tuple[Any, ...], missing: list[str]) -> Any:
    """``${VAR}`` / ``${VAR:-default}`` in every string of ``value``; an unset variable is left as written and
    reported in ``missing`` as ``path: ...``."""
    if isinstance(value, str):
        def substitute(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if name in environ:
                return environ[name]
            if default is not None:
                return default
            missing.append(
                f"{format_path(path)}: environment variable {name} is not set "
                f"(export it, or write ${{{name}:-default}} to give a default)"
            )
            return match.group(0)  # left as written: reported once above, not again as an empty value

        return _VAR.sub(substitute, value)
    if isinstance(value, dict):
        return {k: expand_environment(v, environ, (*path, k), missing) for k, v in value.items()}
    if isinstance(value, list):
        return [expand_environment(v, environ, (*path, i), missing) for i, v in enumerate(value)]
    return value


def format_path(path: tuple[Any, ...]) -> str:
    """``('pools', 'openai', 'accounts', 1, 'priority')`` -> ``pools.openai.accounts[1].priority``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def _describe(error: Mapping[str, Any]) -> str:
    # Pydantic adds union-branch and validator names to locations ("function-after[...]", "int"); drop them.
    loc = tuple(p for p in error["loc"] if isinstance(p, int) or not (("[" in str(p)) or str(p) in ("int", "str")))
    kind, message, given = error["type"], error["msg"], error.get("input")
    if any(str(p) in _SECRET_KEYS for p in loc):
        given = "<redacted>"  # never echo something that may be a credential
    if kind == "value_error":
        message = message.removeprefix("Value error, ")
    elif kind == "missing":
        message = "required: add it"
    elif kind == "extra_forbidden":
        message = "unknown setting: remove it or check its spelling (see the README's config reference)"
    elif kind == "literal_error":
        message = f"{message.replace('Input should be', 'must be')}, got {given!r}"
    elif kind in ("greater_than_equal", "less_than_equal", "greater_than", "less_than", "int_parsing", "int_type",
                  "float_parsing", "bool_parsing", "string_too_short", "string_pattern_mismatch", "dict_type",
                  "list_type", "string_type", "model_type", "int_from_float"):
        message = f"{message.replace('Input should be', 'must be')}, got {given!r}"
        if kind == "string_pattern_mismatch":
            message = f"may contain only letters, digits and . _ @ : + -, got {given!r}"
    return f"{format_path(loc)}: {message}"
