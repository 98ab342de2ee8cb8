// poolgate dashboard: each pool's requests and tokens per minute over the last hour, per account (SVG), as window.PG
// .charts. Each chart is a <figure> with a caption, an accessible name stating its current values, and its data as a
// table (under a disclosure), for whoever cannot see the lines.
"use strict";

(function () {
  const { el, svg, fmtInt, fmtCompact, hhmm } = window.PG;
  // Account colours in the charts; kept apart from the state colours (green, amber, orange, red, grey).
  const PALETTE = ["#58a6ff", "#d2a8ff", "#39c5cf", "#f778ba", "#a5d6ff", "#bc8cff", "#56d4dd", "#ffadd2",
    "#1f6feb", "#8957e5", "#1b9aaa", "#bf4b8a"];
  const HEIGHT = 150;

  function makeChart(caption, unit) {
    const figure = el("figure", "chart");
    const cap = el("figcaption", "", caption);
    const total = el("b");
    cap.appendChild(total);
    const plot = svg("svg", { role: "img", "aria-label": caption + ": no data yet" });
    const details = el("details", "chart-data");
    const summary = el("summary", "", "Show the data as a table");
    const table = el("table", "data");
    const tableCaption = el("caption", "", caption + " (UTC)");
    const thead = el("thead");
    const tbody = el("tbody");
    table.append(tableCaption, thead, tbody);
    const scroller = el("div", "scroller");  // scrolls by keyboard too
    scroller.tabIndex = 0;
    scroller.setAttribute("role", "region");
    scroller.setAttribute("aria-label", caption + ", table");
    scroller.appendChild(table);
    details.append(summary, scroller);
    figure.append(cap, plot, details);
    const chart = { figure, svg: plot, total, caption, unit, thead, tbody, data: null };
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

  // "Requests / min, last hour: 4 in all; personal 4 (at most 2 a minute, 0 in the last minute); work 0."
  function describe(chart, series, field) {
    const parts = series.map((s) => {
      const values = s[field];
      const sum = values.reduce((a, b) => a + b, 0);
      if (!sum) return s.name + " " + chart.unit + " 0";
      return s.name + " " + fmtInt(sum) + " " + chart.unit + " (at most " + fmtInt(Math.max(...values)) +
        " a minute, " + fmtInt(values[values.length - 1]) + " in the last minute)";
    });
    const total = series.reduce((t, s) => t + s[field].reduce((a, b) => a + b, 0), 0);
    return chart.caption + ": " + fmtInt(total) + " " + chart.unit + " in all" + (parts.length ? "; " : "") +
      parts.join("; ") + ".";
  }

  function fillTable(chart, series, field, usage) {
    const head = el("tr");
    head.appendChild(Object.assign(el("th", "", "Minute"), { scope: "col" }));
    for (const s of series) head.appendChild(Object.assign(el("th", "num", s.name), { scope: "col" }));
    chart.thead.replaceChildren(head);
    const rows = [];
    for (let i = 0; i < usage.minutes; i++) {
      const tr = el("tr");
      tr.appendChild(Object.assign(el("th", "", hhmm(usage.series_start_ms + i * 60000)), { scope: "row" }));
      for (const s of series) tr.appendChild(el("td", "num", fmtInt(s[field][i] || 0)));
      rows.push(tr);
    }
    chart.tbody.replaceChildren(...rows);
  }

  function drawChart(chart, series, field, usage) {
    const plot = chart.svg;
    const width = Math.max(200, plot.clientWidth || 500);
    const left = 44;
    const right = 8;
    const top = 8;
    const bottom = 20;
    const minutes = usage.minutes;
    const max = niceMax(Math.max(0, ...series.flatMap((s) => s[field])));
    const x = (i) => left + (i / (minutes - 1)) * (width - left - right);
    const y = (v) => top + (1 - v / max) * (HEIGHT - top - bottom);
    plot.setAttribute("viewBox", "0 0 " + width + " " + HEIGHT);
    plot.setAttribute("aria-label", describe(chart, series, field));
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
      const label = svg("text", { x: x(i), y: HEIGHT - 5, "text-anchor": back === 60 ? "start" : back ? "middle" : "end" });
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
    fillTable(chart, series, field, usage);
    chart.data = { series, field, usage, width, left, right, cursor, top, height: HEIGHT, bottom };
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
      tooltip.setAttribute("aria-hidden", "true");  // the chart's name and table carry the same values
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

  window.PG.charts = { PALETTE, makeChart, drawCharts };
})();
