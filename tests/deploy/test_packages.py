"""What the wheel ships, read from pyproject.toml: every package of the product and the fake upstream (the demo runs
it from an installed wheel), the demo config, and the ``poolgate`` command from the command-line package.
``make check-image`` builds and installs the real wheel."""

from __future__ import annotations

import tomllib
from importlib import import_module

from tests.support import ROOT

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
SETUPTOOLS = PYPROJECT["tool"]["setuptools"]


def test_every_package_folder_is_listed() -> None:
    folders = {"poolgate_plugins": "plugins"}
    on_disk = set()
    for top in ("poolgate", "poolgate_cli", "selector_service", "proxy_edge", "poolgate_plugins", "fake_upstream"):
        root = ROOT / folders.get(top, top)
        for init in root.rglob("__init__.py"):
            on_disk.add(".".join((top, *init.parent.relative_to(root).parts)))
    assert {"poolgate_cli", "fake_upstream"} <= on_disk
    assert on_disk == set(SETUPTOOLS["packages"])


def test_the_demo_config_ships_with_the_command_line() -> None:
    assert SETUPTOOLS["package-data"]["poolgate_cli"] == ["demo.yaml"]
    assert (ROOT / "poolgate_cli" / "demo.yaml").is_file()
    assert not (ROOT / "poolgate" / "demo.yaml").exists()


def test_the_poolgate_command_is_the_command_line_package() -> None:
    target = PYPROJECT["project"]["scripts"]["poolgate"]
    module, _, function = target.partition(":")
    assert module.startswith("poolgate_cli.")
    assert callable(getattr(import_module(module), function))
