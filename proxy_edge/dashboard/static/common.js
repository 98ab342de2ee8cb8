// poolgate dashboard: what the page's scripts share (formatting, DOM helpers, announcements, dialogs), as window.PG.
// Every value from the server is written with textContent, never as HTML.
"use strict";

(function () {
  const SVG_NS = "http://www.w3.org/2000/svg";
  const $ = (id) => document.getElementById(id);

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

  // The page's one live region: state changes and the outcome of actions, never a countdown's tick. The same
  // message twice in a row is spoken twice (the text is cleared first).
  function announce(message) {
    const region = $("announcer");
    region.textContent = "";
    setTimeout(() => { region.textContent = message; }, 50);
  }

  // A modal dialog, opened with focus on `focus` (its first field by default) and closed by Escape or its buttons;
  // focus then goes back to `returnTo` (what had it before), unless another dialog took over.
  function openDialog(dialog, focus, returnTo) {
    const back = returnTo || document.activeElement;
    if (!dialog.open) dialog.showModal();
    dialog.addEventListener("close", () => {
      if (document.querySelector("dialog[open]")) return;
      if (back && back.isConnected && typeof back.focus === "function") back.focus();
    }, { once: true });
    (focus || dialog.querySelector("input, textarea, button")).focus();
  }

  window.PG = {
    $, el, svg, announce, openDialog,
    fmtInt, fmtCompact, fmtMs, fmtCost, fmtDuration, fmtPct, hhmm,
    STATE_LABELS: {
      healthy: "healthy", cooling: "cooling", circuit_open: "circuit open",
      probing: "probing", disabled: "disabled", unspecified: "unknown",
    },
  };
})();
