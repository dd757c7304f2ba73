"""What a sign can be told to show: typed display states, the message table, face words.

:class:`NumericDisplay`, :class:`GuidanceDisplay` and :class:`WarningDisplay` are the states
the profiles map to registers and back; :class:`SignStatus` is what a sign's input registers
report about its health. Pure data.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class Colour(IntEnum):
    GREEN = 0
    AMBER = 1
    RED = 2


class Arrow(IntEnum):
    NONE = 0
    LEFT = 1
    RIGHT = 2
    AHEAD = 3


class GuidanceMode(IntEnum):
    """What the guidance sign's face shows (holding register 3).

    ``NORMAL`` shows ``label free arrow`` (the sign's own lot). ``FULL`` shows the words for
    full, then, when ``label`` is set, the way to a fallback lot: ``arrow label free`` (the
    fallback's label and free count), e.g. ``满 FULL → P4 12``; the fallback's label is
    never shown next to the words for full on its own. ``UNKNOWN`` shows ``--``: the box
    cannot vouch for any count (every bay unknown), the same face as an expired watchdog.
    """

    NORMAL = 0
    FULL = 1
    CLOSED = 2
    BLANK = 3
    UNKNOWN = 4


class Message(IntEnum):
    """The warning sign's message table (index written to holding register 0)."""

    BLANK = 0
    NO_PARKING = 1
    CAPTURE_IN_FORCE = 2
    STALL_ZONE_CLOSING = 3
    STALL_ZONE_CLOSED = 4
    TRUCK_BAN = 5
    CUSTOM_1 = 16
    CUSTOM_2 = 17
    CUSTOM_3 = 18
    CUSTOM_4 = 19


MESSAGE_TEXT: dict[Message, str] = {
    Message.BLANK: "",
    Message.NO_PARKING: "禁止停车 NO PARKING",
    Message.CAPTURE_IN_FORCE: "违停抓拍 CAPTURE IN FORCE",
    Message.STALL_ZONE_CLOSING: "摊点即将关闭 STALL ZONE CLOSING",
    Message.STALL_ZONE_CLOSED: "摊点已关闭 STALL ZONE CLOSED",
    Message.TRUCK_BAN: "大车禁行 TRUCK BAN",
}
CUSTOM_SLOTS = (Message.CUSTOM_1, Message.CUSTOM_2, Message.CUSTOM_3, Message.CUSTOM_4)
CUSTOM_TEXT_BASE = 0x0100
CUSTOM_TEXT_REGISTERS = 16  # 32 bytes of UTF-8 per slot

ARROW_GLYPH = {Arrow.NONE: "", Arrow.LEFT: "←", Arrow.RIGHT: "→", Arrow.AHEAD: "↑"}
ARROW_ASCII = {Arrow.NONE: "", Arrow.LEFT: "<", Arrow.RIGHT: ">", Arrow.AHEAD: "^"}
FULL_WORDS = "满 FULL"  # what every guidance sign shows for "this lot is full"
FULL_WORDS_ASCII = "FULL"  # the numeric module has no Chinese glyphs
UNKNOWN_TEXT = "--"  # no count anyone can vouch for (also an expired watchdog)
GUIDANCE_MAX_COUNT = 9999  # four digits; larger counts are shown as 9999


@dataclass(frozen=True, slots=True, kw_only=True)
class NumericDisplay:
    """Generic LED module: a number with a decimal point, or raw 7-segment text."""

    value: int | None = None
    decimals: int = 0
    text: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class GuidanceDisplay:
    free: int
    colour: Colour = Colour.GREEN
    arrow: Arrow = Arrow.NONE
    mode: GuidanceMode = GuidanceMode.NORMAL
    brightness: int = 100
    label: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class WarningDisplay:
    message: Message
    flashing: bool = False
    brightness: int = 100


Display = NumericDisplay | GuidanceDisplay | WarningDisplay


@dataclass(frozen=True, slots=True, kw_only=True)
class SignStatus:
    """What a sign's input registers report about its health."""

    model_code: int
    firmware: str
    uptime_s: int
    faults: frozenset[str]
    temperature_c: float
