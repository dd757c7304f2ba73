/* Cameras page: captures held for their camera's clock (operators confirm the time, one
   capture or a camera's whole backlog), and the values cameras sent that no table knows. */
"use strict";

pg.page(async () => {
  const { t, el, $, fmt } = pg;
  let held = [];
  let unmapped = [];
  // With the year and seconds: a wrong camera clock is often years or seconds off.
  const fullFmt = new Intl.DateTimeFormat(pg.cfg.lang === "zh" ? "zh-CN" : "en-GB", {
    timeZone: (pg.cfg.site && pg.cfg.site.timezone) || undefined, year: "numeric", month: "2-digit",
    day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23",
  });
  const full = (v) => (v ? fullFmt.format(typeof v === "number" ? v : Date.parse(v)) : "—");

  let site = { segments: {}, lots: {}, zones: {}, entries: {} };
  try {
    site = (await pg.api("/api/v1/site")).document;
  } catch (e) {
    console.warn("no site document", e);
  }
  function placeName(place) {
    const [kind, id] = (place || "").split(":");
    const table = { segment: site.segments, lot: site.lots, zone: site.zones, entry: site.entries }[kind] || {};
    return table[id] && table[id].name ? table[id].name : place;
  }

  function skew(seconds) {
    const size = Math.abs(seconds);
    const unit = size >= 86400 ? [size / 86400, "cameras.days"]
      : size >= 3600 ? [size / 3600, "cameras.hours"] : [size / 60, "cameras.minutes"];
    return t(seconds > 0 ? "cameras.ahead" : "cameras.behind", { n: unit[0].toFixed(1), unit: t(unit[1]) });
  }

  async function confirm(path, use) {
    try {
      await pg.api(path, { method: "POST", body: { use, reason: null } });
      pg.banner("");
      await load();
    } catch (e) {
      pg.banner(t("alerts.action_failed") + ": " + e.message, "error");
    }
  }

  async function load() {
    [held, unmapped] = await Promise.all([pg.api("/api/v1/captures/held"), pg.api("/api/v1/cameras/unmapped")]);
    render();
  }

  function render() {
    const operator = pg.can("operator");
    $("#held-count").textContent = t("ledger.count", { n: held.length });
    const cameras = [...new Set(held.map((h) => h.camera_id))];
    $("#held-cameras").replaceChildren(...(operator ? cameras.map((c) =>
      el("button", { class: "ok", "data-camera": c, onclick: () => confirm(`/api/v1/cameras/${encodeURIComponent(c)}/confirm-held`, "camera"),
        text: t("cameras.confirm_all", { camera: c }) })) : []));
    $("#held tbody").replaceChildren(...held.map((h) => el("tr", { "data-capture": h.id },
      el("td", { class: "num", text: h.id }),
      el("td", { text: h.camera_id }),
      el("td", {}, el("span", { class: "plate " + (h.plate_color || ""), text: h.plate || t("cameras.no_plate") })),
      el("td", { title: h.place, text: placeName(h.place) }),
      el("td", { class: "camera-time", text: full(h.camera_time) }),
      // The camera's time is its own clock's (the town's, in the demo); the receipt is
      // central's wall time, shown on the town's clock.
      el("td", { class: "received", text: full(h.received_at && pg.town(Date.parse(h.received_at))) }),
      el("td", { class: "skew", text: skew(h.clock_skew_s) }),
      operator ? el("td", { class: "actions" },
        el("button", { class: "ok", "data-use": "camera", onclick: () => confirm(`/api/v1/captures/${h.id}/confirm-time`, "camera"), text: t("cameras.use_camera") }),
        el("button", { class: "warn", "data-use": "received", onclick: () => confirm(`/api/v1/captures/${h.id}/confirm-time`, "received"), text: t("cameras.use_received") }))
        : null)));
    $("#unmapped tbody").replaceChildren(...unmapped.map((u) => el("tr", {},
      el("td", { text: u.camera_id }), el("td", { text: u.source }), el("td", { text: u.field }),
      el("td", {}, el("code", { text: u.value })), el("td", { class: "num", text: u.count }),
      el("td", { text: fmt.dateTime(u.last_seen * 1000) }))));
  }

  await load();
  const refresh = pg.debounce(() => load().catch(console.warn), 200);
  pg.live({ capture_held: refresh, alert_raised: refresh, alert_resolved: refresh, ledger: refresh }, load);
});
