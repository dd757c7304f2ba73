"""Sign profiles: declarative Modbus register maps for LED signs, and their codecs.

Theory of operation
-------------------
Every sign on a bus is one Modbus unit. A :class:`SignProfile` lists the unit's registers as
data (address, table, type, scale, access, meaning, power-on value) and carries two small
functions that map a typed display state (:class:`NumericDisplay`, :class:`GuidanceDisplay`,
:class:`WarningDisplay`) to register fields and back. Everything else is generic:

* :func:`encode_display` turns a display into :class:`WriteBlock` s, contiguous registers
  merged so that one function-16 "write multiple registers" request carries them;
* :func:`decode_display` turns holding registers read back into the display, so the driver
  can verify that a sign shows what it was told (and the simulator knows what it shows);
* :func:`watchdog_write` kicks the watchdog, :func:`decode_status` reads the input registers
  (model, firmware, uptime, fault bits), :func:`identify` recognises a profile by its model
  code and :func:`shown_text` says in words what the sign shows.

The guidance profile puts the watchdog register right after the display registers, so a
refresh (display + kick) is one request::

    Modbus RTU, function 16, guidance sign unit 1, holding 0x0000..0x0009 (10 registers)

    +------+----+-----------+-----------+-------+-------------------------------------+-------+
    | unit | 10 | addr 0000 | count 000A| bytes | free colour arrow mode bright label |  CRC  |
    |  01  |    |   2 B BE  |   2 B BE  |  14   | (4 regs) watchdog                   | 2B LE |
    +------+----+-----------+-----------+-------+-------------------------------------+-------+

Register words are big-endian 16-bit values; a u32 spans two registers, high word first;
text carries two bytes per register, high byte first, NUL-padded at the end.

The module is pure: no I/O, no clocks. The watchdog's timing lives in the sign (or the
simulator); this module only names the registers and the fault bit that reports it.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from typing import NamedTuple

from firmware_protocols.errors import DecodeError, EncodeError

FMT = "sign-profile"
MAX_WRITE_REGISTERS = 123  # function 16 carries at most 123 registers (Modbus spec 6.12)


class Table(StrEnum):
    HOLDING = "holding"
    INPUT = "input"
    COIL = "coil"
    DISCRETE = "discrete"


class DataType(StrEnum):
    U16 = "u16"
    I16 = "i16"
    U32 = "u32"
    ASCII = "ascii"
    UTF8 = "utf8"


class Access(StrEnum):
    R = "r"
    RW = "rw"
    W = "w"


Value = int | float | str


@dataclass(frozen=True, slots=True, kw_only=True)
class Register:
    """One value in a sign's register map (possibly spanning several 16-bit registers)."""

    name: str
    address: int
    table: Table
    dtype: DataType
    access: Access
    meaning: str
    count: int = 1  # 16-bit registers spanned: 2 for u32, chars/2 for text
    scale: float = 1.0  # engineering value = raw * scale
    unit: str = ""
    minimum: int | None = None  # raw limits, inclusive
    maximum: int | None = None
    power_on: Value = 0

    @property
    def addresses(self) -> range:
        return range(self.address, self.address + self.count)


class WriteBlock(NamedTuple):
    """Holding registers to write in one request: ``(address, values)``."""

    address: int
    values: tuple[int, ...]


# --- typed display states ------------------------------------------------------------------


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


# --- the profile type ----------------------------------------------------------------------

Fields = Mapping[str, Value]


@dataclass(frozen=True, slots=True, kw_only=True)
class SignProfile:
    """A sign model: its registers as data plus the display <-> fields mapping."""

    name: str
    title: str
    registers: tuple[Register, ...]
    display_type: type
    display_fields: tuple[str, ...]  # the registers encode_display writes, in order
    to_fields: Callable[[SignProfile, Display], dict[str, Value]]
    from_fields: Callable[[SignProfile, Fields], Display]
    model_code: int | None = None
    watchdog: str | None = None  # register name of the watchdog kick
    watchdog_timeout: str | None = None
    fault_bits: tuple[str, ...] = ()  # bit i of the "faults" input register
    notes: str = ""
    _by_name: dict[str, Register] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        for reg in self.registers:
            self._by_name[reg.name] = reg

    def register(self, name: str) -> Register:
        try:
            return self._by_name[name]
        except KeyError:
            raise EncodeError(f"profile {self.name} has no register {name!r}", fmt=FMT) from None

    def has(self, name: str) -> bool:
        return name in self._by_name

    def table(self, table: Table) -> tuple[Register, ...]:
        return tuple(r for r in self.registers if r.table is table)


# --- single-register codecs ----------------------------------------------------------------


def _words_bytes(words: Sequence[int]) -> bytes:
    return b"".join(struct.pack(">H", w & 0xFFFF) for w in words)


def encode_register(reg: Register, value: Value) -> tuple[int, ...]:
    """One register's engineering value as 16-bit words; EncodeError names what is wrong."""
    if reg.dtype in (DataType.ASCII, DataType.UTF8):
        if not isinstance(value, str):
            raise EncodeError(f"{reg.name}: text expected, got {value!r}", fmt=FMT)
        try:
            raw = value.encode("ascii" if reg.dtype is DataType.ASCII else "utf-8")
        except UnicodeEncodeError:
            raise EncodeError(f"{reg.name}: {value!r} is not {reg.dtype}", fmt=FMT) from None
        if reg.dtype is DataType.ASCII and any(b < 0x20 or b > 0x7E for b in raw):
            raise EncodeError(f"{reg.name}: {value!r} has unprintable characters", fmt=FMT)
        if len(raw) > 2 * reg.count:
            raise EncodeError(
                f"{reg.name}: {len(raw)} bytes do not fit {2 * reg.count}", fmt=FMT, data=raw
            )
        raw = raw.ljust(2 * reg.count, b"\0")
        return struct.unpack(f">{reg.count}H", raw)
    if isinstance(value, str):
        raise EncodeError(f"{reg.name}: number expected, got {value!r}", fmt=FMT)
    raw_int = round(value / reg.scale) if reg.scale != 1.0 else int(value)
    if (reg.minimum is not None and raw_int < reg.minimum) or (
        reg.maximum is not None and raw_int > reg.maximum
    ):
        raise EncodeError(
            f"{reg.name}: {value!r} outside {reg.minimum}..{reg.maximum} "
            f"(register 0x{reg.address:04X})",
            fmt=FMT,
        )
    if reg.dtype is DataType.U16:
        if not 0 <= raw_int <= 0xFFFF:
            raise EncodeError(f"{reg.name}: {value!r} does not fit u16", fmt=FMT)
        return (raw_int,)
    if reg.dtype is DataType.I16:
        if not -0x8000 <= raw_int <= 0x7FFF:
            raise EncodeError(f"{reg.name}: {value!r} does not fit i16", fmt=FMT)
        return (raw_int & 0xFFFF,)
    if not 0 <= raw_int <= 0xFFFFFFFF:
        raise EncodeError(f"{reg.name}: {value!r} does not fit u32", fmt=FMT)
    return (raw_int >> 16, raw_int & 0xFFFF)


def decode_register(reg: Register, words: Sequence[int]) -> Value:
    """Words read from a sign as the register's engineering value."""
    data = _words_bytes(words)
    if len(words) != reg.count:
        raise DecodeError(f"{reg.name}: {reg.count} registers expected", fmt=FMT, data=data)
    if reg.dtype in (DataType.ASCII, DataType.UTF8):
        raw = data.split(b"\0", 1)[0]
        if b"\0" in data and data[data.index(b"\0") :].strip(b"\0"):
            raise DecodeError(
                f"{reg.name}: bytes after the NUL terminator", fmt=FMT, data=data, offset=len(raw)
            )
        try:
            text = raw.decode("ascii" if reg.dtype is DataType.ASCII else "utf-8")
        except UnicodeDecodeError as exc:
            raise DecodeError(
                f"{reg.name}: not {reg.dtype} text", fmt=FMT, data=data, offset=exc.start
            ) from None
        if reg.dtype is DataType.ASCII and not text.isprintable():
            raise DecodeError(f"{reg.name}: unprintable text", fmt=FMT, data=data)
        return text
    if reg.dtype is DataType.U16:
        raw_int = words[0]
    elif reg.dtype is DataType.I16:
        raw_int = words[0] - 0x10000 if words[0] & 0x8000 else words[0]
    else:
        raw_int = (words[0] << 16) | words[1]
    if (reg.minimum is not None and raw_int < reg.minimum) or (
        reg.maximum is not None and raw_int > reg.maximum
    ):
        raise DecodeError(
            f"{reg.name}: {raw_int} outside {reg.minimum}..{reg.maximum}", fmt=FMT, data=data
        )
    return raw_int * reg.scale if reg.scale != 1.0 else raw_int


def _read(reg: Register, registers: Mapping[int, int]) -> Value:
    try:
        words = [registers[a] for a in reg.addresses]
    except KeyError as exc:
        raise DecodeError(
            f"{reg.name}: register 0x{exc.args[0]:04X} missing from the read", fmt=FMT
        ) from None
    return decode_register(reg, words)


# --- write planning ------------------------------------------------------------------------


def merge_writes(
    blocks: Iterable[WriteBlock], *, max_registers: int = MAX_WRITE_REGISTERS
) -> list[WriteBlock]:
    """Coalesce writes: later values win, contiguous registers share one block.

    Blocks longer than ``max_registers`` are split, because one function-16 request
    carries at most 123 registers.
    """
    latest: dict[int, int] = {}
    for address, values in blocks:
        for offset, value in enumerate(values):
            latest[address + offset] = value
    merged: list[WriteBlock] = []
    start: int | None = None
    run: list[int] = []
    for address in sorted(latest):
        if start is None or address != start + len(run) or len(run) >= max_registers:
            if start is not None:
                merged.append(WriteBlock(start, tuple(run)))
            start, run = address, []
        run.append(latest[address])
    if start is not None:
        merged.append(WriteBlock(start, tuple(run)))
    return merged


def encode_fields(profile: SignProfile, fields: Fields) -> list[WriteBlock]:
    blocks = []
    for name, value in fields.items():
        reg = profile.register(name)
        if reg.table is not Table.HOLDING or reg.access is Access.R:
            raise EncodeError(f"{profile.name}: register {name} is not writable", fmt=FMT)
        blocks.append(WriteBlock(reg.address, encode_register(reg, value)))
    return merge_writes(blocks)


def encode_display(profile: SignProfile, display: Display) -> list[WriteBlock]:
    """The holding-register writes that make the sign show ``display``."""
    if not isinstance(display, profile.display_type):
        raise EncodeError(
            f"{profile.name} shows {profile.display_type.__name__}, not {type(display).__name__}",
            fmt=FMT,
        )
    return encode_fields(profile, profile.to_fields(profile, display))


def decode_display(profile: SignProfile, registers: Mapping[int, int]) -> Display:
    """The display state held in ``registers`` (holding address -> word)."""
    fields = {name: _read(profile.register(name), registers) for name in profile.display_fields}
    return profile.from_fields(profile, fields)


def watchdog_write(profile: SignProfile, counter: int) -> WriteBlock:
    """Kick the watchdog. Any write kicks; an incrementing counter shows liveness on read-back."""
    if profile.watchdog is None:
        raise EncodeError(f"profile {profile.name} has no watchdog", fmt=FMT)
    reg = profile.register(profile.watchdog)
    return WriteBlock(reg.address, encode_register(reg, counter & 0xFFFF))


def watchdog_timeout_write(profile: SignProfile, seconds: int) -> WriteBlock:
    """Set the watchdog timeout (0 disables it)."""
    if profile.watchdog_timeout is None:
        raise EncodeError(f"profile {profile.name} has no watchdog", fmt=FMT)
    reg = profile.register(profile.watchdog_timeout)
    return WriteBlock(reg.address, encode_register(reg, seconds))


def decode_status(profile: SignProfile, input_registers: Mapping[int, int]) -> SignStatus:
    """Model, firmware, uptime, fault bits (as names) and temperature from input registers."""
    if profile.model_code is None:
        raise DecodeError(f"profile {profile.name} has no status registers", fmt=FMT)
    values = {r.name: _read(r, input_registers) for r in profile.table(Table.INPUT)}
    model = int(values["model"])
    if model != profile.model_code:
        raise DecodeError(
            f"model code 0x{model:04X} is not {profile.name} (0x{profile.model_code:04X})",
            fmt=FMT,
            data=struct.pack(">H", model),
        )
    firmware = int(values["firmware"])
    bits = int(values["faults"])
    faults = frozenset(name for i, name in enumerate(profile.fault_bits) if bits >> i & 1)
    return SignStatus(
        model_code=model,
        firmware=f"{firmware >> 8}.{firmware & 0xFF}",
        uptime_s=int(values["uptime"]),
        faults=faults,
        temperature_c=round(float(values["temperature"]), 1),
    )


def encode_fault_bits(profile: SignProfile, faults: Iterable[str]) -> int:
    """The fault register's word for a set of fault names (used by the simulator)."""
    word = 0
    for name in faults:
        if name not in profile.fault_bits:
            raise EncodeError(f"profile {profile.name} has no fault bit {name!r}", fmt=FMT)
        word |= 1 << profile.fault_bits.index(name)
    return word


def power_on_registers(profile: SignProfile) -> dict[Table, dict[int, int]]:
    """Every register's power-on word, per table (what a sign holds after a reboot)."""
    tables: dict[Table, dict[int, int]] = {t: {} for t in Table}
    for reg in profile.registers:
        words = encode_register(reg, reg.power_on)
        tables[reg.table].update(zip(reg.addresses, words, strict=True))
    return tables


def custom_text_writes(profile: SignProfile, slot: Message, text: str) -> list[WriteBlock]:
    """Store ``text`` (UTF-8, up to 32 bytes) in a warning sign's custom message slot."""
    if slot not in CUSTOM_SLOTS or not profile.has(f"custom_{slot.value - 15}"):
        raise EncodeError(f"profile {profile.name} has no custom slot {slot!r}", fmt=FMT)
    return encode_fields(profile, {f"custom_{slot.value - 15}": text})


def identify(model_code: int) -> SignProfile:
    """The profile whose model code a sign reports in input register 0."""
    for profile in PROFILES.values():
        if profile.model_code == model_code:
            return profile
    raise DecodeError(
        f"unknown sign model code 0x{model_code & 0xFFFF:04X}",
        fmt=FMT,
        data=struct.pack(">H", model_code & 0xFFFF),
    )


def looks_like_generic_led(unit_id: int, holding: Mapping[int, int]) -> bool:
    """Whether a unit without a model register is plausibly the generic LED module.

    The generic module cannot say what it is; ``scan-signs`` uses this after input register
    0 was refused: the module stores its own unit id at 0x0002 and a valid baud code at 0x0003.
    """
    return holding.get(0x0002) == unit_id and holding.get(0x0003) in BAUD_CODES


# --- what a sign shows, in words -----------------------------------------------------------


def format_numeric(value: int, decimals: int) -> str:
    if decimals == 0:
        return str(value)
    digits = f"{abs(value):0{decimals + 1}d}"
    sign = "-" if value < 0 else ""
    return f"{sign}{digits[:-decimals]}.{digits[-decimals:]}"


def guidance_text(display: GuidanceDisplay) -> str:
    """The words on a guidance sign's face for ``display`` (colour aside; "" when dark).

    ``P1 37 →`` (space, the sign's own lot), ``满 FULL → P4 12`` (full: go to P4, 12 free),
    ``满 FULL`` (full, nowhere to send drivers), ``CLOSED``, ``--`` (unknown).
    """
    if display.brightness == 0 or display.mode is GuidanceMode.BLANK:
        return ""
    if display.mode is GuidanceMode.UNKNOWN:
        return UNKNOWN_TEXT
    if display.mode is GuidanceMode.CLOSED:
        return "CLOSED"
    arrow = ARROW_GLYPH[display.arrow]
    if display.mode is GuidanceMode.FULL:
        if not display.label:
            return FULL_WORDS
        parts = [FULL_WORDS, arrow, display.label, str(display.free)]
    else:
        parts = [display.label, str(display.free), arrow]
    return " ".join(p for p in parts if p)


def numeric_full_text(label: str, arrow: Arrow, free: int, *, width: int) -> str:
    """The numeric module's full text: ``FULL`` alone or ``FULL ^P3 37`` within ``width``."""
    if not label:
        return FULL_WORDS_ASCII
    text = f"{FULL_WORDS_ASCII} {ARROW_ASCII[arrow]}{label} {min(free, GUIDANCE_MAX_COUNT)}"
    if len(text) <= width:
        return text
    return f"{ARROW_ASCII[arrow]}{label} {min(free, GUIDANCE_MAX_COUNT)}"[:width]


def shown_text(
    profile: SignProfile,
    holding: Mapping[int, int],
    inputs: Mapping[int, int] | None = None,
) -> str:
    """Human text of what the sign's LEDs show for these registers ("" when dark)."""
    display = decode_display(profile, holding)
    expired = False
    if inputs is not None and profile.model_code is not None:
        expired = "watchdog_expired" in decode_status(profile, inputs).faults
    if isinstance(display, NumericDisplay):
        if display.text is not None:
            return display.text
        return format_numeric(display.value or 0, display.decimals)
    if isinstance(display, GuidanceDisplay):
        if expired:
            return UNKNOWN_TEXT
        text = guidance_text(display)
        if text in ("", UNKNOWN_TEXT):
            return text
        return f"{text} {display.colour.name.lower()}"
    if expired or display.brightness == 0 or display.message is Message.BLANK:
        return ""
    if display.message in CUSTOM_SLOTS:
        text = str(_read(profile.register(f"custom_{display.message.value - 15}"), holding))
    else:
        text = MESSAGE_TEXT[display.message]
    return f"{text} (flashing)" if display.flashing and text else text


# --- the three profiles --------------------------------------------------------------------


def _holding(
    name: str,
    address: int,
    meaning: str,
    *,
    dtype: DataType = DataType.U16,
    count: int = 1,
    unit: str = "",
    minimum: int | None = 0,
    maximum: int | None = None,
    power_on: Value = 0,
) -> Register:
    return Register(
        name=name,
        address=address,
        table=Table.HOLDING,
        dtype=dtype,
        access=Access.RW,
        meaning=meaning,
        count=count,
        unit=unit,
        minimum=minimum if dtype is DataType.U16 else None,
        maximum=maximum,
        power_on=power_on,
    )


def _input(
    name: str,
    address: int,
    meaning: str,
    *,
    dtype: DataType = DataType.U16,
    count: int = 1,
    scale: float = 1.0,
    unit: str = "",
    power_on: Value = 0,
) -> Register:
    return Register(
        name=name,
        address=address,
        table=Table.INPUT,
        dtype=dtype,
        access=Access.R,
        meaning=meaning,
        count=count,
        scale=scale,
        unit=unit,
        power_on=power_on,
    )


BAUD_CODES: dict[int, int] = {
    1: 1200,
    2: 2400,
    3: 4800,
    4: 9600,
    5: 19200,
    6: 38400,
    7: 57600,
    8: 115200,
}
GENERIC_DIGITS = 4
GENERIC_TEXT_REGISTERS = 8  # 16 characters: digits plus decimal points


def _enum(enum_type: type[IntEnum], value: Value, reg_name: str) -> IntEnum:
    try:
        return enum_type(int(value))
    except ValueError:
        raise DecodeError(
            f"{reg_name}: {value!r} is not a {enum_type.__name__}",
            fmt=FMT,
            data=struct.pack(">H", int(value) & 0xFFFF),
        ) from None


def _numeric_to_fields(profile: SignProfile, display: Display) -> dict[str, Value]:
    assert isinstance(display, NumericDisplay)
    if display.value is not None and display.text is not None:
        raise EncodeError("generic-led shows a value or a text, not both", fmt=FMT)
    if display.text is not None:
        if display.decimals != 0:
            raise EncodeError("generic-led: decimals apply to a value, not a text", fmt=FMT)
        if display.text == "":
            raise EncodeError("generic-led: an empty text reads back as no text", fmt=FMT)
        return {"text": display.text}
    if display.value is None:
        raise EncodeError("generic-led: neither a value nor a text to show", fmt=FMT)
    if not 0 <= display.decimals < GENERIC_DIGITS:
        raise EncodeError(f"generic-led: decimals {display.decimals} outside 0..3", fmt=FMT)
    # The value register is also checked against -999..9999: four digits, one for the sign.
    return {"value": display.value, "decimal_point": display.decimals, "text": ""}


def _numeric_from_fields(profile: SignProfile, fields: Fields) -> Display:
    text = str(fields["text"])
    if text:
        return NumericDisplay(text=text)
    return NumericDisplay(value=int(fields["value"]), decimals=int(fields["decimal_point"]))


def _check_brightness(value: int) -> int:
    if not 0 <= value <= 100:
        raise EncodeError(f"brightness {value} outside 0..100", fmt=FMT)
    return value


def _guidance_to_fields(profile: SignProfile, display: Display) -> dict[str, Value]:
    assert isinstance(display, GuidanceDisplay)
    if display.free < 0:
        raise EncodeError(f"free count {display.free} is negative", fmt=FMT)
    return {
        "free": min(display.free, GUIDANCE_MAX_COUNT),
        "colour": Colour(display.colour).value,
        "arrow": Arrow(display.arrow).value,
        "mode": GuidanceMode(display.mode).value,
        "brightness": _check_brightness(display.brightness),
        "label": display.label,
    }


def _guidance_from_fields(profile: SignProfile, fields: Fields) -> Display:
    return GuidanceDisplay(
        free=int(fields["free"]),
        colour=Colour(_enum(Colour, fields["colour"], "colour")),
        arrow=Arrow(_enum(Arrow, fields["arrow"], "arrow")),
        mode=GuidanceMode(_enum(GuidanceMode, fields["mode"], "mode")),
        brightness=int(fields["brightness"]),
        label=str(fields["label"]),
    )


def _warning_to_fields(profile: SignProfile, display: Display) -> dict[str, Value]:
    assert isinstance(display, WarningDisplay)
    return {
        "message": Message(display.message).value,
        "flashing": int(bool(display.flashing)),
        "brightness": _check_brightness(display.brightness),
    }


def _warning_from_fields(profile: SignProfile, fields: Fields) -> Display:
    return WarningDisplay(
        message=Message(_enum(Message, fields["message"], "message")),
        flashing=bool(fields["flashing"]),
        brightness=int(fields["brightness"]),
    )


FAULT_BITS = ("led_module", "power", "over_temperature", "watchdog_expired", "light_sensor")
MODEL_GUIDANCE = 0x4701  # high byte 'G', low byte register-map version 1
MODEL_WARNING = 0x5701  # high byte 'W'
FIRMWARE_1_0 = 0x0100


def _status_registers(model_code: int) -> tuple[Register, ...]:
    return (
        _input(
            "model",
            0x0000,
            "model code: high byte kind ('G'/'W'), low byte map version",
            power_on=model_code,
        ),
        _input("firmware", 0x0001, "firmware version, major << 8 | minor", power_on=FIRMWARE_1_0),
        _input("uptime", 0x0002, "seconds since power-on", dtype=DataType.U32, count=2, unit="s"),
        _input(
            "faults",
            0x0004,
            "fault bits: 0 LED module, 1 power, 2 over-temperature, "
            "3 watchdog expired, 4 light sensor",
        ),
        _input(
            "temperature",
            0x0005,
            "cabinet temperature",
            dtype=DataType.I16,
            scale=0.1,
            unit="°C",
            power_on=25.0,
        ),
    )


def _watchdog_registers(address: int) -> tuple[Register, ...]:
    return (
        _holding("watchdog", address, "any write restarts the watchdog; write a counter"),
        _holding(
            "watchdog_timeout",
            address + 1,
            "watchdog timeout, 0 disables it",
            unit="s",
            minimum=0,
            maximum=3600,
            power_on=30,
        ),
    )


GENERIC_LED = SignProfile(
    name="generic-led",
    title="generic RS-485 numeric LED module (car-park counter)",
    registers=(
        Register(
            name="value",
            address=0x0000,
            table=Table.HOLDING,
            dtype=DataType.I16,
            access=Access.RW,
            meaning="the number shown",
            minimum=-999,
            maximum=9999,
        ),
        _holding(
            "unit_id",
            0x0002,
            "Modbus unit id (takes effect after power cycle)",
            minimum=1,
            maximum=247,
            power_on=1,
        ),
        _holding(
            "baud_code",
            0x0003,
            "baud rate code: 1=1200 2=2400 3=4800 4=9600 5=19200 6=38400 7=57600 8=115200",
            minimum=1,
            maximum=8,
            power_on=4,
        ),
        _holding(
            "decimal_point",
            0x0004,
            "digits after the decimal point",
            minimum=0,
            maximum=GENERIC_DIGITS - 1,
        ),
        _holding(
            "text",
            0x0080,
            "raw 7-segment text, 2 chars per register, high byte first; "
            "non-empty text replaces the value",
            dtype=DataType.ASCII,
            count=GENERIC_TEXT_REGISTERS,
            power_on="----",
        ),
    ),
    display_type=NumericDisplay,
    display_fields=("value", "decimal_point", "text"),
    to_fields=_numeric_to_fields,
    from_fields=_numeric_from_fields,
    notes="No watchdog and no status registers: the controller's periodic refresh is the "
    "only protection against a stale or power-on value.",
)

PARKGRID_GUIDANCE = SignProfile(
    name="parkgrid-guidance",
    title="parkgrid guidance sign (free count, colour, arrow)",
    registers=(
        _holding("free", 0x0000, "free spaces shown", minimum=0, maximum=GUIDANCE_MAX_COUNT),
        _holding("colour", 0x0001, "0 green, 1 amber, 2 red", maximum=2),
        _holding("arrow", 0x0002, "0 none, 1 left, 2 right, 3 ahead", maximum=3),
        _holding(
            "mode",
            0x0003,
            "0 normal (label, free, arrow), 1 full (the words for full, then arrow, label "
            "and free of the lot to go to; no label: nowhere to go), 2 closed, 3 blank, "
            "4 unknown ('--')",
            maximum=4,
            power_on=GuidanceMode.BLANK.value,
        ),
        _holding("brightness", 0x0004, "LED brightness", unit="%", maximum=100, power_on=100),
        _holding(
            "label",
            0x0005,
            "normal: the lot's label before the count; full: the label of the lot the "
            "arrow points to (ASCII)",
            dtype=DataType.ASCII,
            count=4,
            power_on="",
        ),
        *_watchdog_registers(0x0009),
        *_status_registers(MODEL_GUIDANCE),
    ),
    display_type=GuidanceDisplay,
    display_fields=("free", "colour", "arrow", "mode", "brightness", "label"),
    to_fields=_guidance_to_fields,
    from_fields=_guidance_from_fields,
    model_code=MODEL_GUIDANCE,
    watchdog="watchdog",
    watchdog_timeout="watchdog_timeout",
    fault_bits=FAULT_BITS,
    notes="Without a watchdog write within the timeout the sign shows '--' and sets "
    "fault bit watchdog_expired; the next watchdog write restores the count.",
)

PARKGRID_WARNING = SignProfile(
    name="parkgrid-warning",
    title="parkgrid warning sign (message table, flashing)",
    registers=(
        _holding(
            "message",
            0x0000,
            "message index: 0 blank, 1 no parking, 2 capture in "
            "force, 3 stall zone closing, 4 stall zone closed, 5 truck ban, "
            "16..19 custom slots 1..4",
        ),
        _holding("flashing", 0x0001, "0 steady, 1 flashing", maximum=1),
        _holding("brightness", 0x0002, "LED brightness", unit="%", maximum=100, power_on=100),
        *_watchdog_registers(0x0003),
        *(
            _holding(
                f"custom_{i + 1}",
                CUSTOM_TEXT_BASE + CUSTOM_TEXT_REGISTERS * i,
                f"custom message slot {i + 1} (UTF-8, NUL-padded)",
                dtype=DataType.UTF8,
                count=CUSTOM_TEXT_REGISTERS,
                power_on="",
            )
            for i in range(len(CUSTOM_SLOTS))
        ),
        *_status_registers(MODEL_WARNING),
    ),
    display_type=WarningDisplay,
    display_fields=("message", "flashing", "brightness"),
    to_fields=_warning_to_fields,
    from_fields=_warning_from_fields,
    model_code=MODEL_WARNING,
    watchdog="watchdog",
    watchdog_timeout="watchdog_timeout",
    fault_bits=FAULT_BITS,
    notes="Without a watchdog write within the timeout the sign goes dark (a stale 'capture "
    "in force' is worse than none) and sets fault bit watchdog_expired.",
)

PROFILES: dict[str, SignProfile] = {
    p.name: p for p in (GENERIC_LED, PARKGRID_GUIDANCE, PARKGRID_WARNING)
}


def profile(name: str) -> SignProfile:
    """The profile called ``name``; EncodeError lists the known ones."""
    try:
        return PROFILES[name]
    except KeyError:
        raise EncodeError(
            f"unknown sign profile {name!r} (known: {', '.join(PROFILES)})", fmt=FMT
        ) from None
