/* parkgrid dashboard helper: words, login, JSON API, live stream, small SVG charts.
 *
 * Every page script calls pg.page(async () => { ... }) once; it runs after the login check.
 * No third-party code: the charts are a few SVG elements drawn here (docs/dashboard.md).
 */
"use strict";

const pg = (() => {
  // The page's data: a JSON block the server writes and nobody runs (no inline script, so
  // the Content-Security-Policy allows scripts from central only). The query is read here,
  // as data, from the address bar: the server never writes it into the page.
  const cfg = readConfig();
  cfg.query = Object.fromEntries(new URLSearchParams(location.search));
  function readConfig() {
    const block = document.getElementById("pg-config");
    const fallback = { strings: {}, site: {}, page: "", lang: "zh", kiosk: false };
    if (!block) return fallback;
    try {
      return Object.assign(fallback, JSON.parse(block.textContent));
    } catch (e) {
      console.error("pg: the page's data block is not JSON", e);
      return fallback;
    }
  }
  // A county town's page (/towns/{town}/dashboard/...): the API calls, the live stream and
  // the dashboard's own links go through the town's paths (docs/scale.md, "A county").
  const townId = cfg.site && cfg.site.town ? cfg.site.town : null;
  function apiPath(path) {
    if (!townId || !path.startsWith("/api/v1/") || path.startsWith("/api/v1/auth/")) return path;
    return "/api/v1/towns/" + encodeURIComponent(townId) + path.slice("/api/v1".length);
  }
  if (townId) {
    document.addEventListener("click", (e) => {
      const a = e.target && e.target.closest ? e.target.closest("a[href]") : null;
      const href = a ? a.getAttribute("href") : "";
      if (href && href.startsWith("/dashboard")) a.setAttribute("href", "/towns/" + encodeURIComponent(townId) + href);
    }, true);
  }
  const RANK = { viewer: 1, operator: 2, admin: 3 };
  const KEY = "pg_session";

  // ---- words -------------------------------------------------------------------------
  function t(key, vars) {
    let s = cfg.strings[key];
    if (s === undefined) s = key;
    if (vars) for (const [k, v] of Object.entries(vars)) s = s.split("{" + k + "}").join(v);
    return s;
  }

  // ---- DOM ---------------------------------------------------------------------------
  function el(tag, attrs, ...children) {
    const node = document.createElementNS(
      tag.startsWith("svg:") ? "http://www.w3.org/2000/svg" : "http://www.w3.org/1999/xhtml",
      tag.replace(/^svg:/, "")
    );
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else if (k === "text") node.textContent = v;
      else if (k === "style" && typeof v === "object") Object.assign(node.style, v);
      else node.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children.flat(Infinity)) {
      if (c === null || c === undefined || c === false) continue;
      node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return node;
  }
  const $ = (sel, root) => (root || document).querySelector(sel);
  const $$ = (sel, root) => Array.from((root || document).querySelectorAll(sel));

  function debounce(fn, ms) {
    let timer = null;
    return (...args) => {
      clearTimeout(timer);
      timer = setTimeout(() => fn(...args), ms);
    };
  }

  function banner(text, kind) {
    const b = $("#banner");
    if (!b) return;
    b.hidden = !text;
    b.textContent = text || "";
    b.dataset.kind = kind || "info";
  }

  // ---- session and API ---------------------------------------------------------------
  function session() {
    const raw = sessionStorage.getItem(KEY) || localStorage.getItem(KEY);
    if (!raw) return null;
    try {
      const s = JSON.parse(raw);
      if (s.expires_at && Date.parse(s.expires_at) < Date.now()) return null;
      return s;
    } catch (e) {
      return null;
    }
  }
  function saveSession(s, keep) {
    (keep ? localStorage : sessionStorage).setItem(KEY, JSON.stringify(s));
  }
  function clearSession() {
    sessionStorage.removeItem(KEY);
    localStorage.removeItem(KEY);
  }
  function can(role) {
    const s = session();
    return !!s && (RANK[s.role] || 0) >= RANK[role];
  }
  function toLogin() {
    const next = location.pathname + location.search;
    location.href = "/dashboard/login?next=" + encodeURIComponent(next);
  }

  class ApiError extends Error {
    constructor(status, detail) {
      super(detail || "HTTP " + status);
      this.status = status;
    }
  }

  async function api(path, opts) {
    const o = opts || {};
    const s = session();
    const headers = { Accept: "application/json" };
    if (s) headers.Authorization = "Bearer " + s.token;
    let body;
    if (o.form) body = new URLSearchParams(o.form);
    else if (o.body !== undefined) {
      headers["Content-Type"] = "application/json";
      body = JSON.stringify(o.body);
    }
    const res = await fetch(apiPath(path), { method: o.method || "GET", headers, body });
    if (res.status === 401 && !o.noRedirect) {
      clearSession();
      toLogin();
      throw new ApiError(401, t("auth.expired"));
    }
    if (!res.ok) {
      let detail = "";
      try {
        detail = (await res.json()).detail;
      } catch (e) {
        detail = res.statusText;
      }
      throw new ApiError(res.status, typeof detail === "string" ? detail : JSON.stringify(detail));
    }
    return res.status === 204 ? null : res.json();
  }

  // ---- the town's clock ----------------------------------------------------------------
  // Central owns it (central/townclock.py). A reading {town, wall, speed, simulated} (epoch
  // seconds) comes in the page's data block and from GET /api/v1/clock, re-read every half
  // minute (an open page learns the demo's clock when the town starts). The API's times are
  // the boxes' wall times; every time the dashboard shows is on the town's clock, through
  // the reading: town(w) = reading.town + (w - reading.wall) * speed. In a real town the
  // speed is 1 and town time is the site's local time.
  let reading = null;
  function setClock(r) {
    if (!r || !(r.speed > 0)) return;
    reading = { town: r.town * 1000, wall: r.wall * 1000, speed: r.speed, simulated: !!r.simulated, at: performance.now() };
  }
  setClock(cfg.clock);
  if (!reading) setClock({ town: Date.now() / 1000, wall: Date.now() / 1000, speed: 1, simulated: false });
  /** Town epoch ms of a wall (API) time in epoch ms. */
  const town = (wallMs) => reading.town + (wallMs - reading.wall) * reading.speed;
  /** Wall (API) epoch ms of a town time in epoch ms: what a query about town time asks. */
  const wall = (townMs) => reading.wall + (townMs - reading.town) / reading.speed;
  /** The town's time now, epoch ms (central's wall clock, not this browser's, moved on). */
  const now = () => town(reading.wall + (performance.now() - reading.at));
  const speed = () => reading.speed;
  async function refreshClock() {
    try {
      const res = await fetch("/api/v1/clock", { headers: { Accept: "application/json" } });
      if (res.ok) setClock(await res.json());
    } catch (e) { /* keep the last reading */ }
  }

  // ---- time in the site's time zone --------------------------------------------------
  const tz = (cfg.site && cfg.site.timezone) || undefined;
  const locale = cfg.lang === "zh" ? "zh-CN" : "en-GB";
  const partsFmt = new Intl.DateTimeFormat("en-US", {
    timeZone: tz, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: "2-digit", weekday: "short",
  });
  const WEEKDAYS = { Mon: 0, Tue: 1, Wed: 2, Thu: 3, Fri: 4, Sat: 5, Sun: 6 };
  function parts(ms) {
    const p = {};
    for (const x of partsFmt.formatToParts(new Date(ms))) p[x.type] = x.value;
    return {
      y: +p.year, mo: +p.month, d: +p.day, h: +p.hour % 24, mi: +p.minute, s: +p.second,
      wd: WEEKDAYS[p.weekday],
    };
  }
  /** Epoch ms of the local midnight (site time zone) of the day holding `ms`. */
  function midnight(ms) {
    const p = parts(ms);
    const asUtc = Date.UTC(p.y, p.mo - 1, p.d, p.h, p.mi, p.s);
    const offset = asUtc - Math.floor(ms / 1000) * 1000;
    return Date.UTC(p.y, p.mo - 1, p.d) - offset;
  }
  const timeFmt = new Intl.DateTimeFormat(locale, {
    timeZone: tz, hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23",
  });
  const dateTimeFmt = new Intl.DateTimeFormat(locale, {
    timeZone: tz, month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit",
    hourCycle: "h23",
  });
  const hmFmt = new Intl.DateTimeFormat(locale, {
    timeZone: tz, hour: "2-digit", minute: "2-digit", hourCycle: "h23",
  });
  const dayFmt = new Intl.DateTimeFormat(locale, { timeZone: tz, month: "2-digit", day: "2-digit", weekday: "short" });
  const ms = (v) => (v === null || v === undefined ? null : typeof v === "number" ? v : Date.parse(v));
  function durText(s) {
    if (s === null || s === undefined) return "—";
    if (s < 60) return Math.round(s) + " s";
    if (s < 3600) return Math.round(s / 60) + " min";
    return (s / 3600).toFixed(1) + " h";
  }
  /* fmt.* take the API's (wall) times and durations and show them on the town's clock;
   * fmt.town.* take town times already: a chart's axis, the clock, and what cameras stamp
   * (captures' times, a ledger entry's evidence), which in the demo is the town's clock. */
  const fmt = {
    time: (v) => (v ? timeFmt.format(town(ms(v))) : "—"),
    dateTime: (v) => (v ? dateTimeFmt.format(town(ms(v))) : "—"),
    hm: (v) => (v ? hmFmt.format(town(ms(v))) : "—"),
    day: (v) => (v ? dayFmt.format(town(ms(v))) : "—"),
    town: {
      time: (v) => (v ? timeFmt.format(ms(v)) : "—"),
      dateTime: (v) => (v ? dateTimeFmt.format(ms(v)) : "—"),
      day: (v) => (v ? dayFmt.format(ms(v)) : "—"),
      dur: (s) => durText(s),
    },
    ago(v) {
      if (!v) return "—";
      const s = Math.max(0, Math.round((now() - town(ms(v))) / 1000));
      if (s < 60) return t("ago.s", { n: s });
      if (s < 3600) return t("ago.m", { n: Math.round(s / 60) });
      if (s < 86400) return t("ago.h", { n: Math.round(s / 3600) });
      return t("ago.d", { n: Math.round(s / 86400) });
    },
    dur: (wallS) => durText(wallS === null || wallS === undefined ? wallS : wallS * reading.speed),
    pct: (x) => (x === null || x === undefined ? "—" : Math.round(x * 100) + "%"),
  };

  // ---- colours (as on the signs) -----------------------------------------------------
  const STATUS_COLOUR = {
    spacesAvailable: "green", almostFull: "amber", full: "red", closed: "red", unknown: "grey",
  };
  const OCC_COLOURS = ["#1fa35c", "#e0a100", "#d83c3c"];
  function occColour(x) {
    if (x === null || x === undefined || Number.isNaN(x)) return "#3a4252";
    if (x < 0.75) return mix("#1b6b45", "#1fa35c", x / 0.75);
    if (x < 0.92) return mix("#e0a100", "#e07a00", (x - 0.75) / 0.17);
    return mix("#e05a2a", "#d83c3c", Math.min(1, (x - 0.92) / 0.08));
  }
  function mix(a, b, f) {
    const pa = [1, 3, 5].map((i) => parseInt(a.slice(i, i + 2), 16));
    const pb = [1, 3, 5].map((i) => parseInt(b.slice(i, i + 2), 16));
    const c = pa.map((v, i) => Math.round(v + (pb[i] - v) * Math.max(0, Math.min(1, f))));
    return "#" + c.map((v) => v.toString(16).padStart(2, "0")).join("");
  }

  // ---- SVG charts ----------------------------------------------------------------------
  /** A sparkline of values in 0..1 (null = gap), as an inline SVG. */
  function sparkline(values, opts) {
    const o = Object.assign({ w: 240, h: 48, colour: "currentColor" }, opts || {});
    const svg = el("svg:svg", {
      viewBox: `0 0 ${o.w} ${o.h}`, class: "spark", preserveAspectRatio: "none",
    });
    const n = o.slots || values.length;
    if (!values.length) return svg;
    const x = (i) => (n <= 1 ? 0 : (i / (n - 1)) * o.w);
    const y = (v) => o.h - 2 - v * (o.h - 4);
    let d = "";
    let area = "";
    let start = null;
    let last = null;
    values.forEach((v, i) => {
      if (v === null || v === undefined) return;
      d += (last === null || last !== i - 1 ? "M" : "L") + x(i).toFixed(1) + " " + y(v).toFixed(1);
      if (start === null) start = i;
      last = i;
    });
    if (start !== null) {
      area = d.replace(/^M/, "M") + `L${x(last).toFixed(1)} ${o.h}L${x(start).toFixed(1)} ${o.h}Z`;
      svg.append(el("svg:path", { d: area, fill: o.colour, opacity: 0.18, stroke: "none" }));
      svg.append(el("svg:path", { d, fill: "none", stroke: o.colour, "stroke-width": 2, "vector-effect": "non-scaling-stroke" }));
    }
    return svg;
  }

  /** A line chart: series [{points: [[ms, 0..1]], colour, label, dashed}] over [x0, x1]. */
  function lineChart(series, opts) {
    const o = Object.assign({ w: 900, h: 280, x0: 0, x1: 1, ticks: [], yLabel: "" }, opts || {});
    const L = 46, R = 26, T = 14, B = 28;
    const W = o.w - L - R, H = o.h - T - B;
    const svg = el("svg:svg", { viewBox: `0 0 ${o.w} ${o.h}`, class: "chart" });
    const x = (v) => L + ((v - o.x0) / (o.x1 - o.x0 || 1)) * W;
    const y = (v) => T + H - v * H;
    for (const g of [0, 0.25, 0.5, 0.75, 1]) {
      svg.append(el("svg:line", { x1: L, x2: L + W, y1: y(g), y2: y(g), class: "grid" }));
      svg.append(el("svg:text", { x: L - 6, y: y(g) + 4, "text-anchor": "end", class: "axis", text: Math.round(g * 100) + "%" }));
    }
    for (const [v, label] of o.ticks) {
      svg.append(el("svg:line", { x1: x(v), x2: x(v), y1: T, y2: T + H, class: "grid" }));
      svg.append(el("svg:text", { x: x(v), y: o.h - 8, "text-anchor": "middle", class: "axis", text: label }));
    }
    for (const s of series) {
      let d = "";
      let prev = false;
      for (const [px, py] of s.points) {
        if (py === null || py === undefined) { prev = false; continue; }
        d += (prev ? "L" : "M") + x(px).toFixed(1) + " " + y(py).toFixed(1);
        prev = true;
      }
      svg.append(el("svg:path", {
        d, fill: "none", stroke: s.colour, "stroke-width": s.width || 2.5,
        "stroke-dasharray": s.dashed ? "6 5" : null, class: "series",
      }));
    }
    if (o.now !== undefined && o.now >= o.x0 && o.now <= o.x1) {
      svg.append(el("svg:line", { x1: x(o.now), x2: x(o.now), y1: T, y2: T + H, class: "now" }));
    }
    return svg;
  }

  /** Hour-of-week heat map: cells[weekday 0..6][hour 0..23] = occupancy 0..1 or null. */
  function heatmap(cells, opts) {
    const o = Object.assign({ cell: 30, gap: 3 }, opts || {});
    const L = 52, T = 22, c = o.cell, g = o.gap;
    const w = L + 24 * (c + g), h = T + 7 * (c + g);
    const svg = el("svg:svg", { viewBox: `0 0 ${w} ${h}`, class: "heat" });
    for (let hr = 0; hr < 24; hr += 3) {
      svg.append(el("svg:text", { x: L + hr * (c + g) + c / 2, y: 14, "text-anchor": "middle", class: "axis", text: String(hr).padStart(2, "0") }));
    }
    for (let wd = 0; wd < 7; wd++) {
      svg.append(el("svg:text", { x: L - 8, y: T + wd * (c + g) + c / 2 + 5, "text-anchor": "end", class: "axis", text: t("wd." + wd) }));
      for (let hr = 0; hr < 24; hr++) {
        const v = cells[wd][hr];
        const r = el("svg:rect", {
          x: L + hr * (c + g), y: T + wd * (c + g), width: c, height: c, rx: 4,
          fill: occColour(v), "data-wd": wd, "data-hour": hr,
        });
        r.append(el("svg:title", { text: `${t("wd." + wd)} ${String(hr).padStart(2, "0")}:00  ${fmt.pct(v)}` }));
        svg.append(r);
      }
    }
    return svg;
  }

  // ---- hover tips ------------------------------------------------------------------------
  function tip(node, render) {
    const box = $("#tip");
    node.addEventListener("mouseenter", () => {
      box.replaceChildren(render());
      box.hidden = false;
    });
    node.addEventListener("mousemove", (e) => {
      const x = Math.min(e.clientX + 14, window.innerWidth - box.offsetWidth - 8);
      const y = Math.min(e.clientY + 14, window.innerHeight - box.offsetHeight - 8);
      box.style.left = x + "px";
      box.style.top = y + "px";
    });
    node.addEventListener("mouseleave", () => { box.hidden = true; });
  }

  // ---- the live stream -------------------------------------------------------------------
  /**
   * Listen to /api/v1/stream. `handlers` maps event names (lot, bay, bay_changed, zone,
   * sign, box, alert_raised, alert_resolved, command_reply, ...) to functions of the
   * notice. `reload` is called after a reconnect or a resync: notices may have been missed.
   * The stream sends only the kinds in `handlers` and, with `scope.lots` (a list of lot
   * ids), only what concerns those lots and their boxes (docs/central.md, the live stream).
   */
  function live(handlers, reload, scope) {
    const query = "&kinds=" + encodeURIComponent(Object.keys(handlers || {}).join(","))
      + (scope && scope.lots ? "&lots=" + encodeURIComponent(scope.lots.join(",")) : "");
    const badge = $("#live");
    let source = null;
    let lost = false;
    let retry = null;
    function show(state) {
      if (!badge) return;
      badge.dataset.state = state;
      $(".text", badge).textContent = t("live." + state);
    }
    function connect() {
      const s = session();
      if (!s) return toLogin();
      source = new EventSource(apiPath("/api/v1/stream") + "?access_token=" + encodeURIComponent(s.token) + query);
      source.addEventListener("hello", () => {
        if (lost) {
          lost = false;
          show("back");
          banner(t("live.reconnected", { time: fmt.town.time(now()) }), "ok");
          setTimeout(() => { if (!lost) { banner(""); show("on"); } }, 4000);
          if (reload) reload();
        } else show("on");
      });
      source.addEventListener("resync", () => reload && reload());
      // The token behind the stream ended (logout, expiry, a disabled user): log in again.
      source.addEventListener("end", () => {
        source.close();
        clearSession();
        toLogin();
      });
      for (const [name, fn] of Object.entries(handlers || {})) {
        source.addEventListener(name, (e) => fn(JSON.parse(e.data)));
      }
      source.onerror = () => {
        if (!lost) {
          lost = true;
          show("lost");
          banner(t("live.lost_banner"), "warn");
        }
        // The browser retries by itself unless the stream was refused (CLOSED): then we do.
        if (source.readyState === EventSource.CLOSED && retry === null) {
          retry = setTimeout(async () => {
            retry = null;
            try {
              await api("/api/v1/auth/me");
            } catch (e) {
              if (e.status === 401) return;
            }
            connect();
          }, 3000);
        }
      };
    }
    connect();
    return { close: () => source && source.close() };
  }

  // ---- page boot -------------------------------------------------------------------------
  let init = null;
  function page(fn) { init = fn; }

  function applyRoles() {
    for (const node of $$("[data-role]")) node.hidden = !can(node.dataset.role);
  }

  async function boot() {
    // Keep the rest of the query when switching language.
    const langLink = $("header .lang");
    if (langLink) {
      const q = new URLSearchParams(location.search);
      q.set("lang", langLink.getAttribute("href").split("=")[1]);
      langLink.setAttribute("href", "?" + q.toString());
    }
    if (cfg.page !== "login") {
      const s = session();
      if (!s) return toLogin();
      $("#user").textContent = `${s.name} · ${t("role." + s.role)}`;
      const out = $("#logout");
      out.hidden = false;
      out.addEventListener("click", async () => {
        try { await api("/api/v1/auth/logout", { method: "POST", noRedirect: true }); } catch (e) { /* gone anyway */ }
        clearSession();
        toLogin();
      });
      if (cfg.kiosk) {
        for (const a of $$("a[href^='/dashboard']")) {
          const u = new URL(a.href, location.href);
          u.searchParams.set("kiosk", "1");
          a.href = u.pathname + u.search;
        }
      }
    }
    applyRoles();
    const clock = $("#clock");
    if (clock) {
      // Town time, labelled; with its speed when a demo's town runs faster than the wall.
      const tick = () => {
        const fast = reading.simulated && reading.speed !== 1;
        clock.textContent = t("clock.town") + " " + fmt.town.time(now()) +
          (fast ? " " + t("clock.speed", { n: reading.speed }) : "");
        clock.title = t(fast ? "clock.title_sim" : "clock.title", { n: reading.speed, tz: tz || "" });
      };
      tick();
      setInterval(tick, 1000);
      refreshClock().then(tick);
      setInterval(refreshClock, 30000);
    }
    if (init) {
      try {
        await init();
      } catch (e) {
        if (e.status !== 401) banner(t("error.load") + ": " + e.message, "error");
        throw e;
      }
    }
  }
  document.addEventListener("DOMContentLoaded", boot);

  return {
    cfg, t, el, $, $$, debounce, banner, api, apiPath, townId, ApiError, session, saveSession, clearSession,
    can, applyRoles, parts, midnight, fmt, town, wall, now, speed, STATUS_COLOUR, OCC_COLOURS, occColour, sparkline,
    lineChart, heatmap, tip, live, page,
  };
})();
