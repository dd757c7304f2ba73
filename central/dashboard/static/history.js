/* History: a lot's occupancy over a day or a week, the hour-of-week heat map, CSV download.
 * Days, hours and weeks are the town's (pg.now, pg.wall, pg.town): a demo's town runs
 * faster than the wall clock the API's times are on. */
"use strict";

pg.page(async () => {
  const { t, el, $, fmt } = pg;
  const DAY = 86400000;
  const lots = (await pg.api("/api/v1/lots")).lots;
  $("#h-lot").append(...lots.map((l) => el("option", { value: l.id, text: `${l.name} (${l.id})` })));
  if (pg.cfg.query.lot) $("#h-lot").value = pg.cfg.query.lot;
  const today = pg.parts(pg.now());
  $("#h-date").value = `${today.y}-${String(today.mo).padStart(2, "0")}-${String(today.d).padStart(2, "0")}`;
  let points = [];

  function startOf(dateStr) {
    // Local midnight (site time zone) of the chosen date: noon UTC is always that date there.
    const [y, m, d] = dateStr.split("-").map(Number);
    return pg.midnight(Date.UTC(y, m - 1, d, 12));
  }

  /** The API's query for town times ``start``..``end`` every ``step`` town seconds. */
  function span(start, end, step) {
    return new URLSearchParams({
      start: new Date(pg.wall(start)).toISOString(), end: new Date(pg.wall(end)).toISOString(),
      step: String(Math.max(1, Math.round(step / pg.speed()))),
    });
  }
  const townPoints = (h) => h.points.map((p) => Object.assign({}, p, { town: pg.town(Date.parse(p.at)) }));

  async function plot() {
    const lotId = $("#h-lot").value;
    const week = $("#h-range").value === "week";
    // A week is the seven days ending with the chosen date.
    const day = startOf($("#h-date").value || $("#h-date").defaultValue);
    const start = week ? day - 6 * DAY : day;
    const end = day + DAY;
    const q = span(start, Math.min(end, pg.now() + 60000), week ? 3600 : 900);
    const h = await pg.api(`/api/v1/lots/${encodeURIComponent(lotId)}/history?${q}`);
    points = townPoints(h);
    const ticks = week
      ? Array.from({ length: 8 }, (_, i) => [start + i * DAY, i < 7 ? fmt.town.day(start + i * DAY + 1) : ""])
      : [0, 3, 6, 9, 12, 15, 18, 21, 24].map((x) => [start + x * 3600000, String(x).padStart(2, "0") + ":00"]);
    $("#h-plot").replaceChildren(pg.lineChart(
      [{ points: points.map((p) => [p.town, p.occupancy]), colour: "#3b82f6", width: 3 }],
      { x0: start, x1: end, ticks, now: pg.now() }));
    const occ = points.map((p) => p.occupancy);
    const peak = occ.length ? Math.max(...occ) : null;
    const mean = occ.length ? occ.reduce((a, b) => a + b, 0) / occ.length : null;
    $("#h-summary").textContent = t("history.summary", { peak: fmt.pct(peak), mean: fmt.pct(mean), n: points.length });
  }

  async function heat() {
    const lotId = $("#h-lot").value;
    const end = pg.now();
    const q = span(end - 28 * DAY, end, 3600);
    const h = await pg.api(`/api/v1/lots/${encodeURIComponent(lotId)}/history?${q}`);
    const sum = Array.from({ length: 7 }, () => new Array(24).fill(0));
    const n = Array.from({ length: 7 }, () => new Array(24).fill(0));
    for (const p of townPoints(h)) {
      if (p.occupied + p.free === 0) continue; // nothing known yet
      const at = pg.parts(p.town);
      sum[at.wd][at.h] += p.occupancy;
      n[at.wd][at.h] += 1;
    }
    const cells = sum.map((row, wd) => row.map((s, hr) => (n[wd][hr] ? s / n[wd][hr] : null)));
    $("#h-heat").replaceChildren(pg.heatmap(cells));
  }

  function csv() {
    const lotId = $("#h-lot").value;
    // "at" is the town's time (UTC, as the API's): in a demo, not the wall's.
    const lines = ["at,occupied,free,unknown,closed,occupancy"];
    for (const p of points) lines.push([new Date(p.town).toISOString(), p.occupied, p.free, p.unknown, p.closed, p.occupancy.toFixed(4)].join(","));
    const blob = new Blob([lines.join("\n") + "\n"], { type: "text/csv" });
    const a = el("a", { href: URL.createObjectURL(blob), download: `${lotId}-${$("#h-range").value}-${$("#h-date").value}.csv` });
    document.body.append(a);
    a.click();
    setTimeout(() => { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
  }

  const both = () => Promise.all([plot(), heat()]).catch((e) => pg.banner(t("error.load") + ": " + e.message, "error"));
  $("#h-lot").addEventListener("change", both);
  $("#h-range").addEventListener("change", () => plot().catch(console.warn));
  $("#h-date").addEventListener("change", () => plot().catch(console.warn));
  $("#h-csv").addEventListener("click", csv);
  await both();
  pg.live({}, both);
});
