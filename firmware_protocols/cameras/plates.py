"""Plate text, plate colour, vehicle class and the GA plate-type code, normalised.

Cameras disagree on all four. Chinese Hikvision firmware writes the colour in front of the
plate (``蓝苏A8HK52``); Dahua writes ``Blue``; parkgrid's own JSON writes ``blue``. Plates
come with separators (``苏A·8HK52``), full-width letters, or as ``无车牌`` ("no plate").
Everything here is a pure function of strings.

GA plate-type codes (GA 24.7 / GA 36 table, the codes the traffic police systems use):
``01`` large vehicle (yellow), ``02`` small vehicle (blue), ``15`` trailer (挂), ``16``
coach / driving-school (学), ``51`` new-energy large (yellow-green), ``52`` new-energy small
(green).
"""

from __future__ import annotations

import re
import unicodedata

from firmware_protocols.cameras.capture import PlateColor, VehicleClass
from firmware_protocols.errors import DecodeError

PROVINCES = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"
# Province, issuing-office letter, five (ordinary) or six (new-energy) characters, and an
# optional class suffix. I and O are never used on Chinese plates (they read as 1 and 0).
_PLATE = re.compile(
    rf"^[{PROVINCES}][A-HJ-NP-Z](?:[A-HJ-NP-Z0-9]{{5,6}}|[A-HJ-NP-Z0-9]{{4}}[挂学警港澳领])$"
)
_SPECIAL = re.compile(r"^(?:WJ[0-9]{2}|使[0-9]{3})[A-Z0-9]{3,5}$|^[A-HJ-NP-Z0-9]{4,6}(?:使|领)$")

_COLOUR_PREFIXES = (
    ("黄绿", PlateColor.YELLOW_GREEN),
    ("渐变绿", PlateColor.GREEN),
    ("蓝", PlateColor.BLUE),
    ("黄", PlateColor.YELLOW),
    ("绿", PlateColor.GREEN),
    ("白", PlateColor.WHITE),
    ("黑", PlateColor.BLACK),
)
_NO_PLATE = {"", "无车牌", "无牌", "车牌", "未识别", "UNKNOWN", "NOPLATE", "NONE", "NULL"}

_COLOUR_NAMES = {
    "blue": PlateColor.BLUE,
    "yellow": PlateColor.YELLOW,
    "green": PlateColor.GREEN,
    "gradientgreen": PlateColor.GREEN,
    "newenergygreen": PlateColor.GREEN,
    "yellowgreen": PlateColor.YELLOW_GREEN,
    "greenyellow": PlateColor.YELLOW_GREEN,
    "white": PlateColor.WHITE,
    "black": PlateColor.BLACK,
    "civilaviationblack": PlateColor.BLACK,
    "civilaviationgreen": PlateColor.GREEN,
    "蓝": PlateColor.BLUE,
    "黄": PlateColor.YELLOW,
    "绿": PlateColor.GREEN,
    "黄绿": PlateColor.YELLOW_GREEN,
    "白": PlateColor.WHITE,
    "黑": PlateColor.BLACK,
}

# Hikvision vehicleType, Dahua VehicleType / Category / VehicleSize, parkgrid's own names.
_CLASS_NAMES = {
    "car": VehicleClass.CAR,
    "vehicle": VehicleClass.CAR,
    "smallcar": VehicleClass.CAR,
    "minicar": VehicleClass.CAR,
    "salooncar": VehicleClass.CAR,
    "passengercar": VehicleClass.CAR,
    "motor": VehicleClass.CAR,
    "motorvehicle": VehicleClass.CAR,
    "light-duty": VehicleClass.CAR,
    "lightduty": VehicleClass.CAR,
    "suv": VehicleClass.SUV_MPV,
    "mpv": VehicleClass.SUV_MPV,
    "suvmpv": VehicleClass.SUV_MPV,
    "suv_mpv": VehicleClass.SUV_MPV,
    "van": VehicleClass.VAN,
    "microbus": VehicleClass.VAN,
    "buggy": VehicleClass.VAN,
    "pickup": VehicleClass.PICKUP,
    "pickuptruck": VehicleClass.PICKUP,
    "bus": VehicleClass.BUS,
    "largebus": VehicleClass.BUS,
    "mediumbus": VehicleClass.BUS,
    "coach": VehicleClass.BUS,
    "truck": VehicleClass.TRUCK,
    "largetruck": VehicleClass.TRUCK,
    "midtruck": VehicleClass.TRUCK,
    "mediumtruck": VehicleClass.TRUCK,
    "heavytruck": VehicleClass.TRUCK,
    "tankcar": VehicleClass.TRUCK,
    "dumptruck": VehicleClass.TRUCK,
    "oversize": VehicleClass.TRUCK,
    "motorcycle": VehicleClass.MOTORCYCLE,
    "motorbike": VehicleClass.MOTORCYCLE,
    "twowheelvehicle": VehicleClass.MOTORCYCLE,
    "tricycle": VehicleClass.TRICYCLE,
    "threewheelvehicle": VehicleClass.TRICYCLE,
    "police": VehicleClass.POLICE,
    "policecar": VehicleClass.POLICE,
    "fire": VehicleClass.FIRE,
    "fireengine": VehicleClass.FIRE,
    "ambulance": VehicleClass.AMBULANCE,
    "sanitation": VehicleClass.SANITATION,
    "sanitationtruck": VehicleClass.SANITATION,
}


def _fold(text: str) -> str:
    """NFKC (full-width to ASCII), no spaces or separators, ASCII upper case."""
    text = unicodedata.normalize("NFKC", text)
    return re.sub(r"[\s·•.\-_]", "", text).upper()


def colour_of(name: str | None) -> PlateColor | None:
    """A vendor's colour name (``Blue``, ``yellowGreen``, ``蓝``) as a PlateColor, or None."""
    if not name:
        return None
    return _COLOUR_NAMES.get(re.sub(r"[\s_\-]", "", name).lower())


def vehicle_class_of(name: str | None, *, ga_vehicle_type: str | None = None) -> VehicleClass:
    """A vendor's vehicle type as a VehicleClass; the GA vehicle-type code wins when given.

    GA 802 codes: ``H..`` goods vehicles and ``Q..`` tractors are trucks, ``K1.``/``K2.``
    large and medium passenger vehicles are buses, other ``K..`` are cars, ``M..`` motorcycles.
    """
    if ga_vehicle_type:
        code = ga_vehicle_type.strip().upper()
        if code[:1] in ("H", "Q"):
            return VehicleClass.TRUCK
        if code[:2] in ("K1", "K2"):
            return VehicleClass.BUS
        if code[:1] == "K":
            return VehicleClass.CAR
        if code[:1] == "M":
            return VehicleClass.MOTORCYCLE
    if not name:
        return VehicleClass.UNKNOWN
    key = re.sub(r"[\s_]", "", name).lower()
    return _CLASS_NAMES.get(key, _CLASS_NAMES.get(key.replace("-", ""), VehicleClass.UNKNOWN))


def normalise_plate(raw: str | None, colour: str | None = None) -> tuple[str, PlateColor | None]:
    """``(plate, colour)`` from a camera's plate text and colour field.

    A colour written in front of the plate is split off; the colour field wins over it when
    both are given and the field is known. An eight-character plate without a colour is a
    new-energy plate (green). A plate the camera did not read gives ``""``.
    """
    text = _fold(raw or "")
    found: PlateColor | None = None
    for prefix, value in _COLOUR_PREFIXES:
        if text.startswith(prefix) and len(text) > len(prefix):
            found, text = value, text[len(prefix) :]
            break
    if text in _NO_PLATE or text.strip("?*") == "":
        text = ""
    stated = colour_of(colour)
    result = stated if stated is not None else found
    if result is None and len(text) == 8 and _PLATE.match(text):
        result = PlateColor.GREEN
    return text, result


MAX_PLATE_CHARS = 16


def checked_plate(plate: str, *, fmt: str) -> str:
    """``plate`` if it fits a plate column; DecodeError for text no plate can be."""
    if len(plate) > MAX_PLATE_CHARS:
        raise DecodeError(f"plate text of {len(plate)} characters is not a plate", fmt=fmt)
    return plate


def is_readable(plate: str) -> bool:
    """Whether ``plate`` has the shape of a real Chinese plate."""
    return bool(_PLATE.match(plate) or _SPECIAL.match(plate))


def ga_plate_type(
    plate: str,
    colour: PlateColor | None,
    vehicle_class: VehicleClass,
    *,
    stated: str | None = None,
) -> str | None:
    """The GA plate-type code where it can be derived, else None.

    ``stated`` is a code the camera gave (Hikvision's ``VehicleGATInfo``); two digits are
    taken as they are.
    """
    if stated and re.fullmatch(r"[0-9]{2}", stated.strip()):
        return stated.strip()
    if not plate:
        return None
    if plate.endswith("挂"):
        return "15"
    if plate.endswith("学"):
        return "16"
    if colour is PlateColor.YELLOW_GREEN:
        return "51"
    if colour is PlateColor.GREEN:
        return "52"
    if colour is PlateColor.YELLOW:
        return "01"
    if colour is PlateColor.BLUE:
        return "02"
    del vehicle_class  # the class alone never decides the code: a blue-plate van is 02
    return None
