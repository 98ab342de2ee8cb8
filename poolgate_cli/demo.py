"""``poolgate demo``: ``poolgate up`` on the offline demo config shipped in this package (``demo.yaml``, a copy of
examples/demo.yaml), with its ports replaceable."""

from __future__ import annotations

import argparse
from pathlib import Path

DEMO_CONFIG = "demo.yaml"
"""The offline demo's config, shipped in the package (a copy of examples/demo.yaml)."""
DEMO_PORTS = {"edge_port": 8080, "selector_port": 50151, "upstream_port": 9090}
"""The demo config's ports, each replaceable with ``poolgate demo --edge-port`` and its siblings."""


def demo_config_text(edge_port: int, selector_port: int, upstream_port: int) -> str:
    """The packaged demo config with its ports replaced."""
    from importlib import resources

    text = resources.files("poolgate_cli").joinpath(DEMO_CONFIG).read_text(encoding="utf-8")
    ports = {"edge_port": edge_port, "selector_port": selector_port, "upstream_port": upstream_port}
    for option, default in DEMO_PORTS.items():
        text = text.replace(f"127.0.0.1:{default}", f"127.0.0.1:{ports[option]}")
    return text


def run_demo_command(args: argparse.Namespace) -> int:
    """``poolgate demo``: ``poolgate up`` on the packaged demo config, written to ``--dir`` or a temporary directory
    (the database goes next to it, so the demo runs from any directory and never writes into the package)."""
    import tempfile

    if args.dir:
        directory = Path(args.dir)
        directory.mkdir(parents=True, exist_ok=True)
        return _run_demo(args, directory)
    with tempfile.TemporaryDirectory(prefix="poolgate-demo-") as temporary:
        return _run_demo(args, Path(temporary))


def _run_demo(args: argparse.Namespace, directory: Path) -> int:
    from poolgate_cli.supervisor import run_up_command

    config = directory / DEMO_CONFIG
    config.write_text(demo_config_text(args.edge_port, args.selector_port, args.upstream_port), encoding="utf-8")
    print(f"poolgate demo: config and state in {directory.resolve()}; try it with\n"
          f"  curl -s http://127.0.0.1:{args.edge_port}/v1/chat/completions -H 'Authorization: Bearer poolgate-demo' "
          "-H 'Content-Type: application/json' "
          """-d '{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}'""", flush=True)
    return run_up_command(argparse.Namespace(**{**vars(args), "config": str(config)}))
