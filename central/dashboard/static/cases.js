/* Cases page: the closed loop per grid; time limits, overdue cases, history; operators act. */
"use strict";

pg.page(async () => {
  const { t, el, $, fmt } = pg;
  const KINDS = ["tow", "zone_overstay", "bay_occupied_while_closed", "sign_down", "outbox_overflow", "clock_unsynchronised"];
  const TONE = { registered: "amber", dispatched: "amber", handled: "green", verified: "green", closed: "grey" };
  const OPEN = new Set(["registered", "dispatched", "handled", "verified"]);
  let site = { grids: {}, segments: {}, lots: {}, zones: {}, entries: {} };
  try {
    site = (await pg.api("/api/v1/site")).document;
  } catch (e) {
    console.warn("no site document", e);
  }
  $("#f-grid").append(...Object.entries(site.grids || {}).map(([id, g]) => el("option", { value: id, text: g.name.split(" ")[0] })));
  $("#f-kind").append(...KINDS.map((k) => el("option", { value: k, text: t("ckind." + k) })));
  const q = pg.cfg.query;
  if (q.grid) $("#f-grid").value = q.grid;
  if (q.state !== undefined) $("#f-state").value = q.state;
  if (q.overdue) $("#f-overdue").value = q.overdue;
  let rows = [];
  const expanded = new Map(); // case id -> its history (read when opened)

  function placeName(place) {
    if (!place) return "—";
    const [kind, id] = place.split(":");
    const table = { segment: site.segments, lot: site.lots, zone: site.zones, entry: site.entries }[kind] || {};
    return table[id] && table[id].name ? table[id].name.split(" ")[0] : place;
  }
  const gridName = (id) => (id && site.grids[id] ? site.grids[id].name.split(" ")[0] : t("cases.no_grid"));

  async function load() {
    const p = new URLSearchParams({ limit: "1000" });
    for (const [key, id] of [["grid_id", "#f-grid"], ["kind", "#f-kind"], ["overdue", "#f-overdue"]]) {
      if ($(id).value) p.set(key, $(id).value);
    }
    const state = $("#f-state").value;
    if (state && state !== "open") p.set("state", state);
    rows = (await pg.api("/api/v1/cases?" + p)).filter((c) => state !== "open" || OPEN.has(c.state));
    for (const id of expanded.keys()) expanded.set(id, (await pg.api(`/api/v1/cases/${id}`)).history);
    render();
  }

  function limit(label, due, done) {
    const late = (done ? Date.parse(done) : Date.now()) > Date.parse(due);
    const text = done ? `${label} ${fmt.dateTime(done)}` : `${label} ≤ ${fmt.dateTime(due)}`;
    return el("div", { class: late ? "late" : "due", title: `${label}: ${fmt.dateTime(due)}` }, text, late ? ` (${t("cases.late")})` : "");
  }

  async function act(c, action, note) {
    try {
      await pg.api(`/api/v1/cases/${c.id}/actions`, { method: "POST", body: { action, note: note || null } });
      pg.banner("");
      await load();
    } catch (e) {
      pg.banner(t("alerts.action_failed") + ": " + e.message, "error");
    }
  }

  async function toggle(c) {
    if (expanded.has(c.id)) expanded.delete(c.id);
    else expanded.set(c.id, (await pg.api(`/api/v1/cases/${c.id}`)).history);
    render();
  }

  function render() {
    $("#count").textContent = t("ledger.count", { n: rows.length });
    const operator = pg.can("operator");
    const out = [];
    for (const c of rows) {
      const note = el("input", { placeholder: t("alerts.note"), size: 10, class: "note" });
      const acts = c.actions.filter((a) => a !== "acknowledge" || !c.acknowledged_at);
      out.push(el("tr", { class: "pick" + (c.overdue ? " overdue" : ""), "data-case": c.id },
        el("td", { class: "num", text: c.id }),
        el("td", {}, t("ckind." + c.kind), c.escalation ? el("div", {}, el("span", { class: "pill escalated", text: t("cases.escalated", { n: c.escalation }) })) : null),
        el("td", {}, el("button", { class: "linkish", onclick: () => toggle(c), text: c.title }),
          c.detail && c.detail.plate ? el("div", { class: "muted", text: c.detail.plate }) : null,
          c.ledger_seq ? el("div", {}, el("a", { href: `/dashboard/ledger?seq=${c.ledger_seq}`, text: `${t("nav.ledger")} #${c.ledger_seq}` })) : null),
        el("td", { title: c.place || "", text: placeName(c.place) }),
        el("td", { text: gridName(c.grid_id) }),
        el("td", { text: `${fmt.dateTime(c.registered_at)} (${fmt.ago(c.registered_at)})` }),
        el("td", { class: "limits" }, limit(t("cases.ack"), c.ack_due_at, c.acknowledged_at), limit(t("cases.close"), c.close_due_at, c.closed_at)),
        el("td", { class: "state" }, el("span", { class: "badge " + (TONE[c.state] || "grey"), "data-state": c.state, text: t("cstate." + c.state) }),
          c.overdue ? el("div", { class: "late", text: t("cases.overdue") }) : null),
        operator ? el("td", { class: "actions" }, acts.length ? note : null,
          acts.map((a) => el("button", { class: a === "reopen" ? "warn" : "ok", "data-action": a, text: t("caction." + a), onclick: () => act(c, a, note.value) })))
          : null));
      if (expanded.has(c.id)) {
        out.push(el("tr", { class: "case-history", "data-history": c.id }, el("td", { colspan: 9 },
          el("ul", { class: "steps" }, expanded.get(c.id).map((h) => el("li", {},
            `${fmt.dateTime(h.at)} · ${t("caction." + h.action)} · `,
            h.from_state && h.from_state !== h.to_state ? `${t("cstate." + h.from_state)} → ` : "",
            `${t("cstate." + h.to_state)} · ${h.actor}`, h.note ? ` · ${h.note}` : ""))))));
      }
    }
    $("#cases tbody").replaceChildren(...out);
  }

  for (const id of ["#f-grid", "#f-kind", "#f-state", "#f-overdue"]) $(id).addEventListener("change", () => load().catch(console.warn));
  await load();
  const refresh = pg.debounce(() => load().catch(console.warn), 200);
  setInterval(render, 30000); // "late" turns on by the clock, not only by a notice
  pg.live({ case: refresh, ledger: refresh, alert_raised: refresh, alert_resolved: refresh }, load);
});
