"""``poolgate clients list --config FILE`` as its own process, against a running selector whose usage log holds
selections made for clients: per client its requests and tokens today, spend and budget left, and never a key."""

from __future__ import annotations

from pathlib import Path

import grpc

from poolgate.config import load_config
from poolgate.v1 import selector_pb2 as pb
from poolgate.v1 import selector_pb2_grpc
from selector_service.app import start_selector
from tests.commands.conftest import poolgate
from tests.support import free_port

ALICE = "sk-client-alice-list-123456"
PLAIN = "sk-plain-edge-key-987654"
CONFIG = f"""
selector:
  listen: 127.0.0.1:PORT
edge:
  api_keys: [{PLAIN}]
  clients:
    - {{name: alice, key: {ALICE}, budget: {{daily: 5, monthly: 50}}, budget_timezone: Europe/Paris}}
    - {{name: bob@team, key_env: POOLGATE_TEST_UNSET_BOB_KEY, rpm_limit: 10}}
prices:
  m: {{input: 10000, output: 20000}}
pools:
  p:
    accounts:
      - {{name: a, key: sk-test-clients-list-0001}}
"""


async def test_clients_list_shows_each_clients_usage_and_budget_left(tmp_path: Path) -> None:
    port = free_port()
    path = tmp_path / "poolgate.yaml"
    path.write_text(CONFIG.replace("PORT", str(port)))
    handle = await start_selector(load_config(path), listen=f"127.0.0.1:{port}", database=str(tmp_path / "s.db"))
    try:
        async with grpc.aio.insecure_channel(handle.address) as channel:
            stub = selector_pb2_grpc.SelectorStub(channel)
            for client, tokens in (("alice", (10, 5)), ("alice", (20, 0)), ("bob@team", (1, 1))):
                lease = await stub.SelectAccount(pb.SelectAccountRequest(
                    pool="p", model="m", client=pb.ClientLimits(name=client)), timeout=5)
                await stub.ReportOutcome(pb.ReportOutcomeRequest(
                    lease_id=lease.lease_id, outcome=pb.OUTCOME_SUCCESS, http_status=200, input_tokens=tokens[0],
                    output_tokens=tokens[1]), timeout=5)
        ran = await poolgate("clients", "list", "--config", str(path))
    finally:
        await handle.stop(grace=0)
    assert ran.status == 0, ran.err
    lines = {line.split()[0]: line.split() for line in ran.out.splitlines()[1:]}
    # alice: 2 requests, 35 tokens, $0.20 + $0.20 today and this month; $4.60 of $5.00 left today.
    assert lines["alice"][:5] == ["alice", "2", "35", "$0.40", "$0.40"]
    assert "$4.60 of $5.00" in ran.out and "$49.60 of $50.00" in ran.out
    assert lines["bob@team"][:5] == ["bob@team", "1", "2", "$0.03", "$0.03"]
    assert lines["…7654"][:5] == ["…7654", "0", "0", "$0.00", "$0.00"]
    for key in (ALICE, PLAIN):
        assert key[-8:] not in ran.out + ran.err
