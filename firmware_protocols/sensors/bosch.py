"""Bosch Parking Lot Sensor (TPL110-0292) payloads, format id ``bosch-pls``.

Theory of operation: the sensor speaks LoRaWAN; the radio port says what the payload is
and each port has a fixed layout. Occupancy is bit 0 of byte 0 on ports 1, 2 and 3. The
sensor does not report its battery. Trailing bytes beyond a layout are ignored (the vendor
codec ignores them too) but stay in ``raw``.

::

    port 1  status
      byte 0
    +-----------------+
    | bit 0: occupied |
    +-----------------+

    port 2  heartbeat
      0                 1 (optional)
    +-----------------+----------------------+
    | bit 0: occupied | temperature °C, int8 |
    +-----------------+----------------------+

    port 3  startup, 17 bytes
      0..3     4..7     8..11    12     13     14     15      16
    +--------+--------+--------+------+------+------+-------+----------+
    | debug  | debug  | debug  | fw a | fw b | fw c | reset | bit 0:   |
    | code 1 | code 2 | code 3 |      |      |      | cause | occupied |
    +--------+--------+--------+------+------+------+-------+----------+
    debug code = ((b[i+1] & 0x0F) << 8) | b[i] for i = 0, 4, 8; zero means none
    reset cause: 1 watchdog, 2 power on, 3 system request, 4 other

    ports 4, 5  device information, device usage: raw bytes, not interpreted

    port 6  debug, 10 bytes
      0..3               4..5         6..7   8..9
    +------------------+------------+------+-----------------+
    | timestamp u32 LE | debug code | ?    | sequence u16 LE |
    +------------------+------------+------+-----------------+
"""

from __future__ import annotations

from typing import Final

from firmware_protocols.sensors._common import (
    Fields,
    KindEncoder,
    fail,
    need,
    parse_firmware,
)
from firmware_protocols.sensors.reading import SensorReading

__all__ = ["ENCODERS", "FMT", "decode"]

FMT: Final = "bosch-pls"

_RESET_CAUSES: Final[dict[int, str]] = {
    1: "watchdog",
    2: "power_on",
    3: "system_request",
    4: "other",
}
_RESET_CODES: Final[dict[str, int]] = {name: code for code, name in _RESET_CAUSES.items()}

_INFO_PORTS: Final[dict[int, str]] = {4: "device_information", 5: "device_usage"}


def _status(data: bytes, port: int) -> SensorReading:
    need(FMT, data, port, 1, "status")
    return SensorReading(fmt=FMT, kind="status", occupied=bool(data[0] & 1), raw=data)


def _heartbeat(data: bytes, port: int) -> SensorReading:
    need(FMT, data, port, 1, "heartbeat")
    temperature = None
    if len(data) >= 2:
        b1 = data[1]
        temperature = float(b1 - 0x100 if b1 & 0x80 else b1)
    return SensorReading(
        fmt=FMT,
        kind="heartbeat",
        occupied=bool(data[0] & 1),
        temperature_c=temperature,
        raw=data,
    )


def _code12(lo: int, hi: int) -> int:
    return ((hi & 0x0F) << 8) | lo


def _startup(data: bytes, port: int) -> SensorReading:
    need(FMT, data, port, 17, "startup")
    codes = tuple(c for i in (0, 4, 8) if (c := _code12(data[i], data[i + 1])))
    cause_code = data[15]
    return SensorReading(
        fmt=FMT,
        kind="startup",
        occupied=bool(data[16] & 1),
        firmware=f"{data[12]}.{data[13]}.{data[14]}",
        # An undocumented cause code is not a broken payload: keep the firmware and
        # occupancy, leave reset_cause None and let extra carry the number.
        reset_cause=_RESET_CAUSES.get(cause_code),
        raw=data,
        extra={"debug_codes": codes, "reset_cause_code": cause_code},
    )


def _info(data: bytes, port: int) -> SensorReading:
    need(FMT, data, port, 1, "device information")
    return SensorReading(fmt=FMT, kind="info", raw=data, extra={"info": _INFO_PORTS[port]})


def _debug(data: bytes, port: int) -> SensorReading:
    need(FMT, data, port, 10, "debug")
    return SensorReading(
        fmt=FMT,
        kind="debug",
        raw=data,
        extra={
            "timestamp": int.from_bytes(data[0:4], "little"),
            "debug_code": _code12(data[4], data[5]),
            "sequence": int.from_bytes(data[8:10], "little"),
        },
    )


_BY_PORT: Final = {1: _status, 2: _heartbeat, 3: _startup, 4: _info, 5: _info, 6: _debug}


def decode(data: bytes, port: int | None) -> SensorReading:
    """Decode one Bosch payload received on radio ``port``."""
    if port is None:
        fail(FMT, "port required", data, port)
    handler = _BY_PORT.get(port)
    if handler is None:
        fail(FMT, f"unknown port {port}", data, port)
    return handler(data, port)


# ---- encoders (for simulators and round-trip tests) -------------------------------------


def _enc_status(f: Fields) -> tuple[int, bytes]:
    occupied = f.bool_("occupied")
    f.done()
    return 1, bytes([occupied])


def _enc_heartbeat(f: Fields) -> tuple[int, bytes]:
    occupied = f.bool_("occupied")
    temperature = f.optional_number("temperature_c")
    f.done()
    if temperature is None:
        return 2, bytes([occupied])
    whole = round(temperature)
    if not -128 <= whole <= 127:
        raise f.error(f"temperature_c={temperature} outside a signed byte", port=2)
    return 2, bytes([occupied, whole & 0xFF])


def _enc_startup(f: Fields) -> tuple[int, bytes]:
    occupied = f.bool_("occupied")
    firmware = parse_firmware(FMT, f.kind, f.str_("firmware"), 3)
    cause = f.str_("reset_cause", "power_on")
    codes = f.value("debug_codes", ())
    f.done()
    if cause not in _RESET_CODES:
        raise f.error(f"reset_cause {cause!r} not one of {sorted(_RESET_CODES)}", port=3)
    if not isinstance(codes, tuple | list) or len(codes) > 3:
        raise f.error(f"debug_codes must be at most three ints, got {codes!r}", port=3)
    out = bytearray(17)
    for i, code in enumerate(codes):
        if isinstance(code, bool) or not isinstance(code, int) or not 1 <= code <= 0xFFF:
            raise f.error(f"debug code {code!r} outside 1..4095", port=3)
        out[4 * i] = code & 0xFF
        out[4 * i + 1] = code >> 8
    out[12:15] = bytes(firmware)
    out[15] = _RESET_CODES[cause]
    out[16] = occupied
    return 3, bytes(out)


def _enc_info(f: Fields) -> tuple[int, bytes]:
    info = f.str_("info", "device_information")
    payload = f.bytes_("payload")
    f.done()
    ports = {name: port for port, name in _INFO_PORTS.items()}
    if info not in ports:
        raise f.error(f"info {info!r} not one of {sorted(ports)}")
    if not payload:
        raise f.error("payload must not be empty", port=ports[info])
    return ports[info], payload


def _enc_debug(f: Fields) -> tuple[int, bytes]:
    timestamp = f.int_("timestamp", 0, 0xFFFF_FFFF)
    code = f.int_("debug_code", 0, 0xFFF)
    sequence = f.int_("sequence", 0, 0xFFFF)
    f.done()
    return 6, (
        timestamp.to_bytes(4, "little")
        + code.to_bytes(2, "little")
        + b"\x00\x00"
        + sequence.to_bytes(2, "little")
    )


ENCODERS: Final[dict[str, KindEncoder]] = {
    "status": _enc_status,
    "heartbeat": _enc_heartbeat,
    "startup": _enc_startup,
    "info": _enc_info,
    "debug": _enc_debug,
}
