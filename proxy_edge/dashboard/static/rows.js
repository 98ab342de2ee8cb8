// poolgate dashboard: one account's table row (its cells, state, models at rest, countdown, actions), as
// window.PG.rows. Values from the server are written with textContent, never as HTML.
"use strict";

(function () {
  const { el, fmtInt, fmtCompact, fmtMs, fmtCost, fmtDuration, fmtPct, STATE_LABELS } = window.PG;

  function setCell(cell, value, text, title) {
    cell.dataset.value = String(value);
    if (text !== undefined && cell.textContent !== text) cell.textContent = text;
    if (title !== undefined) cell.title = title;
  }

  // [field, heading, class, width]: fixed widths keep the columns of every pool aligned.
  const COLUMNS = [
    ["account", "Account", "", "14%"], ["state", "State", "", "17%"], ["cooldown", "Cooldown", "num", "7%"],
    ["in_flight", "In flight", "num", "6%"], ["requests", "Requests", "num", "6%"],
    ["error_rate", "Recent errors", "num", "8%"], ["p50", "p50 today", "num", "7%"],
    ["tokens", "Tokens today", "num", "8%"], ["cost", "Cost today", "num", "6%"], ["headroom", "Headroom", "", "10%"],
    ["actions", "Actions", "", "11%"],
  ];

  function makeRow(account, poolName) {
    const tr = el("tr");
    tr.dataset.account = account.id;
    const cells = {};
    for (const [field, , cls] of COLUMNS) {
      const td = el("td", cls);
      td.dataset.field = field;
      tr.appendChild(td);
      cells[field] = td;
    }
    const acct = el("div", "acct");
    const swatch = el("span", "swatch");
    const name = el("span", "name", account.name);
    name.title = account.id;
    const cred = el("span", "cred mono");
    const tag = el("span", "tag");
    acct.append(swatch, name, cred, tag);
    cells.account.appendChild(acct);
    const pill = el("span", "pill");
    const reason = el("span", "reason");
    const models = el("ul", "models");
    cells.state.append(pill, reason, models);
    const actions = window.PG.admin.rowButtons({ pool: poolName, name: account.name, id: account.id });
    cells.actions.appendChild(actions.node);
    const hbar = el("div", "hbar");
    const hfill = el("span");
    hbar.appendChild(hfill);
    const hpct = el("span", "pct");
    const headroom = el("div", "headroom");
    headroom.append(hbar, hpct);
    cells.headroom.appendChild(headroom);
    return { tr, cells, swatch, cred, tag, pill, reason, models, actions, hfill, hpct, deadline: 0, total: 0, color: "" };
  }

  function updateRow(row, a) {
    const c = row.cells;
    row.tr.className = "state-" + a.state;
    row.swatch.style.background = row.color;
    row.cred.textContent = a.credential || "";
    row.tag.textContent = a.priority === 2 ? "high" : a.priority === 0 ? "low" : "";
    row.tag.hidden = a.priority === 1;
    c.account.dataset.value = a.id;

    c.state.dataset.value = a.state;
    row.pill.className = "pill " + a.state;
    row.pill.textContent = STATE_LABELS[a.state] || a.state;
    // An account resting only for some models has their reasons for its own: the model list below says it.
    const modelsOnly = a.models.length && a.reason === a.models.filter((m) => m.remaining_ms > 0)
      .map((m) => m.reason).join("; ");
    row.reason.textContent = a.state === "healthy" ? "" : a.reason;
    row.reason.title = a.reason;
    row.reason.hidden = a.state === "healthy" || !a.reason || Boolean(modelsOnly);
    updateModels(row, a.models);
    row.actions.update(a);

    // The countdown runs locally between snapshots.
    const now = performance.now();
    row.deadline = a.cooldown_ms > 0 ? now + a.cooldown_ms : 0;
    // The bar shows the share left of the cooldown as first seen (or of a longer one that replaced it).
    row.total = a.cooldown_ms > 0 ? Math.max(row.total, a.cooldown_ms) : 0;
    c.cooldown.dataset.value = String(a.cooldown_ms);
    tickRow(row, now);

    const max = a.max_concurrency ? fmtInt(a.max_concurrency) : "∞";
    setCell(c.in_flight, a.in_flight, fmtInt(a.in_flight) + " / " + max);
    setCell(c.requests, a.requests, fmtInt(a.requests),
      fmtInt(a.successes) + " succeeded · " + fmtInt(a.failures) + " failed · " + fmtInt(a.rate_limited) +
      " rate limited (since the selector started)");
    setCell(c.error_rate, a.error_rate, fmtPct(a.error_rate), "share of recent requests that failed: of the first " +
      "5, then weighted toward the latest (the newest counts 1/5; cancelled and client errors do not count)");
    c.error_rate.classList.toggle("bad", a.error_rate >= 0.25);
    c.error_rate.classList.toggle("warn", a.error_rate >= 0.05 && a.error_rate < 0.25);

    const today = a.today;
    const p50Text = !today || !today.successes ? "—" : today.latency_p50_ms < 1 ? "<1 ms" : fmtMs(today.latency_p50_ms);
    setCell(c.p50, today ? today.latency_p50_ms : 0, p50Text,
      a.recent_latency_ms ? "recent (weighted): " + fmtMs(a.recent_latency_ms) : "");
    const tokens = today ? today.input_tokens + today.output_tokens : 0;
    c.tokens.dataset.value = String(tokens);
    c.tokens.dataset.input = String(today ? today.input_tokens : 0);
    c.tokens.dataset.output = String(today ? today.output_tokens : 0);
    const tokenText = fmtCompact(tokens);
    const detail = tokens ? "in " + fmtCompact(today.input_tokens) + " · out " + fmtCompact(today.output_tokens) : "";
    if (c.tokens.dataset.text !== tokenText + detail) {
      c.tokens.dataset.text = tokenText + detail;
      c.tokens.replaceChildren(document.createTextNode(tokenText));
      if (detail) c.tokens.appendChild(el("span", "sub2", detail));
    }
    setCell(c.cost, today ? today.cost : 0, fmtCost(today ? today.cost : 0));

    const h = a.headroom;
    c.headroom.dataset.value = h.known ? String(h.fraction) : "";
    if (h.known) {
      const pct = Math.max(0, Math.min(1, h.fraction));
      row.hfill.style.width = (pct * 100).toFixed(1) + "%";
      row.hfill.style.background = pct < 0.1 ? "var(--open)" : pct < 0.3 ? "var(--cooling)" : "var(--healthy)";
      row.hpct.textContent = fmtPct(pct);
      row.hpct.className = "pct";
      const parts = [];
      if (h.requests_remaining >= 0) parts.push("requests " + fmtInt(h.requests_remaining) + " / " + fmtInt(h.requests_limit));
      if (h.input_tokens_remaining >= 0) {
        parts.push("input tokens " + fmtInt(h.input_tokens_remaining) + " / " + fmtInt(h.input_tokens_limit));
      }
      if (h.output_tokens_remaining >= 0) {
        parts.push("output tokens " + fmtInt(h.output_tokens_remaining) + " / " + fmtInt(h.output_tokens_limit));
      }
      if (h.reset_in_ms) parts.push("resets in " + fmtDuration(h.reset_in_ms));
      c.headroom.title = parts.join("\n");
    } else {
      row.hfill.style.width = "0";
      row.hpct.textContent = "n/a";
      row.hpct.className = "pct dim";
      c.headroom.title = "no rate-limit headers seen and no limits configured";
    }
  }

  // Each model the account rests for (or probes), under its state: "gpt-4o · 12 s · rate limited (429)".
  function updateModels(row, models) {
    const items = models.map((m) => [m.scope, m.probing ? "probing" : m.remaining_ms > 0 ?
      "rests " + fmtDuration(m.remaining_ms) : "", m.reason].filter(Boolean).join(" · "));
    const text = items.join("\n");
    if (row.models.dataset.text === text) return;
    row.models.dataset.text = text;
    row.models.hidden = !items.length;
    row.models.replaceChildren(...items.map((item) => Object.assign(el("li", "", item), { title: item })));
  }

  function tickRow(row, now) {
    const cell = row.cells.cooldown;
    const left = row.deadline ? row.deadline - now : 0;
    if (left <= 0) {
      if (cell.dataset.shown !== "none") {
        cell.dataset.shown = "none";
        cell.replaceChildren(el("span", "dim", "—"));
      }
      return;
    }
    const text = fmtDuration(left);
    if (cell.dataset.shown !== "cd") {
      cell.dataset.shown = "cd";
      const span = el("span", "countdown");
      const bar = el("span", "cdbar");
      bar.appendChild(el("span"));
      cell.replaceChildren(span, bar);
    }
    const span = cell.firstChild;
    if (span.textContent !== text) span.textContent = text;
    const fill = cell.lastChild.firstChild;
    fill.style.width = (row.total ? Math.min(100, (left / row.total) * 100) : 100).toFixed(1) + "%";
  }

  window.PG.rows = { COLUMNS, makeRow, updateRow, tickRow, setCell };
})();
