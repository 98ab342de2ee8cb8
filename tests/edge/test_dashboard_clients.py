"""The dashboard's per-client usage in a real headless Chromium: a labelled table of today's usage per client, by
name (a plain key by its redacted form), matching the usage API, and no key in the page."""

from __future__ import annotations

import json
from pathlib import Path

from fake_upstream import FakeUpstream
from proxy_edge.handlers import SELECTOR
from tests.edge.browser import Page
from tests.edge.conftest import EDGE_KEY, open_stack

ALICE = "sk-client-alice-dash-0123456"
CHAT_BODY = {"model": "gpt-4o", "messages": [{"role": "user", "content": "Say hello"}]}
CLIENT_ROWS = """
(() => [...document.querySelectorAll("#clients-body tr")].map(
  tr => [...tr.children].map(cell => cell.tagName + ":" + cell.textContent.trim())))()
"""


async def test_the_dashboard_lists_each_clients_usage_today(
    tmp_path: Path, fake_upstream: FakeUpstream, page: Page
) -> None:
    stack = await open_stack(fake_upstream, tmp_path, edge=f"clients: [{{name: alice, key: {ALICE}}}]",
                             extra="prices:\n  gpt-4o*: {input: 2.5, output: 10}")
    try:
        for key in (ALICE, ALICE, EDGE_KEY):
            status, body, _ = await stack.post("/v1/chat/completions", CHAT_BODY, {"Authorization": f"Bearer {key}"})
            assert status == 200, body
        await stack.edge.runner.app[SELECTOR].flush_reports()
        status, usage = await stack.get_json("/v1/accounts/usage?by=client&bucket=day")
        assert status == 200
        expected = {row["client"]: row for row in usage["rows"]}
        assert set(expected) == {"alice", "…0001"}

        await page.navigate(f"{stack.url}/dashboard")
        await page.wait_for("document.getElementById('key-dialog').open", 10, "the key dialog")
        await page.evaluate(f"(() => {{ document.getElementById('key-input').value = {json.dumps(ALICE)}; "
                            "document.getElementById('key-form').requestSubmit(); return true; })()")
        await page.wait_for("!document.getElementById('clients').hidden && "
                            "document.querySelectorAll('#clients-body tr').length === 2", 15, "the clients table")
        rows = await page.evaluate(CLIENT_ROWS)
        alice = expected["alice"]
        assert rows[0][:3] == ["TH:alice", f"TD:{alice['requests']}", "TD:0"]
        assert rows[0][4:6] == [f"TD:{alice['input_tokens']}", f"TD:{alice['output_tokens']}"]
        assert rows[1][:2] == ["TH:…0001", "TD:1"]
        labelled = await page.evaluate(
            "(() => { const t = document.querySelector('#clients table'); return [t.caption.textContent, "
            "[...t.tHead.rows[0].cells].every(c => c.scope === 'col'), "
            "document.getElementById('clients').getAttribute('aria-labelledby')]; })()")
        assert labelled == ["Usage today per client", True, "clients-title"]
        html = await page.evaluate("document.documentElement.outerHTML")
        for key in (ALICE, EDGE_KEY):
            assert key[-8:] not in html
        assert not [e for e in page.errors() if "status of 401" not in e]
    finally:
        await stack.close()
