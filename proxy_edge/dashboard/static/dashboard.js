// poolgate dashboard: polls dashboard/api/snapshot every second and updates the page in place (no reload, no
// external resources). Every value from the server is written with textContent, never as HTML.
"use strict";

(function () {
  const SNAPSHOT_URL = "dashboard/api/snapshot";
  const KEY_STORAGE = "poolgate.edgeKey";
  const POLL_MS = 1000;
  const FETCH_TIMEOUT_MS = 8000;
  const STALE_MS = 5000;
  // Account colours in the charts; kept apart from the state colours (green, amber, orange, red, grey).
  const PALETTE = ["#58a6ff", "#d2a8ff", "#39c5cf", "#f778ba", "#a5d6ff", "#bc8cff", "#56d4dd", "#ffadd2",
    "#1f6feb", "#8957e5", "#1b9aaa", "#bf4b8a"];
  const STATE_LABELS = {
    healthy: "healthy", cooling: "cooling", circuit_open: "circuit open",
    probing: "probing", disabled: "disabled", unspecified: "unknown",
  };
  const SVG_NS = "http://www.w3.org/2000/svg";

  const $ = (id) => document.getElementById(id);
  const pools = new Map();   // pool name -> {section, tbody, rows: Map(id -> row), charts}
  let key = sessionStorage.getItem(KEY_STORAGE) || "";
  let lastOk = 0;            // performance.now() of the last good snapshot
  let lastError = "";
  let waitingForKey = false;
  let lastUsageAt = -1;
  let latest = null;
  let pollTimer = 0;

  // ---- formatting -------------------------------------------------------------------------------------------
  const intFmt = new Intl.NumberFormat("en-US");
  const fmtInt = (n) => intFmt.format(Math.round(n));
  function fmtCompact(n) {
    if (n < 100000) return fmtInt(n);
    if (n < 1e6) return (n / 1e3).toFixed(1) + "k";
    if (n < 1e9) return (n / 1e6).toFixed(2) + "M";
    return (n / 1e9).toFixed(2) + "B";
  }
  function fmtMs(ms) {
    if (!ms) return "—";
    if (ms < 1000) return Math.round(ms) + " ms";
    return (ms / 1000).toFixed(2) + " s";
  }
  function fmtCost(c) {
    if (!c) return "$0.00";
    return c < 0.1 ? "$" + c.toFixed(4) : "$" + intFmt.format(Number(c.toFixed(2)));
  }
  function fmtDuration(ms) {
    const s = Math.max(0, ms) / 1000;
    if (s < 60) return s.toFixed(1) + " s";
    if (s < 3600) return Math.floor(s / 60) + "m " + String(Math.floor(s % 60)).padStart(2, "0") + "s";
    return Math.floor(s / 3600) + "h " + String(Math.floor((s % 3600) / 60)).padStart(2, "0") + "m";
  }
  const fmtPct = (x) => (x * 100).toFixed(x > 0 && x < 0.1 ? 1 : 0) + "%";
  function hhmm(ms) {
    const d = new Date(ms);
    return String(d.getUTCHours()).padStart(2, "0") + ":" + String(d.getUTCMinutes()).padStart(2, "0");
  }

  // ---- DOM helpers ------------------------------------------------------------------------------------------
  function el(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  }
  function svg(tag, attrs) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, String(value));
    return node;
  }
  function setCell(cell, value, text, title) {
    cell.dataset.value = String(value);
    if (text !== undefined && cell.textContent !== text) cell.textContent = text;
    if (title !== undefined) cell.title = title;
  }

  // ---- fetching ---------------------------------------------------------------------------------------------
  async function poll() {
    clearTimeout(pollTimer);
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), FETCH_TIMEOUT_MS);
    try {
      const headers = key ? { Authorization: "Bearer " + key } : {};
      const response = await fetch(SNAPSHOT_URL, { headers, cache: "no-store", signal: controller.signal });
      if (response.status === 401) {
        const rejected = Boolean(key);
        if (rejected) {  // a wrong or revoked key is not kept
          sessionStorage.removeItem(KEY_STORAGE);
          key = "";
          $("forget-key").hidden = true;
        }
        askForKey(rejected ? "That key was not accepted." : "");
        return;  // polling resumes once a key is entered
      }
      const body = await response.json().catch(() => null);
      if (!response.ok) {
        const message = body && body.error && body.error.message ? body.error.message : "HTTP " + response.status;
        throw new Error(message);
      }
      lastOk = performance.now();
      lastError = "";
      latest = body;
      render(body);
    } catch (err) {
      lastError = err.name === "AbortError" ? "the edge did not answer in time" : String(err.message || err);
    } finally {
      clearTimeout(timer);
      updateConnection();
    }
    pollTimer = setTimeout(poll, POLL_MS);
  }

  function askForKey(message) {
    waitingForKey = true;
    const dialog = $("key-dialog");
    $("key-error").hidden = !message;
    $("key-error").textContent = message;
    $("conn-text").textContent = "needs the edge key";
    $("conn-dot").className = "dot stale";
    if (!dialog.open) dialog.showModal();
    $("key-input").focus();
  }

  $("key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const value = $("key-input").value.trim();
    if (!value) return;
    key = value;
    sessionStorage.setItem(KEY_STORAGE, key);
    $("key-input").value = "";
    $("key-dialog").close();
    waitingForKey = false;
    $("forget-key").hidden = false;
    poll();
  });
  $("key-dialog").addEventListener("cancel", (event) => event.preventDefault());
  $("forget-key").addEventListener("click", () => {
    sessionStorage.removeItem(KEY_STORAGE);
    key = "";
    $("forget-key").hidden = true;
    poll();
  });
  $("forget-key").hidden = !key;

  function updateConnection() {
    if (waitingForKey) return;
    const dot = $("conn-dot");
    const text = $("conn-text");
    const banner = $("banner");
    const age = lastOk ? performance.now() - lastOk : Infinity;
    if (lastError) {
      dot.className = "dot down";
      text.textContent = lastOk ? "no update for " + fmtDuration(age) : "cannot reach the edge";
      banner.hidden = false;
      banner.className = "banner";
      banner.textContent = lastError;
      return;
    }
    dot.className = age > STALE_MS ? "dot stale" : "dot live";
    text.textContent = age > STALE_MS ? "stale · " + fmtDuration(age) + " old" : "live";
    const usageError = latest && latest.usage && latest.usage.error;
    banner.hidden = !usageError;
    banner.className = "banner note";
    banner.textContent = usageError ? "Usage figures unavailable: " + usageError : "";
  }

  // ---- rendering --------------------------------------------------------------------------------------------
  function render(snap) {
    const seen = new Set();
    const main = $("pools");
    if (!snap.pools.length) {
      main.replaceChildren(el("div", "empty", "The selector serves no pools."));
      pools.clear();
      return;
    }
    const empty = main.querySelector(".empty");
    if (empty) empty.remove();
    for (const pool of snap.pools) {
      seen.add(pool.name);
      let view = pools.get(pool.name);
      if (!view) {
        view = makePool(pool);
        pools.set(pool.name, view);
      }
      main.appendChild(view.section);  // keeps the server's order
      updatePool(view, pool, snap);
    }
    for (const [name, view] of pools) {
      if (!seen.has(name)) {
        view.section.remove();
        pools.delete(name);
      }
    }
    updateTotals(snap);
    const usageAt = snap.usage.as_of_ms;
    if (usageAt !== lastUsageAt) {
      lastUsageAt = usageAt;
      for (const pool of snap.pools) drawCharts(pools.get(pool.name), pool, snap.usage);
    }
  }

  // [field, heading, class, width]: fixed widths keep the columns of every pool aligned.
  const COLUMNS = [
    ["account", "Account", "", "17%"], ["state", "State", "", "18%"], ["cooldown", "Cooldown", "num", "8%"],
    ["in_flight", "In flight", "num", "7%"], ["requests", "Requests", "num", "7%"],
    ["error_rate", "Recent errors", "num", "7%"], ["p50", "p50 today", "num", "7%"],
    ["tokens", "Tokens today", "num", "9%"], ["cost", "Cost today", "num", "7%"], ["headroom", "Headroom", "", "13%"],
  ];

  function makePool(pool) {
    const section = el("section", "pool");
    section.dataset.pool = pool.name;
    const head = el("div", "pool-head");
    const title = el("h2", "", pool.name);
    const badge = el("span", "badge", pool.format + " api");
    const strategy = el("span", "meta");
    const available = el("span", "meta");
    const waiting = el("span", "meta");
    const inflight = el("span", "meta");
    head.append(title, badge, strategy, el("span", "spacer"), available, waiting, inflight);
    const table = el("table", "accounts");
    const cols = el("colgroup");
    for (const [, , , width] of COLUMNS) {
      const col = el("col");
      col.style.width = width;
      cols.appendChild(col);
    }
    table.appendChild(cols);
    const thead = el("thead");
    const tr = el("tr");
    for (const [, label, cls] of COLUMNS) tr.appendChild(el("th", cls, label));
    thead.appendChild(tr);
    const tbody = el("tbody");
    table.append(thead, tbody);
    const charts = el("div", "charts");
    const requests = makeChart("Requests / min, last hour");
    const tokens = makeChart("Tokens / min, last hour");
    charts.append(requests.figure, tokens.figure);
    const legend = el("div", "legend");
    const wrap = el("div", "table-wrap");
    wrap.appendChild(table);
    section.append(head, wrap, charts, legend);
    return {
      section, tbody, rows: new Map(), legend, charts: { requests, tokens },
      meta: { strategy, available, waiting, inflight },
    };
  }

  function metaText(node, label, value) {
    node.replaceChildren(document.createTextNode(label + " "), el("b", "", value));
  }

  function updatePool(view, pool, snap) {
    metaText(view.meta.strategy, "strategy", pool.strategy);
    metaText(view.meta.available, "available", pool.available + " / " + pool.accounts.length);
    metaText(view.meta.waiting, "waiting", String(pool.waiting));
    metaText(view.meta.inflight, "edge in flight", String(snap.edge.in_flight[pool.name] || 0));
    view.meta.available.dataset.value = String(pool.available);
    const seen = new Set();
    pool.accounts.forEach((account, index) => {
      seen.add(account.id);
      let row = view.rows.get(account.id);
      if (!row) {
        row = makeRow(account);
        view.rows.set(account.id, row);
      }
      row.color = PALETTE[index % PALETTE.length];
      view.tbody.appendChild(row.tr);
      updateRow(row, account);
    });
    for (const [id, row] of view.rows) {
      if (!seen.has(id)) {
        row.tr.remove();
        view.rows.delete(id);
      }
    }
  }

  function makeRow(account) {
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
    cells.state.append(pill, reason);
    const hbar = el("div", "hbar");
    const hfill = el("span");
    hbar.appendChild(hfill);
    const hpct = el("span", "pct");
    const headroom = el("div", "headroom");
    headroom.append(hbar, hpct);
    cells.headroom.appendChild(headroom);
    return { tr, cells, swatch, cred, tag, pill, reason, hfill, hpct, deadline: 0, total: 0, color: "" };
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
    row.reason.textContent = a.state === "healthy" ? "" : a.reason;
    row.reason.title = a.reason;
    row.reason.hidden = a.state === "healthy" || !a.reason;

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
    setCell(c.error_rate, a.error_rate, fmtPct(a.error_rate), "share of recent requests that failed: of the first 5, then weighted toward the latest " +
      "(the newest counts 1/5; cancelled and client errors do not count)");
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

  setInterval(() => {
    const now = performance.now();
    for (const view of pools.values()) for (const row of view.rows.values()) if (row.deadline) tickRow(row, now);
    updateConnection();
  }, 100);

  function updateTotals(snap) {
    const counts = {};
    let accounts = 0;
    let requests = 0;
    let tokens = 0;
    let cost = 0;
    let inflight = 0;
    for (const pool of snap.pools) {
      inflight += snap.edge.in_flight[pool.name] || 0;
      for (const a of pool.accounts) {
        accounts += 1;
        counts[a.state] = (counts[a.state] || 0) + 1;
        if (a.today) {
          requests += a.today.requests;
          tokens += a.today.input_tokens + a.today.output_tokens;
          cost += a.today.cost;
        }
      }
    }
    const acc = $("t-accounts");
    acc.replaceChildren();
    const order = ["healthy", "probing", "cooling", "circuit_open", "disabled"];
    for (const state of order) {
      if (!counts[state]) continue;
      const span = el("span", "count");
      const n = el("span", "", String(counts[state]));
      n.style.color = "var(--" + { healthy: "healthy", cooling: "cooling", circuit_open: "open",
        probing: "probing", disabled: "disabled" }[state] + ")";
      span.append(n, el("i", "", STATE_LABELS[state]));
      acc.appendChild(span);
    }
    acc.dataset.value = String(accounts);
    setCell($("t-inflight"), inflight, fmtInt(inflight));
    setCell($("t-requests"), requests, fmtInt(requests));
    setCell($("t-tokens"), tokens, fmtCompact(tokens));
    setCell($("t-cost"), cost, fmtCost(cost));
  }

  // ---- charts -----------------------------------------------------------------------------------------------
  function makeChart(caption) {
    const figure = el("figure", "chart");
    const cap = el("figcaption", "", caption);
    const total = el("b");
    cap.appendChild(total);
    const plot = svg("svg", { role: "img" });
    figure.append(cap, plot);
    const chart = { figure, svg: plot, total, data: null };
    plot.addEventListener("mousemove", (event) => showCursor(chart, event));
    plot.addEventListener("mouseleave", () => hideCursor(chart));
    return chart;
  }

  // The top of the y axis: four equal steps of 1, 2 or 5 times a power of ten (whole numbers only).
  function niceMax(value) {
    const raw = Math.max(1, value / 4);
    const magnitude = Math.pow(10, Math.floor(Math.log10(raw)));
    for (const step of [1, 2, 5, 10]) if (step * magnitude >= raw) return 4 * step * magnitude;
    return 40 * magnitude;
  }

  function drawCharts(view, pool, usage) {
    if (!view) return;
    const series = pool.accounts.map((a, i) => ({
      name: a.name, color: PALETTE[i % PALETTE.length], requests: a.series.requests, tokens: a.series.tokens,
    }));
    drawChart(view.charts.requests, series, "requests", usage);
    drawChart(view.charts.tokens, series, "tokens", usage);
    view.legend.replaceChildren();
    for (const s of series) {
      const item = el("span");
      const sw = el("span", "swatch");
      sw.style.background = s.color;
      const sum = s.requests.reduce((x, y) => x + y, 0);
      item.append(sw, document.createTextNode(s.name + " · " + fmtInt(sum) + " req in the last hour"));
      view.legend.appendChild(item);
    }
  }

  function drawChart(chart, series, field, usage) {
    const plot = chart.svg;
    const width = Math.max(200, plot.clientWidth || 500);
    const height = 150;
    const left = 44;
    const right = 8;
    const top = 8;
    const bottom = 20;
    const minutes = usage.minutes;
    const max = niceMax(Math.max(0, ...series.flatMap((s) => s[field])));
    const x = (i) => left + (i / (minutes - 1)) * (width - left - right);
    const y = (v) => top + (1 - v / max) * (height - top - bottom);
    plot.setAttribute("viewBox", "0 0 " + width + " " + height);
    plot.replaceChildren();
    const grid = svg("g", { class: "grid" });
    const axis = svg("g", { class: "axis" });
    for (let k = 0; k <= 4; k++) {
      const v = (max / 4) * k;
      grid.appendChild(svg("line", { x1: left, x2: width - right, y1: y(v), y2: y(v) }));
      const label = svg("text", { x: left - 6, y: y(v) + 3.5, "text-anchor": "end" });
      label.textContent = fmtCompact(v);
      axis.appendChild(label);
    }
    for (const back of [60, 45, 30, 15, 0]) {
      const i = minutes - 1 - back;
      if (i < 0) continue;
      const label = svg("text", { x: x(i), y: height - 5, "text-anchor": back === 60 ? "start" : back ? "middle" : "end" });
      label.textContent = back ? hhmm(usage.series_start_ms + i * 60000) : "now";
      axis.appendChild(label);
    }
    plot.append(grid, axis);
    const lines = svg("g", { class: "series" });
    let total = 0;
    for (const s of series) {
      const values = s[field];
      total += values.reduce((a, b) => a + b, 0);
      const points = values.map((v, i) => x(i).toFixed(1) + "," + y(v).toFixed(1)).join(" ");
      const area = svg("path", {
        d: "M" + x(0) + "," + y(0) + " L" + points.split(" ").join(" L") + " L" + x(values.length - 1) + "," + y(0) + " Z",
        fill: s.color,
      });
      const line = svg("polyline", { points, stroke: s.color });
      lines.append(area, line);
    }
    plot.appendChild(lines);
    const cursor = svg("g", { class: "cursor" });
    plot.appendChild(cursor);
    chart.total.textContent = fmtCompact(total);
    chart.figure.dataset.total = String(total);
    chart.data = { series, field, usage, width, left, right, cursor, top, height, bottom };
  }

  let tooltip = null;
  function showCursor(chart, event) {
    const d = chart.data;
    if (!d) return;
    const rect = chart.svg.getBoundingClientRect();
    const px = ((event.clientX - rect.left) / rect.width) * d.width;
    const minutes = d.usage.minutes;
    const i = Math.round(((px - d.left) / (d.width - d.left - d.right)) * (minutes - 1));
    if (i < 0 || i >= minutes) return hideCursor(chart);
    const cx = d.left + (i / (minutes - 1)) * (d.width - d.left - d.right);
    d.cursor.replaceChildren(svg("line", { x1: cx, x2: cx, y1: d.top, y2: d.height - d.bottom }));
    if (!tooltip) {
      tooltip = el("div", "tooltip");
      document.body.appendChild(tooltip);
    }
    tooltip.replaceChildren(el("div", "dim", hhmm(d.usage.series_start_ms + i * 60000) + " UTC"));
    for (const s of d.series) {
      const row = el("div", "row");
      const sw = el("span", "swatch");
      sw.style.background = s.color;
      row.append(sw, el("span", "", s.name), el("b", "", fmtInt(s[d.field][i])));
      tooltip.appendChild(row);
    }
    tooltip.hidden = false;
    tooltip.style.left = Math.min(window.innerWidth - 180, event.clientX + 14) + "px";
    tooltip.style.top = event.clientY + 14 + "px";
  }
  function hideCursor(chart) {
    if (chart.data) chart.data.cursor.replaceChildren();
    if (tooltip) tooltip.hidden = true;
  }

  let resizeTimer = 0;
  window.addEventListener("resize", () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => { lastUsageAt = -1; if (latest) render(latest); }, 150);
  });

  poll();
})();
