"""The one config projection: the site file and a box id, with where the box stands, give
that box's ``edge.toml``.

What the town is comes from the :class:`~site_model.site.Site`: the site and box ids, the
time zone, the box's lots (name, full band), its stall zones (class, trading hours as weekly
windows, grace) and its signs (kind, lot or zone or fixed message, arrow, fallbacks). What
only the deployment knows comes from a :class:`Deployment`: the broker's URL and where the
box keeps its credentials, its data folder, the serial device of its concentrator, which
sensor sits in which bay, the sign bus and each sign's unit id, and any timings that differ
from the box's defaults. ``provision-box``, the demo, the benches and the tests all build a
box's config here, so none of them can drift from the site file or from each other.

``edge_config(site, box_id, deployment)`` returns the document as TOML-ready data and
``edge_config_toml(...)`` writes it with tomli-w. Both are pure (no I/O); a box or bay the
site does not give this box is refused with :class:`EdgeConfigError` naming it. The box's
own loader (``edge/config.py``) is what checks the result: a test loads every projection
of every box of ``simulators/sites/xigang.toml`` with it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import tomli_w

from site_model.site import SignKind, Site
from site_model.site_config import SIGNS, site_part
from site_model.site_sections import SignEntry
from site_model.zone_classes import CLOSING_SOON_S, ZONE_CLASS_DEFAULTS

DEFAULT_BOX_ETC = "/etc/parkgrid"
DEFAULT_DATA_DIR = "/var/lib/parkgrid"
UNKNOWN_SERIAL_DEVICE = "/dev/serial/by-id/CHANGE-ME"
WEEK = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
PROFILE_BY_KIND = {SignKind.GUIDANCE: "parkgrid-guidance", SignKind.WARNING: "parkgrid-warning"}
TREND_WINDOW_S = 900.0  # a lot's trend is its change over 15 minutes (the box's default)


class EdgeConfigError(ValueError):
    """The box's config cannot be projected; ``box_id`` and ``reason`` say why."""

    def __init__(self, reason: str, *, box_id: str) -> None:
        self.reason = reason
        self.box_id = box_id
        super().__init__(f"box {box_id}: {reason}")


@dataclass(frozen=True, kw_only=True)
class SignBus:
    """The Modbus bus the box's signs hang on, and each sign's unit id on it.

    ``settings`` are the bus's other keys (``timeout_s``, ``refresh_interval_s``, ...), as
    in edge.toml's ``[sign_buses.<id>]``."""

    units: Mapping[str, int]
    transport: Literal["tcp", "rtu"] = "tcp"
    host: str | None = None
    port: int | None = None
    device: str | None = None
    settings: Mapping[str, Any] = field(default_factory=dict)
    bus_id: str = "bus"


@dataclass(frozen=True, kw_only=True)
class Deployment:
    """What the site file does not say: where this box stands and how it is run.

    ``box_etc`` is the folder of the box's MQTT password (and CA for ``mqtts://``); None
    connects without credentials (a test broker). ``sensors`` maps a bay id to its
    ``(sensor id, format)``; bays without one are left out for the technician to fill.
    ``time_scale`` divides every duration taken from the site or the zone classes (the
    demo's town clock runs that many times faster); ``zone_overrides`` replaces a zone's
    weekly windows with these date overrides (the demo's windows on the wall clock)."""

    mqtt_url: str
    box_etc: str | None = DEFAULT_BOX_ETC
    data_dir: str = DEFAULT_DATA_DIR
    serial_device: str = UNKNOWN_SERIAL_DEVICE
    sensors: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    sign_bus: SignBus | None = None
    time_scale: float = 1.0
    zone_overrides: Mapping[str, Sequence[Mapping[str, Any]]] = field(default_factory=dict)
    mqtt_keepalive_s: int | None = None
    heartbeat_timeout_s: float | None = None
    resend_after_s: float | None = None
    health_listen: str | None = None
    status_interval_s: float | None = None


def edge_config(site: Site, box_id: str, deployment: Deployment) -> dict[str, Any]:
    """The box's edge.toml as data (see the module docstring)."""
    if box_id not in site.boxes:
        known = ", ".join(sorted(site.boxes)) or "none"
        raise EdgeConfigError(f"not in the site file's [boxes] (known: {known})", box_id=box_id)
    _check_sensors(site, box_id, deployment)
    doc: dict[str, Any] = {
        "site": site.id,
        "box_id": box_id,
        "timezone": site.site.timezone,
        "data_dir": deployment.data_dir,
        "mqtt": _mqtt(box_id, deployment),
        "serial": {"conc": {"device": deployment.serial_device, "protocol": "concentrator"}},
        "lots": _lots(site, box_id, deployment),
    }
    if zones := _zones(site, box_id, deployment):
        doc["zones"] = zones
    if deployment.sign_bus is not None and (signs := _signs(site, box_id, deployment.sign_bus)):
        doc["sign_buses"] = {deployment.sign_bus.bus_id: _bus(deployment.sign_bus, signs)}
    if deployment.time_scale != 1.0 and doc["lots"]:  # 15 minutes of the town's clock
        doc.setdefault("sensors", {})["trend_window_s"] = _scaled(TREND_WINDOW_S, deployment)
    for section, key, value in (
        ("sensors", "heartbeat_timeout_s", deployment.heartbeat_timeout_s),
        ("outbox", "resend_after_s", deployment.resend_after_s),
        ("health", "listen", deployment.health_listen),
        ("health", "status_interval_s", deployment.status_interval_s),
    ):
        if value is not None:
            doc.setdefault(section, {})[key] = value
    return doc


def office_part(site: Site, box_id: str, deployment: Deployment) -> dict[str, Any]:
    """The office's part of the box's config (``site_model.site_config``): the projection's
    cut, with every lot's and zone's bay ids as the site file gives them (sensors or not)
    and every sign's display (the wiring left to the box). Central pushes this."""
    whole = edge_config(site, box_id, deployment)
    part = site_part(whole)
    for lot_id, body in part.get("lots", {}).items():
        body["bay_ids"] = sorted(site.lots[lot_id].bay_ids(lot_id))
    for zone_id, body in part.get("zones", {}).items():
        body["bay_ids"] = sorted(site.zones[zone_id].bay_ids(zone_id))
    part.pop(SIGNS, None)
    if signs := {
        sign_id: sign_display(sign) for sign_id, sign in site.signs.items() if sign.box_id == box_id
    }:
        part[SIGNS] = signs
    return part


def edge_config_toml(site: Site, box_id: str, deployment: Deployment) -> str:
    """``edge_config`` written as TOML by tomli-w."""
    return tomli_w.dumps(edge_config(site, box_id, deployment))


def _check_sensors(site: Site, box_id: str, deployment: Deployment) -> None:
    mine = {bay for lot_id in site.lots_of_box(box_id) for bay in site.lots[lot_id].bay_ids(lot_id)}
    mine |= {
        bay for zone_id in site.zones_of_box(box_id) for bay in site.zones[zone_id].bay_ids(zone_id)
    }
    if strangers := sorted(set(deployment.sensors) - mine):
        raise EdgeConfigError(
            f"sensors given for bay(s) {', '.join(strangers[:5])} that the site file does not "
            "put in this box's lots or zones",
            box_id=box_id,
        )


def _mqtt(box_id: str, deployment: Deployment) -> dict[str, Any]:
    mqtt: dict[str, Any] = {"url": deployment.mqtt_url}
    if deployment.box_etc is not None:
        mqtt["username"] = box_id
        mqtt["password_file"] = f"{deployment.box_etc}/mqtt-password"
        if deployment.mqtt_url.startswith("mqtts://"):
            mqtt["ca_file"] = f"{deployment.box_etc}/ca.crt"
    if deployment.mqtt_keepalive_s is not None:
        mqtt["keepalive_s"] = deployment.mqtt_keepalive_s
    return mqtt


def _bays(bay_ids: list[str], deployment: Deployment) -> dict[str, Any]:
    return {
        bay_id: {"sensor": deployment.sensors[bay_id][0], "format": deployment.sensors[bay_id][1]}
        for bay_id in bay_ids
        if bay_id in deployment.sensors
    }


def _lots(site: Site, box_id: str, deployment: Deployment) -> dict[str, Any]:
    lots: dict[str, Any] = {}
    for lot_id in site.lots_of_box(box_id):
        lot = site.lots[lot_id]
        lots[lot_id] = {"name": lot.name, "full_band": lot.full_band}
        if bays := _bays(lot.bay_ids(lot_id), deployment):
            lots[lot_id]["bays"] = bays
    return lots


def _scaled(seconds: float, deployment: Deployment) -> float:
    if deployment.time_scale == 1.0:
        return seconds
    return round(seconds / deployment.time_scale, 3)


def _clock(text: str) -> dt.time:
    hours, minutes = (int(part) for part in text.split(":"))
    return dt.time(hours % 24, minutes)  # 24:00 is midnight: a window ending then ends next day


def _zones(site: Site, box_id: str, deployment: Deployment) -> dict[str, Any]:
    zones: dict[str, Any] = {}
    for zone_id in site.zones_of_box(box_id):
        zone = site.zones[zone_id]
        klass = zone.zone_class.value
        entry: dict[str, Any] = {"name": zone.name, "class": klass}
        if bays := _bays(zone.bay_ids(zone_id), deployment):
            entry["bays"] = bays
        if klass != "prohibited":  # a prohibited zone is never open: no windows
            if zone_id in deployment.zone_overrides:
                entry["overrides"] = [dict(o) for o in deployment.zone_overrides[zone_id]]
            elif zone.trading_hours:
                entry["windows"] = [
                    {"days": list(WEEK), "start": _clock(opens), "end": _clock(closes)}
                    for opens, closes in (hours.split("-") for hours in zone.trading_hours)
                ]
            if deployment.time_scale != 1.0:
                entry["closing_soon_s"] = _scaled(CLOSING_SOON_S, deployment)
        entry["grace_s"] = _scaled(zone.grace_min * 60.0, deployment)
        if deployment.time_scale != 1.0:
            entry["ladder"] = [
                {"after_s": _scaled(after, deployment), "severity": severity}
                for after, severity in ZONE_CLASS_DEFAULTS[klass][1]
            ]
        zones[zone_id] = entry
    return zones


def _signs(site: Site, box_id: str, bus: SignBus) -> dict[str, Any]:
    signs: dict[str, Any] = {}
    for sign_id, sign in site.signs.items():
        if sign.box_id != box_id:
            continue
        if sign_id not in bus.units:
            raise EdgeConfigError(
                f"sign {sign_id} has no unit id on the sign bus (parkgrid edge scan-signs)",
                box_id=box_id,
            )
        signs[sign_id] = {"unit": bus.units[sign_id], **sign_display(sign)}
    return signs


def sign_display(sign: SignEntry) -> dict[str, Any]:
    """What a sign shows, as edge.toml's sign keys (the office's; ``unit`` is the box's)."""
    entry: dict[str, Any] = {"profile": PROFILE_BY_KIND[sign.kind]}
    if sign.kind is SignKind.GUIDANCE:
        entry["lot"] = sign.lot
        entry["arrow"] = sign.arrow
        entry["fallback"] = [{"lot": t.lot, "arrow": t.arrow} for t in sign.fallback]
    elif sign.zone is not None:
        entry["zone"] = sign.zone
    else:
        entry["message"] = sign.message
    return entry


def _bus(bus: SignBus, signs: dict[str, Any]) -> dict[str, Any]:
    where: dict[str, Any] = {"transport": bus.transport}
    for key, value in (("host", bus.host), ("port", bus.port), ("device", bus.device)):
        if value is not None:
            where[key] = value
    return {**where, **bus.settings, "signs": signs}
