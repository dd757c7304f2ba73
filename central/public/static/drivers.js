// The drivers' page, live: the server rendered every figure; this script keeps them current
// by asking /api/v1/public/board each second (the browser revalidates with the ETag, so an
// unchanged board costs a 304), and sorts the lots by distance when the driver asks.
"use strict";
(function () {
  var config = JSON.parse(document.getElementById("drivers-data").textContent);
  var words = config.strings;
  var board = config.board;
  var here = null;
  var POLL_MS = 1000;

  function t(key, values) {
    var text = words[key] || key;
    Object.keys(values || {}).forEach(function (name) {
      text = text.split("{" + name + "}").join(String(values[name]));
    });
    return text;
  }

  function setText(root, selector, text) {
    var el = root.querySelector(selector);
    if (el && el.textContent !== text) el.textContent = text;
  }

  function forecastNode(forecast) {
    var p = document.createDocumentFragment();
    if (!forecast) return p;
    if (!forecast.points || !forecast.points.length) {
      if (forecast.status === "insufficient_history") {
        p.appendChild(document.createTextNode(t("forecast.none")));
      }
      return p;
    }
    p.appendChild(document.createTextNode(t("forecast") + ": "));
    forecast.points.forEach(function (pt) {
      var span = document.createElement("span");
      var b = document.createElement("b");
      b.textContent = String(pt.free);
      span.appendChild(document.createTextNode(t("forecast.in", { m: pt.minutes }) + " "));
      span.appendChild(b);
      span.appendChild(document.createTextNode(" (" + pt.low + "–" + pt.high + ") "));
      p.appendChild(span);
    });
    return p;
  }

  function render(next) {
    board = next;
    setText(document, "#clock", board.clock);
    next.lots.forEach(function (lot) {
      var card = document.getElementById("lot-" + lot.id);
      if (!card) return;
      card.className = "lot s-" + lot.state;
      setText(card, ".count", lot.free === null ? "–" : String(lot.free));
      setText(card, ".state", t("state." + lot.state));
      setText(card, ".trend", lot.trend ? t("trend." + lot.trend) : "");
      var fc = card.querySelector(".forecast");
      if (fc) {
        fc.textContent = "";
        fc.appendChild(forecastNode(lot.forecast));
      }
    });
    next.zones.forEach(function (z) {
      var li = document.getElementById("zone-" + z.id);
      if (!li) return;
      li.className = "zone " + (z.open_now ? "open" : "shut");
      setText(li, ".zstate", t(z.open_now ? "zone.open" : "zone.closed"));
      var when = z.change_at
        ? t(z.open_now ? "zone.closes" : "zone.opens", { t: z.change_at })
        : t("zone.none");
      setText(li, ".zwhen", when);
    });
    var status = document.getElementById("status");
    status.className = "status";
    status.textContent =
      (board.updated_local ? t("updated", { t: board.updated_local }) : t("updated.never")) +
      " · " + t("live");
  }

  // A county town's page (/towns/{town}/) polls its town's board.
  var townPath = location.pathname.match(/^\/towns\/([A-Za-z0-9][A-Za-z0-9_.-]{0,63})\//);
  var BOARD = (townPath ? "/api/v1/towns/" + townPath[1] : "/api/v1") + "/public/board";

  var quietUntil = 0;

  function poll() {
    if (document.hidden || Date.now() < quietUntil) return;
    fetch(BOARD, { cache: "no-cache", credentials: "omit" })
      .then(function (r) {
        if (r.status === 429) {  // too fast for the server: wait as long as it asks
          var wait = parseInt(r.headers.get("Retry-After") || "5", 10);
          quietUntil = Date.now() + 1000 * (isNaN(wait) ? 5 : wait);
        }
        if (!r.ok) throw new Error(String(r.status));
        return r.json();
      })
      .then(render)
      .catch(function () {
        var status = document.getElementById("status");
        status.className = "status offline";
        status.textContent = t("offline");
      });
  }

  function metres(a, b) {
    var rad = Math.PI / 180, r = 6371000;
    var dLat = (b.lat - a.lat) * rad, dLon = (b.lon - a.lon) * rad;
    var h = Math.sin(dLat / 2) * Math.sin(dLat / 2) +
      Math.cos(a.lat * rad) * Math.cos(b.lat * rad) * Math.sin(dLon / 2) * Math.sin(dLon / 2);
    return 2 * r * Math.asin(Math.sqrt(h));
  }

  function sortByDistance() {
    var main = document.getElementById("lots");
    var cards = Array.prototype.slice.call(main.querySelectorAll(".lot"));
    cards.forEach(function (card) {
      var lat = parseFloat(card.getAttribute("data-lat"));
      var lon = parseFloat(card.getAttribute("data-lon"));
      card._d = isNaN(lat) ? Infinity : metres(here, { lat: lat, lon: lon });
      var d = card._d;
      var text = d === Infinity ? "" :
        t("distance", { d: d < 1000 ? Math.round(d / 10) * 10 + " m" : (d / 1000).toFixed(1) + " km" });
      setText(card, ".dist", text);
    });
    cards.sort(function (a, b) { return a._d - b._d; });
    cards.forEach(function (card) { main.appendChild(card); });
  }

  function locate() {
    var button = document.getElementById("near");
    if (!navigator.geolocation) return;
    button.textContent = t("near.busy");
    navigator.geolocation.getCurrentPosition(
      function (pos) {
        here = { lat: pos.coords.latitude, lon: pos.coords.longitude };
        button.textContent = t("near");
        sortByDistance();
      },
      function () { button.textContent = t("near.denied"); },
      { enableHighAccuracy: false, timeout: 15000, maximumAge: 60000 }
    );
  }

  var near = document.getElementById("near");
  if (navigator.geolocation) {
    near.hidden = false;
    near.addEventListener("click", locate);
    if (navigator.permissions && navigator.permissions.query) {
      navigator.permissions.query({ name: "geolocation" }).then(function (p) {
        if (p.state === "granted") locate();
      }).catch(function () {});
    }
  }
  render(board);
  setInterval(poll, POLL_MS);
  document.addEventListener("visibilitychange", poll);
})();
