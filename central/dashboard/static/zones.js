/* Zones page: each stall zone with class, window, next transition, occupancy, alert ladder. */
"use strict";

pg.page(async () => {
  const { t, el, $, fmt } = pg;
  let zones = [];
  let alerts = [];
  const LADDER = 4;

  function ladder(step, severity) {
    return el("span", { class: "ladder", title: t("alerts.step") + " " + step },
      Array.from({ length: LADDER }, (_, i) =>
        el("i", { class: i <= step ? "on" + (severity === "critical" || severity === "escalated" ? " hot" : "") : "" })));
  }

  function render() {
    const box = $("#zones");
    if (!zones.length) {
      box.replaceChildren(el("p", { class: "muted", text: t("zones.none") }));
      return;
    }
    box.replaceChildren(...zones.map((z) => {
      const mine = alerts.filter((a) => a.zone_id === z.id);
      // The API decides (site_model/availability.py): a stale zone keeps its last state.
      const state = z.availability === "unknown" ? "unknown" : z.state || "unknown";
      return el("div", { class: "panel zone", "data-zone": z.id },
        el("div", { class: "name" }, el("b", { text: z.name }), " ",
          el("span", { class: "muted", text: z.id })),
        el("div", { class: "row" },
          el("div", {}, el("div", { class: "muted", text: t("zones.class") }), el("b", { text: t("zoneclass." + z.zone_class) })),
          el("div", {}, el("div", { class: "muted", text: t("zones.state") }), el("div", { class: "state " + state, text: t("zonestate." + state) })),
          el("div", {}, el("div", { class: "muted", text: t("zones.occupied") }), el("div", { class: "state", text: z.occupied ?? "—" }))),
        el("div", { class: "muted" }, t("zones.window") + ": ",
          el("span", { text: z.window_start ? `${fmt.hm(z.window_start)} – ${fmt.hm(z.window_end)}` : t("zones.no_window") })),
        el("div", { class: "muted" }, t("zones.next") + ": ",
          el("span", { text: z.next_transition ? `${fmt.dateTime(z.next_transition)}` : "—" })),
        z.stale ? el("div", { class: "badge grey", text: t("lot.stale") }) : null,
        el("h2", { text: t("zones.alerts") + ` (${mine.length})` }),
        mine.length ? el("table", { class: "list" },
          el("tbody", {}, mine.map((a) => el("tr", { class: "sev-" + a.severity },
            el("td", {}, ladder(a.step, a.severity)),
            el("td", {}, el("span", { class: "pill " + a.severity, text: t("severity." + a.severity) })),
            el("td", { text: a.message || t("alerttype." + a.alert_type) }),
            el("td", { class: "who", text: fmt.ago(a.since) })))))
          : el("div", { class: "muted", text: t("zones.no_alerts") }));
    }));
  }

  async function loadZones() { zones = await pg.api("/api/v1/zones"); render(); }
  async function loadAlerts() {
    const [raised, acked] = await Promise.all([
      pg.api("/api/v1/alerts?state=raised&limit=1000"),
      pg.api("/api/v1/alerts?state=acknowledged&limit=1000"),
    ]);
    alerts = raised.concat(acked).sort((a, b) => b.step - a.step);
    render();
  }
  const reloadAll = () => Promise.all([loadZones(), loadAlerts()]);
  await reloadAll();
  const refreshZones = pg.debounce(() => loadZones().catch(console.warn), 100);
  const refreshAlerts = pg.debounce(() => loadAlerts().catch(console.warn), 200);
  setInterval(render, 30000);
  pg.live({ zone: refreshZones, box: refreshZones, alert_raised: refreshAlerts, alert_resolved: refreshAlerts }, reloadAll);
});
