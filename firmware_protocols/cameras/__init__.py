"""Camera events: Hikvision ISAPI ANPR, Dahua traffic events, parkgrid's own capture JSON.

Every format decodes into :class:`Capture` values (a :class:`Reading` holds all a body
carried: a Dahua stream holds several) with a normalised plate, plate colour,
vehicle class and GA plate-type code. Pure: bytes (and the Content-Type) in, a Capture
out, :class:`~firmware_protocols.errors.DecodeError` with the reason for anything else.
The prose version is ``docs/cameras.md``.
"""

from firmware_protocols.cameras.capture import (
    Capture,
    CaptureKind,
    Picture,
    PictureKind,
    PlateColor,
    Reading,
    Refusal,
    VehicleClass,
)
from firmware_protocols.cameras.dahua import decode_dahua, read_dahua
from firmware_protocols.cameras.hikvision import decode_hikvision, read_hikvision
from firmware_protocols.cameras.multipart import Part, parse_multipart
from firmware_protocols.cameras.parkgrid import decode_parkgrid
from firmware_protocols.cameras.plates import (
    ga_plate_type,
    is_readable,
    normalise_plate,
    vehicle_class_of,
)

__all__ = [
    "Capture",
    "CaptureKind",
    "Part",
    "Picture",
    "PictureKind",
    "PlateColor",
    "Reading",
    "Refusal",
    "VehicleClass",
    "decode_dahua",
    "decode_hikvision",
    "decode_parkgrid",
    "ga_plate_type",
    "is_readable",
    "normalise_plate",
    "parse_multipart",
    "read_dahua",
    "read_hikvision",
    "vehicle_class_of",
]
