"""A headless Chromium for tests, driven over its DevTools protocol with an aiohttp websocket (nothing downloaded).

Chromium comes from Debian's ``chromium`` package, which ``make browser-deps`` (a step of ``make test``) installs.
Every wait is bounded; :meth:`Chromium.close` kills the browser's whole process group.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import os
import shutil
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

START_TIMEOUT = 20.0
CALL_TIMEOUT = 10.0
FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-default-apps", "--disable-extensions", "--mute-audio", "--hide-scrollbars",
    "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
)


def chromium_path() -> str:
    """The chromium binary; fails the test (not skips it) saying how to install it when it is missing."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.fail("chromium is not installed: run `make browser-deps` (a step of `make test`), which installs "
                    "Debian's chromium package with apt-get (as root or through sudo)", pytrace=False)
    return path


class BrowserError(AssertionError):
    """The browser did not do what the test waited for."""


class Page:
    """One tab: DevTools commands, JavaScript evaluation, waits and screenshots."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self._ws = ws
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.events: list[dict[str, Any]] = []
        self._reader = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        try:
            async for message in self._ws:
                if message.type is not aiohttp.WSMsgType.TEXT:
                    break
                data = json.loads(message.data)
                future = self._pending.pop(data["id"], None) if "id" in data else None
                if future is not None and not future.done():
                    future.set_result(data)
                elif "method" in data:
                    self.events.append(data)
        finally:
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(BrowserError("the browser closed the DevTools connection"))

    async def send(self, method: str, timeout: float = CALL_TIMEOUT, **params: Any) -> dict[str, Any]:
        """A DevTools command; its ``result`` (raises BrowserError for a protocol error)."""
        call_id = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[call_id] = future
        await self._ws.send_str(json.dumps({"id": call_id, "method": method, "params": params}))
        try:
            reply = await asyncio.wait_for(future, timeout)
        except TimeoutError:
            raise BrowserError(f"{method}: no answer from the browser within {timeout:g} s") from None
        finally:
            self._pending.pop(call_id, None)
        if "error" in reply:
            raise BrowserError(f"{method}: {reply['error']}")
        result: dict[str, Any] = reply.get("result", {})
        return result

    async def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (promises awaited)."""
        result = await self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise BrowserError(f"JavaScript error in {expression[:80]!r}: {text}")
        return result["result"].get("value")

    async def wait_for(self, expression: str, timeout: float, what: str) -> Any:
        """Poll ``expression`` until it is truthy; its value, or BrowserError naming ``what``."""
        return await wait_until(lambda: self.evaluate(expression), timeout, what)

    async def navigate(self, url: str, timeout: float = CALL_TIMEOUT) -> None:
        await self.send("Page.navigate", url=url)
        await self.wait_for("document.readyState === 'complete'", timeout, f"{url} to load")

    async def screenshot(self, path: Path) -> Path:
        data = await self.send("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        path.write_bytes(base64.b64decode(data["data"]))
        return path

    def errors(self) -> list[str]:
        """JavaScript exceptions, console errors and browser log errors (CSP violations, failed loads) so far."""
        out = []
        for event in self.events:
            method, params = event["method"], event.get("params", {})
            if method == "Runtime.exceptionThrown":
                details = params.get("exceptionDetails", {})
                out.append(details.get("exception", {}).get("description") or details.get("text", "exception"))
            elif method == "Runtime.consoleAPICalled" and params.get("type") == "error":
                out.append(" ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", [])))
            elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
                out.append(params["entry"].get("text", ""))
        return out

    async def close(self) -> None:
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader
        await self._ws.close()


async def wait_until(probe: Callable[[], Awaitable[Any]], timeout: float, what: str, interval: float = 0.2) -> Any:
    """Call ``probe`` until it returns something truthy, for at most ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last: Any = None
    while True:
        last = await probe()
        if last:
            return last
        if loop.time() >= deadline:
            raise BrowserError(f"timed out after {timeout:g} s waiting for {what} (last value: {last!r})")
        await asyncio.sleep(interval)


class Chromium:
    """A headless Chromium with a fresh profile, for one test."""

    def __init__(self, process: asyncio.subprocess.Process, port: int, http: aiohttp.ClientSession) -> None:
        self.process = process
        self.port = port
        self._http = http
        self._pages: list[Page] = []

    @classmethod
    async def start(cls, workdir: Path, width: int = 1480, height: int = 1000) -> Chromium:
        binary = chromium_path()
        profile = workdir / "chromium-profile"
        profile.mkdir()
        log = (workdir / "chromium.log").open("wb")
        process = await asyncio.create_subprocess_exec(
            binary, *FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}", "about:blank",
            stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
        log.close()
        http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=CALL_TIMEOUT))
        browser = cls(process, 0, http)
        try:
            port_file = profile / "DevToolsActivePort"

            async def port_written() -> str:
                if process.returncode is not None:
                    raise BrowserError(f"chromium exited with status {process.returncode} at start; see "
                                       f"{workdir / 'chromium.log'}")
                return port_file.read_text().split("\n", 1)[0].strip() if port_file.exists() else ""

            browser.port = int(await wait_until(port_written, START_TIMEOUT, "chromium's DevTools port", 0.05))
        except BaseException:
            await browser.close()
            raise
        return browser

    async def new_page(self) -> Page:
        """A new tab (about:blank) with page, runtime and log events on."""
        async with self._http.put(f"http://127.0.0.1:{self.port}/json/new?about:blank") as response:
            target = await response.json()
        ws = await self._http.ws_connect(target["webSocketDebuggerUrl"], max_msg_size=0)
        page = Page(ws)
        self._pages.append(page)
        for domain in ("Page", "Runtime", "Log"):
            await page.send(f"{domain}.enable")
        return page

    async def close(self) -> None:
        """Close the tabs and kill the browser's process group (it started it in a session of its own)."""
        for page in self._pages:
            with contextlib.suppress(Exception):
                await page.close()
        await self._http.close()
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.process.wait(), 10)
