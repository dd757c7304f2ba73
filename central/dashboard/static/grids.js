/* Grid report: per grid and month, the figures of the yearly assessment; XLSX download. */
"use strict";

pg.page(async () => {
  const { t, el, $, fmt } = pg;
  // The month is the town's (in a demo, not the wall's); the API's medians are town seconds.
  const p = pg.parts(pg.now());
  $("#g-month").value = pg.cfg.query.month || `${p.y}-${String(p.mo).padStart(2, "0")}`;
  const short = (name) => (name || "").split(" ")[0];

  async function load() {
    const month = $("#g-month").value;
    if (!/^\d{4}-\d{2}$/.test(month)) return;
    const report = await pg.api(`/api/v1/reports/grids?month=${month}`);
    const sum = (key) => report.grids.reduce((n, g) => n + (g[key] || 0), 0);
    const num = (v, key) => el("td", { class: "num", "data-key": key, text: v === null || v === undefined ? "—" : v });
    $("#grids tbody").replaceChildren(...report.grids.map((g) => el("tr", { "data-grid": g.grid_id || "none", class: g.overdue ? "overdue" : null },
      el("td", {}, g.grid_id ? short(g.name) : t("cases.no_grid"), el("div", { class: "muted", text: [g.grid_id, g.kind ? t("gkind." + g.kind) : null].filter(Boolean).join(" · ") })),
      el("td", { text: short(g.duty_role) || "—" }),
      el("td", { class: "num", "data-key": "cases" }, String(g.cases),
        Object.keys(g.by_kind).length ? el("div", { class: "kinds", text: Object.entries(g.by_kind).map(([k, n]) => `${t("ckind." + k)} ${n}`).join(" · ") }) : null),
      num(g.closed, "closed"), num(g.open, "open"),
      num(g.median_ack_s === null ? null : fmt.town.dur(g.median_ack_s), "median_ack"),
      num(g.median_close_s === null ? null : fmt.town.dur(g.median_close_s), "median_close"),
      num(g.overdue, "overdue"), num(g.escalated, "escalated"), num(g.reopened, "reopened"),
      el("td", { text: Object.entries(g.repeat_places).map(([place, n]) => `${place} ×${n}`).join(", ") || "—" }),
      num(g.violations, "violations"), num(g.tow_orders, "tow_orders"))));
    $("#grids tfoot").replaceChildren(el("tr", { "data-grid": "total" },
      el("td", { text: t("grids.total") }), el("td", {}),
      ...["cases", "closed", "open"].map((k) => num(sum(k), k)), el("td", {}), el("td", {}),
      ...["overdue", "escalated", "reopened"].map((k) => num(sum(k), k)), el("td", {}),
      ...["violations", "tow_orders"].map((k) => num(sum(k), k))));
    $("#g-summary").textContent = t("grids.summary", { month, tz: report.timezone, n: report.grids.length });
  }

  async function xlsx() {
    const month = $("#g-month").value;
    const s = pg.session();
    try {
      const res = await fetch(pg.apiPath(`/api/v1/reports/grids.xlsx?month=${month}`), { headers: { Authorization: "Bearer " + (s ? s.token : "") } });
      if (!res.ok) throw new pg.ApiError(res.status, res.statusText);
      const url = URL.createObjectURL(await res.blob());
      const a = el("a", { href: url, download: `grids-${month}.xlsx` });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 30000);
    } catch (e) {
      pg.banner(t("error.load") + ": " + e.message, "error");
    }
  }

  $("#g-month").addEventListener("change", () => load().catch(console.warn));
  $("#g-xlsx").addEventListener("click", xlsx);
  await load();
  const refresh = pg.debounce(() => load().catch(console.warn), 300);
  pg.live({ case: refresh, ledger: refresh }, load);
});
