// poolgate dashboard: operator actions (enable, disable with a reason, reset an account; reload the selector's
// config) as window.PG.admin. Each is confirmed in a dialog and sent with the selector's admin token, which the
// operator enters here and the tab keeps in sessionStorage (never localStorage or a cookie); the selector checks it.
"use strict";

(function () {
  const { $, el, announce, openDialog } = window.PG;
  const TOKEN_STORAGE = "poolgate.adminToken";
  const TOKEN_HEADER = "X-Poolgate-Admin-Token";
  const ACTIONS = {
    enable: { verb: "Enable", done: "enabled", text: "It serves again, and its failures are forgotten." },
    disable: { verb: "Disable", done: "disabled", text: "It takes no requests until it is enabled again." },
    reset: { verb: "Reset", done: "reset",
      text: "Its cooldowns, failure streak and open circuit are cleared (a disable stays)." },
    reload: { verb: "Reload", done: "reloaded",
      text: "The selector re-reads its config file and applies it; a config with errors is refused and the " +
        "running one stays." },
  };
  let token = sessionStorage.getItem(TOKEN_STORAGE) || "";
  let pending = null;  // {action, target} waiting for the admin token or the confirmation
  let busy = false;

  function setToken(value) {
    token = value;
    if (value) sessionStorage.setItem(TOKEN_STORAGE, value);
    else sessionStorage.removeItem(TOKEN_STORAGE);
    $("forget-admin").hidden = !value;
    $("admin-button").textContent = value ? "Admin token ✓" : "Admin token";
  }

  function askForToken(message) {
    $("admin-error").textContent = message || "";
    $("admin-error").hidden = !message;
    $("admin-input").value = "";
    openDialog($("admin-dialog"), $("admin-input"), pending ? pending.opener : null);
  }

  // Start an action: ask for the token first when there is none, then for confirmation.
  function request(action, target) {
    pending = { action, target, opener: document.activeElement };
    if (!token) {
      askForToken("");
      return;
    }
    confirmPending();
  }

  function confirmPending() {
    const { action, target } = pending;
    const spec = ACTIONS[action];
    const what = target ? "account " + target.id : "the selector's config";
    $("confirm-title").textContent = spec.verb + " " + what + "?";
    $("confirm-text").textContent = spec.text;
    $("confirm-reason-field").hidden = action !== "disable";
    $("confirm-reason").value = "";
    $("confirm-error").hidden = true;
    $("confirm-error").textContent = "";
    $("confirm-submit").textContent = spec.verb;
    $("confirm-submit").disabled = false;
    openDialog($("confirm-dialog"), action === "disable" ? $("confirm-reason") : $("confirm-submit"),
      pending.opener);
  }

  async function send() {
    const { action, target } = pending;
    const path = action === "reload" ? "dashboard/api/reload" : "dashboard/api/accounts/" + action;
    const body = target ? { pool: target.pool, account: target.name } : {};
    if (action === "disable") body.reason = $("confirm-reason").value.trim();
    const headers = Object.assign({ "Content-Type": "application/json", [TOKEN_HEADER]: token },
      window.PG.edgeHeaders());
    const response = await fetch(path, { method: "POST", headers, body: JSON.stringify(body), cache: "no-store" });
    const answer = await response.json().catch(() => null);
    if (response.ok) return { ok: true, answer };
    const error = answer && answer.error ? answer.error : {};
    return { ok: false, code: error.code || "", message: error.message || "HTTP " + response.status };
  }

  function summary(action, target, answer) {
    if (action !== "reload") return "Account " + target.id + " " + ACTIONS[action].done + ".";
    const changes = [];
    for (const [field, label] of [["pools_added", "pools added"], ["pools_removed", "pools removed"],
      ["accounts_added", "accounts added"], ["accounts_removed", "accounts removed"]]) {
      if (answer[field].length) changes.push(label + ": " + answer[field].join(", "));
    }
    return "Config reloaded" + (changes.length ? " (" + changes.join("; ") + ")." : "; nothing changed.");
  }

  $("confirm-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    if (busy || !pending) return;
    busy = true;
    $("confirm-submit").disabled = true;
    const { action, target } = pending;
    let result;
    try {
      result = await send();
    } catch (err) {
      result = { ok: false, code: "", message: "the edge did not answer: " + String(err.message || err) };
    } finally {
      busy = false;
      $("confirm-submit").disabled = false;
    }
    if (result.ok) {
      pending = null;
      $("confirm-dialog").close();
      announce(summary(action, target, result.answer));
      window.PG.refresh();
      return;
    }
    if (result.code.startsWith("admin_token_")) setToken("");  // a refused token is not kept
    $("confirm-error").textContent = result.message;
    $("confirm-error").hidden = false;
    announce(ACTIONS[action].verb + " failed: " + result.message);
  });
  $("confirm-cancel").addEventListener("click", () => $("confirm-dialog").close());
  $("confirm-dialog").addEventListener("close", () => { if (!busy) pending = null; });

  $("admin-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const value = $("admin-input").value.trim();
    if (!value) return;
    setToken(value);
    $("admin-input").value = "";
    $("admin-dialog").close();
    announce("Admin token set for this tab.");
    if (pending) confirmPending();
  });
  $("admin-cancel").addEventListener("click", () => $("admin-dialog").close());
  $("admin-dialog").addEventListener("close", () => { if (!$("confirm-dialog").open && !token) pending = null; });
  $("admin-button").addEventListener("click", () => { pending = null; askForToken(""); });
  $("forget-admin").addEventListener("click", () => {
    setToken("");
    announce("Admin token forgotten.");
    $("admin-button").focus();
  });
  $("reload-button").addEventListener("click", () => request("reload", null));
  setToken(token);

  // The buttons of one account's row; update() shows Enable or Disable as its state calls for.
  function rowButtons(target) {
    const node = el("div", "row-actions");
    const toggle = el("button", "act");
    toggle.type = "button";
    const reset = el("button", "act", "Reset");
    reset.type = "button";
    reset.setAttribute("aria-label", "Reset " + target.id);
    reset.addEventListener("click", () => request("reset", target));
    toggle.addEventListener("click", () => request(toggle.dataset.action, target));
    node.append(toggle, reset);
    return {
      node,
      update(account) {
        const action = account.state === "disabled" ? "enable" : "disable";
        if (toggle.dataset.action === action) return;
        toggle.dataset.action = action;
        toggle.textContent = ACTIONS[action].verb;
        toggle.setAttribute("aria-label", ACTIONS[action].verb + " " + target.id);
      },
    };
  }

  window.PG.admin = { rowButtons };
})();
