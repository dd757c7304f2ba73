"""The one typed value every camera format decodes into: :class:`Capture`."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import StrEnum


class PlateColor(StrEnum):
    """Chinese plate colours (DOMAIN.md): what the colour says about the vehicle."""

    BLUE = "blue"  # small vehicle
    YELLOW = "yellow"  # large vehicle (trucks, buses), also coaches and trailers
    GREEN = "green"  # new-energy, small (gradient green)
    YELLOW_GREEN = "yellow_green"  # new-energy, large
    WHITE = "white"  # police, military
    BLACK = "black"  # foreign, consulate


class VehicleClass(StrEnum):
    CAR = "car"
    SUV_MPV = "suv_mpv"
    VAN = "van"
    PICKUP = "pickup"
    BUS = "bus"
    TRUCK = "truck"  # a goods vehicle: the truck ban's "big truck" with a yellow plate
    MOTORCYCLE = "motorcycle"
    TRICYCLE = "tricycle"
    POLICE = "police"
    FIRE = "fire"
    AMBULANCE = "ambulance"
    SANITATION = "sanitation"
    UNKNOWN = "unknown"


class CaptureKind(StrEnum):
    PRESENT = "present"  # the vehicle is seen standing (or passing) at the place
    DEPARTURE = "departure"  # the camera saw the vehicle leave


class PictureKind(StrEnum):
    PLATE = "plate"  # a close-up of the plate
    SCENE = "scene"  # the vehicle in its place
    OTHER = "other"


@dataclass(frozen=True, slots=True, kw_only=True)
class Picture:
    """One picture of a capture: its bytes, or a reference (SHA-256) to one stored before."""

    name: str
    kind: PictureKind
    content_type: str = "image/jpeg"
    data: bytes | None = None
    sha256: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Capture:
    """One camera record (抓拍), normalised.

    ``plate`` is the normalised plate text (no colour prefix, no separators, upper case) or
    ``""`` when the camera read none; ``plate_readable`` says whether it has the shape of a
    real plate. ``event_id`` is the camera's own id for the event: a repeat of it is the
    same capture.
    """

    source: str
    event_id: str
    captured_at: dt.datetime
    plate: str
    plate_raw: str
    plate_readable: bool
    plate_color: PlateColor | None
    vehicle_class: VehicleClass
    ga_plate_type: str | None
    kind: CaptureKind = CaptureKind.PRESENT
    camera_ref: str | None = None
    lane: int | None = None
    confidence: float | None = None
    lot_id: str | None = None
    zone_id: str | None = None
    bay_id: str | None = None
    pictures: tuple[Picture, ...] = field(default_factory=tuple)
    # The camera's parking-space number (Dahua TrafficParkingSpace*): the site file maps it
    # to a bay.
    space: str | None = None
    direction: str | None = None
    # How the time was read ("RealUTC", "UTC as local time in Asia/Shanghai", ...).
    time_basis: str = ""
    # Enumeration values no table knows, kept raw: (field, value), e.g. ("vehicle_type", "X").
    unmapped: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Refusal:
    """A part of a push that was not read: where in the body, and why."""

    where: str
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Reading:
    """Everything one push body carried: a stream may hold several events.

    ``ignored`` names events that are not plate reads (``VideoMotion``...), which a camera
    may send on the same channel; ``heartbeats`` counts keep-alive parts.
    """

    captures: tuple[Capture, ...] = ()
    refused: tuple[Refusal, ...] = ()
    ignored: tuple[str, ...] = ()
    heartbeats: int = 0
