"""Selector security: bearer tokens (lease vs admin), TLS and mutual TLS, and refusing unsafe exposure."""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
import trustme
from grpc_health.v1 import health_pb2, health_pb2_grpc

from poolgate.config import parse_config
from poolgate.v1 import selector_pb2 as pb
from poolgate.v1 import selector_pb2_grpc
from selector_service.api.security import ExposureError, check_exposure, is_loopback
from selector_service.app import SelectorHandle, start_selector

LEASE_TOKEN = "lease-token-0123456789abcdef"
ADMIN_TOKEN = "admin-token-fedcba9876543210"
POOLS = "pools:\n  openai:\n    accounts: [{name: a, key: sk-test-aaaaaaaa1111}]\n"


def secured(tls: str = "") -> str:
    return (f"selector:\n  auth: {{tokens: [{LEASE_TOKEN}], admin_tokens: [{ADMIN_TOKEN}]}}\n{tls}" + POOLS)


def bearer(token: str) -> tuple[tuple[str, str]]:
    return (("authorization", f"Bearer {token}"),)


@pytest.fixture
async def selector(tmp_path: Path) -> AsyncIterator[SelectorHandle]:
    handle = await start_selector(parse_config(secured()), listen="127.0.0.1:0", database=str(tmp_path / "s.db"))
    yield handle
    await handle.stop(grace=0.5)


async def test_tokens_guard_every_call_but_health(selector: SelectorHandle) -> None:
    async with grpc.aio.insecure_channel(selector.address) as channel:
        stub, admin = selector_pb2_grpc.SelectorStub(channel), selector_pb2_grpc.AdminStub(channel)
        request = pb.SelectAccountRequest(pool="openai")
        with pytest.raises(grpc.aio.AioRpcError) as exc:
            await stub.SelectAccount(request, timeout=2)
        assert exc.value.code() == grpc.StatusCode.UNAUTHENTICATED and "Bearer" in (exc.value.details() or "")
        with pytest.raises(grpc.aio.AioRpcError) as exc:
            await stub.SelectAccount(request, timeout=2, metadata=bearer("lease-token-0123456789abcdeX"))
        assert exc.value.code() == grpc.StatusCode.UNAUTHENTICATED
        lease = await stub.SelectAccount(request, timeout=2, metadata=bearer(LEASE_TOKEN))
        assert lease.account_name == "a"
        with pytest.raises(grpc.aio.AioRpcError) as exc:
            await admin.ResetAccount(pb.AccountRef(pool="openai", account="a"), timeout=2, metadata=bearer(LEASE_TOKEN))
        assert exc.value.code() == grpc.StatusCode.PERMISSION_DENIED
        status = await admin.ResetAccount(pb.AccountRef(pool="openai", account="a"), timeout=2,
                                          metadata=bearer(ADMIN_TOKEN))
        assert status.name == "a"
        assert (await stub.ListAccounts(pb.ListAccountsRequest(), timeout=2, metadata=bearer(ADMIN_TOKEN))).pools
        stream = stub.Exchange()
        with pytest.raises(grpc.aio.AioRpcError) as exc:
            await stream.read()
        assert exc.value.code() == grpc.StatusCode.UNAUTHENTICATED
        answer = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=2)
        assert answer.status == health_pb2.HealthCheckResponse.SERVING


async def test_tls_and_mutual_tls(tmp_path: Path) -> None:
    ca = trustme.CA()
    server_cert = ca.issue_cert("127.0.0.1", "localhost")
    server_cert.private_key_pem.write_to_path(str(tmp_path / "server.key"))
    server_cert.cert_chain_pems[0].write_to_path(str(tmp_path / "server.pem"))
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    tls = (f"  tls: {{cert: {tmp_path / 'server.pem'}, key: {tmp_path / 'server.key'}, "
           f"client_ca: {tmp_path / 'ca.pem'}}}\n")
    handle = await start_selector(parse_config(secured(tls)), listen="127.0.0.1:0", database=str(tmp_path / "s.db"))
    try:
        client_cert = ca.issue_cert("edge.local")
        good = grpc.ssl_channel_credentials(
            root_certificates=ca.cert_pem.bytes(), private_key=client_cert.private_key_pem.bytes(),
            certificate_chain=client_cert.cert_chain_pems[0].bytes())
        token = grpc.access_token_call_credentials(LEASE_TOKEN)
        async with grpc.aio.secure_channel(handle.address, grpc.composite_channel_credentials(good, token)) as channel:
            lease = await selector_pb2_grpc.SelectorStub(channel).SelectAccount(
                pb.SelectAccountRequest(pool="openai"), timeout=5)
            assert lease.account_name == "a"
        no_client_cert = grpc.ssl_channel_credentials(root_certificates=ca.cert_pem.bytes())
        async with grpc.aio.secure_channel(handle.address, grpc.composite_channel_credentials(no_client_cert, token)
                                           ) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as exc:
                await selector_pb2_grpc.SelectorStub(channel).SelectAccount(pb.SelectAccountRequest(pool="openai"),
                                                                            timeout=5)
            assert exc.value.code() == grpc.StatusCode.UNAVAILABLE
        async with grpc.aio.insecure_channel(handle.address) as channel:  # plaintext to a TLS port
            with pytest.raises(grpc.aio.AioRpcError):
                await selector_pb2_grpc.SelectorStub(channel).SelectAccount(
                    pb.SelectAccountRequest(pool="openai"), timeout=2, metadata=bearer(LEASE_TOKEN))
    finally:
        await handle.stop(grace=0.5)


@pytest.mark.parametrize(("listen", "loopback"), [
    ("127.0.0.1:1", True), ("[::1]:1", True), ("localhost:1", True), ("unix:/tmp/x.sock", True),
    ("0.0.0.0:1", False), ("[::]:1", False), ("10.1.2.3:1", False), ("selector.internal:1", False),
])
def test_loopback_detection(listen: str, loopback: bool) -> None:
    assert is_loopback(listen) is loopback


def test_exposure_needs_tokens_and_tls(caplog: pytest.LogCaptureFixture) -> None:
    plain = parse_config(POOLS).selector
    with pytest.raises(ExposureError) as exc:
        check_exposure("0.0.0.0:50151", plain, insecure=False)
    assert "selector.auth.tokens" in str(exc.value) and "selector.tls.cert" in str(exc.value)
    with pytest.raises(ExposureError) as exc:
        check_exposure("0.0.0.0:50151", parse_config(secured()).selector, insecure=False)
    assert "selector.auth.tokens" not in str(exc.value) and "selector.tls.cert" in str(exc.value)
    with caplog.at_level(logging.WARNING):
        check_exposure("0.0.0.0:50151", plain, insecure=True)
    assert "INSECURE" in caplog.text
    check_exposure("127.0.0.1:50151", plain, insecure=False)


def test_selector_command_refuses_unsafe_exposure(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(POOLS)
    result = subprocess.run([sys.executable, "-m", "poolgate_cli", "selector", "--config", str(config),
                             "--listen", "0.0.0.0:0"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 1
    assert "refusing to listen on 0.0.0.0:0" in result.stderr and "--insecure-listen" in result.stderr


@pytest.mark.parametrize(("auth", "message"), [
    (f"{{tokens: [{LEASE_TOKEN}], admin_tokens: [{LEASE_TOKEN}]}}", "an admin token must differ"),
    ("{tokens: [short]}", "shorter than 16 characters"),
])
def test_token_config_is_checked(auth: str, message: str) -> None:
    with pytest.raises(Exception) as exc:
        parse_config(f"selector:\n  auth: {auth}\n" + POOLS)
    assert message in str(exc.value)
