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
    │   ├── laneNo
    │   └── pictureInfoList/pictureInfo: fileName, type (licensePlatePicture,
    │                                    detectionPicture, vehiclePicture)
    └── VehicleGATInfo      palteTypeByGAT (sic) / plateTypeByGAT, vehicleTypeByGAT

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

from firmware_protocols.cameras.capture import Capture, Picture, PictureKind
from firmware_protocols.cameras.multipart import Part, media_type, parse_multipart
from firmware_protocols.cameras.plates import (
    checked_plate,
    ga_plate_type,
    is_readable,
    normalise_plate,
    vehicle_class_of,
)
from firmware_protocols.errors import DecodeError

FMT = "hikvision-isapi"
MAX_XML_BYTES = 256 * 1024
MAX_PICTURE_BYTES = 8 * 1024 * 1024
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


def plausible(when: dt.datetime, fmt: str) -> dt.datetime:
    """A capture time a camera can have: 1971 to 2200 (a clock reset reads 1970 or 0001)."""
    if not 1971 <= when.year <= 2200:
        raise DecodeError(f"time {when.isoformat()} is not a plausible capture time", fmt=fmt)
    return when


def decode_alert(
    xml: bytes, *, pictures: dict[str, Part] | None = None, assume_tz: dt.tzinfo = dt.UTC
) -> Capture:
    """One ANPR ``EventNotificationAlert`` document (and its picture parts) as a Capture."""
    root = parse_xml(xml)
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
    plate, colour = normalise_plate(raw_plate, _text(anpr, "plateColor"))
    plate = checked_plate(plate, fmt=FMT)
    gat = _child(root, "VehicleGATInfo")
    vclass = vehicle_class_of(
        _text(anpr, "vehicleType"), ga_vehicle_type=_text(gat, "vehicleTypeByGAT")
    )
    stated = _text(gat, "palteTypeByGAT", "plateTypeByGAT")
    if stated is None:
        plate_type = (_text(anpr, "plateType") or "").lower()
        stated = {"trailer": "15", "coach": "16"}.get(plate_type)
    confidence = _number(_text(anpr, "confidenceLevel"))
    lane = _number(_text(anpr, "laneNo"))
    found: list[Picture] = []
    listed = _child(anpr, "pictureInfoList")
    for info in listed if listed is not None else ():
        name = _text(info, "fileName")
        kind = _PICTURE_KINDS.get((_text(info, "type") or "").lower(), PictureKind.OTHER)
        if name is None:
            continue
        part = (pictures or {}).get(name)
        if part is None:
            continue  # listed but not sent: the XML-only push has no pictures
        found.append(_picture(part, kind))
    listed_names = {p.name for p in found}
    for name, part in (pictures or {}).items():
        if name not in listed_names:
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
    )


def _number(text: str | None) -> float | None:
    """A finite number, or None: a camera's odd value here is not worth refusing the plate."""
    try:
        value = float(text) if text is not None else None
    except ValueError:
        return None
    return value if value is not None and math.isfinite(value) and abs(value) < 1e6 else None


def _picture(part: Part, kind: PictureKind) -> Picture:
    if not part.data:
        raise DecodeError(f"picture part {part.name!r} is empty", fmt=FMT)
    if len(part.data) > MAX_PICTURE_BYTES:
        raise DecodeError(f"picture part {part.name!r} is over {MAX_PICTURE_BYTES} bytes", fmt=FMT)
    name = part.filename or part.name
    return Picture(name=name, kind=kind, content_type=part.content_type, data=part.data)


def decode_hikvision(
    body: bytes, content_type: str | None, *, assume_tz: dt.tzinfo = dt.UTC
) -> Capture:
    """A pushed ANPR body, XML alone or multipart with pictures, as a Capture."""
    kind = media_type(content_type)
    if not body:
        raise DecodeError("empty body", fmt=FMT)
    if kind.startswith("multipart/"):
        parts = parse_multipart(body, content_type or "")
        xml_parts = [
            p
            for p in parts
            if p.content_type in ("text/xml", "application/xml") or p.name.lower().endswith(".xml")
        ]
        if len(xml_parts) != 1:
            raise DecodeError(
                f"multipart body with {len(xml_parts)} XML parts (needs one)", fmt=FMT
            )
        images = {
            (p.filename or p.name): p
            for p in parts
            if p is not xml_parts[0] and p.content_type.startswith("image/")
        }
        others = [p for p in parts if p is not xml_parts[0] and p not in images.values()]
        if others:
            raise DecodeError(
                f"unexpected part {others[0].name!r} ({others[0].content_type})", fmt=FMT
            )
        return decode_alert(xml_parts[0].data, pictures=images, assume_tz=assume_tz)
    if kind in ("", "text/xml", "application/xml", "text/plain"):
        return decode_alert(body, assume_tz=assume_tz)
    raise DecodeError(f"content type {kind!r} is neither XML nor multipart", fmt=FMT)
