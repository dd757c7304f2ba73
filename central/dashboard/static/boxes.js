/* Boxes page: liveness, versions, outbox, serial lines, sign buses, sensors; commands. */
"use strict";

pg.page(async () => {
  const { t, el, $, fmt } = pg;
  let boxes = [];
  let signs = [];
  let fleet = {};
  const flagged = {};
  const commands = {};

  const updown = (up) => el("span", { class: "updown " + (up ? "up" : "down"), text: up ? t("state.up") : t("state.down") });
  const dl = (pairs) => el("dl", {}, pairs.filter(Boolean).map(([k, v]) => [el("dt", { text: k }), el("dd", {}, v)]));

  function health(b) {
    const h = b.health;
    if (!h) return [el("p", { class: "muted", text: t("boxes.no_health") })];
    const ob = h.outbox || {};
    const out = [dl([
      [t("boxes.outbox_events"), `${ob.event ? ob.event.depth : "—"}`],
      [t("boxes.outbox_state"), `${ob.state ? ob.state.depth : "—"}`],
      [t("boxes.oldest_event"), ob.oldest_event_age_s !== null && ob.oldest_event_age_s !== undefined ? fmt.dur(ob.oldest_event_age_s) : "—"],
      [t("boxes.dropped"), String(ob.dropped_events_total ?? 0)],
      [t("boxes.sensors"), t("boxes.sensor_summary", { total: h.sensors.total, silent: h.sensors.silent, low: h.sensors.low_battery, faulty: h.sensors.faulty })],
    ])];
    if (h.serial_lines && h.serial_lines.length) {
      out.push(el("table", {},
        el("thead", {}, el("tr", {}, [t("boxes.line"), "", t("boxes.frames"), t("boxes.crc"), t("boxes.garbage"), t("boxes.timeouts")].map((x) => el("th", { text: x })))),
        el("tbody", {}, h.serial_lines.map((l) => el("tr", {},
          el("td", { text: l.line }), el("td", {}, updown(l.up)), el("td", { text: l.frames }),
          el("td", { text: l.crc_errors }), el("td", { text: l.garbage_bytes }), el("td", { text: l.timeouts }))))));
    }
    if (h.sign_buses && h.sign_buses.length) {
      out.push(el("table", {},
        el("thead", {}, el("tr", {}, [t("boxes.bus"), t("boxes.unit"), "", t("boxes.requests"), t("boxes.timeouts"), t("boxes.crc"), t("boxes.exceptions")].map((x) => el("th", { text: x })))),
        el("tbody", {}, h.sign_buses.flatMap((bus) => bus.units.map((u) => el("tr", {},
          el("td", { text: bus.bus }), el("td", { text: u.unit }), el("td", {}, updown(u.up)), el("td", { text: u.requests }),
          el("td", { text: u.timeouts }), el("td", { text: u.crc_errors }), el("td", { text: u.exceptions })))))));
    }
    return out;
  }

  // desired against reported configuration (GET /api/v1/fleet): state, what differs, why
  const FLEET_COLOUR = { "in sync": "green", pending: "amber", applying: "amber", failed: "red", "rolled back": "red" };
  function configState(f) {
    const parts = [el("b", { class: "fleet-state", "data-fleet-state": f.state, style: { color: `var(--${FLEET_COLOUR[f.state] || "amber"})` }, text: t("fleet." + f.state.replace(" ", "_")) })];
    if (f.reason) parts.push(" ", el("span", { class: "reason", text: f.reason }));
    if (f.differs && f.differs.length) parts.push(" ", el("span", { class: "muted", text: t("boxes.config_differs") + ": " + f.differs.join(", ") }));
    parts.push(" ", el("code", { class: "muted", title: f.desired_hash, text: f.desired_hash.slice(7, 19) + (f.desired_version ? " v" + f.desired_version : "") }));
    return parts;
  }

  // the release the box runs, from its birth (GET /api/v1/fleet): version, state, why
  const RELEASE_COLOUR = { confirmed: "green", on_trial: "amber", rolled_back: "red", unmanaged: "amber" };
  function releaseState(f) {
    const parts = [el("code", { text: f.release_version || "—" }), " ",
      el("b", { class: "release-state", "data-release-state": f.release_state, style: { color: `var(--${RELEASE_COLOUR[f.release_state] || "amber"})` }, text: t("release." + f.release_state) })];
    if (f.release_failed_version) parts.push(" ", el("span", { class: "release-reason", text: t("boxes.release_from") + " " + f.release_failed_version + (f.release_reason ? ": " + f.release_reason : "") }));
    return parts;
  }

  function commandForms(b) {
    if (!pg.can("operator")) return null;
    const mySigns = signs.filter((s) => s.box_id === b.id);
    const send = async (body, expires) => {
      try {
        await pg.api(`/api/v1/boxes/${encodeURIComponent(b.id)}/commands`, { method: "POST", body: { body, expires_in_s: expires || null } });
        pg.banner(t("boxes.command_sent"), "ok");
        if (document.activeElement) document.activeElement.blur();
        await loadCommands(b.id);
      } catch (e) {
        pg.banner(t("boxes.command_failed") + ": " + e.message, "error");
      }
    };
    const sign = el("select", { name: "sign" }, mySigns.map((s) => el("option", { value: s.id, text: s.id })));
    const text = el("input", { name: "text", placeholder: t("boxes.override_text"), size: 10, maxlength: 32 });
    const colour = el("select", { name: "colour" }, ["red", "amber", "green"].map((c) => el("option", { value: c, text: t("colour." + c) })));
    const minutes = el("input", { name: "minutes", type: "number", min: 1, max: 1440, value: 30, style: { width: "6em" } });
    // Town minutes from the town's now, sent on the box's (wall) clock.
    const until = () => new Date(pg.wall(pg.now() + Math.max(1, +minutes.value || 30) * 60000)).toISOString();
    return el("div", { class: "control" },
      el("form", { onsubmit: (e) => { e.preventDefault(); send({ command: "rebirth" }); } },
        el("button", { type: "submit", "data-command": "rebirth", text: t("boxes.rebirth") })),
      mySigns.length ? el("form", {
        onsubmit: (e) => {
          e.preventDefault();
          send({ command: "sign-override", sign_id: sign.value, display: { mode: "text", text: text.value || "FULL", colour: colour.value }, until: until() });
        },
      },
      el("label", { class: "field" }, t("boxes.sign"), sign),
      el("label", { class: "field" }, t("boxes.override_text"), text),
      el("label", { class: "field" }, t("boxes.colour"), colour),
      el("label", { class: "field" }, t("boxes.minutes"), minutes),
      el("button", { type: "submit", class: "warn", "data-command": "sign-override", text: t("boxes.override") }),
      el("button", { type: "button", onclick: () => send({ command: "sign-override", sign_id: sign.value, display: null, until: null }), text: t("boxes.lift") })) : null);
  }

  function renderBox(b) {
    const online = b.availability === "online";  // the API's rule, site_model/availability.py
    const node = el("div", { class: "panel box" + (online ? "" : " offline"), "data-box": b.id },
      el("div", { class: "head" }, el("h3", { text: b.name || b.id }), el("span", { class: "muted", text: b.id }),
        el("span", { class: "badge " + (online ? "green" : "red"), style: { marginLeft: "auto" }, text: online ? t("boxes.online") : b.seen ? t("boxes.offline") : t("boxes.never_seen") })),
      dl([
        [t("boxes.serves"), [...b.lots, ...b.zones].join(", ") || "—"],
        [t("boxes.version"), b.software_version || "—"],
        [t("boxes.config_hash"), el("code", { text: b.config_hash ? b.config_hash.slice(0, 20) : "—", title: b.config_hash || "" })],
        fleet[b.id] ? [t("boxes.config_state"), configState(fleet[b.id])] : null,
        fleet[b.id] && fleet[b.id].release_state ? [t("boxes.release"), releaseState(fleet[b.id])] : null,
        [t("boxes.last_seen"), b.last_seen ? `${fmt.ago(b.last_seen)} (${fmt.dateTime(b.last_seen)})` : "—"],
        [t("boxes.status_changed"), fmt.dateTime(b.status_changed)],
        [t("boxes.acked"), b.acked_seq ?? "—"],
        b.clock ? [t("boxes.clock"), b.clock.synchronised ? t("boxes.clock_ok") : t("boxes.clock_bad")] : null,
        b.site_problems ? [t("boxes.site_problems"), el("b", { style: { color: "var(--amber)" }, text: b.site_problems })] : null,
      ]),
      health(b),
      flagged[b.id] && flagged[b.id].length ? el("div", {},
        el("div", { class: "muted", text: t("boxes.flagged_sensors") }),
        el("table", {}, el("tbody", {}, flagged[b.id].map((bay) => el("tr", {},
          el("td", { text: bay.id }), el("td", { text: bay.sensor.sensor_id }),
          el("td", { text: bay.sensor.flags.map((f) => t("flag." + f)).join(", ") }),
          el("td", { text: bay.sensor.detail && bay.sensor.detail.battery_pct !== undefined && bay.sensor.detail.battery_pct !== null ? bay.sensor.detail.battery_pct + "%" : "" })))))) : null,
      commandForms(b),
      el("div", { class: "cmds" }, (commands[b.id] || []).slice(0, 4).map((c) =>
        el("div", { "data-command-id": c.id, text: `${fmt.time(c.issued_at)} ${c.name} · ${t("cmdstate." + c.state)}${c.reply && c.reply.error ? " (" + c.reply.error + ")" : ""} · ${c.issued_by}` }))));
    return node;
  }

  function render() {
    // A card the operator is typing in stays as it is until the form loses focus.
    const busy = document.activeElement && document.activeElement.closest("[data-box] form");
    const keep = busy ? busy.closest("[data-box]") : null;
    $("#boxes").replaceChildren(...boxes.map((b) => (keep && keep.dataset.box === b.id ? keep : renderBox(b))));
  }
  function renderOne(id) {
    const b = boxes.find((x) => x.id === id);
    const old = document.querySelector(`[data-box="${CSS.escape(id)}"]`);
    if (b && old && !old.contains(document.activeElement)) old.replaceWith(renderBox(b));
  }

  async function loadFlagged(b) {
    const lists = await Promise.all([
      ...b.lots.map((l) => pg.api(`/api/v1/lots/${encodeURIComponent(l)}/bays`)),
      ...b.zones.map((z) => pg.api(`/api/v1/zones/${encodeURIComponent(z)}/bays`)),
    ]);
    flagged[b.id] = lists.flat().filter((bay) => bay.sensor && bay.sensor.flags.some((f) => f === "low_battery" || f === "silent" || f === "fault"));
  }
  async function loadCommands(id) {
    commands[id] = await pg.api(`/api/v1/boxes/${encodeURIComponent(id)}/commands?limit=10`);
    renderOne(id);
  }
  async function loadAll() {
    let rows;
    [boxes, signs, rows] = await Promise.all([pg.api("/api/v1/boxes"), pg.api("/api/v1/signs"), pg.api("/api/v1/fleet")]);
    fleet = Object.fromEntries(rows.map((f) => [f.box_id, f]));
    await Promise.all(boxes.map((b) => Promise.all([
      loadFlagged(b),
      pg.api(`/api/v1/boxes/${encodeURIComponent(b.id)}/commands?limit=10`).then((c) => { commands[b.id] = c; }),
    ])));
    render();
  }
  await loadAll();
  const refresh = pg.debounce(() => loadAll().catch(console.warn), 300);
  pg.live({
    box: refresh,
    sign: refresh,
    command_reply: (n) => loadCommands(n.box_id).catch(console.warn),
  }, loadAll);
});
