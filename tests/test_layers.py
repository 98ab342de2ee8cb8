"""The layers, bottom up: the shared foundation (``poolgate``), the two processes and the strategies, the command line
above them (``poolgate_cli``); apart, the fake upstream (``fake_upstream``), which no product module imports.

Read from the source (every import statement, also inside functions, and ``importlib.import_module`` of a literal
name) and checked by importing every product module in a fresh interpreter."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from tests.support import ROOT

PRODUCT = {"poolgate": "poolgate", "selector_service": "selector_service", "proxy_edge": "proxy_edge",
           "poolgate_plugins": "plugins", "poolgate_cli": "poolgate_cli"}
"""Import name -> folder of every product package."""
FAKE = "fake_upstream"
NOT_BELOW = {
    "poolgate": {"selector_service", "proxy_edge", "poolgate_plugins", "poolgate_cli", FAKE},
    "selector_service": {"proxy_edge", "poolgate_cli", FAKE},
    "proxy_edge": {"selector_service", "poolgate_plugins", "poolgate_cli", FAKE},
    "poolgate_plugins": {"proxy_edge", "poolgate_cli", FAKE},
    "poolgate_cli": {FAKE},
}
"""What each product package may not import: nothing above it, not the other process (the two share only the
contract and the foundation), and never the fake upstream."""


def imported(path: Path) -> set[str]:
    """The top-level packages a module imports, wherever in it."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
        elif (isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) in
              ("import_module", "__import__") and node.args and isinstance(node.args[0], ast.Constant)):
            names.add(str(node.args[0].value))
    return {name.partition(".")[0] for name in names}


def product_modules() -> dict[str, Path]:
    """Import name -> file of every product module (``__main__`` modules left out: importing one runs it)."""
    modules = {}
    for package, folder in PRODUCT.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = path.relative_to(ROOT / folder).with_suffix("").parts
            if parts[-1] == "__main__":
                continue
            modules[".".join((package, *parts[:-1]) if parts[-1] == "__init__" else (package, *parts))] = path
    return modules


def test_the_scan_finds_every_kind_of_import(tmp_path: Path) -> None:
    module = tmp_path / "module.py"
    module.write_text("import a.b\nfrom c import d\nfrom . import e\n\ndef f():\n    import g\n"
                      "    importlib.import_module('h.i')\n    __import__('j')\n")
    assert imported(module) == {"a", "c", "g", "h", "j"}


def test_no_product_module_imports_a_layer_above_it_or_the_fake_upstream() -> None:
    modules = product_modules()
    assert len(modules) > 50 and "poolgate_cli.main" in modules and "proxy_edge.app" in modules
    wrong = {name: sorted(imported(path) & NOT_BELOW[name.partition(".")[0]]) for name, path in modules.items()}
    assert not {name: names for name, names in wrong.items() if names}


def test_importing_every_product_module_loads_no_fake_upstream() -> None:
    names = sorted(product_modules())
    code = ("import importlib, sys\n"
            f"for name in {names!r}:\n    importlib.import_module(name)\n"
            f"print(sorted(m for m in sys.modules if m.partition('.')[0] == {FAKE!r}))")
    ran = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip() == "[]"
