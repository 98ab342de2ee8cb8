"""The dashboard in a real headless Chromium: it renders, its numbers match the API, and an account that starts
cooling (a 429 from the fake upstream) shows up, with a running countdown, without a reload."""

from __future__ import annotations

import json
import re
import shutil
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest

from fake_upstream import FakeUpstream
from proxy_edge.handlers import SELECTOR
from tests.edge.browser import Page, chromium_path, wait_until
from tests.edge.conftest import CHAT, EDGE_KEY, Stack, open_stack

PAGE_ROWS = """
(() => {
  const out = {};
  for (const tr of document.querySelectorAll("tr[data-account]")) {
    const row = {};
    for (const td of tr.querySelectorAll("td[data-field]")) {
      row[td.dataset.field] = td.dataset.value;
      row[td.dataset.field + "_text"] = td.textContent.trim();
    }
    out[tr.dataset.account] = row;
  }
  return out;
})()
"""


@pytest.fixture
async def served(tmp_path: Path, fake_upstream: FakeUpstream) -> AsyncIterator[Stack]:
    stack = await open_stack(
        fake_upstream, tmp_path,
        openai_accounts="""
            - {name: personal, key: sk-personal-000001, rpm_limit: 500}
            - {name: work, key: sk-work-000002, max_concurrency: 8}""",
        anthropic_accounts="""
            - {name: team, key: sk-ant-team-000001}
            - {name: limited, key: sk-ant-ratelimited-000002}""",
        extra="""
            prices:
              gpt-4o*: {input: 2.5, output: 10}
              claude-*: {input: 3, output: 15}""")
    try:
        yield stack
    finally:
        await stack.close()


async def get(served: Stack, path: str) -> Any:
    """A query's answer, once the edge's pending outcome reports have reached the selector."""
    await served.edge.runner.app[SELECTOR].flush_reports()
    status, body = await served.get_json(path)
    assert status == 200, body
    return body


async def api_view(served: Stack) -> dict[str, dict[str, Any]]:
    """What the API says, per account, in the page's terms."""
    stats = await get(served, "/v1/accounts/stats")
    now = time.time()
    usage = await get(served, f"/v1/accounts/usage?bucket=day&since={int(now - now % 86400)}")
    today = {row["account_id"]: row for row in usage["rows"]}
    out = {}
    for pool in stats["pools"]:
        for a in pool["accounts"]:
            row = today.get(a["account_id"], {})
            state = a["state"].removeprefix("ACCOUNT_STATE_").lower()
            if state in ("healthy", "probing") and any(int(c["remaining_ms"]) for c in a["model_cooldowns"]):
                state = "cooling"  # the page shows an account resting for a model as cooling (for that model)
            out[a["account_id"]] = {
                "state": state,
                "probe_reason": a.get("probe_reason", "").removeprefix("PROBE_REASON_").lower(),
                "requests": a["requests_total"],
                "in_flight": a["in_flight"],
                "tokens": row.get("input_tokens", 0) + row.get("output_tokens", 0),
                "cost": row.get("cost", 0.0),
                "p50": row.get("latency_p50_ms", 0.0),
            }
    return out


def mismatches(page_rows: dict[str, dict[str, str]], api: dict[str, dict[str, Any]]) -> list[str]:
    problems = []
    if set(page_rows) != set(api):
        return [f"accounts: page {sorted(page_rows)} != API {sorted(api)}"]
    for account, want in api.items():
        got = page_rows[account]
        if got["state"] != want["state"]:
            problems.append(f"{account} state {got['state']} != {want['state']}")
        for field in ("requests", "in_flight", "tokens"):
            if int(got[field]) != want[field]:
                problems.append(f"{account} {field} {got[field]} != {want[field]}")
        if abs(float(got["cost"]) - want["cost"]) > 1e-9 or abs(float(got["p50"]) - want["p50"]) > 1e-6:
            problems.append(f"{account} cost/p50 {got['cost']}/{got['p50']} != {want['cost']}/{want['p50']}")
        if got["requests_text"] != f"{want['requests']:,}":
            problems.append(f"{account} shows {got['requests_text']!r} requests, not {want['requests']:,}")
    return problems


async def page_matches_api(page: Page, served: Stack, timeout: float) -> None:
    last: list[str] = []

    async def probe() -> bool:
        nonlocal last
        last = mismatches(await page.evaluate(PAGE_ROWS), await api_view(served))
        return not last

    try:
        await wait_until(probe, timeout, "the page to show the API's numbers", interval=0.5)
    except AssertionError:
        raise AssertionError(f"the page's numbers do not match the API: {last}") from None


async def test_dashboard_renders_matches_the_api_and_shows_a_cooldown_live(
    served: Stack, page: Page, tmp_path: Path
) -> None:
    # Some traffic first, streamed and not, so that there are tokens, costs and latencies to show.
    gpt = openai.AsyncOpenAI(base_url=f"{served.url}/v1", api_key=EDGE_KEY, max_retries=0)
    claude = anthropic.AsyncAnthropic(base_url=served.url, api_key=EDGE_KEY, max_retries=0)
    try:
        for i in range(4):
            if i % 2:
                stream = await gpt.chat.completions.create(model="gpt-4o-mini", messages=CHAT, stream=True)
                assert [chunk async for chunk in stream]
            else:
                await gpt.chat.completions.create(model="gpt-4o-mini", messages=CHAT)

        # The page loads without a key, then asks for it; a wrong key is refused, the right one accepted.
        await page.navigate(f"{served.url}/dashboard")
        await page.wait_for("document.getElementById('key-dialog').open", 10, "the key dialog")
        submit = ("(() => { document.getElementById('key-input').value = %s; "
                  "document.getElementById('key-form').requestSubmit(); return true; })()")
        await page.evaluate(submit % json.dumps("not-the-key"))
        await page.wait_for("document.getElementById('key-error').textContent.includes('not accepted')", 10,
                            "the wrong key to be refused")
        await page.evaluate(submit % json.dumps(EDGE_KEY))
        await page.wait_for("document.querySelectorAll('tr[data-account]').length === 4", 10, "the account rows")
        assert await page.evaluate("sessionStorage.getItem('poolgate.edgeKey')") == EDGE_KEY
        await page_matches_api(page, served, 15)
        charts_js = ("[...document.querySelectorAll('section.pool')].map(s => [s.dataset.pool, "
                     "s.querySelectorAll('.chart')[0].querySelectorAll('polyline').length, "
                     "Number(s.querySelectorAll('.chart')[0].dataset.total)])")
        expected = [["openai", 2, 4], ["anthropic", 2, 0]]
        # The usage log is written in batches and the page refreshes usage every few seconds: wait for it.
        as_json = json.dumps(json.dumps(expected, separators=(",", ":")))
        await page.wait_for(f"JSON.stringify({charts_js}) === {as_json}", 15,
                            "the request chart to count the four requests")
        charts = await page.evaluate(charts_js)
        assert charts == expected, charts
        await page.evaluate("window.__noReload = true")

        # A 429 from the fake upstream (the account 'limited') cools an account; the page shows it by itself.
        stats = await api_view(served)
        # Never used yet: its health is unknown until a probe answers.
        assert stats["anthropic/limited"]["state"] == "probing"
        assert stats["anthropic/limited"]["probe_reason"] == "new"
        for _ in range(4):
            await claude.messages.create(model="claude-haiku-4-5", max_tokens=16, messages=CHAT)
            if (await api_view(served))["anthropic/limited"]["state"] == "cooling":
                break
        else:
            raise AssertionError("the rate-limited account never got a request")
        row = "document.querySelector('tr[data-account=\"anthropic/limited\"]')"
        await page.wait_for(f"{row}.querySelector('[data-field=state]').dataset.value === 'cooling'", 5,
                            "the account to show as cooling")
        first = await page.evaluate(f"{row}.querySelector('[data-field=cooldown]').textContent")
        match = re.fullmatch(r"(\d+\.\d) s", first)
        assert match and 20 <= float(match[1]) <= 30, first  # the fake upstream's retry-after: 30
        await page.wait_for(f"{row}.querySelector('[data-field=cooldown]').textContent !== {json.dumps(first)}", 3,
                            "the countdown to run")
        later = await page.evaluate(f"{row}.querySelector('[data-field=cooldown]').textContent")
        assert float(later.split()[0]) < float(match[1])
        assert await page.evaluate("window.__noReload === true"), "the page reloaded"
        assert "cooling" in await page.evaluate(f"{row}.querySelector('.pill').textContent")
        await page_matches_api(page, served, 15)

        shot = await page.screenshot(tmp_path / "dashboard.png")
        print(f"dashboard screenshot: {shot}")
        # The page's first poll (no key yet) and the wrong key were refused with a 401; nothing else went wrong.
        errors = [e for e in page.errors() if "status of 401" not in e]
        assert not errors, errors
        html = await page.evaluate("document.documentElement.outerHTML")
        assert "sk-" not in html  # credentials only redacted
    finally:
        await gpt.close()
        await claude.close()


def test_a_missing_chromium_fails_naming_the_install_step(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda _name: None)
    with pytest.raises(pytest.fail.Exception, match=r"make browser-deps"):
        chromium_path()
