/* Overview: a card per lot, town totals, open alerts by severity, boxes offline. */
"use strict";

pg.page(async () => {
  const { t, el, $, fmt } = pg;
  const cardsBox = $("#cards");
  const sparks = {};
  let lots = [];
  const ARROW = { filling: "↗", emptying: "↘", steady: "→" };

  function colour(lot) {
    return lot.stale ? "grey" : pg.STATUS_COLOUR[lot.status] || "grey";
  }

  function card(lot) {
    let node = cardsBox.querySelector(`[data-lot="${CSS.escape(lot.id)}"]`);
    if (!node) {
      node = el("a", { class: "card", "data-lot": lot.id, href: "/dashboard/lot?id=" + encodeURIComponent(lot.id) },
        el("div", { class: "name" }, el("span", { class: "lot-name" }), el("span", { class: "id" })),
        el("div", { class: "big" },
          el("span", { class: "free" }), el("span", { class: "cap" }), el("span", { class: "trend" })),
        el("div", { class: "status" }),
        el("div", { class: "spark-box" }),
        el("div", { class: "forecast muted" }),
        el("div", { class: "meta" }, el("span", { class: "updated" }), el("span", { class: "occ" })));
      cardsBox.append(node);
    }
    return node;
  }

  function renderLots() {
    let free = 0, cap = 0, occ = 0, usable = 0;
    for (const lot of lots) {
      const node = card(lot);
      const c = colour(lot);
      node.className = "card " + c;
      node.querySelector(".lot-name").textContent = lot.name;
      node.querySelector(".id").textContent = lot.id;
      const freeNode = node.querySelector(".free");
      const shown = lot.stale ? (lot.last_known_free ?? "—") : lot.free;
      if (freeNode.textContent !== "" && freeNode.textContent !== String(shown)) {
        node.classList.remove("flash");
        void node.offsetWidth;
        node.classList.add("flash");
      }
      freeNode.textContent = String(shown);
      node.querySelector(".cap").textContent = "/ " + lot.capacity;
      const trend = node.querySelector(".trend");
      trend.className = "trend " + (lot.trend || "steady");
      trend.textContent = lot.stale ? "" : ARROW[lot.trend] || "";
      trend.title = t("trend." + (lot.trend || "steady"));
      node.querySelector(".status").replaceChildren(
        el("span", { class: "badge " + c, text: lot.stale ? t("lot.stale") : t("status." + lot.status) }),
        ...(lot.stale ? [el("span", { class: "muted", text: " " + t("lot.last_known") })] : []));
      node.querySelector(".updated").textContent = t("lot.updated") + " " + fmt.ago(lot.updated);
      const ratio = lot.capacity - lot.closed > 0 ? lot.occupied / (lot.capacity - lot.closed) : null;
      node.querySelector(".occ").textContent = t("lot.occupancy") + " " + fmt.pct(ratio);
      drawSpark(lot.id);
      cap += lot.capacity;
      if (!lot.stale) free += lot.free;
      occ += lot.occupied;
      usable += lot.capacity - lot.closed;
    }
    $("#town-free").replaceChildren(String(free), el("small", { text: " / " + cap }));
    $("#town-occ").textContent = fmt.pct(usable ? occ / usable : null);
  }

  function drawSpark(lotId) {
    const node = cardsBox.querySelector(`[data-lot="${CSS.escape(lotId)}"] .spark-box`);
    const values = sparks[lotId];
    if (!node || !values) return;
    const lot = lots.find((l) => l.id === lotId);
    const colourVar = { green: "#1fa35c", amber: "#e0a100", red: "#d83c3c", grey: "#6b7587" }[colour(lot)];
    node.replaceChildren(pg.sparkline(values, { slots: 96, colour: colourVar }));
  }

  async function loadSpark(lotId) {
    // The town's day so far, every town quarter hour (the API is on the wall clock).
    const start = pg.midnight(pg.now());
    const q = new URLSearchParams({
      start: new Date(pg.wall(start)).toISOString(), end: new Date(pg.wall(pg.now())).toISOString(),
      step: String(Math.max(1, Math.round(900 / pg.speed()))),
    });
    try {
      const h = await pg.api(`/api/v1/lots/${encodeURIComponent(lotId)}/history?${q}`);
      sparks[lotId] = h.points.map((p) => p.occupancy);
      drawSpark(lotId);
    } catch (e) {
      if (e.status !== 401) console.warn("sparkline", lotId, e);
    }
  }

  async function loadForecast(lotId) {
    const node = cardsBox.querySelector(`[data-lot="${CSS.escape(lotId)}"] .forecast`);
    if (!node) return;
    try {
      const f = await pg.api(`/api/v1/lots/${encodeURIComponent(lotId)}/forecast`);
      if (f.status === "ok") {
        node.textContent = t("overview.forecast") + " " + f.points.map((p) =>
          t("overview.forecast_in", { m: p.minutes, free: p.free, low: p.low, high: p.high })).join(" · ");
      } else {
        node.textContent = f.status === "insufficient_history" ? t("overview.forecast_none") : "";
      }
    } catch (e) {
      if (e.status !== 401) console.warn("forecast", lotId, e);
    }
  }

  async function loadLots() {
    lots = (await pg.api("/api/v1/lots")).lots;
    renderLots();
  }

  async function loadAlerts() {
    const [raised, acked] = await Promise.all([
      pg.api("/api/v1/alerts?state=raised&limit=1000"),
      pg.api("/api/v1/alerts?state=acknowledged&limit=1000"),
    ]);
    const open = raised.concat(acked);
    const by = {};
    for (const a of open) by[a.severity] = (by[a.severity] || 0) + 1;
    $("#alerts-total").textContent = String(open.length);
    $("#alerts-sev").replaceChildren(...["critical", "escalated", "warning", "info"].map((s) =>
      el("a", { class: "pill " + s, href: "/dashboard/alerts?severity=" + s, "data-severity": s },
        t("severity." + s), el("b", { text: String(by[s] || 0) }))));
  }

  async function loadBoxes() {
    const boxes = await pg.api("/api/v1/boxes");
    const off = boxes.filter((b) => !b.online);
    $("#boxes-off").replaceChildren(String(off.length), el("small", { text: " / " + boxes.length }));
    $("#boxes-off-list").textContent = off.map((b) => b.name || b.id).join(" · ");
  }

  const refreshLots = pg.debounce(() => loadLots().catch(console.warn), 80);
  const refreshAlerts = pg.debounce(() => loadAlerts().catch(console.warn), 250);
  const refreshBoxes = pg.debounce(() => loadBoxes().catch(console.warn), 250);
  const sparkTimers = {};
  function refreshSpark(lotId) {
    if (sparkTimers[lotId]) return;
    sparkTimers[lotId] = setTimeout(() => { delete sparkTimers[lotId]; loadSpark(lotId); }, 20000);
  }

  async function reloadAll() {
    await Promise.all([loadLots(), loadAlerts(), loadBoxes()]);
    for (const lot of lots) { loadSpark(lot.id); loadForecast(lot.id); }
  }
  await reloadAll();
  setInterval(() => { for (const lot of lots) loadForecast(lot.id); }, 60000);
  setInterval(() => { for (const lot of lots) loadSpark(lot.id); }, 300000);
  setInterval(renderLots, 30000);

  pg.live({
    // Lots, not bays: every bay change moves its lot's counts, and the lot notice says so.
    lot: (n) => { refreshLots(); refreshSpark(n.lot_id); },
    box: () => { refreshLots(); refreshBoxes(); },
    alert_raised: refreshAlerts,
    alert_resolved: refreshAlerts,
  }, reloadAll);
});
