"""Nwave NPS405 / NPS310 parking-sensor payloads, format id ``nwave-nps``.

Theory of operation: LoRaWAN, one layout per radio port. Occupancy is bit 0 of byte 0
(an older vendor codec read bit 7; the current one, and ours, reads bit 0). A status
frame packs how long the previous state lasted into the seven bits above it, compressed
so that short stays are exact and long ones coarse::

    v (7 bits)   minutes               error bound
    0..89        v                     0
    90..119      90 + (v - 90) * 5     4   (the true value is in [minutes, minutes + 4])
    120..126     240 + (v - 120) * 60  59
    127          660 or more           overflow

Frames::

    port 1  status, byte 0
      bits 7..1               bit 0
    +-----------------------+----------+
    | previous-state code v | occupied |
    +-----------------------+----------+

    port 2  heartbeat
      0                   1                  2                    3..
    +-------------------+------------------+--------------------+---------+
    | bit 0: occupied   | battery          | temperature        | ignored |
    | bits 6..0: health | mV = 2500 + 4 b1 | °C = int8 / 2 + 10 |         |
    +-------------------+------------------+--------------------+---------+

    port 3  startup
      0      1      2      3             4
    +------+------+------+-------------+-----------------+
    | fw a | fw b | fw c | reset cause | bit 0: occupied |
    +------+------+------+-------------+-----------------+
    reset cause: 0 rejoin, 1 watchdog, 2 power on, 3 user request, 6 brownout, 7 other

    port 6  debug: raw bytes

    port 10  tag registration, 5 bytes (SENSOR_FORMATS.md)
      0           1..4
    +-----------+------------+
    | as port 1 | tag id, BE |
    +-----------+------------+
    port 10  tag registration, 6 bytes (the vendor's newer example)
      0           1            2..5
    +-----------+------------+------------+
    | as port 1 | tag V x 10 | tag id, BE |
    +-----------+------------+------------+

Trailing bytes beyond a layout are ignored (newer firmware appends to the heartbeat) and
stay in ``raw``. Battery health follows the vendor's temperature rule.
"""

from __future__ import annotations

from typing import Final

from firmware_protocols.sensors._common import Fields, KindEncoder, fail, need, parse_firmware
from firmware_protocols.sensors.reading import SensorReading, battery_health_for

__all__ = ["ENCODERS", "FMT", "compress_minutes", "decode", "decompress_minutes"]

FMT: Final = "nwave-nps"

_RESET_CAUSES: Final[dict[int, str]] = {
    0: "rejoin",
    1: "watchdog",
    2: "power_on",
    3: "user_request",
    6: "brownout",
    7: "other",
}
_RESET_CODES: Final[dict[str, int]] = {name: code for code, name in _RESET_CAUSES.items()}

OVERFLOW_MINUTES: Final = 660


def decompress_minutes(v: int) -> tuple[int, int | None, bool]:
    """7-bit ``v`` -> ``(minutes, error bound or None, overflow)``."""
    if v < 90:
        return v, 0, False
    if v < 120:
        return 90 + (v - 90) * 5, 4, False
    if v < 127:
        return 240 + (v - 120) * 60, 59, False
    return OVERFLOW_MINUTES, None, True


def compress_minutes(minutes: int) -> int:
    """Minutes -> the 7-bit code whose range holds them (truncating, as the sensor does)."""
    if minutes < 0:
        raise ValueError(f"negative duration {minutes}")
    if minutes < 90:
        return minutes
    if minutes < 240:
        return 90 + (minutes - 90) // 5
    if minutes < OVERFLOW_MINUTES:
        return 120 + (minutes - 240) // 60
    return 127


# Precomputed: status frames are the hot path.
_PREVIOUS: Final = tuple(decompress_minutes(v) for v in range(128))


def _previous_extra(v: int) -> tuple[int, dict[str, object]]:
    minutes, error, overflow = _PREVIOUS[v]
    return minutes, {"previous_state_error_minutes": error, "previous_state_overflow": overflow}


def _status(data: bytes, port: int) -> SensorReading:
    need(FMT, data, port, 1, "status")
    b0 = data[0]
    minutes, extra = _previous_extra(b0 >> 1)
    return SensorReading(
        fmt=FMT,
        kind="status",
        occupied=bool(b0 & 1),
        previous_state_minutes=minutes,
        raw=data,
        extra=extra,
    )


def _heartbeat(data: bytes, port: int) -> SensorReading:
    need(FMT, data, port, 3, "heartbeat")
    b0, b1, b2 = data[0], data[1], data[2]
    battery_mv = 2500 + 4 * b1
    temperature = (b2 - 0x100 if b2 & 0x80 else b2) / 2 + 10
    return SensorReading(
        fmt=FMT,
        kind="heartbeat",
        occupied=bool(b0 & 1),
        battery_mv=battery_mv,
        battery_health=battery_health_for(battery_mv, temperature),
        temperature_c=temperature,
        raw=data,
        # bits 6..0 as the vendor defines them, which includes the occupancy bit 0.
        extra={"hw_health": b0 & 0x7F},
    )


def _startup(data: bytes, port: int) -> SensorReading:
    need(FMT, data, port, 5, "startup")
    cause_code = data[3]
    return SensorReading(
        fmt=FMT,
        kind="startup",
        occupied=bool(data[4] & 1),
        firmware=f"{data[0]}.{data[1]}.{data[2]}",
        # Codes 4 and 5 are unassigned: keep the rest of the frame, not a failure.
        reset_cause=_RESET_CAUSES.get(cause_code),
        raw=data,
        extra={"reset_cause_code": cause_code},
    )


def _debug(data: bytes, port: int) -> SensorReading:
    need(FMT, data, port, 1, "debug")
    return SensorReading(fmt=FMT, kind="debug", raw=data)


def _registration(data: bytes, port: int) -> SensorReading:
    need(FMT, data, port, 5, "registration")
    b0 = data[0]
    extra: dict[str, object]
    if b0 & 1:
        occupied: bool | None = True
        minutes: int | None
        minutes, extra = _previous_extra(b0 >> 1)
    else:
        occupied, minutes, extra = None, None, {}
    if len(data) >= 6:
        # Newer firmware (the vendor's own example) puts the tag's battery before the id.
        extra["tag_battery_mv"] = data[1] * 100
        tag = data[2:6]
    else:
        tag = data[1:5]
    return SensorReading(
        fmt=FMT,
        kind="registration",
        occupied=occupied,
        previous_state_minutes=minutes,
        tag_id=tag.hex().upper(),
        raw=data,
        extra=extra,
    )


_BY_PORT: Final = {1: _status, 2: _heartbeat, 3: _startup, 6: _debug, 10: _registration}


def decode(data: bytes, port: int | None) -> SensorReading:
    """Decode one Nwave payload received on radio ``port``."""
    if port is None:
        fail(FMT, "port required", data, port)
    handler = _BY_PORT.get(port)
    if handler is None:
        fail(FMT, f"unknown port {port}", data, port)
    return handler(data, port)


# ---- encoders (for simulators and round-trip tests) -------------------------------------


def _previous_code(f: Fields) -> int:
    minutes = f.int_("previous_state_minutes", 0, 1 << 31, 0)
    return compress_minutes(minutes)


def _enc_status(f: Fields) -> tuple[int, bytes]:
    occupied = f.bool_("occupied")
    v = _previous_code(f)
    f.done()
    return 1, bytes([(v << 1) | occupied])


def _enc_heartbeat(f: Fields) -> tuple[int, bytes]:
    occupied = f.bool_("occupied")
    battery_mv = f.number("battery_mv")
    temperature = f.number("temperature_c")
    health = f.int_("hw_health", 0, 0x7F, 0)
    f.done()
    b1 = round((battery_mv - 2500) / 4)
    if not 0 <= b1 <= 0xFF:
        raise f.error(f"battery_mv={battery_mv} outside 2500..3520", port=2)
    b2 = round((temperature - 10) * 2)
    if not -128 <= b2 <= 127:
        raise f.error(f"temperature_c={temperature} outside -54..73.5", port=2)
    return 2, bytes([(health & 0x7E) | occupied, b1, b2 & 0xFF])


def _enc_startup(f: Fields) -> tuple[int, bytes]:
    occupied = f.bool_("occupied")
    firmware = parse_firmware(FMT, f.kind, f.str_("firmware"), 3)
    cause = f.str_("reset_cause", "power_on")
    f.done()
    if cause not in _RESET_CODES:
        raise f.error(f"reset_cause {cause!r} not one of {sorted(_RESET_CODES)}", port=3)
    return 3, bytes([*firmware, _RESET_CODES[cause], occupied])


def _enc_registration(f: Fields) -> tuple[int, bytes]:
    occupied = f.optional_bool("occupied")
    v = _previous_code(f)
    tag_id = f.str_("tag_id")
    tag_battery_mv = f.optional_int("tag_battery_mv", 0, 25500)
    f.done()
    if occupied is False:
        # The format has no way to say "free" here: bit 0 clear means "not reported".
        raise f.error("registration cannot carry occupied=False (use None)", port=10)
    try:
        tag = bytes.fromhex(tag_id)
    except ValueError:
        tag = b""
    if len(tag) != 4 or len(tag_id) != 8:
        raise f.error(f"tag_id {tag_id!r} is not 8 hex digits", port=10)
    b0 = (v << 1) | 1 if occupied else 0
    if tag_battery_mv is None:
        return 10, bytes([b0]) + tag
    return 10, bytes([b0, round(tag_battery_mv / 100)]) + tag


def _enc_debug(f: Fields) -> tuple[int, bytes]:
    payload = f.bytes_("payload")
    f.done()
    if not payload:
        raise f.error("payload must not be empty", port=6)
    return 6, payload


ENCODERS: Final[dict[str, KindEncoder]] = {
    "status": _enc_status,
    "heartbeat": _enc_heartbeat,
    "startup": _enc_startup,
    "registration": _enc_registration,
    "debug": _enc_debug,
}
