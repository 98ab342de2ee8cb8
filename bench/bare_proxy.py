"""The baseline for the fast-path comparison: a bare aiohttp pass-through proxy with one pooled client session and
no account selection at all. What poolgate adds is measured against this.

    python bench/bare_proxy.py --listen 127.0.0.1:8090 --upstream http://127.0.0.1:9090 --key sk-...

With ``--selector host:port`` it also takes one selection per request over an Exchange stream before forwarding, and
reports the outcome after (batched, as the edge reports): the floor that ``transport_floor.py`` measures.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import aiohttp
import grpc
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from poolgate import runtime
from poolgate.exchange_client import ExchangeClient
from poolgate.v1 import selector_pb2 as pb

HOP_BY_HOP = {"host", "content-length", "connection", "transfer-encoding", "authorization", "keep-alive"}


def make_app(upstream: str, key: str, selector: str | None = None) -> web.Application:
    session_key = web.AppKey("session", aiohttp.ClientSession)
    client_key = web.AppKey("client", ExchangeClient)
    selection = pb.SelectAccountRequest(pool="openai", model="gpt-4o-mini")

    async def session_ctx(app: web.Application):  # type: ignore[no-untyped-def]
        app[session_key] = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        yield
        await app[session_key].close()

    async def selector_ctx(app: web.Application):  # type: ignore[no-untyped-def]
        assert selector is not None
        channel = grpc.aio.insecure_channel(selector)
        app[client_key] = ExchangeClient(channel)
        yield
        await app[client_key].close()
        await channel.close()

    async def forward(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        client = request.app.get(client_key)
        lease = None if client is None else await client.select(selection, 5.0)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        headers["Authorization"] = f"Bearer {key}"
        session = request.app[session_key]
        async with session.post(f"{upstream}{request.path}", data=body, headers=headers) as upstream_response:
            response = web.StreamResponse(status=upstream_response.status, headers={
                "Content-Type": upstream_response.headers.get("Content-Type", "application/json")})
            await response.prepare(request)
            async for chunk in upstream_response.content.iter_any():
                await response.write(chunk)
            await response.write_eof()
        if client is not None and lease is not None:
            client.report(pb.ReportOutcomeRequest(lease_id=lease.lease_id, outcome=pb.OUTCOME_SUCCESS,
                                                  http_status=upstream_response.status))
        return response

    app = web.Application()
    app.cleanup_ctx.append(session_ctx)
    if selector is not None:
        app.cleanup_ctx.append(selector_ctx)
    app.router.add_post("/{path:.*}", forward)
    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--listen", default="127.0.0.1:8090")
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--selector", help="host:port of an Exchange service to take a selection from per request")
    args = parser.parse_args()
    host, _, port = args.listen.rpartition(":")
    # The same event loop poolgate runs on (uvloop when installed) and the edge's default listen backlog (aiohttp's
    # 128 drops connections when a thousand streams open at once), so only the work differs.
    runtime.run(web._run_app(make_app(args.upstream.rstrip("/"), args.key, args.selector), host=host, port=int(port),
                             access_log=None, print=None, backlog=1024))


if __name__ == "__main__":
    main()
