/* Lot page: bay map coloured by state, today's curve against the weekday average, signs. */
"use strict";

pg.page(async () => {
  const { t, el, $, fmt } = pg;
  const lotId = pg.cfg.query.id;
  if (!lotId) {
    location.href = "/dashboard/";
    return;
  }
  const enc = encodeURIComponent(lotId);
  let boxId = null;
  let current = null;
  $("#lot-history").href = "/dashboard/history?lot=" + enc;

  async function loadLot() {
    const lot = await pg.api(`/api/v1/lots/${enc}`);
    current = lot;
    $("#lot-title").textContent = `${lot.name} (${lot.id})`;
    document.title = lot.name + " · " + document.title;
    const c = lot.stale ? "grey" : pg.STATUS_COLOUR[lot.status];
    const free = $("#lot-free");
    free.textContent = String(lot.stale ? lot.last_known_free ?? "—" : lot.free);
    free.style.color = `var(--${c})`;
    $("#lot-cap").textContent = "/ " + lot.capacity;
    $("#lot-status").replaceChildren(
      el("span", { class: "badge " + c, text: lot.stale ? t("lot.stale") : t("status." + lot.status) }));
  }

  function bayTip(bay) {
    const d = (bay.sensor && bay.sensor.detail) || {};
    const battery = d.battery_pct !== undefined && d.battery_pct !== null
      ? d.battery_pct + "%" : d.battery_mv ? d.battery_mv + " mV" : "—";
    const rows = [
      [t("bay.id"), bay.id],
      [t("bay.state"), t("bay." + bay.state) + (bay.stale && bay.reported_state ? ` (${t("bay.reported")}: ${t("bay." + bay.reported_state)})` : "")],
      [t("bay.since"), bay.since ? `${fmt.dateTime(bay.since)} (${fmt.ago(bay.since)})` : "—"],
      [t("bay.sensor"), bay.sensor ? bay.sensor.sensor_id : "—"],
      [t("bay.battery"), battery],
      [t("bay.last_seen"), d.last_seen ? fmt.ago(d.last_seen) : bay.updated ? fmt.ago(bay.updated) : "—"],
    ];
    if (bay.sensor && bay.sensor.flags.length) rows.push([t("bay.flags"), bay.sensor.flags.map((f) => t("flag." + f)).join(", ")]);
    return el("dl", {}, rows.map(([k, v]) => [el("dt", { text: k }), el("dd", { text: v })]));
  }

  async function loadBays() {
    const bays = await pg.api(`/api/v1/lots/${enc}/bays`);
    const box = $("#bays");
    const prefix = lotId + "-";
    const nodes = [];
    for (const bay of bays) {
      let node = box.querySelector(`[data-bay="${CSS.escape(bay.id)}"]`);
      if (!node) {
        node = el("div", { "data-bay": bay.id, text: bay.id.startsWith(prefix) ? bay.id.slice(prefix.length) : bay.id });
        pg.tip(node, () => bayTip(node._bay));
      }
      node._bay = bay;
      const flagged = bay.sensor && bay.sensor.flags.some((f) => f !== "reset");
      node.className = "bay " + bay.state + (flagged ? " flagged" : "");
      node.dataset.state = bay.state;
      nodes.push(node);
    }
    box.replaceChildren(...nodes);
  }

  async function loadCurve() {
    // Town times (a demo's town runs faster than the wall clock the API's times are on).
    const now = pg.now();
    const day0 = pg.midnight(now);
    const span = 86400000;
    const fetchDay = async (start, end) => {
      const q = new URLSearchParams({
        start: new Date(pg.wall(start)).toISOString(), end: new Date(pg.wall(end)).toISOString(),
        step: String(Math.max(1, Math.round(900 / pg.speed()))),
      });
      const h = await pg.api(`/api/v1/lots/${enc}/history?${q}`);
      for (const p of h.points) p.town = pg.town(Date.parse(p.at));
      return h;
    };
    const weeks = [1, 2, 3, 4].map((k) => day0 - k * 7 * span);
    const [today, ...past] = await Promise.all([fetchDay(day0, Math.max(now, day0 + 60000 * pg.speed())), ...weeks.map((s) => fetchDay(s, s + span))]);
    const sums = new Array(96).fill(0);
    const counts = new Array(96).fill(0);
    past.forEach((h, k) => {
      for (const p of h.points) {
        if (p.occupied + p.free === 0) continue; // nothing was known yet that day
        const slot = Math.round((p.town - weeks[k]) / 900000);
        if (slot >= 0 && slot < 96) { sums[slot] += p.occupancy; counts[slot] += 1; }
      }
    });
    const avg = sums.map((s, i) => [day0 + i * 900000, counts[i] ? s / counts[i] : null]);
    const todayPts = today.points.map((p) => [p.town, p.occupancy]);
    // The curve ends at the live figure, not at the last whole step.
    if (current && !current.stale && current.capacity > current.closed) {
      todayPts.push([now, current.occupied / (current.capacity - current.closed)]);
    }
    const ticks = [0, 3, 6, 9, 12, 15, 18, 21, 24].map((h) => [day0 + h * 3600000, String(h).padStart(2, "0") + ":00"]);
    $("#curve").replaceChildren(pg.lineChart([
      { points: avg, colour: "#93a0b8", dashed: true },
      { points: todayPts, colour: "#3b82f6", width: 3 },
    ], { x0: day0, x1: day0 + span, ticks, now }));
  }

  function signText(d) {
    const arrows = { left: "←", right: "→", up: "↑", down: "↓", none: "" };
    switch (d.mode) {
      case "count": return (arrows[d.arrow] || "") + " " + (d.count ?? "");
      case "text": return d.text || "";
      case "message": return t("signmsg." + d.message_index);
      case "dashes": return "----";
      default: return "";
    }
  }

  async function loadSigns() {
    if (boxId === null) {
      const boxes = await pg.api("/api/v1/boxes");
      const mine = boxes.find((b) => b.lots.includes(lotId));
      boxId = mine ? mine.id : "";
    }
    const signs = boxId ? await pg.api("/api/v1/signs?box_id=" + encodeURIComponent(boxId)) : [];
    const box = $("#signs");
    if (!signs.length) {
      box.replaceChildren(el("p", { class: "muted", text: t("lot.no_signs") }));
      return;
    }
    box.replaceChildren(...signs.map((s) => {
      const d = (s.state && s.state.display) || { mode: "blank" };
      const colour = d.mode === "blank" ? "off" : d.colour || "amber";
      return el("div", { class: "sign" + (s.up === false ? " down" : ""), "data-sign": s.id },
        el("div", { class: `led ${colour}${d.flashing ? " flashing" : ""}`, text: signText(d) }),
        el("div", { class: "cap" },
          el("span", { text: s.id }),
          el("span", { class: "updown " + (s.up === false ? "down" : "up"), text: s.up === false ? t("state.down") : t("state.up") })),
        s.state && s.state.override_until
          ? el("div", { class: "cap", text: t("sign.override_until", { time: fmt.dateTime(s.state.override_until) }) }) : null);
    }));
  }

  async function reloadAll() {
    await Promise.all([loadLot(), loadBays(), loadSigns()]);
    await loadCurve();
  }
  await reloadAll();
  const refreshLot = pg.debounce(() => loadLot().catch(console.warn), 80);
  const refreshBays = pg.debounce(() => loadBays().catch(console.warn), 80);
  const refreshSigns = pg.debounce(() => loadSigns().catch(console.warn), 200);
  const refreshCurve = pg.debounce(() => loadCurve().catch(console.warn), 30000);
  setInterval(() => loadCurve().catch(console.warn), 300000);
  pg.live({
    lot: (n) => { if (n.lot_id === lotId) { refreshLot(); refreshCurve(); } },
    bay: (n) => { if (n.lot_id === lotId) refreshBays(); },
    bay_changed: (n) => { if (n.lot_id === lotId) refreshBays(); },
    sign: (n) => { if (n.box_id === boxId) refreshSigns(); },
    box: () => { refreshLot(); refreshBays(); },
  }, reloadAll, { lots: [lotId] });
});
