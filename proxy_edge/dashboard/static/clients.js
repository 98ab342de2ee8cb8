// poolgate dashboard: today's usage per client key (edge.clients names; plain keys by their redacted form), as
// window.PG.renderClients. A labelled table; the section stays hidden while no client has used the edge today.
"use strict";

(function () {
  const { $, el, fmtInt, fmtCompact, fmtCost } = window.PG;

  function renderClients(clients) {
    const section = $("clients");
    section.hidden = !clients.length;
    const rows = clients.map((c) => {
      const tr = el("tr");
      const name = el("th", "", c.name);
      name.scope = "row";
      tr.append(name, el("td", "num", fmtInt(c.requests)), el("td", "num", fmtInt(c.errors)),
        el("td", "num", fmtInt(c.rate_limited)), el("td", "num", fmtCompact(c.input_tokens)),
        el("td", "num", fmtCompact(c.output_tokens)), el("td", "num", fmtCost(c.cost)));
      return tr;
    });
    $("clients-body").replaceChildren(...rows);
  }

  window.PG.renderClients = renderClients;
})();
