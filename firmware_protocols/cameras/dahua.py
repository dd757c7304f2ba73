"""Dahua traffic events (``TrafficParking``, ``TrafficJunction``) as JSON, into a Capture.

Theory of operation
-------------------
Dahua ITC cameras report a plate read as an event whose ``Data`` holds a ``TrafficCar``
object. The event comes alone or inside the event-stream envelope
(``{"params": {"eventList": [...]}}``); with pictures, as ``multipart/form-data`` whose
first part is the JSON and whose other parts are JPEGs::

    {"Code": "TrafficParking", "Action": "Start" | "Stop" | "Pulse",
     "Data": {"UTC": 1740816000, "UTCMS": 250, "EventID": 516, "GroupID": 175706653,
              "Lane": 2,
              "TrafficCar": {"PlateNumber": "苏A8HK52", "PlateColor": "Blue",
                             "PlateType": "Normal", "VehicleType": "SaloonCar",
                             "VehicleSize": "Light-duty"},
              "Object": {"Text": "苏A8HK52"}}}

``TrafficParking`` with ``Action`` ``Stop`` is the camera seeing the vehicle leave: a
departure. ``UTC`` is what the camera calls UTC but most firmware fills it with local wall
time; a ``LocaleTime``-only event is read in the site's time zone. The camera's event id is
``Code/GroupID/EventID/Action`` (``UUID`` when the firmware sends one).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from firmware_protocols.cameras.capture import Capture, CaptureKind, Picture, PictureKind
from firmware_protocols.cameras.hikvision import plausible
from firmware_protocols.cameras.multipart import media_type, parse_multipart
from firmware_protocols.cameras.plates import (
    checked_plate,
    ga_plate_type,
    is_readable,
    normalise_plate,
    vehicle_class_of,
)
from firmware_protocols.errors import DecodeError

FMT = "dahua-traffic"
MAX_JSON_BYTES = 256 * 1024
MAX_PICTURE_BYTES = 8 * 1024 * 1024
CODES = ("TrafficParking", "TrafficJunction")


def _event(doc: Any) -> dict[str, Any]:
    if isinstance(doc, dict) and isinstance(doc.get("params"), dict):
        events = doc["params"].get("eventList")
        if not isinstance(events, list) or len(events) != 1:
            raise DecodeError("event stream envelope must carry exactly one event", fmt=FMT)
        doc = events[0]
    if not isinstance(doc, dict):
        raise DecodeError("the event is not a JSON object", fmt=FMT)
    return doc


def _str(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        text = str(value).strip()
        return text or None
    raise DecodeError(f"expected a string, got {type(value).__name__}", fmt=FMT)


def decode_event(
    data: bytes, *, pictures: tuple[Picture, ...] = (), assume_tz: dt.tzinfo = dt.UTC
) -> Capture:
    if len(data) > MAX_JSON_BYTES:
        raise DecodeError(f"JSON over {MAX_JSON_BYTES} bytes", fmt=FMT, data=data[:64])
    try:
        doc = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DecodeError(f"malformed JSON: {exc}", fmt=FMT, data=data[:64]) from None
    event = _event(doc)
    code = event.get("Code")
    if code not in CODES:
        raise DecodeError(
            f"event Code {code!r} is not one of {', '.join(CODES)}", fmt=FMT, data=data[:64]
        )
    body = event.get("Data")
    if not isinstance(body, dict):
        raise DecodeError("event without its Data object", fmt=FMT, data=data[:64])
    car = body.get("TrafficCar")
    if not isinstance(car, dict):
        raise DecodeError("event without a TrafficCar object", fmt=FMT, data=data[:64])
    action = _str(event.get("Action") or body.get("Action")) or "Pulse"
    when = _time(body, assume_tz)
    uuid = _str(body.get("UUID"))
    if uuid is None:
        group, seq = _str(body.get("GroupID")), _str(body.get("EventID"))
        if seq is None:
            raise DecodeError("event without EventID or UUID", fmt=FMT, data=data[:64])
        uuid = f"{code}/{group or '-'}/{seq}/{action}"
    found = body.get("Object")
    obj: dict[str, Any] = found if isinstance(found, dict) else {}
    raw = _str(car.get("PlateNumber")) or _str(obj.get("Text")) or ""
    plate, colour = normalise_plate(raw, _str(car.get("PlateColor")))
    plate = checked_plate(plate, fmt=FMT)
    vclass = vehicle_class_of(
        _str(car.get("VehicleType")) or _str(car.get("Category")) or _str(car.get("VehicleSize"))
    )
    plate_type = (_str(car.get("PlateType")) or "").lower()
    stated = {"trailer": "15", "trainning": "16", "training": "16"}.get(plate_type)
    lane = body.get("Lane")
    departure = code == "TrafficParking" and action.lower() == "stop"
    return Capture(
        source="dahua",
        event_id=uuid[:128],
        captured_at=when,
        plate=plate,
        plate_raw=raw,
        plate_readable=is_readable(plate),
        plate_color=colour,
        vehicle_class=vclass,
        ga_plate_type=ga_plate_type(plate, colour, vclass, stated=stated),
        kind=CaptureKind.DEPARTURE if departure else CaptureKind.PRESENT,
        lane=lane if isinstance(lane, int) and not isinstance(lane, bool) else None,
        pictures=pictures,
    )


def _time(body: dict[str, Any], assume_tz: dt.tzinfo) -> dt.datetime:
    utc = body.get("UTC")
    if isinstance(utc, int | float) and not isinstance(utc, bool) and 0 < utc < 2**32:
        ms = body.get("UTCMS")
        extra = ms / 1000 if isinstance(ms, int) and 0 <= ms < 1000 else 0.0
        return plausible(dt.datetime.fromtimestamp(utc + extra, dt.UTC), FMT)
    local = _str(body.get("LocaleTime"))
    if local:
        try:
            when = dt.datetime.strptime(local, "%Y-%m-%d %H:%M:%S").replace(tzinfo=assume_tz)
        except ValueError:
            pass
        else:
            return plausible(when, FMT)
    raise DecodeError("event without a usable UTC or LocaleTime", fmt=FMT)


def decode_dahua(
    body: bytes, content_type: str | None, *, assume_tz: dt.tzinfo = dt.UTC
) -> Capture:
    """A pushed Dahua traffic event, JSON alone or multipart with its pictures."""
    kind = media_type(content_type)
    if not body:
        raise DecodeError("empty body", fmt=FMT)
    if kind.startswith("multipart/"):
        parts = parse_multipart(body, content_type or "")
        docs = [p for p in parts if p.content_type in ("application/json", "text/plain")]
        if len(docs) != 1:
            raise DecodeError(f"multipart body with {len(docs)} JSON parts (needs one)", fmt=FMT)
        pictures = []
        for index, part in enumerate(p for p in parts if p is not docs[0]):
            if not part.content_type.startswith("image/") or not part.data:
                raise DecodeError(f"part {part.name!r} is not a picture", fmt=FMT)
            if len(part.data) > MAX_PICTURE_BYTES:
                raise DecodeError(f"picture {part.name!r} over {MAX_PICTURE_BYTES} bytes", fmt=FMT)
            plate_pic = "plate" in part.name.lower()
            pictures.append(
                Picture(
                    name=part.filename or part.name or f"picture-{index}.jpg",
                    kind=PictureKind.PLATE if plate_pic else PictureKind.SCENE,
                    content_type=part.content_type,
                    data=part.data,
                )
            )
        return decode_event(docs[0].data, pictures=tuple(pictures), assume_tz=assume_tz)
    if kind in ("", "application/json", "text/plain"):
        return decode_event(body, assume_tz=assume_tz)
    raise DecodeError(f"content type {kind!r} is neither JSON nor multipart", fmt=FMT)
