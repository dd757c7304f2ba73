"""Plate text, plate colour and the GA plate-type code, normalised.

Theory of operation
-------------------
Cameras disagree on all three. Chinese Hikvision firmware writes the colour in front of
the plate, as one character or as a word (``蓝苏A8HK52``, ``黄色浙A12345``); Dahua writes
``Blue`` or ``YellowbottomBlackText``; parkgrid's own JSON writes ``blue``. Plates come
with separators (``苏A·8HK52``), full-width letters, or as ``无车牌`` ("no plate").
Everything here is a pure function of strings.

The plate grammar (:func:`is_readable`) knows every plate kind a Chinese street sees:

=====================  ==============  =====================================  ======
kind                   example         shape                                  GA 36
=====================  ==============  =====================================  ======
ordinary (blue/yellow) 苏A8HK52        province, office letter, 5             01/02
new-energy small       粤BD12345       province, letter, D/F + 5              52
new-energy large       粤B12345D       province, letter, 5 + D/F              51
police 警              京A1234警       province, letter, 4, 警                23
learner 学             京A1234学       province, letter, 4, 学                16
trailer 挂             京A1234挂       province, letter, 4, 挂                15
consulate 领           沪A1234领       province, letter, 4, 领                04
embassy 使             使014578        使 + 6 (or 6 + 使)                     03
Hong Kong 港, Macao 澳 粤Z1234港       粤Z, 4, 港 / 澳                        26/27
emergency 应急         京X1234应急     province, letter, 4, 应急              none
armed police WJ        WJ京1234J       WJ, province or letter, 5 (or 2 + 5)   31
military               VT10001         2 letters, 5 digits                    32
civil aviation 民航    民航123AB       民航, 5                                none
=====================  ==============  =====================================  ======

Emergency plates (issued by the Ministry of Emergency Management) and civil-aviation plates
(CAAC) are not public-security plates and have no GA 36 code. ``I`` and ``O`` are never
used on civil plates (they read as 1 and 0).
"""

from __future__ import annotations

import re
import unicodedata

from firmware_protocols.cameras.capture import PlateColor, VehicleClass
from firmware_protocols.cameras.vehicle_types import vehicle_class_of, vehicle_type
from firmware_protocols.errors import DecodeError

PROVINCES = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"
_AN = "A-HJ-NP-Z0-9"
_CIVIL = re.compile(
    rf"^[{PROVINCES}][A-HJ-NP-Z](?:[{_AN}]{{5}}|[DF][{_AN}]{{5}}|[0-9]{{5}}[DF]"
    rf"|[{_AN}]{{4}}(?:[挂学警领]|应急))$"
)
_HK_MACAO = re.compile(rf"^粤Z[{_AN}]{{4}}[港澳]$")
_EMBASSY = re.compile(r"^(?:使[0-9]{6}|[0-9]{6}使)$")
_ARMED_POLICE = re.compile(
    rf"^WJ(?:[{PROVINCES}][0-9]{{4}}[A-Z0-9]|[A-Z][0-9]{{5}}|[0-9]{{2}}[0-9A-Z]{{5}})$"
)
_MILITARY = re.compile(r"^[A-Z]{2}[0-9]{5}$")
_CIVIL_AVIATION = re.compile(r"^民航[A-Z0-9]{5}$")
_PLATES = (_CIVIL, _HK_MACAO, _EMBASSY, _ARMED_POLICE, _MILITARY, _CIVIL_AVIATION)

# Longest first: 黄绿色 before 黄绿 before 黄色 before 黄.
_COLOUR_PREFIXES = sorted(
    {
        "黄绿色": PlateColor.YELLOW_GREEN,
        "黄绿": PlateColor.YELLOW_GREEN,
        "渐变绿色": PlateColor.GREEN,
        "渐变绿": PlateColor.GREEN,
        "蓝色": PlateColor.BLUE,
        "黄色": PlateColor.YELLOW,
        "绿色": PlateColor.GREEN,
        "白色": PlateColor.WHITE,
        "黑色": PlateColor.BLACK,
        "蓝": PlateColor.BLUE,
        "黄": PlateColor.YELLOW,
        "绿": PlateColor.GREEN,
        "白": PlateColor.WHITE,
        "黑": PlateColor.BLACK,
    }.items(),
    key=lambda item: -len(item[0]),
)
_NO_PLATE = {"", "无车牌", "无牌", "车牌", "未识别", "UNKNOWN", "NOPLATE", "NONE", "NULL", "--"}

# Vendors' colour names (lower case, no separators).
COLOUR_NAMES: dict[str, PlateColor] = {
    "blue": PlateColor.BLUE,
    "bluebottomwhitetext": PlateColor.BLUE,
    "yellow": PlateColor.YELLOW,
    "yellowbottomblacktext": PlateColor.YELLOW,
    "green": PlateColor.GREEN,
    "shadowgreen": PlateColor.GREEN,
    "gradientgreen": PlateColor.GREEN,
    "newenergygreen": PlateColor.GREEN,
    "yellowgreen": PlateColor.YELLOW_GREEN,
    "greenyellow": PlateColor.YELLOW_GREEN,
    "newenergyyellowgreen": PlateColor.YELLOW_GREEN,
    "white": PlateColor.WHITE,
    "whitebottomblacktext": PlateColor.WHITE,
    "black": PlateColor.BLACK,
    "blackbottomwhitetext": PlateColor.BLACK,
    "civilaviationblack": PlateColor.BLACK,
    "civilaviationgreen": PlateColor.GREEN,
    **{word: colour for word, colour in _COLOUR_PREFIXES},
}
# A camera's "I don't know" colour: not an unmapped value.
_NO_COLOUR = {"", "unknown", "unknow", "other", "others", "none", "未知", "其他"}

# GA 36 号牌种类 codes parkgrid can tell from the plate (and the names, for the docs).
GA_PLATE_TYPES = {
    "01": "large vehicle (大型汽车, yellow)",
    "02": "small vehicle (小型汽车, blue)",
    "03": "embassy (使馆汽车)",
    "04": "consulate (领馆汽车)",
    "15": "trailer (挂车)",
    "16": "learner (教练汽车)",
    "23": "police (警用汽车)",
    "26": "Hong Kong cross-border (香港入出境车)",
    "27": "Macao cross-border (澳门入出境车)",
    "31": "armed police (武警)",
    "32": "military (军队)",
    "51": "new-energy large (大型新能源汽车)",
    "52": "new-energy small (小型新能源汽车)",
}
_SUFFIX_TYPES = {"挂": "15", "学": "16", "警": "23", "领": "04", "使": "03", "港": "26", "澳": "27"}

__all__ = ["vehicle_class_of", "vehicle_type"]


def _fold(text: str) -> str:
    """NFKC (full-width to ASCII), no spaces or separators, ASCII upper case."""
    text = unicodedata.normalize("NFKC", text)
    return re.sub(r"[\s·•.\-_]", "", text).upper()


def _colour_key(name: str) -> str:
    return re.sub(r"[\s_\-]", "", name).lower()


def colour_of(name: str | None) -> PlateColor | None:
    """A vendor's colour name (``Blue``, ``yellowGreen``, ``黄色``) as a PlateColor, or None."""
    if not name:
        return None
    return COLOUR_NAMES.get(_colour_key(name))


def unmapped_colour(name: str | None) -> str | None:
    """The colour value itself when no table knows it (and it is not "unknown")."""
    if name is None or _colour_key(name) in _NO_COLOUR or colour_of(name) is not None:
        return None
    return name.strip()[:64]


def normalise_plate(raw: str | None, colour: str | None = None) -> tuple[str, PlateColor | None]:
    """``(plate, colour)`` from a camera's plate text and colour field.

    A colour written in front of the plate is split off; the colour field wins over it when
    both are given and the field is known. A new-energy shaped plate without a colour is
    green (small) or yellow-green (large). A plate the camera did not read gives ``""``.
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
    if result is None and len(text) == 8 and _CIVIL.match(text):
        result = PlateColor.YELLOW_GREEN if text[-1] in "DF" else PlateColor.GREEN
    return text, result


MAX_PLATE_CHARS = 16


def checked_plate(plate: str, *, fmt: str) -> str:
    """``plate`` if it fits a plate column; DecodeError for text no plate can be."""
    if len(plate) > MAX_PLATE_CHARS:
        raise DecodeError(f"plate text of {len(plate)} characters is not a plate", fmt=fmt)
    return plate


def is_readable(plate: str) -> bool:
    """Whether ``plate`` has the shape of a real Chinese plate (any kind in the table)."""
    return any(pattern.match(plate) for pattern in _PLATES)


def ga_plate_type(
    plate: str,
    colour: PlateColor | None,
    vehicle_class: VehicleClass,
    *,
    stated: str | None = None,
) -> str | None:
    """The GA 36 plate-type code where it can be derived, else None.

    ``stated`` is a code the camera gave (Hikvision's ``VehicleGATInfo``); two digits are
    taken as they are.
    """
    if stated and re.fullmatch(r"[0-9]{2}", stated.strip()):
        return stated.strip()
    if not plate:
        return None
    if plate.startswith("WJ") and _ARMED_POLICE.match(plate):
        return "31"
    if _MILITARY.match(plate):
        return "32"
    if plate.endswith("应急") or plate.startswith("民航"):
        return None
    if plate.startswith("使"):
        return "03"
    if plate[-1] in _SUFFIX_TYPES:
        return _SUFFIX_TYPES[plate[-1]]
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
