"""The committed stubs in poolgate/v1 must match protos/ (run `make proto` after changing the .proto)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GENERATED = ("selector_pb2.py", "selector_pb2.pyi", "selector_pb2_grpc.py")


def test_generated_stubs_are_current(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", "-I", str(ROOT / "protos"), f"--python_out={tmp_path}",
         f"--pyi_out={tmp_path}", f"--grpc_python_out={tmp_path}", "poolgate/v1/selector.proto"],
        capture_output=True, text=True, cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    for name in GENERATED:
        fresh = (tmp_path / "poolgate" / "v1" / name).read_text()
        committed = (ROOT / "poolgate" / "v1" / name).read_text()
        assert fresh == committed, f"poolgate/v1/{name} is stale: run `make proto` and commit the result"
