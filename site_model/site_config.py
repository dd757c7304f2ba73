"""The part of a box's configuration the office owns, and the part the box keeps: pure.

A box's ``edge.toml`` mixes two things. What the **site file** says (its lots and their
names and full bands, its stall zones' classes, hours and grace, the time zone, the broker's
address, the sensors', outbox's and MQTT timings) is the office's: central projects it with
:func:`site_model.edge_config.edge_config` and pushes it. What only **the box** knows stays
on the box and never travels: its identity (``site``, ``box_id``), where it keeps things
(``data_dir``), its secrets (``mqtt.username``, ``password_file``, ``password_env``,
``client_id``, ``ca_file``, ``cert_file``, ``key_file``), its wiring (``serial``,
``sign_buses``: devices, unit ids), its health page (``health``) and which sensor sits in
which bay (``lots.<id>.bays``, ``zones.<id>.bays``, commissioned at the box).

Two things cross that line and are split along it. **Bays**: which bays a lot or zone has
is the office's (``lots.<id>.bay_ids``, from the site file), which sensor sits in which is
the box's (``bays``); a pushed bay without a sensor is a real bay the box counts as
unknown, and a mapped bay the push no longer lists is set aside (its mapping stays in
``edge.toml``, unused; its sensor, still heard, is then an unmapped sensor). **Signs**:
what a sign shows (``profile``, ``lot``, ``arrow``, ``fallback``, ``zone``, ``message``)
is the office's and travels as a top-level ``signs.<sign_id>`` table, laid over the sign of
that id under whichever of the box's ``sign_buses`` it hangs on; the bus and each sign's
``unit`` and ``brightness`` stay the box's. A box document written before this split (no
``bay_ids``, displays under its buses) reports the same part, so a box that runs the
projection is in sync without a push.

* :func:`site_part` cuts the office's part out of a whole document;
* :func:`local_keys` names the box's keys found in a pushed document (it is refused);
* :func:`merge` lays a pushed part over a box's own document (the box's keys kept);
* :func:`digest` is the content hash of a part in a canonical form (sorted keys, compact
  JSON, times and dates in ISO form, whole floats as integers), so ``600`` and ``600.0``
  hash the same; :func:`section_digests` hashes each section (and each lot and zone) so
  central can say *what* differs from the hashes a box reports.
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import json
from collections.abc import Mapping
from pathlib import PurePath
from typing import Any

LOCAL_TOP = frozenset({"site", "box_id", "data_dir", "serial", "sign_buses", "health"})
MQTT_LOCAL = frozenset(
    {"username", "password_file", "password_env", "client_id", "ca_file", "cert_file", "key_file"}
)
AREAS = ("lots", "zones")  # their ``bays`` are the box's, their ``bay_ids`` the office's
SIGNS = "signs"  # the pushed displays, one table per sign id
SIGN_DISPLAY = frozenset({"profile", "lot", "arrow", "fallback", "zone", "message"})
SIGN_LOCAL = frozenset({"unit", "brightness"})
PER_ENTRY = (*AREAS, SIGNS)  # sections hashed entry by entry (``lots.P1``, ``signs.S1``)
SECTION_HASH_CHARS = 16


def site_part(document: Mapping[str, Any]) -> dict[str, Any]:
    """The office's sections of a box document (a copy; the box's keys left out).

    Each lot and zone says its ``bay_ids`` (as given, or, when the document has none, its
    mapped ``bays`` sorted, as central projects them), and the signs' displays are gathered
    from the sign buses into ``signs`` (a document's own ``signs`` table, a pushed part's,
    wins)."""
    part = _office_sections(document)
    for section in AREAS:
        own = _table(document, section)
        for area, body in part.get(section, {}).items():
            if isinstance(body, dict) and "bay_ids" not in body:  # given ones: as given
                body["bay_ids"] = sorted(_table(own.get(area) or {}, "bays"))
    signs = {sign_id: display for _, sign_id, display in _wired_displays(document)}
    signs.update(copy.deepcopy(dict(_table(document, SIGNS))))
    if signs:
        part[SIGNS] = signs
    return part


def _office_sections(document: Mapping[str, Any]) -> dict[str, Any]:
    """The document without the box's keys (nothing derived, nothing added)."""
    part: dict[str, Any] = {}
    for key, value in document.items():
        if key in LOCAL_TOP:
            continue
        if key == "mqtt" and isinstance(value, Mapping):
            value = {k: v for k, v in value.items() if k not in MQTT_LOCAL}
        elif key in AREAS and isinstance(value, Mapping):
            value = {
                area: (
                    {k: v for k, v in body.items() if k != "bays"}
                    if isinstance(body, Mapping)
                    else body
                )
                for area, body in value.items()
            }
        elif key == SIGNS and isinstance(value, Mapping):
            value = {
                sign_id: (
                    {k: v for k, v in body.items() if k not in SIGN_LOCAL}
                    if isinstance(body, Mapping)
                    else body
                )
                for sign_id, body in value.items()
            }
        part[key] = copy.deepcopy(value)
    return part


def _wired_displays(document: Mapping[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(bus, sign id, display) of every sign on the document's sign buses."""
    out = []
    for bus_id, bus in _table(document, "sign_buses").items():
        for sign_id, sign in _table(bus if isinstance(bus, Mapping) else {}, "signs").items():
            if isinstance(sign, Mapping):
                display = {k: copy.deepcopy(v) for k, v in sign.items() if k in SIGN_DISPLAY}
                out.append((bus_id, sign_id, display))
    return out


def unwired_signs(own: Mapping[str, Any], pushed: Mapping[str, Any]) -> list[str]:
    """The pushed signs no sign bus of the box has (their wiring is the technician's)."""
    wired = {sign_id for _, sign_id, _ in _wired_displays(own)}
    return sorted(set(_table(pushed, SIGNS)) - wired)


def local_keys(pushed: Mapping[str, Any]) -> list[str]:
    """Dotted paths of the box's own keys in a pushed document (which must carry none)."""
    found = [key for key in pushed if key in LOCAL_TOP]
    mqtt = pushed.get("mqtt")
    if isinstance(mqtt, Mapping):
        found += [f"mqtt.{key}" for key in mqtt if key in MQTT_LOCAL]
    for section in AREAS:
        areas = pushed.get(section)
        if isinstance(areas, Mapping):
            found += [
                f"{section}.{area}.bays"
                for area, body in areas.items()
                if isinstance(body, Mapping) and "bays" in body
            ]
    for sign_id, body in _table(pushed, SIGNS).items():
        if isinstance(body, Mapping):
            found += [f"{SIGNS}.{sign_id}.{key}" for key in body if key in SIGN_LOCAL]
    return sorted(found)


def merge(own: Mapping[str, Any], pushed: Mapping[str, Any]) -> dict[str, Any]:
    """The box's document with its office sections replaced by ``pushed``.

    The box's own keys are kept; a lot or zone the push drops goes with its bays; a lot or
    zone it keeps keeps its sensor mapping, cut to the pushed ``bay_ids`` when the push
    lists them (a mapped bay it no longer lists is set aside: see :func:`set_aside`); a
    pushed sign's display replaces the display of the sign of that id on whichever bus
    the box has it (its unit and brightness kept; a sign the push does not name keeps the
    box's display); a section the push leaves out falls back to the box's defaults (the
    push says the whole office part, not a patch)."""
    merged: dict[str, Any] = {k: copy.deepcopy(v) for k, v in own.items() if k in LOCAL_TOP}
    office = _office_sections(pushed)
    displays = office.pop(SIGNS, None)
    merged.update(office)
    own_mqtt = _table(own, "mqtt")
    secrets = {k: v for k, v in own_mqtt.items() if k in MQTT_LOCAL}
    if secrets or "mqtt" in merged:
        merged["mqtt"] = {**merged.get("mqtt", {}), **copy.deepcopy(secrets)}
    for section in AREAS:
        own_areas = _table(own, section)
        for area, body in merged.get(section, {}).items():
            own_body = own_areas.get(area)
            if isinstance(body, dict) and isinstance(own_body, Mapping) and "bays" in own_body:
                bays = copy.deepcopy(dict(_table(own_body, "bays")))
                if isinstance(body.get("bay_ids"), list):
                    bays = {k: v for k, v in bays.items() if k in body["bay_ids"]}
                body["bays"] = bays
    if isinstance(displays, Mapping):
        for bus in _table(merged, "sign_buses").values():
            for sign_id, sign in _table(bus if isinstance(bus, Mapping) else {}, "signs").items():
                shown = displays.get(sign_id)
                if isinstance(sign, dict) and isinstance(shown, Mapping):
                    for key in SIGN_DISPLAY:
                        sign.pop(key, None)
                    sign.update(copy.deepcopy(dict(shown)))
    return merged


def set_aside(own: Mapping[str, Any], pushed: Mapping[str, Any]) -> list[str]:
    """The box's mapped bays (``lots.P1.bays.P1-007``) a push no longer lists: their
    sensor mapping stays in ``edge.toml`` but is not used while the push runs."""
    found = []
    for section in AREAS:
        own_areas = _table(own, section)
        for area, body in _table(pushed, section).items():
            ids = body.get("bay_ids") if isinstance(body, Mapping) else None
            if isinstance(ids, list):
                mapped = _table(own_areas.get(area) or {}, "bays")
                found += [f"{section}.{area}.bays.{bay}" for bay in mapped if bay not in ids]
    return sorted(found)


def _table(document: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = document.get(key)
    return value if isinstance(value, Mapping) else {}


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, PurePath):
        return str(value)
    return value


def canonical(part: Mapping[str, Any]) -> bytes:
    """The one byte form a part is hashed in (both at central and on the box)."""
    return json.dumps(
        _plain(part), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode()


def digest(part: Mapping[str, Any]) -> str:
    """``sha256:<hex>`` of the part's canonical form."""
    return f"sha256:{hashlib.sha256(canonical(part)).hexdigest()}"


def section_digests(part: Mapping[str, Any]) -> dict[str, str]:
    """A short hash of each section, and of each lot, zone and sign (``lots.P1``,
    ``signs.P1-ENTRANCE``)."""
    sections: dict[str, str] = {}
    for key, value in part.items():
        if key in PER_ENTRY and isinstance(value, Mapping):
            for area, body in value.items():
                sections[f"{key}.{area}"] = digest({"v": body})[7 : 7 + SECTION_HASH_CHARS]
        else:
            sections[key] = digest({"v": value})[7 : 7 + SECTION_HASH_CHARS]
    return sections


def differing(desired: Mapping[str, str], reported: Mapping[str, str]) -> list[str]:
    """The sections (or lots, zones) whose hashes differ or that only one side has."""
    return sorted(k for k in set(desired) | set(reported) if desired.get(k) != reported.get(k))
