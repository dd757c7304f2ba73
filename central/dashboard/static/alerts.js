/* Alerts page: a filterable list; operators acknowledge and resolve, with who and when. */
"use strict";

pg.page(async () => {
  const { t, el, $, fmt } = pg;
  const TYPES = ["zone_overstay", "bay_occupied_while_closed", "sign_down", "sensor_silent",
    "sensor_low_battery", "outbox_overflow", "clock_unsynchronised", "ack_refused"];
  const RANK = { critical: 0, escalated: 1, warning: 2, info: 3 };
  $("#f-type").append(...TYPES.map((x) => el("option", { value: x, text: t("alerttype." + x) })));
  const q = pg.cfg.query;
  if (q.state) $("#f-state").value = q.state;
  if (q.severity) $("#f-severity").value = q.severity;
  if (q.type) $("#f-type").value = q.type;
  let rows = [];

  async function load() {
    const state = $("#f-state").value;
    const get = (s) => pg.api("/api/v1/alerts?limit=1000" + (s ? "&state=" + s : ""));
    rows = state === "open" ? (await Promise.all([get("raised"), get("acknowledged")])).flat()
      : await get(state === "all" ? "" : state);
    render();
  }

  function where(a) {
    return [a.lot_id, a.zone_id, a.bay_id, a.sign_id, a.sensor_id].filter(Boolean).join(" · ") || a.box_id;
  }

  async function act(a, action, note) {
    try {
      await pg.api(`/api/v1/alerts/${a.id}/${action}`, { method: "POST", body: note ? { note } : {} });
      pg.banner("");
      await load();
    } catch (e) {
      pg.banner(t("alerts.action_failed") + ": " + e.message, "error");
    }
  }

  function render() {
    const sev = $("#f-severity").value;
    const type = $("#f-type").value;
    const text = $("#f-text").value.trim().toLowerCase();
    const shown = rows
      .filter((a) => (!sev || a.severity === sev) && (!type || a.alert_type === type))
      .filter((a) => !text || [a.message, where(a), a.box_id, a.alert_id].join(" ").toLowerCase().includes(text))
      .sort((a, b) => (RANK[a.severity] - RANK[b.severity]) || (Date.parse(b.since) - Date.parse(a.since)));
    $("#count").textContent = t("alerts.count", { n: shown.length });
    const operator = pg.can("operator");
    $("#alerts tbody").replaceChildren(...shown.map((a) => {
      const note = el("input", { placeholder: t("alerts.note"), size: 10, class: "note" });
      const who = [];
      if (a.acknowledged_by) who.push(el("div", { text: `${t("alertstate.acknowledged")}: ${a.acknowledged_by} · ${fmt.dateTime(a.acknowledged_at)}` }));
      if (a.resolved_by || a.resolved_at) who.push(el("div", { text: `${t("alertstate.resolved")}: ${a.resolved_by || a.box_id} · ${fmt.dateTime(a.resolved_at)}` }));
      return el("tr", { class: "sev-" + a.severity, "data-alert": a.id },
        el("td", {}, el("span", { class: "pill " + a.severity, text: t("severity." + a.severity) }),
          a.step ? el("span", { class: "muted", text: " " + t("alerts.step") + " " + a.step }) : null),
        el("td", { text: t("alerttype." + a.alert_type) }),
        el("td", { text: a.message || "" }),
        el("td", { text: where(a) }),
        el("td", { text: `${fmt.dateTime(a.since)} (${fmt.ago(a.since)})` }),
        el("td", { class: "state", text: t("alertstate." + a.state) }),
        el("td", { class: "who" }, who),
        operator ? el("td", { class: "actions" },
          a.state !== "resolved" ? note : null,
          a.state === "raised" ? el("button", { class: "warn", "data-action": "acknowledge", onclick: () => act(a, "acknowledge", note.value), text: t("alerts.acknowledge") }) : null,
          a.state !== "resolved" ? el("button", { class: "ok", "data-action": "resolve", onclick: () => act(a, "resolve", note.value), text: t("alerts.resolve") }) : null)
          : null);
    }));
  }

  for (const id of ["#f-state"]) $(id).addEventListener("change", () => load().catch(console.warn));
  for (const id of ["#f-severity", "#f-type"]) $(id).addEventListener("change", render);
  $("#f-text").addEventListener("input", render);
  await load();
  const refresh = pg.debounce(() => load().catch(console.warn), 200);
  setInterval(render, 30000);
  pg.live({ alert_raised: refresh, alert_resolved: refresh }, load);
});
