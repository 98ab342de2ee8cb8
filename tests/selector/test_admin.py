"""Operator actions and reload over the Admin gRPC service; usage and metrics of a real selector."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import grpc
import pytest

from poolgate.config import load_config
from poolgate.exchange_client import ExchangeClient
from poolgate.v1 import selector_pb2 as pb
from poolgate.v1 import selector_pb2_grpc
from selector_service.app import SelectorHandle, start_selector
from selector_service.overlay import ConfigSource
from tests.support import eventually

CONFIG = """
pools:
  openai:
    strategy: fill_first
    cooldown_scope: account
    accounts:
      - {name: personal, key: sk-test-personal-9f3a}
      - {name: work, key: sk-test-work-77c1}
prices:
  "gpt-4o*": {input: 2.5, output: 10}
"""


class Client:
    def __init__(self, channel: grpc.aio.Channel) -> None:
        self.selector = selector_pb2_grpc.SelectorStub(channel)
        self.admin = selector_pb2_grpc.AdminStub(channel)

    async def serve(self, outcome: int = pb.OUTCOME_SUCCESS, model: str = "gpt-4o", **fields: object) -> pb.Lease:
        lease = await self.selector.SelectAccount(pb.SelectAccountRequest(pool="openai", model=model), timeout=2)
        await self.selector.ReportOutcome(pb.ReportOutcomeRequest(lease_id=lease.lease_id, outcome=outcome, **fields),
                                          timeout=2)
        return lease

    async def states(self) -> dict[str, pb.AccountStatus]:
        listing = await self.selector.ListAccounts(pb.ListAccountsRequest(pool="openai"), timeout=2)
        return {a.name: a for a in listing.pools[0].accounts}


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    path = tmp_path / "poolgate.yaml"
    path.write_text(CONFIG)
    return path


async def start(config_path: Path) -> SelectorHandle:
    source = ConfigSource(config_path)
    return await start_selector(source.load(), listen="127.0.0.1:0", source=source, metrics_listen="127.0.0.1:0")


@pytest.fixture
async def selector(config_path: Path) -> AsyncIterator[SelectorHandle]:
    handle = await start(config_path)
    yield handle
    await handle.stop(grace=0.5)


@pytest.fixture
async def client(selector: SelectorHandle) -> AsyncIterator[Client]:
    async with grpc.aio.insecure_channel(selector.address) as channel:
        yield Client(channel)


async def test_disable_enable_reset_are_persisted(config_path: Path, client: Client, selector: SelectorHandle) -> None:
    status = await client.admin.DisableAccount(pb.DisableAccountRequest(pool="openai", account="personal",
                                                                        reason="billing issue"), timeout=2)
    assert status.state == pb.ACCOUNT_STATE_DISABLED and status.reason == "billing issue"
    assert (await client.serve()).account_name == "work"
    await client.serve(pb.OUTCOME_RATE_LIMITED, http_status=429, retry_after_ms=600_000)
    assert (await client.states())["work"].state == pb.ACCOUNT_STATE_COOLING
    status = await client.admin.ResetAccount(pb.AccountRef(pool="openai", account="work"), timeout=2)
    # The operator's word is not the upstream's: the account takes a probe before it is trusted again.
    assert status.state == pb.ACCOUNT_STATE_PROBING and status.probe_reason == pb.PROBE_REASON_OPERATOR
    await selector.stop(grace=0.5)
    restarted = await start(config_path)
    try:
        async with grpc.aio.insecure_channel(restarted.address) as channel:
            again = Client(channel)
            states = await again.states()
            assert states["personal"].state == pb.ACCOUNT_STATE_DISABLED  # survived the restart
            # The reset survived too: not cooling, only new to this process.
            assert states["work"].state == pb.ACCOUNT_STATE_PROBING
            assert states["work"].probe_reason == pb.PROBE_REASON_NEW
            status = await again.admin.EnableAccount(pb.AccountRef(pool="openai", account="personal"), timeout=2)
            assert status.state == pb.ACCOUNT_STATE_PROBING and status.probe_reason == pb.PROBE_REASON_OPERATOR
            assert (await again.serve()).account_name == "personal"
    finally:
        await restarted.stop(grace=0.5)


async def test_unknown_account_is_not_found(client: Client) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await client.admin.ResetAccount(pb.AccountRef(pool="openai", account="nobody"), timeout=2)
    assert exc.value.code() == grpc.StatusCode.NOT_FOUND
    assert "its accounts: personal, work" in (exc.value.details() or "")


async def test_add_and_remove_survive_a_restart(config_path: Path, client: Client, selector: SelectorHandle,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POOLGATE_TEST_EXTRA_KEY", "sk-test-extra-key-4242")
    status = await client.admin.AddAccount(pb.AddAccountRequest(
        pool="openai", name="extra", key_env="POOLGATE_TEST_EXTRA_KEY", priority=2), timeout=2)
    assert status.credential_redacted == "…4242" and status.priority == 2
    lease = await client.serve()
    assert lease.account_name == "extra" and lease.credential.value == "Bearer sk-test-extra-key-4242"
    removed = await client.admin.RemoveAccount(pb.AccountRef(pool="openai", account="personal"), timeout=2)
    assert removed.account_id == "openai/personal"
    overlay = config_path.parent / "poolgate.overlay.yaml"
    assert os.stat(overlay).st_mode & 0o777 == 0o600
    assert "sk-test-extra-key-4242" not in overlay.read_text()  # stored as ${VAR}
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await client.admin.AddAccount(pb.AddAccountRequest(pool="openai", name="work", key="sk-test-dup-0000"),
                                      timeout=2)
    assert exc.value.code() == grpc.StatusCode.ALREADY_EXISTS
    await selector.stop(grace=0.5)
    restarted = await start(config_path)
    try:
        async with grpc.aio.insecure_channel(restarted.address) as channel:
            assert sorted(await Client(channel).states()) == ["extra", "work"]
    finally:
        await restarted.stop(grace=0.5)


async def test_reload_applies_a_good_config_and_rejects_a_bad_one(config_path: Path, client: Client) -> None:
    await client.serve(pb.OUTCOME_RATE_LIMITED, retry_after_ms=600_000)
    config_path.write_text(CONFIG.replace(
        "      - {name: work, key: sk-test-work-77c1}\n",
        "      - {name: work, key: sk-test-work-77c1}\n      - {name: third, key: sk-test-third-0003}\n"))
    answer = await client.admin.Reload(pb.ReloadRequest(), timeout=2)
    assert list(answer.accounts_added) == ["openai/third"]
    states = await client.states()
    assert states["personal"].state == pb.ACCOUNT_STATE_COOLING  # unchanged accounts keep their state
    config_path.write_text(CONFIG.replace("strategy: fill_first", "strategy: fastest"))
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await client.admin.Reload(pb.ReloadRequest(), timeout=2)
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "unknown strategy 'fastest'" in (exc.value.details() or "")
    assert sorted(await client.states()) == ["personal", "third", "work"]  # the running config stayed


async def test_usage_rolls_up_per_account(client: Client) -> None:
    for latency in (100, 200, 300):
        await client.serve(pb.OUTCOME_SUCCESS, http_status=200, latency_ms=latency, time_to_first_token_ms=50,
                           input_tokens=1_000_000, output_tokens=100_000)
    await client.serve(pb.OUTCOME_SERVER_ERROR, http_status=500)
    await client.serve(pb.OUTCOME_CLIENT_ERROR, http_status=400)
    answer = await client.selector.GetUsage(pb.GetUsageRequest(pool="openai", bucket=pb.USAGE_BUCKET_DAY), timeout=5)
    assert len(answer.rows) == 1
    row = answer.rows[0]
    assert (row.account_name, row.requests, row.successes, row.errors) == ("personal", 5, 3, 1)
    assert (row.input_tokens, row.output_tokens) == (3_000_000, 300_000)
    assert row.cost == pytest.approx(3 * (2.5 + 1.0))
    assert row.latency_p50_ms == 200 and row.ttft_p50_ms == 50
    only_work = await client.selector.GetUsage(pb.GetUsageRequest(pool="openai", account="work"), timeout=5)
    assert list(only_work.rows) == []
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await client.selector.GetUsage(pb.GetUsageRequest(pool="nope"), timeout=5)
    assert exc.value.code() == grpc.StatusCode.NOT_FOUND


async def test_metrics_name_accounts_never_credentials(client: Client, selector: SelectorHandle) -> None:
    await client.serve(pb.OUTCOME_RATE_LIMITED, http_status=429, retry_after_ms=30_000)
    await client.serve(pb.OUTCOME_SUCCESS, input_tokens=7, output_tokens=3)
    async with aiohttp.ClientSession() as session:
        async with session.get(f"http://127.0.0.1:{selector.metrics_port}/metrics") as response:
            assert response.status == 200
            text = await response.text()
    assert 'poolgate_selector_account_state{account="personal",pool="openai",state="cooling"} 1.0' in text
    assert 'poolgate_selector_leases_total{account="work",pool="openai"} 1.0' in text
    assert 'poolgate_selector_tokens_total{account="work",direction="input",pool="openai"} 7.0' in text
    assert 'poolgate_selector_state_transitions_total{from_state="probing",pool="openai",to_state="cooling"} 1.0' \
        in text
    assert 'poolgate_selector_state_transitions_total{from_state="probing",pool="openai",to_state="healthy"} 1.0' \
        in text
    assert "poolgate_selector_selection_seconds_count" in text
    assert "sk-test-personal-9f3a" not in text and "sk-test-work-77c1" not in text


async def test_selections_on_the_stream_are_timed_like_unary_ones(tmp_path: Path) -> None:
    """The Exchange stream is the edge's default transport: its selections feed the same histograms."""
    path = tmp_path / "poolgate.yaml"
    path.write_text(CONFIG.replace("key: sk-test-personal-9f3a}", "key: sk-test-personal-9f3a, max_concurrency: 1}")
                    .replace("key: sk-test-work-77c1}", "key: sk-test-work-77c1, max_concurrency: 1}"))
    selector = await start(path)
    try:
        await select_on_the_stream(selector)
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{selector.metrics_port}/metrics") as response:
                text = await response.text()
    finally:
        await selector.stop(grace=0.5)
    assert 'poolgate_selector_selection_seconds_count{pool="openai"} 3.0' in text
    assert 'poolgate_selector_queue_wait_seconds_count{pool="openai"} 1.0' in text


async def select_on_the_stream(selector: SelectorHandle) -> None:
    """Three selections on one stream with two single-slot accounts: the third waits for the first's report."""
    async with grpc.aio.insecure_channel(selector.address) as channel:
        stream = ExchangeClient(channel)
        held = [await stream.select(pb.SelectAccountRequest(pool="openai"), timeout=2) for _ in range(2)]
        waiting = asyncio.create_task(stream.select(pb.SelectAccountRequest(pool="openai"), timeout=5))
        await eventually(lambda: len(selector.core.pools["openai"].waiters) == 1, what="the third selection queued")
        stream.report(pb.ReportOutcomeRequest(lease_id=held[0].lease_id, outcome=pb.OUTCOME_SUCCESS))
        third = await waiting
        for lease in (held[1], third):
            stream.report(pb.ReportOutcomeRequest(lease_id=lease.lease_id, outcome=pb.OUTCOME_SUCCESS))
        await stream.sync(5)
        await stream.close()


def test_overlay_problems_are_reported(tmp_path: Path) -> None:
    path = tmp_path / "poolgate.yaml"
    path.write_text(CONFIG)
    (tmp_path / "poolgate.overlay.yaml").write_text("added:\n  gone:\n    - {name: x, key: sk-test-x-00000001}\n")
    with pytest.raises(Exception) as exc:
        ConfigSource(path).load()
    assert "pool 'gone' is no longer configured" in str(exc.value)
    assert load_config(path).pools["openai"].accounts[0].name == "personal"


def test_registering_the_state_collector_builds_no_samples() -> None:
    """The registry learns the metric names from describe(): no per-account sample is built before a scrape."""
    from selector_service.api.metrics import SelectorMetrics

    class CountingCore:
        def __init__(self) -> None:
            self.snapshot_calls = 0
            self.transitions: dict[tuple[str, str, str], int] = {}
            self.usage = None  # the usage log off

        def snapshots(self) -> list[object]:
            self.snapshot_calls += 1
            return []

    core = CountingCore()
    metrics = SelectorMetrics(core)  # type: ignore[arg-type]
    assert core.snapshot_calls == 0
    from prometheus_client import generate_latest

    assert b"poolgate_selector_in_flight" in generate_latest(metrics.registry)
    assert core.snapshot_calls == 1


def test_a_selector_loads_neither_prometheus_without_metrics_nor_the_orm(tmp_path: Path) -> None:
    """prometheus_client is loaded only when selector metrics are served (metrics_listen); SQLAlchemy's ORM and its
    asyncio extension (which imports the ORM) never: the state is written through Core."""
    path = tmp_path / "poolgate.yaml"
    path.write_text(CONFIG)
    program = f"""
import asyncio, sys
from poolgate.config import load_config
from selector_service.app import start_selector

async def main():
    handle = await start_selector(load_config({str(path)!r}), listen="127.0.0.1:0",
                                  database={str(tmp_path / 'state.db')!r})
    await handle.core.disable("openai", "personal", "a state write")
    loaded = [name for name in ("prometheus_client", "sqlalchemy.orm", "sqlalchemy.ext.asyncio")
              if name in sys.modules]
    await handle.stop(0)
    print(" ".join(loaded) or "none")

asyncio.run(main())
"""
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=60,
                            cwd=Path(__file__).resolve().parents[2])
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "none"


async def test_metrics_show_each_models_rest_labelled_by_configured_names(tmp_path: Path) -> None:
    path = tmp_path / "poolgate.yaml"
    path.write_text(CONFIG.replace("    cooldown_scope: account\n", "    model_groups: ['claude-opus-*']\n")
                    + "models:\n  gpt-4o: openai\n")
    selector = await start(path)
    try:
        async with grpc.aio.insecure_channel(selector.address) as channel:
            client = Client(channel)
            for model in ("gpt-4o", "some-model-a-client-made-up", "claude-opus-4-6"):
                await client.serve(pb.OUTCOME_SUCCESS, model=model)  # the account is known to be fine
                await client.serve(pb.OUTCOME_RATE_LIMITED, model=model, http_status=429, retry_after_ms=30_000)
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{selector.metrics_port}/metrics") as response:
                text = await response.text()
    finally:
        await selector.stop(grace=0.5)
    rests = {line.split("{")[1].split("}")[0]: float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
             if line.startswith("poolgate_selector_model_cooldown_seconds{")}
    assert set(rests) == {'account="personal",model="gpt-4o",pool="openai"',
                          'account="personal",model="other",pool="openai"',
                          'account="personal",model="claude-opus-*",pool="openai"'}
    assert all(25 < seconds <= 30 for seconds in rests.values())
    assert "some-model-a-client-made-up" not in text


async def test_an_account_reference_without_a_pool_or_an_account_is_an_invalid_argument(client: Client) -> None:
    before = {name: status.state for name, status in (await client.states()).items()}
    calls = [(client.admin.EnableAccount, pb.AccountRef(account="work")),
             (client.admin.ResetAccount, pb.AccountRef(pool="openai")),
             (client.admin.DisableAccount, pb.DisableAccountRequest(account="work", reason="x")),
             (client.admin.RemoveAccount, pb.AccountRef(pool="openai"))]
    for method, request in calls:
        with pytest.raises(grpc.aio.AioRpcError) as exc:
            await method(request, timeout=2)
        assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        missing = "pool" if not request.pool else "account"
        assert exc.value.details() == f"{missing}: required, the {missing}'s name"
    assert {name: status.state for name, status in (await client.states()).items()} == before
