"""The edge's selector client over several replicas (real selectors on 127.0.0.1), and its one internal model:
leases and outcomes as the edge's dataclasses, converted from and to protobuf in one place."""

from __future__ import annotations

import asyncio
import dataclasses
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from poolgate.v1 import selector_pb2 as pb
from poolgate.v1 import selector_pb2_grpc as pb_grpc
from proxy_edge import outcomes as oc
from proxy_edge.leases import Lease, Outcome, lease_from_pb
from proxy_edge.replicas import Replica, ReplicaSet
from proxy_edge.selector_client import SelectorClient, SelectorError
from proxy_edge.selector_links import open_link
from selector_service.app import SelectorHandle, start_selector
from tests.selector.conftest import pool_config
from tests.support import eventually, free_port

ACCOUNTS = "- {name: a, key: sk-test-replicas-0001}\n- {name: b, key: sk-test-replicas-0002}"


@pytest.fixture(params=["stream", "unary"])
def transport(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def replicas(tmp_path: Path) -> AsyncIterator[list[SelectorHandle]]:
    """Two selectors of one pool ``p``, each with its own SQLite file (leases are per replica either way)."""
    handles = [await start_selector(pool_config(ACCOUNTS), listen="127.0.0.1:0", database=str(tmp_path / f"{i}.db"))
               for i in range(2)]
    yield handles
    for handle in handles:
        await handle.stop(grace=0)


async def accounts_of(handle: SelectorHandle) -> list[pb.AccountStatus]:
    """The replica's own view of pool ``p``'s accounts (leases and their counts are per replica)."""
    async with grpc.aio.insecure_channel(handle.address) as channel:  # waits out a reconnect backoff, if any
        listing = await pb_grpc.SelectorStub(channel).ListAccounts(pb.ListAccountsRequest(pool="p"), timeout=5,
                                                                   wait_for_ready=True)
    return [a for pool in listing.pools for a in pool.accounts]


async def granted(handle: SelectorHandle) -> int:
    return sum(a.requests_total for a in await accounts_of(handle))


async def select_and_report(client: SelectorClient, session_key: str = "") -> Lease:
    lease = await client.select("p", "m", session_key, [])
    client.report_later(lease, Outcome(oc.SUCCESS, 200))
    return lease


async def test_selections_are_spread_and_each_report_reaches_the_replica_that_granted_it(
    replicas: list[SelectorHandle], transport: str,
) -> None:
    client = SelectorClient(",".join(h.address for h in replicas), 2.0, transport=transport)
    try:
        leases = [await select_and_report(client) for _ in range(20)]
        await client.flush_reports()
        assert Counter(lease.replica for lease in leases) == {0: 10, 1: 10}
        for handle in replicas:  # every lease reported where it was granted: nothing left in flight anywhere
            accounts = await accounts_of(handle)
            assert sum(a.requests_total for a in accounts) == 10
            assert sum(a.successes_total for a in accounts) == 10 and all(a.in_flight == 0 for a in accounts)
    finally:
        await client.close()


async def test_a_session_stays_on_one_replica(replicas: list[SelectorHandle], transport: str) -> None:
    client = SelectorClient(",".join(h.address for h in replicas), 2.0, transport=transport)
    try:
        for session in ("alpha", "beta", "gamma", "delta"):
            homes = {(await select_and_report(client, session)).replica for _ in range(4)}
            assert len(homes) == 1, session
    finally:
        await client.close()


async def test_a_replica_that_is_down_is_skipped_and_one_that_returns_serves_again(
    tmp_path: Path, replicas: list[SelectorHandle], transport: str,
) -> None:
    port = free_port()
    client = SelectorClient(f"127.0.0.1:{port},{replicas[0].address}", 2.0, transport=transport, unavailable=0.5)
    late: SelectorHandle | None = None
    try:
        # One of the two was never there: no selection fails (each is retried on the live one).
        leases = [await select_and_report(client) for _ in range(10)]
        assert {lease.account_id for lease in leases} == {"p/a", "p/b"}
        assert await granted(replicas[0]) == 10
        late = await start_selector(pool_config(ACCOUNTS), listen=f"127.0.0.1:{port}",
                                    database=str(tmp_path / "late.db"))
        loop = asyncio.get_running_loop()
        came = loop.time()
        while await granted(late) == 0:  # it comes into the rotation once its channel connects
            assert loop.time() - came < 3.0, "the replica that came up is never asked"
            await select_and_report(client)
        for _ in range(10):
            await select_and_report(client)
        assert await granted(late) >= 4
    finally:
        await client.close()
        if late is not None:
            await late.stop(grace=0)


async def test_every_replica_down_is_a_503_within_the_wait(transport: str) -> None:
    client = SelectorClient(f"127.0.0.1:{free_port()},127.0.0.1:{free_port()}", 2.0, transport=transport,
                            unavailable=0.4)
    try:
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(SelectorError) as failed:
            await client.select("p", "m", "", [])
        assert failed.value.status == 503 and failed.value.code == "selector_unavailable"
        assert failed.value.retry_after_ms == 1000
        assert 0.3 < loop.time() - started < 1.5
    finally:
        await client.close()


async def test_sessions_spread_over_replicas_and_only_a_down_replicas_sessions_move() -> None:
    channels = [grpc.aio.insecure_channel(f"127.0.0.1:{free_port()}") for _ in range(3)]
    replicas = ReplicaSet([Replica(i, f"127.0.0.1:{1000 + i}", channel, open_link("unary", channel, None, 1.0, ""))
                           for i, channel in enumerate(channels)])
    try:
        keys = [f"session-{n}" for n in range(300)]
        homes = {key: replicas.pick(key) for key in keys}
        assert all(homes[key] is replicas.pick(key) for key in keys)
        spread = Counter(replica.index for replica in homes.values() if replica is not None)
        assert len(spread) == 3 and min(spread.values()) >= 60, spread
        replicas.replicas[1].failed(replicas)
        moved = {key: replicas.pick(key) for key in keys}
        assert all(moved[key] is homes[key] for key in keys if homes[key] is not replicas.replicas[1])
        assert all(moved[key] is not replicas.replicas[1] for key in keys)
        turns = Counter(r.index for r in (replicas.pick() for _ in range(10)) if r is not None)
        assert turns == {0: 5, 2: 5}
    finally:
        await replicas.close()


def test_a_lease_carries_every_field_the_edge_reads_and_an_outcome_every_field_of_the_report() -> None:
    message = pb.Lease(lease_id="l1", account_id="p/a", account_name="a", pool="p", base_url="https://up.example/v1",
                       credential=pb.Header(name="authorization", value="Bearer sk-test-lease-0001"),
                       extra_headers=[pb.Header(name="anthropic-version", value="2023-06-01")], probe=True,
                       proxy="http://proxy.example:3128")
    lease = lease_from_pb(message, 1)
    assert lease == Lease("l1", "p/a", "a", "p", "https://up.example/v1",
                          ("authorization", "Bearer sk-test-lease-0001"), (("anthropic-version", "2023-06-01"),), True,
                          "http://proxy.example:3128")
    assert lease.replica == 1 and "sk-test" in lease.credential[1]
    # What the edge does not read: the expiry (the selector enforces it) and the format (the routing has it).
    unread = {"expires_at", "format"}
    assert {f.name for f in dataclasses.fields(Lease)} - {"replica"} == {
        f.name for f in pb.Lease.DESCRIPTOR.fields} - unread

    outcome = Outcome(oc.RATE_LIMITED, 429, 1500, 12, 7, 3, 4, {"retry-after": "2"}, "rate limited", False,
                      "rate_limit_error", "quota")
    report = outcome.to_pb("l1")
    assert report == pb.ReportOutcomeRequest(
        lease_id="l1", outcome=pb.OUTCOME_RATE_LIMITED, http_status=429, retry_after_ms=1500, latency_ms=12,
        time_to_first_token_ms=7, input_tokens=3, output_tokens=4, rate_limit_headers={"retry-after": "2"},
        detail="rate limited", error_type="rate_limit_error", error_code="quota")
    assert {f.name for f in dataclasses.fields(Outcome)} == {f.name for f in pb.ReportOutcomeRequest.DESCRIPTOR.fields
                                                              } - {"lease_id"}
    assert {kind.name: kind.value for kind in oc.Outcome} == {
        v.name.removeprefix("OUTCOME_"): v.number for v in pb.Outcome.DESCRIPTOR.values if v.number}


async def test_a_stream_that_breaks_on_a_live_replica_is_reopened_without_an_error(
    replicas: list[SelectorHandle],
) -> None:
    client = SelectorClient(replicas[0].address, 2.0, transport="stream")
    try:
        await select_and_report(client)
        link = client._replicas.replicas[0].link
        exchange = link.exchange  # type: ignore[attr-defined]
        assert exchange._call is not None
        exchange._call.cancel()  # as when the replica's stream ends (a GOAWAY, a restart behind a proxy)
        await eventually(lambda: exchange._stream is not None and exchange._stream.done(), 2.0, "the stream ended")
        assert (await select_and_report(client)).account_id in {"p/a", "p/b"}
    finally:
        await client.close()
