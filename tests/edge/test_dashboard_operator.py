"""The dashboard in a real headless Chromium, as an operator uses it: entering the admin token, disabling (with a
reason), enabling and resetting accounts and reloading the config, each confirmed in a dialog, with the selector's
own state (ListAccounts over gRPC) checked after each; a wrong token shows an error and changes nothing. And as a
screen-reader or keyboard user meets it: named charts with data tables, one small live region that speaks state
changes and never a countdown's tick, labelled fields, Escape closing dialogs with focus returned, and AA contrast
for every piece of text on the page."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from fake_upstream import FakeUpstream
from poolgate.config import load_config
from poolgate.v1 import selector_pb2 as pb
from poolgate.v1 import selector_pb2_grpc
from proxy_edge.app import EdgeServer, start_edge
from selector_service.app import SelectorHandle, start_selector
from selector_service.overlay import ConfigSource
from tests.edge.browser import BrowserError, Page
from tests.edge.conftest import EDGE_KEY
from tests.edge.test_dashboard_actions import ADMIN_TOKEN, LEASE_TOKEN, SELECTOR_AUTH, cool_down, selector_accounts

CONFIG = """
edge:
  api_keys: [{edge_key}]
selector:
  listen: 127.0.0.1:0
  overlay: {overlay}
  {auth}
pools:
  openai:
    base_url: {fake}/v1
    accounts:
      - {{name: personal, key: sk-personal-000001}}
      - {{name: work, key: sk-work-000002}}
{more}
models:
  gpt-*: openai
"""
SPARE = "      - {name: spare, key: sk-spare-000003}"

# Every announcement the live region makes, in order (recorded from the page's first moment).
RECORD_ANNOUNCEMENTS = """
(() => {
  window.__announced = [];
  const region = document.getElementById("announcer");
  new MutationObserver(() => { if (region.textContent) window.__announced.push(region.textContent); })
    .observe(region, { childList: true, characterData: true, subtree: true });
  return true;
})()
"""


def write_config(path: Path, fake_url: str, more: str = "") -> None:
    path.write_text(CONFIG.format(edge_key=EDGE_KEY, overlay=path.parent / "overlay.yaml", auth=SELECTOR_AUTH,
                                  fake=fake_url, more=more))


@dataclass
class Gateway:
    selector: SelectorHandle
    edge: EdgeServer
    config_path: Path
    fake: FakeUpstream


@pytest.fixture
async def gateway(tmp_path: Path, fake_upstream: FakeUpstream) -> AsyncIterator[Gateway]:
    """A selector started from a config file (so it can reload it), with lease and admin tokens, and its edge."""
    path = tmp_path / "poolgate.yaml"
    write_config(path, fake_upstream.url)
    config = load_config(path)
    selector = await start_selector(config, listen="127.0.0.1:0", database=str(tmp_path / "state.db"),
                                    source=ConfigSource(path))
    config.edge.selector = selector.address
    edge = await start_edge(config, "127.0.0.1:0")
    try:
        yield Gateway(selector, edge, path, fake_upstream)
    finally:
        await edge.stop()
        await selector.stop(grace=0)


def js(value: object) -> str:
    return json.dumps(value)


async def press_escape(page: Page) -> None:
    for kind in ("keyDown", "keyUp"):
        await page.send("Input.dispatchKeyEvent", type=kind, key="Escape", code="Escape", windowsVirtualKeyCode=27)


async def click(page: Page, selector: str) -> None:
    """Focus and click an element, as a keyboard user's Enter would."""
    await page.evaluate(f"(() => {{ const b = document.querySelector({js(selector)}); b.focus(); b.click(); "
                        "return true; })()")


async def fill_and_submit(page: Page, field: str, value: str, form: str) -> None:
    await page.evaluate(f"(() => {{ document.getElementById({js(field)}).value = {js(value)}; "
                        f"document.getElementById({js(form)}).requestSubmit(); return true; }})()")


async def open_dashboard(page: Page, url: str, escape_first: bool = False) -> None:
    """Load the page, give it the edge key (after escaping its dialog once), and wait for the account rows."""
    await page.navigate(f"{url}/dashboard")
    await page.evaluate(RECORD_ANNOUNCEMENTS)
    await page.wait_for("document.getElementById('key-dialog').open", 10, "the key dialog")
    assert await page.evaluate("document.activeElement.id") == "key-input"
    assert await page.evaluate("document.getElementById('key-input').labels[0].textContent") == "Client key"
    if escape_first:
        await press_escape(page)
        await page.wait_for("!document.getElementById('key-dialog').open", 3, "Escape to close the key dialog")
        assert await page.evaluate("!document.getElementById('enter-key').hidden")
        await click(page, "#enter-key")
        await page.wait_for("document.getElementById('key-dialog').open", 3, "Enter key to open it again")
        assert await page.evaluate("document.activeElement.id") == "key-input"
    await fill_and_submit(page, "key-input", EDGE_KEY, "key-form")
    await page.wait_for("document.querySelectorAll('tr[data-account]').length === 2", 10, "the account rows")


def row(account_id: str) -> str:
    return f"tr[data-account={js(account_id)}]"


async def confirm(page: Page, button: str, reason: str | None = None) -> None:
    """Click an action button and confirm its dialog (with a reason for a disable)."""
    await click(page, button)
    await page.wait_for("document.getElementById('confirm-dialog').open", 5, "the confirmation dialog")
    if reason is not None:
        assert await page.evaluate("!document.getElementById('confirm-reason-field').hidden")
        assert await page.evaluate("document.activeElement.id") == "confirm-reason"
        await page.evaluate(f"document.getElementById('confirm-reason').value = {js(reason)}")
    await page.evaluate("document.getElementById('confirm-form').requestSubmit(), true")


async def action_done(page: Page, action: str) -> None:
    """Wait for a confirmed action's dialog to close (the edge and the selector have done it). Up to 10 s: the action
    is a round trip to the selector and a durable write, on a machine the whole suite shares. When it does not close,
    the failure says whether the request was still on its way or the dialog shows an error."""
    try:
        await page.wait_for("!document.getElementById('confirm-dialog').open", 10, f"the {action} to be done")
    except BrowserError:
        state = await page.evaluate("JSON.stringify({error: document.getElementById('confirm-error').textContent, "
                                    "sending: document.getElementById('confirm-submit').disabled})")
        raise BrowserError(f"the {action} was not done within 10 s: {state}") from None


async def announced(page: Page, *words: str) -> list[str]:
    """Wait for an announcement holding every one of ``words``."""
    test = " && ".join(f"t.includes({js(w)})" for w in words)
    await page.wait_for(f"window.__announced.some(t => {test})", 5, f"an announcement of {words}")
    result: list[str] = await page.evaluate("window.__announced")
    return result


async def test_an_operator_steers_accounts_from_the_page(gateway: Gateway, page: Page, tmp_path: Path) -> None:
    address = gateway.selector.address
    await open_dashboard(page, gateway.edge.url)

    # No admin token yet: the first action asks for one. A wrong one is refused by the selector and nothing changes.
    await click(page, f"{row('openai/work')} button[data-action=disable]")
    await page.wait_for("document.getElementById('admin-dialog').open", 5, "the admin token dialog")
    assert await page.evaluate("document.activeElement.id") == "admin-input"
    await fill_and_submit(page, "admin-input", "not-the-admin-token-000", "admin-form")
    await confirm(page, f"{row('openai/work')} button[data-action=disable]", "should not happen")
    await page.wait_for("!document.getElementById('confirm-error').hidden", 5, "the refusal")
    error = await page.evaluate("document.getElementById('confirm-error').textContent")
    assert "did not accept this admin token" in error, error
    assert "not-the-admin-token" not in error
    assert (await selector_accounts(address))["openai/work"].state != pb.ACCOUNT_STATE_DISABLED
    assert await page.evaluate("sessionStorage.getItem('poolgate.adminToken')") is None  # a refused token goes
    await press_escape(page)
    await page.wait_for("!document.getElementById('confirm-dialog').open", 3, "Escape to close the dialog")
    assert await page.evaluate("document.activeElement.dataset.action") == "disable"  # focus is back on the button

    # The right token: disable with a reason, then enable.
    await click(page, "#admin-button")
    await fill_and_submit(page, "admin-input", ADMIN_TOKEN, "admin-form")
    await confirm(page, f"{row('openai/work')} button[data-action=disable]", "key rotation")
    await action_done(page, "disable")
    work = (await selector_accounts(address))["openai/work"]
    assert work.state == pb.ACCOUNT_STATE_DISABLED and work.reason == "key rotation"
    await page.wait_for(f"document.querySelector('{row('openai/work')} [data-field=state]').dataset.value "
                        "=== 'disabled'", 5, "the row to show the disable")
    await announced(page, "openai/work", "disabled")
    await confirm(page, f"{row('openai/work')} button[data-action=enable]")
    await action_done(page, "enable")
    assert (await selector_accounts(address))["openai/work"].state != pb.ACCOUNT_STATE_DISABLED
    await announced(page, "openai/work", "enabled")

    # A cooling account is announced once; its countdown ticks silently; a reset clears it.
    await cool_down(address, "openai", "openai/personal", ["openai/work"])
    state_cell = f"document.querySelector('{row('openai/personal')} [data-field=state]')"
    await page.wait_for(f"{state_cell}.dataset.value === 'cooling'", 5, "the row to show the cooldown")
    before = len(await announced(page, "openai/personal", "cooling"))
    cooldown = f"document.querySelector('{row('openai/personal')} [data-field=cooldown]').textContent"
    first = await page.evaluate(cooldown)
    await page.wait_for(f"{cooldown} !== {js(first)}", 3, "the countdown to tick")
    await page.evaluate("new Promise(r => setTimeout(r, 1500))")
    assert len(await page.evaluate("window.__announced")) == before, await page.evaluate("window.__announced")
    await confirm(page, f"{row('openai/personal')} button[aria-label='Reset openai/personal']")
    await action_done(page, "reset")
    personal = (await selector_accounts(address))["openai/personal"]
    assert personal.state != pb.ACCOUNT_STATE_COOLING and personal.cooldown_remaining_ms == 0
    await page.wait_for(f"{state_cell}.dataset.value !== 'cooling'", 5, "the row to show the reset")

    # Reload: the file gains an account; the selector serves it and the page shows it.
    write_config(gateway.config_path, gateway.fake.url, SPARE)
    await confirm(page, "#reload-button")
    await action_done(page, "reload")
    assert "openai/spare" in await selector_accounts(address)
    await announced(page, "Config reloaded", "openai/spare")
    await page.wait_for(f"document.querySelector('{row('openai/spare')}') !== null", 5, "the new account's row")

    # The token lives in this tab's sessionStorage only, and never in the page.
    assert await page.evaluate("sessionStorage.getItem('poolgate.adminToken')") == ADMIN_TOKEN
    assert await page.evaluate("localStorage.length") == 0
    assert await page.evaluate("document.cookie") == ""
    assert ADMIN_TOKEN not in await page.evaluate("document.documentElement.outerHTML")
    print(f"screenshot: {await page.screenshot(tmp_path / 'operator.png')}")
    errors = [e for e in page.errors() if "status of 401" not in e]  # the first poll (no key) and the wrong token
    assert not errors, errors


async def add_usage(address: str) -> None:
    """Two served requests on personal, reported straight to the selector (they land in its usage log)."""
    metadata = (("authorization", f"Bearer {LEASE_TOKEN}"),)
    async with grpc.aio.insecure_channel(address) as channel:
        stub = selector_pb2_grpc.SelectorStub(channel)
        for _ in range(2):
            request = pb.SelectAccountRequest(pool="openai", exclude_account_ids=["openai/work"])
            lease = await stub.SelectAccount(request, metadata=metadata, timeout=5)
            await stub.ReportOutcome(pb.ReportOutcomeRequest(lease_id=lease.lease_id, outcome=pb.OUTCOME_SUCCESS,
                                                             http_status=200, latency_ms=120, input_tokens=300,
                                                             output_tokens=40), metadata=metadata, timeout=5)


CHARTS = """
[...document.querySelectorAll("figure.chart")].map(f => {
  const rows = [...f.querySelectorAll("details table tbody tr")];
  return {
    caption: f.querySelector("figcaption").textContent,
    role: f.querySelector("svg").getAttribute("role"),
    label: f.querySelector("svg").getAttribute("aria-label") || "",
    total: Number(f.dataset.total),
    headers: [...f.querySelectorAll("details table thead th")].map(th => th.textContent),
    rows: rows.length,
    sum: rows.reduce((s, r) => s + [...r.querySelectorAll("td")]
      .reduce((t, td) => t + Number(td.textContent.replace(/,/g, "")), 0), 0),
  };
})
"""

LIVE_REGIONS = """
[...document.querySelectorAll("[aria-live], [role=status], [role=alert], [role=log], [role=marquee], [role=timer]")]
  .map(e => e.id || e.tagName)
"""

UNLABELLED = """
[...document.querySelectorAll("input, textarea, select, button")]
  .filter(e => e.type !== "hidden")
  .filter(e => !(e.labels && e.labels.length) && !e.getAttribute("aria-label") && !e.getAttribute("aria-labelledby")
               && !(e.tagName === "BUTTON" && e.textContent.trim()))
  .map(e => e.id || e.outerHTML.slice(0, 80))
"""

# Every visible piece of text (and SVG text by its fill) against the colour behind it, composited up the tree;
# WCAG 2.1: 4.5:1, or 3:1 for large text (24px, or 18.66px bold).
CONTRAST = """
(() => {
  const parse = (c) => {
    const m = c.match(/[\\d.]+/g).map(Number);
    return [m[0], m[1], m[2], m.length > 3 ? m[3] : 1];
  };
  const channel = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
  const lum = ([r, g, b]) => 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b);
  const over = (top, under) => [0, 1, 2].map(i => top[i] * top[3] + under[i] * (1 - top[3])).concat(1);
  function background(node) {
    const layers = [];
    for (let e = node; e && e.nodeType === 1; e = e.parentElement) {
      const c = parse(getComputedStyle(e).backgroundColor);
      if (c[3] > 0) layers.push(c);
      if (c[3] >= 1) break;
    }
    let color = parse(getComputedStyle(document.documentElement).backgroundColor);
    for (const layer of layers.reverse()) color = over(layer, color);
    return color;
  }
  const results = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let t = walker.nextNode(); t; t = walker.nextNode()) {
    const e = t.parentElement;
    if (!t.textContent.trim() || !e || e.closest(".visually-hidden, [hidden]") || !e.getClientRects().length) continue;
    const style = getComputedStyle(e);
    if (style.visibility !== "visible" || Number(style.opacity) === 0) continue;
    const isSvg = e instanceof SVGElement;
    const bg = background(isSvg ? e.closest("figure") : e);
    const fg = over(parse(isSvg ? style.fill : style.color), bg);
    const [hi, lo] = [lum(fg), lum(bg)].sort((a, b) => b - a);
    const ratio = (hi + 0.05) / (lo + 0.05);
    const size = parseFloat(style.fontSize);
    const large = size >= 24 || (size >= 18.66 && Number(style.fontWeight) >= 700);
    results.push({ text: t.textContent.trim().slice(0, 40), ratio, need: large ? 3 : 4.5,
                   fg: isSvg ? style.fill : style.color });
  }
  return results;
})()
"""


async def test_the_page_is_accessible(gateway: Gateway, page: Page) -> None:
    await add_usage(gateway.selector.address)
    await open_dashboard(page, gateway.edge.url, escape_first=True)

    # Charts: a figure with a caption; the plot an image named by its current values; the data as a table.
    await page.wait_for("[...document.querySelectorAll('figure.chart')].every(f => Number(f.dataset.total) > 0)",
                        15, "the charts to count the reported usage")
    charts = await page.evaluate(CHARTS)
    assert len(charts) == 2, charts
    for chart in charts:
        assert chart["caption"].endswith(f"{chart['total']:,}") or chart["total"] >= 100_000, chart
        assert chart["role"] == "img"
        assert chart["label"].startswith(chart["caption"].split(str(chart["total"]))[0].strip()), chart
        assert f"{chart['total']:,} " in chart["label"] and "personal" in chart["label"] and "work" in chart["label"]
        assert chart["headers"] == ["Minute", "personal", "work"] and chart["rows"] == 60, chart
        assert chart["sum"] == chart["total"], chart
    assert charts[0]["total"] == 2 and charts[1]["total"] == 680, charts

    # One small live region, and it is not the page's content.
    assert await page.evaluate(LIVE_REGIONS) == ["announcer"]
    assert await page.evaluate("document.getElementById('announcer').textContent.length") < 200

    # Every field and button has a name; Escape closes a dialog and focus goes back where it was.
    assert await page.evaluate(UNLABELLED) == []
    await click(page, "#admin-button")
    await page.wait_for("document.getElementById('admin-dialog').open", 5, "the admin token dialog")
    assert await page.evaluate("document.activeElement.id") == "admin-input"
    assert await page.evaluate("document.getElementById('admin-input').labels[0].textContent") == "Admin token"
    await press_escape(page)
    await page.wait_for("!document.getElementById('admin-dialog').open", 3, "Escape to close the dialog")
    assert await page.evaluate("document.activeElement.id") == "admin-button"

    # AA contrast for every piece of text, the charts' tables (opened) included.
    await page.evaluate("document.querySelectorAll('details.chart-data').forEach(d => d.open = true), true")
    measured = await page.evaluate(CONTRAST)
    assert len(measured) > 100, measured  # the walk saw the page's text
    low = [m for m in measured if m["ratio"] < m["need"]]
    assert not low, low
    print(f"lowest text contrast: {min(m['ratio'] for m in measured):.2f}:1")


async def test_the_page_speaks_of_a_lost_edge_once(gateway: Gateway, page: Page) -> None:
    """Losing the edge is a state change: announced once, and again when it is back, not on every failed poll."""
    await open_dashboard(page, gateway.edge.url)
    await page.evaluate("window.__realFetch = window.fetch; window.fetch = () => Promise.reject(new Error('offline'))")
    await announced(page, "Lost contact", "offline")
    await page.evaluate("new Promise(r => setTimeout(r, 2500))")  # two more failed polls
    assert sum("Lost contact" in a for a in await page.evaluate("window.__announced")) == 1
    await page.evaluate("window.fetch = window.__realFetch")
    await announced(page, "Live again")
