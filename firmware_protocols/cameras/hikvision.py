"""Hikvision ISAPI ``EventNotificationAlert`` with ``eventType`` ANPR, into a Capture.

Theory of operation
-------------------
A Hikvision camera set to "notify surveillance center" over HTTP POSTs each plate read to
the configured URL, either as the XML alone or as ``multipart/form-data`` with the XML
part first and the pictures after it, each picture part named as in the XML's
``pictureInfoList``::

    EventNotificationAlert (xmlns http://www.isapi.org/ver20/XMLSchema)
    ├── ipAddress, macAddress, channelID, channelName
    ├── dateTime            2025-03-01T16:00:00+08:00
    ├── eventType           ANPR         (anything else is refused)
    ├── eventState          active
    ├── UUID                the camera's event id (repeats of one event share it)
    ├── ANPR
    │   ├── licensePlate    蓝苏A8HK52   (Chinese firmware: colour in front)
    │   ├── plateColor      blue | yellow | green | ...
    │   ├── plateType       92TypeCivil | trailer | coach | newEnergy | ...
    │   ├── vehicleType     vehicle | truck | largeBus | SUVMPV | ...
    │   ├── confidenceLevel 0..100
    │   ├── laneNo          (Chinese firmware: line, with direction beside it)
    │   ├── direction       forward | reverse
    │   └── pictureInfoList/pictureInfo: fileName, type (licensePlatePicture,
    │                                    detectionPicture, vehiclePicture), pId
    └── VehicleGATInfo      palteTypeByGAT (sic) / plateTypeByGAT, vehicleTypeByGAT

Picture parts are matched to the list by ``fileName`` or by ``pId``: some cameras
(DS-2CD7A46G0) name each part by its picture id instead of ``licensePlatePicture.jpg``, and
the list says which type each id is. The same alert may come as ISAPI JSON (the alarm
server / HTTP listening upload with ``Content-Type: application/json``); it is turned into
the same element tree (:mod:`hikvision_json`) and read by the same code.

The XML is read with defusedxml: a DTD, an entity or an external reference is refused
outright (no billion laughs, no XXE), and the document is capped in size before parsing.
Elements are matched by local name, so the namespace (2.0 or none) does not matter.
"""

from __future__ import annotations

import datetime as dt
import math
import xml.etree.ElementTree as ET
from typing import Any

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from firmware_protocols.cameras.capture import Capture, Picture, PictureKind, Reading
from firmware_protocols.cameras.hikvision_json import json_alert
from firmware_protocols.cameras.multipart import Part, media_type, parse_multipart
from firmware_protocols.cameras.plates import (
    checked_plate,
    ga_plate_type,
    is_readable,
    normalise_plate,
    unmapped_colour,
    vehicle_type,
)
from firmware_protocols.errors import DecodeError

FMT = "hikvision-isapi"
MAX_XML_BYTES = 256 * 1024
MAX_PICTURE_BYTES = 8 * 1024 * 1024
_DOC_TYPES = ("text/xml", "application/xml", "application/json", "text/json")
_PICTURE_KINDS = {
    "licenseplatepicture": PictureKind.PLATE,
    "plateimage": PictureKind.PLATE,
    "detectionpicture": PictureKind.SCENE,
    "vehiclepicture": PictureKind.SCENE,
}


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _child(node: Any, name: str) -> Any:
    for child in node:
        if _local(child.tag) == name:
            return child
    return None


def _text(node: Any, *names: str) -> str | None:
    for name in names:
        child = _child(node, name) if node is not None else None
        if child is not None and child.text is not None and child.text.strip():
            return str(child.text).strip()
    return None


def parse_xml(data: bytes, *, fmt: str = FMT) -> Any:
    """A safely parsed XML document's root element."""
    if len(data) > MAX_XML_BYTES:
        raise DecodeError(f"XML document over {MAX_XML_BYTES} bytes", fmt=fmt, data=data[:64])
    try:
        return fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise DecodeError(
            f"refused XML: {type(exc).__name__} ({exc})", fmt=fmt, data=data[:64]
        ) from None
    except ET.ParseError as exc:
        raise DecodeError(f"malformed XML: {exc}", fmt=fmt, data=data[:64]) from None


def parse_time(text: str | None, *, assume_tz: dt.tzinfo, fmt: str = FMT) -> dt.datetime:
    if not text:
        raise DecodeError("no dateTime", fmt=fmt)
    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise DecodeError(f"dateTime {text!r} is not an ISO 8601 time", fmt=fmt) from None
    return plausible(when if when.tzinfo is not None else when.replace(tzinfo=assume_tz), fmt)


def _basis(text: str, assume_tz: dt.tzinfo) -> str:
    """How a dateTime was read: with its own offset, or in the camera's zone."""
    try:
        stated = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return "dateTime"
    if stated.tzinfo is not None:
        return "dateTime with its offset"
    return f"dateTime without offset, read in {assume_tz}"


def plausible(when: dt.datetime, fmt: str) -> dt.datetime:
    """A capture time a camera can have: 1971 to 2200 (a clock reset reads 1970 or 0001)."""
    if not 1971 <= when.year <= 2200:
        raise DecodeError(f"time {when.isoformat()} is not a plausible capture time", fmt=fmt)
    return when


def decode_alert(
    xml: bytes, *, pictures: dict[str, Part] | None = None, assume_tz: dt.tzinfo = dt.UTC
) -> Capture:
    """One ANPR ``EventNotificationAlert`` document (and its picture parts) as a Capture."""
    return alert_capture(parse_xml(xml), xml, pictures=pictures, assume_tz=assume_tz)


def alert_capture(
    root: Any, xml: bytes, *, pictures: dict[str, Part] | None, assume_tz: dt.tzinfo
) -> Capture:
    """The capture of a parsed alert (XML, or JSON turned into the same tree)."""
    if _local(root.tag) != "EventNotificationAlert":
        raise DecodeError(
            f"root element is {_local(root.tag)!r}, not EventNotificationAlert",
            fmt=FMT,
            data=xml[:64],
        )
    event_type = _text(root, "eventType")
    if event_type is None or event_type.upper() != "ANPR":
        raise DecodeError(f"eventType {event_type!r} is not ANPR", fmt=FMT, data=xml[:64])
    anpr = _child(root, "ANPR")
    if anpr is None:
        raise DecodeError("ANPR event without its ANPR element", fmt=FMT, data=xml[:64])
    when = parse_time(_text(root, "dateTime"), assume_tz=assume_tz)
    event_id = _text(root, "UUID", "uuid") or _text(anpr, "UUID")
    if event_id is None or len(event_id) > 128:
        raise DecodeError("ANPR event without a usable UUID", fmt=FMT, data=xml[:64])
    raw_plate = _text(anpr, "licensePlate", "originalLicensePlate") or ""
    colour_name = _text(anpr, "plateColor")
    plate, colour = normalise_plate(raw_plate, colour_name)
    plate = checked_plate(plate, fmt=FMT)
    gat = _child(root, "VehicleGATInfo")
    vtype = vehicle_type(_text(anpr, "vehicleType"), ga_vehicle_type=_text(gat, "vehicleTypeByGAT"))
    vclass = vtype.vehicle_class
    unmapped: list[tuple[str, str]] = []
    if vtype.unmapped is not None:
        unmapped.append(("vehicle_type", vtype.unmapped))
    if (odd := unmapped_colour(colour_name)) is not None:
        unmapped.append(("plate_color", odd))
    stated = _text(gat, "palteTypeByGAT", "plateTypeByGAT")
    if stated is None:
        plate_type = (_text(anpr, "plateType") or "").lower()
        stated = {"trailer": "15", "coach": "16"}.get(plate_type)
    confidence = _number(_text(anpr, "confidenceLevel"))
    lane = _number(_text(anpr, "laneNo", "line"))
    found: list[Picture] = []
    sent = dict(pictures or {})
    listed = _child(anpr, "pictureInfoList")
    for info in listed if listed is not None else ():
        kind = _PICTURE_KINDS.get((_text(info, "type") or "").lower(), PictureKind.OTHER)
        for key in (_text(info, "fileName"), _text(info, "pId")):
            part = _take(sent, key) if key is not None else None
            if part is not None:  # listed but not sent: the XML-only push has no pictures
                found.append(_picture(part, kind))
                break
    for name, part in sent.items():
        kind = _PICTURE_KINDS.get(name.rsplit(".", 1)[0].lower(), PictureKind.OTHER)
        found.append(_picture(part, kind))
    camera_ref = _text(root, "macAddress", "ipAddress")
    return Capture(
        source="hikvision",
        event_id=event_id,
        captured_at=when,
        plate=plate,
        plate_raw=raw_plate,
        plate_readable=is_readable(plate),
        plate_color=colour,
        vehicle_class=vclass,
        ga_plate_type=ga_plate_type(plate, colour, vclass, stated=stated),
        camera_ref=camera_ref,
        lane=int(lane) if lane is not None else None,
        confidence=confidence,
        pictures=tuple(found),
        direction=_text(anpr, "direction"),
        time_basis=_basis(_text(root, "dateTime") or "", assume_tz),
        unmapped=tuple(unmapped),
    )


def _number(text: str | None) -> float | None:
    """A finite number, or None: a camera's odd value here is not worth refusing the plate."""
    try:
        value = float(text) if text is not None else None
    except ValueError:
        return None
    return value if value is not None and math.isfinite(value) and abs(value) < 1e6 else None


def _take(sent: dict[str, Part], key: str) -> Part | None:
    """The sent part named ``key`` (as its name, its file name, or the file name's stem)."""
    for name, part in sent.items():
        stem = (part.filename or "").rsplit(".", 1)[0]
        if key in (name, part.name, part.filename, stem):
            return sent.pop(name)
    return None


def _picture(part: Part, kind: PictureKind) -> Picture:
    if not part.data:
        raise DecodeError(f"picture part {part.name!r} is empty", fmt=FMT)
    if len(part.data) > MAX_PICTURE_BYTES:
        raise DecodeError(f"picture part {part.name!r} is over {MAX_PICTURE_BYTES} bytes", fmt=FMT)
    name = part.filename or part.name
    return Picture(name=name, kind=kind, content_type=part.content_type, data=part.data)


def _alert_root(data: bytes, kind: str) -> Any:
    if kind in ("application/json", "text/json") or data.lstrip().startswith(b"{"):
        return json_alert(data)
    return parse_xml(data)


def _split(body: bytes, content_type: str | None) -> tuple[bytes, str, dict[str, Part]]:
    """The alert document, its media type and the picture parts of a body."""
    kind = media_type(content_type)
    if not body:
        raise DecodeError("empty body", fmt=FMT)
    if kind.startswith("multipart/"):
        parts = parse_multipart(body, content_type or "")
        docs = [
            p
            for p in parts
            if p.content_type in _DOC_TYPES or p.name.lower().endswith((".xml", ".json"))
        ]
        if len(docs) != 1:
            raise DecodeError(
                f"multipart body with {len(docs)} alert (XML or JSON) parts (needs one)", fmt=FMT
            )
        images = {
            (p.filename or p.name): p
            for p in parts
            if p is not docs[0] and p.content_type.startswith("image/")
        }
        others = [p for p in parts if p is not docs[0] and p not in images.values()]
        if others:
            raise DecodeError(
                f"unexpected part {others[0].name!r} ({others[0].content_type})", fmt=FMT
            )
        return docs[0].data, docs[0].content_type, images
    if kind in ("", "text/plain", *_DOC_TYPES):
        return body, kind, {}
    raise DecodeError(f"content type {kind!r} is neither XML, JSON nor multipart", fmt=FMT)


def read_hikvision(
    body: bytes, content_type: str | None, *, assume_tz: dt.tzinfo = dt.UTC
) -> Reading:
    """A pushed alert as a Reading: the ANPR capture, or the other alert type ignored.

    Hikvision cameras send a ``videoloss`` alert with ``eventState`` ``inactive`` as their
    heartbeat on the same channel; it is counted, not refused.
    """
    doc, kind, images = _split(body, content_type)
    root = _alert_root(doc, kind)
    event_type = _text(root, "eventType") or ""
    if _local(root.tag) == "EventNotificationAlert" and event_type.upper() != "ANPR":
        state = (_text(root, "eventState") or "").lower()
        if event_type.lower() == "videoloss" and state == "inactive":
            return Reading(heartbeats=1)
        return Reading(ignored=(event_type[:64] or "?",))
    capture = alert_capture(root, doc, pictures=images, assume_tz=assume_tz)
    return Reading(captures=(capture,))


def decode_hikvision(
    body: bytes, content_type: str | None, *, assume_tz: dt.tzinfo = dt.UTC
) -> Capture:
    """A pushed ANPR body (XML or JSON, alone or multipart with pictures) as a Capture."""
    doc, kind, images = _split(body, content_type)
    return alert_capture(_alert_root(doc, kind), doc, pictures=images, assume_tz=assume_tz)
