"""The config as the selector runs it: the user's file plus the overlay of accounts added or removed at run time.

The overlay is a small YAML file next to the config (``poolgate.overlay.yaml``, mode 0600) that poolgate owns, so
the user's file (and its comments) is never rewritten. Accounts added with ``key_env`` are stored as ``${VAR}``, so
no secret is written for them; a key given directly is stored as the config file would store it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from poolgate.config import AccountConfig, Config, ConfigError, load_config
from poolgate.config.loader import expand_environment, load_yaml
from selector_service.private_files import replace_private_file

Overlay = dict[str, Any]
"""``{"added": {pool: [account, ...]}, "removed": {pool: [name, ...]}}``"""

HEADER = "# Accounts added or removed at run time (poolgate accounts add/remove). Managed by poolgate.\n"


class ConfigSource:
    """Loads the effective config and records run-time account changes in the overlay."""

    def __init__(self, path: str | os.PathLike[str], overlay: str | None = None) -> None:
        self.path = Path(path)
        self._overlay_override = overlay

    def overlay_path(self, config: Config) -> Path:
        return Path(self._overlay_override or config.selector.overlay)

    def load(self) -> Config:
        """The config file with the overlay applied; ConfigError lists every problem with either."""
        config = load_config(self.path)
        return self._apply(config, self._read_overlay(config))

    def _read_overlay(self, config: Config) -> Overlay:
        path = self.overlay_path(config)
        if not path.exists():
            return {"added": {}, "removed": {}}
        try:
            data = load_yaml(path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(str(path), [f"cannot read the overlay: {exc}; fix or delete the file"]) from None
        if not isinstance(data, dict):
            raise ConfigError(str(path), ["the overlay must be a mapping with added: and removed:"])
        return {"added": dict(data.get("added") or {}), "removed": dict(data.get("removed") or {})}

    def _apply(self, config: Config, overlay: Overlay) -> Config:
        errors = []
        pools = dict(config.pools)
        for pool_name, names in overlay["removed"].items():
            if pool_name in pools:
                pool = pools[pool_name]
                kept = [a for a in pool.accounts if a.name not in set(names)]
                pools[pool_name] = pool.model_copy(update={"accounts": kept})
        for pool_name, accounts in overlay["added"].items():
            if pool_name not in pools:
                errors.append(f"overlay added.{pool_name}: pool {pool_name!r} is no longer configured; "
                              "remove its entries from the overlay")
                continue
            pool = pools[pool_name]
            existing = {a.name for a in pool.accounts}
            added = []
            for i, raw in enumerate(accounts or []):
                missing: list[str] = []
                expanded = expand_environment(raw, os.environ, ("overlay", "added", pool_name, i), missing)
                if missing:
                    errors += missing
                    continue
                try:
                    account = AccountConfig.model_validate(expanded)
                except Exception as exc:
                    errors.append(f"overlay added.{pool_name}[{i}]: {exc}")
                    continue
                if account.name in existing:
                    errors.append(f"overlay added.{pool_name}[{i}]: account {account.name!r} also exists in the "
                                  "config file; remove one of them")
                    continue
                added.append(account)
            pools[pool_name] = pool.model_copy(update={"accounts": [*pool.accounts, *added]})
        for name, pool in pools.items():
            if not pool.accounts and not pool.credentials_dir and not pool.credential_sources:
                errors.append(f"pools.{name}: every account was removed; add one or remove the pool from the config")
        if errors:
            raise ConfigError(str(self.path), errors)
        return config.model_copy(update={"pools": pools})

    def add_account(self, config: Config, pool: str, account: dict[str, Any]) -> tuple[Config, Overlay]:
        """The config with ``account`` added to ``pool`` (validated), and the overlay to :meth:`save` once the
        selector runs it."""
        overlay = self._read_overlay(config)
        overlay["added"].setdefault(pool, [])
        overlay["added"][pool] = [*overlay["added"][pool], account]
        removed = overlay["removed"].get(pool) or []
        if account.get("name") in removed:
            overlay["removed"][pool] = [n for n in removed if n != account["name"]]
        return self._apply(load_config(self.path), overlay), overlay

    def remove_account(self, config: Config, pool: str, name: str) -> tuple[Config, Overlay]:
        overlay = self._read_overlay(config)
        added = overlay["added"].get(pool) or []
        if any(a.get("name") == name for a in added):
            overlay["added"][pool] = [a for a in added if a.get("name") != name]
        else:
            overlay["removed"][pool] = sorted({*(overlay["removed"].get(pool) or []), name})
        return self._apply(load_config(self.path), overlay), overlay

    def save(self, config: Config, overlay: Overlay) -> None:
        """Write the overlay atomically, readable by the owner only."""
        replace_private_file(self.overlay_path(config), HEADER + yaml.safe_dump(overlay, sort_keys=False))
