"""The three sign models as register maps (a declarative table), and finding one.

``generic-led`` (the cheap numeric module), ``parkgrid-guidance`` (free count, colour,
arrow) and ``parkgrid-warning`` (message table, flashing). :func:`profile` finds one by name,
:func:`identify` by the model code a sign reports, :func:`looks_like_generic_led` recognises
the module that cannot say what it is.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from enum import IntEnum

from firmware_protocols.errors import DecodeError, EncodeError
from firmware_protocols.signs.displays import (
    CUSTOM_SLOTS,
    CUSTOM_TEXT_BASE,
    CUSTOM_TEXT_REGISTERS,
    GUIDANCE_MAX_COUNT,
    Arrow,
    Colour,
    Display,
    GuidanceDisplay,
    GuidanceMode,
    Message,
    NumericDisplay,
    WarningDisplay,
)
from firmware_protocols.signs.registers import FMT, Access, DataType, Register, Table, Value
from firmware_protocols.signs.sign_profile import Fields, SignProfile


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
