"""The baseline for the fast-path comparison: a bare aiohttp pass-through proxy with one pooled client session and
no account selection at all. What poolgate adds is measured against this.

    python bench/bare_proxy.py --listen 127.0.0.1:8090 --upstream http://127.0.0.1:9090 --key sk-...
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import aiohttp
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from poolgate import runtime

HOP_BY_HOP = {"host", "content-length", "connection", "transfer-encoding", "authorization", "keep-alive"}


def make_app(upstream: str, key: str) -> web.Application:
    session_key = web.AppKey("session", aiohttp.ClientSession)

    async def session_ctx(app: web.Application):  # type: ignore[no-untyped-def]
        app[session_key] = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        yield
        await app[session_key].close()

    async def forward(request: web.Request) -> web.StreamResponse:
        body = await request.read()
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
            return response

    app = web.Application()
    app.cleanup_ctx.append(session_ctx)
    app.router.add_post("/{path:.*}", forward)
    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--listen", default="127.0.0.1:8090")
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--key", required=True)
    args = parser.parse_args()
    host, _, port = args.listen.rpartition(":")
    # The same event loop poolgate runs on (uvloop when installed), so only the work differs.
    runtime.run(web._run_app(make_app(args.upstream.rstrip("/"), args.key), host=host, port=int(port),
                             access_log=None, print=None))


if __name__ == "__main__":
    main()
