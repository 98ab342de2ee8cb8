// poolgate dashboard: polls dashboard/api/snapshot every second and updates the page in place (no reload, no
// external resources). Every value from the server is written with textContent, never as HTML. Formatting and
// dialogs come from common.js, the charts from charts.js, the operator actions from admin.js, the account rows from
// rows.js.
"use strict";

(function () {
  const { $, el, announce, openDialog, fmtInt, fmtCompact, fmtCost, fmtDuration, STATE_LABELS } = window.PG;
  const { PALETTE, makeChart, drawCharts } = window.PG.charts;
  const { COLUMNS, makeRow, updateRow, tickRow, setCell } = window.PG.rows;
  const SNAPSHOT_URL = "dashboard/api/snapshot";
  const KEY_STORAGE = "poolgate.edgeKey";
  const POLL_MS = 1000;
  const FETCH_TIMEOUT_MS = 8000;
  const STALE_MS = 5000;
  const pools = new Map();   // pool name -> {section, tbody, rows: Map(id -> row), charts}
  let key = sessionStorage.getItem(KEY_STORAGE) || "";
  let lastOk = 0;            // performance.now() of the last good snapshot
  let lastError = "";
  let waitingForKey = false;
  let lastUsageAt = -1;
  let latest = null;
  let pollTimer = 0;
  let connection = "";       // "live" or "down": a change is announced
  const states = new Map();  // account id -> the state last shown, to announce changes

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
    clearTimeout(pollTimer);  // a refresh asked for during a poll leaves one timer, not two
    pollTimer = setTimeout(poll, POLL_MS);
  }

  function askForKey(message) {
    waitingForKey = true;
    $("key-error").hidden = !message;
    $("key-error").textContent = message;
    $("conn-text").textContent = "needs the edge key";
    $("conn-dot").className = "dot stale";
    $("enter-key").hidden = false;
    if (message) announce(message);
    openDialog($("key-dialog"), $("key-input"));
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
    $("enter-key").hidden = true;
    poll();
  });
  // Escape closes the dialog; the page then waits, and "Enter key" opens it again.
  $("key-cancel").addEventListener("click", () => $("key-dialog").close());
  $("enter-key").addEventListener("click", () => askForKey(""));
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
    const now = lastError ? "down" : age > STALE_MS ? "stale" : "live";
    if (now !== connection && (now === "down" || connection === "down")) {
      announce(now === "down" ? "Lost contact: " + lastError : "Live again.");
    }
    connection = now;
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
    window.PG.renderClients(snap.clients || []);
    if (changes.length) announce(changes.join(". ") + ".");
    changes = [];
    const usageAt = snap.usage.as_of_ms;
    if (usageAt !== lastUsageAt) {
      lastUsageAt = usageAt;
      for (const pool of snap.pools) drawCharts(pools.get(pool.name), pool, snap.usage);
    }
  }

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
    table.appendChild(el("caption", "visually-hidden", "Accounts of pool " + pool.name));
    const cols = el("colgroup");
    for (const [, , , width] of COLUMNS) {
      const col = el("col");
      col.style.width = width;
      cols.appendChild(col);
    }
    table.appendChild(cols);
    const thead = el("thead");
    const tr = el("tr");
    for (const [, label, cls] of COLUMNS) tr.appendChild(Object.assign(el("th", cls, label), { scope: "col" }));
    thead.appendChild(tr);
    const tbody = el("tbody");
    table.append(thead, tbody);
    const charts = el("div", "charts");
    const requests = makeChart("Requests / min, last hour, pool " + pool.name, "requests");
    const tokens = makeChart("Tokens / min, last hour, pool " + pool.name, "tokens");
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
        row = makeRow(account, pool.name);
        view.rows.set(account.id, row);
      }
      row.color = PALETTE[index % PALETTE.length];
      view.tbody.appendChild(row.tr);
      updateRow(row, account);
      noteState(account);
    });
    for (const [id, row] of view.rows) {
      if (!seen.has(id)) {
        row.tr.remove();
        view.rows.delete(id);
      }
    }
  }

  // A changed state is announced (once per snapshot, together); a countdown never is.
  let changes = [];
  function noteState(a) {
    const before = states.get(a.id);
    states.set(a.id, a.state);
    if (before === undefined || before === a.state) return;
    const label = STATE_LABELS[a.state] || a.state;
    if (a.state === "healthy") changes.push(a.id + " recovered: healthy");
    else changes.push(a.id + " " + label + (a.reason ? ": " + a.reason : ""));
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

  let resizeTimer = 0;
  window.addEventListener("resize", () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => { lastUsageAt = -1; if (latest) render(latest); }, 150);
  });

  window.PG.edgeHeaders = () => (key ? { Authorization: "Bearer " + key } : {});
  window.PG.refresh = poll;
  poll();
})();
