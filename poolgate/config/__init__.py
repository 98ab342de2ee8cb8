"""The config file format shared by the selector and the edge."""

from poolgate.config.loader import ConfigError, format_path, load_config, parse_config
from poolgate.config.schema import (
    AccountConfig,
    CircuitSettings,
    ClientTLS,
    Config,
    CooldownSettings,
    EdgeSection,
    EdgeTimeouts,
    FailoverSettings,
    PoolConfig,
    PoolSettings,
    SelectorSection,
    redact,
)

__all__ = [
    "AccountConfig",
    "CircuitSettings",
    "ClientTLS",
    "Config",
    "ConfigError",
    "CooldownSettings",
    "EdgeSection",
    "EdgeTimeouts",
    "FailoverSettings",
    "PoolConfig",
    "PoolSettings",
    "SelectorSection",
    "format_path",
    "load_config",
    "parse_config",
    "redact",
]
