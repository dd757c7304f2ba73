"""One Dahua traffic event (already parsed into a dict), into a Capture; Dahua's time.

Theory of operation
-------------------
Every Dahua push format (JSON, key=value text, attach and snapManager streams) carries the
same event: a ``Code``, an ``Action`` and a ``Data`` object with a ``TrafficCar``::

    {"Code": "TrafficJunction", "Action": "Pulse",
     "Data": {"UTC": 1706625295, "UTCMS": 305, "RealUTC": 1706600095,
              "LocaleTime": "2024-01-30 14:34:55", "EventID": 516, "GroupID": 175706653,
              "Lane": 2,
              "TrafficCar": {"PlateNumber": "苏A8HK52", "PlateColor": "Blue",
                             "PlateType": "Normal", "VehicleType": "SaloonCar",
                             "VehicleSize": "Light-duty"},
              "Object": {"Text": "苏A8HK52"}}}

Codes read: ``TrafficJunction`` and ``TrafficParking`` (plate reads; ``TrafficParking`` with
``Action`` ``Stop`` is the vehicle leaving), and the on-street parking-space detector's
``TrafficParkingSpaceParking`` (a vehicle arrived in space ``Lane``) and
``TrafficParkingSpaceNoParking`` (the space is empty again: a departure). Any other code
(``VideoMotion``, ``HumanTrait``...) is not a plate read: :func:`event_capture` returns
None and the caller lists it as ignored.

Time. Dahua ITC firmware fills ``UTC`` with the camera's *local* wall time counted as Unix
seconds; ``RealUTC`` (newer firmware) is the true instant. So: ``RealUTC`` when present;
else ``UTC`` read as local time in the camera's zone; else ``LocaleTime`` in the camera's
zone (the site file's camera ``timezone``, default the site's). In Dahua's own sample,
``UTC`` 1706625295 and ``RealUTC`` 1706600095 differ by exactly the camera's UTC+7.

The camera's event id is ``Code/GroupID/EventID/Action`` (``UUID`` when sent).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from firmware_protocols.cameras.capture import Capture, CaptureKind, Picture
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

FMT = "dahua-traffic"
PLATE_CODES = ("TrafficJunction", "TrafficParking")
ARRIVAL = "TrafficParkingSpaceParking"
DEPARTURE = "TrafficParkingSpaceNoParking"
CODES = (*PLATE_CODES, ARRIVAL, DEPARTURE)


def text(value: Any) -> str | None:
    """A scalar as stripped text (None for null or empty); DecodeError for an object."""
    if value is None:
        return None
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        out = str(value).strip()
        return out or None
    raise DecodeError(f"expected a string, got {type(value).__name__}", fmt=FMT)


def number(value: Any) -> float | None:
    """A JSON number or a numeric string (key=value events are all text), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def dahua_time(body: dict[str, Any], camera_tz: dt.tzinfo) -> tuple[dt.datetime, str]:
    """The event's instant and how it was read (see the module docstring)."""
    ms = number(body.get("UTCMS"))
    extra = ms / 1000 if ms is not None and 0 <= ms < 1000 else 0.0
    real = number(body.get("RealUTC"))
    if real is not None and 0 < real < 2**32:
        return plausible(dt.datetime.fromtimestamp(real + extra, dt.UTC), FMT), "RealUTC"
    local = number(body.get("UTC"))
    if local is not None and 0 < local < 2**32:
        wall = dt.datetime(1970, 1, 1) + dt.timedelta(seconds=local + extra)
        return plausible(wall.replace(tzinfo=camera_tz), FMT), f"UTC as local time in {camera_tz}"
    stated = text(body.get("LocaleTime"))
    if stated:
        try:
            wall = dt.datetime.strptime(stated, "%Y-%m-%d %H:%M:%S")
        except ValueError:
            pass
        else:
            return plausible(wall.replace(tzinfo=camera_tz), FMT), f"LocaleTime in {camera_tz}"
    raise DecodeError("event without a usable RealUTC, UTC or LocaleTime", fmt=FMT)


def event_capture(
    event: dict[str, Any], *, camera_tz: dt.tzinfo, pictures: tuple[Picture, ...] = ()
) -> Capture | None:
    """The capture one event describes; None for an event that is not a plate read."""
    code = text(event.get("Code"))
    if code not in CODES:
        return None
    body = event.get("Data")
    if not isinstance(body, dict):
        raise DecodeError(f"{code} event without its Data object", fmt=FMT)
    car = body.get("TrafficCar")
    if not isinstance(car, dict):
        car = {}
        if code in PLATE_CODES:
            raise DecodeError(f"{code} event without a TrafficCar object", fmt=FMT)
    action = text(event.get("Action") or body.get("Action")) or "Pulse"
    when, basis = dahua_time(body, camera_tz)
    uuid = text(body.get("UUID"))
    if uuid is None:
        group, seq = text(body.get("GroupID")), text(body.get("EventID"))
        if seq is None:
            raise DecodeError(f"{code} event without EventID or UUID", fmt=FMT)
        uuid = f"{code}/{group or '-'}/{seq}/{action}"
    found = body.get("Object")
    obj: dict[str, Any] = found if isinstance(found, dict) else {}
    raw = text(car.get("PlateNumber")) or text(obj.get("Text")) or ""
    colour_name = text(car.get("PlateColor"))
    plate, colour = normalise_plate(raw, colour_name)
    plate = checked_plate(plate, fmt=FMT)
    vehicle = body.get("Vehicle")
    category = vehicle.get("Category") if isinstance(vehicle, dict) else None
    type_name = text(car.get("VehicleType")) or text(category) or text(car.get("VehicleSize"))
    vtype = vehicle_type(type_name)
    unmapped: list[tuple[str, str]] = []
    if vtype.unmapped is not None:
        unmapped.append(("vehicle_type", vtype.unmapped))
    if (odd := unmapped_colour(colour_name)) is not None:
        unmapped.append(("plate_color", odd))
    plate_type = (text(car.get("PlateType")) or "").lower()
    stated = {"trailer": "15", "trainning": "16", "training": "16"}.get(plate_type)
    lane = number(body.get("Lane"))
    space = text(body.get("ParkingSpaceNo")) or text(body.get("ParkingNo"))
    departure = (code == "TrafficParking" and action.lower() == "stop") or code == DEPARTURE
    if code in (ARRIVAL, DEPARTURE) and space is None and lane is not None:
        space = str(int(lane))
    driving = car.get("DrivingDirection")
    if isinstance(driving, list):
        driving = driving[0] if driving else None
    direction = text(driving) if not isinstance(driving, dict | list) else None
    return Capture(
        source="dahua",
        event_id=uuid[:128],
        captured_at=when,
        plate=plate,
        plate_raw=raw,
        plate_readable=is_readable(plate),
        plate_color=colour,
        vehicle_class=vtype.vehicle_class,
        ga_plate_type=ga_plate_type(plate, colour, vtype.vehicle_class, stated=stated),
        kind=CaptureKind.DEPARTURE if departure else CaptureKind.PRESENT,
        lane=int(lane) if lane is not None and lane.is_integer() and 0 <= lane < 1000 else None,
        pictures=pictures,
        space=space,
        direction=direction,
        time_basis=basis,
        unmapped=tuple(unmapped),
    )
