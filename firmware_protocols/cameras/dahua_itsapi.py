"""Dahua ITSAPI uploads: ``POST <base>/NotificationInfo/TollgateInfo``, pictures in base64.

Theory of operation
-------------------
A Dahua ITC camera set to upload over ITSAPI posts each plate read as one JSON document
whose ``Picture`` object holds the facts and the pictures, each picture's bytes in base64::

    {"Picture": {
       "SnapInfo": {"DeviceID": "8M049B2PAJF3085", "SnapTime": "2024-01-30 14:34:55",
                    "AccurateTime": "2024-01-30 14:34:55.305", "LanNo": 2,
                    "Direction": "Approach", "SnapID": "..."},
       "Plate":    {"PlateNumber": "浙A12345", "PlateColor": "Yellow", "PlateType": "...",
                    "Confidence": 96},
       "Vehicle":  {"VehicleType": "slagTruck", "VehicleColor": "White"},
       "NormalPic":  {"PicName": "scene.jpg", "Content": "<base64 JPEG>"},
       "VehiclePic": {"PicName": "vehicle.jpg", "Content": "<base64 JPEG>"},
       "CutoutPic":  {"PicName": "plate.jpg", "Content": "<base64 JPEG>"}}}

``SnapTime`` / ``AccurateTime`` are the camera's local wall time, read in the camera's zone
(a ``UTC`` number beside them is read as in :mod:`dahua_event`). ``NormalPic`` and
``VehiclePic`` are scene pictures, ``CutoutPic`` / ``PlatePic`` the plate close-up. The
camera's event id is ``itsapi/<DeviceID>/<SnapID or AccurateTime>``. The camera's
``KeepAlive`` posts carry no ``Picture`` and are heartbeats.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from typing import Any

from firmware_protocols.cameras.capture import Capture, Picture, PictureKind
from firmware_protocols.cameras.dahua_event import number, text
from firmware_protocols.cameras.hikvision import plausible
from firmware_protocols.cameras.plates import (
    checked_plate,
    ga_plate_type,
    is_readable,
    normalise_plate,
    unmapped_colour,
    vehicle_type,
)
from firmware_protocols.errors import DecodeError

FMT = "dahua-itsapi"
MAX_PICTURE_BYTES = 8 * 1024 * 1024
PICTURES = {
    "CutoutPic": PictureKind.PLATE,
    "PlatePic": PictureKind.PLATE,
    "NormalPic": PictureKind.SCENE,
    "VehiclePic": PictureKind.SCENE,
}


def is_tollgate(doc: Any) -> bool:
    return isinstance(doc, dict) and isinstance(doc.get("Picture"), dict)


def is_keepalive(doc: Any) -> bool:
    return (
        isinstance(doc, dict) and "Picture" not in doc and ("KeepAlive" in doc or "DeviceID" in doc)
    )


def _object(parent: dict[str, Any], name: str) -> dict[str, Any]:
    found = parent.get(name)
    return found if isinstance(found, dict) else {}


def _time(snap: dict[str, Any], camera_tz: dt.tzinfo) -> tuple[dt.datetime, str]:
    for key in ("AccurateTime", "SnapTime"):
        stated = text(snap.get(key))
        if not stated:
            continue
        for pattern in ("%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%d %H:%M:%S"):
            try:
                wall = dt.datetime.strptime(stated, pattern)
            except ValueError:
                continue
            return plausible(wall.replace(tzinfo=camera_tz), FMT), f"{key} in {camera_tz}"
    real = number(snap.get("RealUTC"))
    if real is not None and 0 < real < 2**32:
        return plausible(dt.datetime.fromtimestamp(real, dt.UTC), FMT), "RealUTC"
    raise DecodeError("TollgateInfo without a usable SnapTime or AccurateTime", fmt=FMT)


def _pictures(info: dict[str, Any]) -> tuple[Picture, ...]:
    out = []
    for key, kind in PICTURES.items():
        pic = _object(info, key)
        content = pic.get("Content")
        if not content:
            continue
        if not isinstance(content, str) or len(content) > MAX_PICTURE_BYTES * 4 // 3 + 4:
            raise DecodeError(f"{key}.Content is not a base64 picture under the cap", fmt=FMT)
        try:
            data = base64.b64decode(content, validate=True)
        except (binascii.Error, ValueError):
            raise DecodeError(f"{key}.Content is not valid base64", fmt=FMT) from None
        if not data:
            continue
        name = text(pic.get("PicName")) or f"{key}.jpg"
        out.append(Picture(name=name[:200], kind=kind, content_type="image/jpeg", data=data))
    return tuple(out)


def tollgate_capture(doc: dict[str, Any], *, camera_tz: dt.tzinfo) -> Capture:
    """One TollgateInfo document as a Capture."""
    info = _object(doc, "Picture")
    snap = _object(info, "SnapInfo")
    plate_info = _object(info, "Plate")
    vehicle = _object(info, "Vehicle")
    when, basis = _time(snap, camera_tz)
    device = text(snap.get("DeviceID")) or "-"
    key = text(snap.get("SnapID")) or text(snap.get("AccurateTime")) or text(snap.get("SnapTime"))
    raw = text(plate_info.get("PlateNumber")) or ""
    colour_name = text(plate_info.get("PlateColor"))
    plate, colour = normalise_plate(raw, colour_name)
    plate = checked_plate(plate, fmt=FMT)
    vtype = vehicle_type(text(vehicle.get("VehicleType")))
    unmapped: list[tuple[str, str]] = []
    if vtype.unmapped is not None:
        unmapped.append(("vehicle_type", vtype.unmapped))
    if (odd := unmapped_colour(colour_name)) is not None:
        unmapped.append(("plate_color", odd))
    lane = number(snap.get("LanNo") if snap.get("LanNo") is not None else snap.get("LaneNo"))
    confidence = number(plate_info.get("Confidence"))
    return Capture(
        source="dahua",
        event_id=f"itsapi/{device}/{key}"[:128],
        captured_at=when,
        plate=plate,
        plate_raw=raw,
        plate_readable=is_readable(plate),
        plate_color=colour,
        vehicle_class=vtype.vehicle_class,
        ga_plate_type=ga_plate_type(plate, colour, vtype.vehicle_class),
        lane=int(lane) if lane is not None and lane.is_integer() and 0 <= lane < 1000 else None,
        confidence=confidence if confidence is not None and 0 <= confidence <= 100 else None,
        pictures=_pictures(info),
        direction=text(snap.get("Direction")),
        time_basis=basis,
        unmapped=tuple(unmapped),
    )
