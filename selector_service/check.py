"""``poolgate check FILE``: validate a config as ``poolgate up`` does and print what it would serve."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping

from poolgate.config import Config, ConfigError, EdgeSection, PoolConfig, SelectorSection, load_config
from poolgate.config.loader import load_sections
from poolgate.config.routes import describe_value
from selector_service.api.security import ExposureError, check_exposure
from selector_service.credentials.manager import CredentialManager
from selector_service.overlay import ConfigSource
from selector_service.plugin.manager import (
    PluginError,
    StrategyRegistry,
    load_credential_sources,
    load_strategies,
)
from selector_service.storage import UnusableDatabase
from selector_service.storage.database import check_database, describe_database


def strategy_errors(config: Config, registry: StrategyRegistry) -> list[str]:
    """Problems with the strategies the config names (unknown names, bad options), as ``path: message``."""
    return _strategy_errors(config.pools, registry)


def _strategy_errors(pools: Mapping[str, PoolConfig], registry: StrategyRegistry) -> list[str]:
    try:
        registry.build(pools)
    except ConfigError as exc:
        return exc.errors
    return []


def validate_config(path: str) -> Config:
    """Everything ``poolgate up`` checks before it starts a process, for ``up`` and ``check`` alike: the schema,
    the strategies, the database, the selector's exposure, the edge's client keys and the credential sources.

    Every problem is collected in one pass: when the schema refuses part of the file, the later checks still run on
    the sections that are valid on their own. Returns the config with the credential sources' accounts (as the
    selector serves it); raises ConfigError listing every problem, or PluginError."""
    errors: list[str] = []
    config: Config | None = None
    selector: SelectorSection | None
    edge: EdgeSection | None
    try:
        config = load_config(path)
        selector, edge, pools = config.selector, config.edge, dict(config.pools)
    except ConfigError as exc:
        errors += exc.errors
        sections = load_sections(path)  # raises the same ConfigError for a file that cannot be read as settings
        selector, edge, pools = sections.selector, sections.edge, sections.pools
        if sections.routing:
            errors.append(sections.routing)
    errors += _strategy_errors(pools, load_strategies())
    if selector is not None:
        try:
            check_database(selector.database)
        except UnusableDatabase as exc:
            errors.append(f"selector.database: {exc}")
        try:
            check_exposure(selector.listen, selector, insecure=False)
        except ExposureError as exc:
            errors.append(f"selector.listen: {exc}")
    if edge is not None:
        problem = edge.client_key_problem()
        if problem:
            errors.append(problem)
    if config is not None:
        try:
            # Accounts from credential files (and other sources), as the selector would load them.
            config = CredentialManager(load_credential_sources().create_all()).expand(config)
        except ConfigError as exc:
            errors += exc.errors
    if errors or config is None:
        raise ConfigError(path, errors)
    return config


def load_checked(
    path: str, source: ConfigSource | None = None, database: str | None = None
) -> tuple[Config, StrategyRegistry]:
    """The config (with the run-time overlay when ``source`` is given) and the strategy registry, or ConfigError
    listing every problem. ``database`` is the command line's override of ``selector.database``."""
    config = source.load() if source is not None else load_config(path)
    registry = load_strategies()
    errors = strategy_errors(config, registry)
    try:
        check_database(database or config.selector.database)
    except UnusableDatabase as exc:
        errors.append(f"{'--database' if database else 'selector.database'}: {exc}")
    if errors:
        raise ConfigError(path, errors)
    return config, registry


def report_problems(exc: ConfigError | PluginError) -> int:
    """Print why a config cannot be used, every problem on its own line; returns the exit status (1)."""
    if isinstance(exc, PluginError):
        print(f"poolgate plugins: {exc}", file=sys.stderr)
        return 1
    print(f"{exc.source}: {len(exc.errors)} problem(s):", file=sys.stderr)
    for error in exc.errors:
        print(f"  {error}", file=sys.stderr)
    return 1


def describe(config: Config) -> str:
    lines = [f"selector: listens on {config.selector.listen}, database {describe_database(config.selector.database)}",
             f"edge: listens on {config.edge.listen}, client auth {'on' if config.edge.auth else 'OFF'}"]
    for name, pool in config.pools.items():
        lines.append(f"pool {name}: {pool.format} at {pool.base_url}, strategy {pool.strategy}, "
                     f"{len(pool.accounts)} account(s)")
        for account in pool.accounts:
            limits = ", ".join(f"{k} {v}" for k, v in (("rpm", account.rpm_limit), ("itpm", account.itpm_limit),
                               ("otpm", account.otpm_limit), ("max concurrency", account.max_concurrency)) if v)
            lines.append(f"  - {account.name} ({account.credential_redacted}) weight {account.weight}, "
                         f"priority {account.priority}" + (f", {limits}" if limits else ""))
    for pattern, target in config.models.items():
        lines.append(f"model {pattern} -> {describe_value(target)}")
    for i, rule in enumerate(config.routes):
        conditions = ", ".join(f"{k} {v}" for k, v in rule.match.model_dump(exclude_defaults=True).items())
        lines.append(f"route {rule.name or f'routes[{i}]'}: {conditions} -> {describe_value(rule.to)}")
    return "\n".join(lines)


def run_check_command(args: argparse.Namespace) -> int:
    try:
        config = validate_config(args.file)
    except (ConfigError, PluginError) as exc:
        return report_problems(exc)
    print(f"{args.file}: OK")
    print(describe(config))
    return 0
