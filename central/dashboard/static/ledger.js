/* Ledger page: violations and tow orders with their evidence, review steps, chain check, export. */
"use strict";

pg.page(async () => {
  const { t, el, $, fmt } = pg;
  const TONE = {
    pending_review: "amber", confirmed: "red", notified: "red", closed: "grey", voided: "grey",
    ordered: "amber", towed: "red", released: "grey",
  };
  const q = pg.cfg.query;
  if (q.kind) $("#f-kind").value = q.kind;
  if (q.status) $("#f-status").value = q.status;
  if (q.plate) $("#f-plate").value = q.plate;
  let selected = q.seq ? Number(q.seq) : null;
  let rows = [];
  let site = { segments: {}, lots: {}, zones: {}, entries: {}, grids: {} };
  const pictures = new Map(); // sha256 -> object URL (pictures never change: content-addressed)

  try {
    site = (await pg.api("/api/v1/site")).document;
  } catch (e) {
    console.warn("no site document", e);
  }

  function placeName(place) {
    if (!place) return "—";
    const [kind, id] = place.split(":");
    const table = { segment: site.segments, lot: site.lots, zone: site.zones, entry: site.entries }[kind] || {};
    return table[id] && table[id].name ? table[id].name.split(" ")[0] : id;
  }
  const plate = (r) => el("span", { class: "plate " + (r.plate_color || "unknown"), text: r.plate || "?" });
  const status = (s) => el("span", { class: "badge lstatus " + (TONE[s] || "grey"), "data-status": s, text: t("lstatus." + s) });
  const sec = (v) => (v === null || v === undefined ? null : v * 1000);
  const nextDay = (d) => new Date(Date.parse(d + "T00:00:00Z") + 86400000).toISOString().slice(0, 10);
  // A date picked is a town date: its midnight on the town's clock, asked on the API's
  // (wall) clock, so the rows found are the ones shown under that date.
  const at = (d) => {
    const [y, m, day] = d.split("-").map(Number);
    return new Date(pg.wall(pg.midnight(Date.UTC(y, m - 1, day, 12)))).toISOString();
  };

  function query() {
    const p = new URLSearchParams({ limit: "1000" });
    const kind = $("#f-kind").value;
    if (kind === "tow") p.set("kind", "tow");
    else if (kind) p.set("rule_id", kind);
    if ($("#f-status").value) p.set("status", $("#f-status").value);
    if ($("#f-start").value) p.set("start", at($("#f-start").value));
    if ($("#f-end").value) p.set("end", at(nextDay($("#f-end").value)));
    return p.toString();
  }

  async function load() {
    rows = await pg.api("/api/v1/ledger?" + query());
    render();
  }

  function render() {
    const text = $("#f-plate").value.trim().toUpperCase();
    const shown = rows.filter((r) => !text || (r.plate || "").toUpperCase().includes(text));
    $("#count").textContent = t("ledger.count", { n: shown.length });
    $("#ledger tbody").replaceChildren(...shown.map((r) => el("tr", {
      class: "pick" + (r.seq === selected ? " selected" : ""), "data-seq": r.seq,
      onclick: () => { selected = r.seq; render(); },
    },
    el("td", { class: "num", text: r.seq }),
    el("td", {}, plate(r)),
    el("td", { title: r.place }, placeName(r.place), el("div", { class: "muted", text: r.grid_id || "" })),
    // Evidence is on the cameras' clock (the town's, in the demo); r.at on central's.
    el("td", { text: r.evidence.until ? fmt.town.dateTime(sec(r.evidence.until)) : fmt.dateTime(r.at) }),
    el("td", {}, t("rule." + r.rule_id), el("div", { class: "muted", text: `${r.rule_id} v${r.rule_version}` })),
    el("td", { class: "num", text: r.kind === "tow" ? "—" : `¥${r.fine_cny}` + (r.points ? ` · ${t("ledger.points", { n: r.points })}` : "") }),
    el("td", { class: "state" }, status(r.status)))));
    const entry = rows.find((r) => r.seq === selected);
    $(".ledger-layout").classList.toggle("open", !!entry);
    $("#detail").hidden = !entry;
    if (entry) detail(entry);
    else selected = null;
  }

  async function blobUrl(url) {
    const s = pg.session();
    const res = await fetch(pg.apiPath(url), { headers: { Authorization: "Bearer " + (s ? s.token : "") } });
    if (!res.ok) throw new pg.ApiError(res.status, res.statusText);
    return URL.createObjectURL(await res.blob());
  }

  function picture(p, caption) {
    const img = el("img", { alt: caption, "data-sha256": p.sha256 });
    const known = pictures.get(p.sha256);
    if (known) img.src = known;
    else {
      blobUrl(p.url).then((u) => { pictures.set(p.sha256, u); img.src = u; })
        .catch((e) => { img.alt = t("ledger.no_picture") + " (" + e.message + ")"; });
    }
    return el("figure", {}, img, el("figcaption", { text: caption }));
  }

  function detail(r) {
    const box = $("#detail");
    if (box.dataset.key === `${r.seq}/${r.status}/${r.history.length}`) return; // keep a half-typed reason
    box.dataset.key = `${r.seq}/${r.status}/${r.history.length}`;
    const ev = r.evidence;
    const pics = [];
    for (const c of ev.captures) {
      for (const p of c.pictures) pics.push(picture(p, `${c.camera_id} · ${fmt.town.time(c.captured_at)} · ${t("pic." + (p.kind || "other"))}`));
    }
    if (!pics.length) for (const p of ev.pictures) pics.push(picture(p, p.sha256.slice(0, 12)));
    const reason = el("input", { placeholder: t("ledger.reason"), class: "reason" });
    const operator = pg.can("operator");
    box.replaceChildren(...[
      el("h2", {}, plate(r), el("span", { text: `#${r.seq} · ${t("rule." + r.rule_id)}` }), status(r.status),
        el("button", { class: "linkish close", title: t("ledger.close_detail"), onclick: () => { selected = null; render(); }, text: "✕" })),
      el("dl", {},
        el("dt", { text: t("ledger.place") }), el("dd", { text: `${placeName(r.place)} (${r.place})` }),
        el("dt", { text: t("ledger.grid") }), el("dd", { text: r.grid_id ? (site.grids[r.grid_id] || {}).name || r.grid_id : "—" }),
        el("dt", { text: t("ledger.seen") }), el("dd", { text: `${fmt.town.dateTime(sec(ev.from))} – ${fmt.town.time(sec(ev.until))}` + (ev.span_s !== undefined ? ` (${fmt.town.dur(ev.span_s)})` : "") }),
        el("dt", { text: t("ledger.rule") }), el("dd", { text: `${r.rule_id} v${r.rule_version}` }),
        el("dt", { text: t("ledger.fine") }), el("dd", { text: `¥${r.fine_cny} · ${t("ledger.points", { n: r.points })}` }),
        el("dt", { text: t("ledger.vehicle") }), el("dd", { text: [t("pcolour." + (r.plate_color || "unknown")), r.vehicle_class, r.ga_plate_type ? "GA " + r.ga_plate_type : null].filter(Boolean).join(" · ") }),
        el("dt", { text: t("ledger.written") }), el("dd", { text: fmt.dateTime(r.at) }),
        el("dt", { text: t("ledger.hash") }), el("dd", { class: "hash", "data-field": "hash", text: r.hash }),
        el("dt", { text: t("ledger.prev_hash") }), el("dd", { class: "hash", "data-field": "prev_hash", text: r.prev_hash || "—" })),
      el("h3", { text: t("ledger.pictures") }),
      pics.length ? el("div", { class: "pics" }, pics) : el("p", { class: "muted", text: t("ledger.no_picture") }),
      ev.bay_id ? el("p", { text: `${t("ledger.bay")} ${ev.bay_id} · ${fmt.dateTime(sec(ev.occupied_since))} (${fmt.dur(ev.dwell_s)})` }) : null,
      el("h3", { text: t("ledger.captures") }),
      el("table", { class: "list captures" },
        el("thead", {}, el("tr", {}, ["#", t("ledger.camera"), t("ledger.time"), t("ledger.plate"), t("ledger.capture_kind")].map((h) => el("th", { text: h })))),
        el("tbody", {}, ev.captures.map((c) => el("tr", {},
          el("td", { text: c.id }), el("td", { text: c.camera_id }), el("td", { text: fmt.town.time(c.captured_at) }),
          el("td", { text: c.plate || "?" }), el("td", { text: c.kind }))))),
      el("h3", { text: t("ledger.history") }),
      el("ul", { class: "steps" },
        el("li", {}, `${fmt.dateTime(r.at)} · `, status(r.kind === "tow" ? "ordered" : "pending_review"), ` · ${t("ledger.by_rule")}`),
        r.history.map((h) => el("li", { "data-step": h.status }, `${fmt.dateTime(h.at)} · `, status(h.status), ` · ${h.actor || ""}`, h.reason ? ` · ${h.reason}` : ""))),
      operator && r.actions.length ? el("div", { class: "acts control" },
        r.actions.includes("void") ? reason : null,
        r.actions.map((a) => el("button", {
          class: a === "void" ? "warn" : "ok", "data-action": a, text: t("laction." + a),
          onclick: () => act(r, a, reason.value),
        }))) : null,
    ].filter(Boolean)); // replaceChildren would write a null as the text "null"
  }

  async function act(r, action, reason) {
    if (action === "void" && !reason.trim()) {
      pg.banner(t("ledger.reason_needed"), "error");
      return;
    }
    try {
      await pg.api(`/api/v1/ledger/${r.seq}/actions`, { method: "POST", body: { action, reason: reason || null } });
      pg.banner("");
      await load();
    } catch (e) {
      pg.banner(t("alerts.action_failed") + ": " + e.message, "error");
    }
  }

  async function verify() {
    const out = $("#verify-result");
    out.hidden = false;
    out.className = "panel verify";
    out.textContent = t("ledger.verifying");
    try {
      const v = await pg.api("/api/v1/ledger/verify");
      out.classList.add(v.ok ? "ok" : "bad");
      out.textContent = v.ok
        ? t("ledger.verify_ok", { n: v.entries, head: (v.head_hash || "").slice(0, 16) })
        : t("ledger.verify_bad", { seq: v.bad_seq, reason: v.reason });
    } catch (e) {
      out.classList.add("bad");
      out.textContent = t("error.load") + ": " + e.message;
    }
  }

  async function exportFile(format) {
    const p = pg.parts(pg.now());
    const month = `${p.y}-${String(p.mo).padStart(2, "0")}`;
    const start = $("#f-start").value || `${month}-01`;
    const end = $("#f-end").value ? nextDay($("#f-end").value)
      : nextDay(`${month}-${String(p.d).padStart(2, "0")}`);
    try {
      const q = new URLSearchParams({ start: at(start), end: at(end), format });
      const path = `/api/v1/ledger/export?${q}`;
      const url = await blobUrl(path);
      const a = el("a", { href: url, download: `ledger-${start}-${end}.${format}` });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 30000);
    } catch (e) {
      pg.banner(t("error.load") + ": " + e.message, "error");
    }
  }

  for (const id of ["#f-kind", "#f-status", "#f-start", "#f-end"]) $(id).addEventListener("change", () => load().catch(console.warn));
  $("#f-plate").addEventListener("input", render);
  $("#verify").addEventListener("click", verify);
  $("#x-csv").addEventListener("click", () => exportFile("csv"));
  $("#x-xlsx").addEventListener("click", () => exportFile("xlsx"));
  await load();
  const refresh = pg.debounce(() => load().catch(console.warn), 200);
  pg.live({ ledger: refresh }, load);
});
