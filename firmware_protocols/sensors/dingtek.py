"""Dingtek DO200 / DO201 / DO202 parking-sensor payloads, format id ``dingtek-do20x``.

Theory of operation: every uplink is on radio port 3 and is one framed record. Byte 0 is
0x80, the last byte 0x81, byte 3 the frame type and byte 4 the whole frame's length; we
check all four before reading a field. Bytes 1..2 are a device code (0x0031 in the
vendor's DO201 example, 0x0032 DO202, 0x0002 DO200), reported as ``extra["device_code"]``.
All multi-byte fields are big-endian.

::

    DO201/DO202 telemetry, type 0x02, 23 bytes
      0    1..2   3    4    5..6       7           8          9..10
    +----+------+----+----+----------+-----------+----------+-------+
    | 80 | dev  | 02 | 17 | distance | hi: park  | hi: mag  | volts |
    |    | code |    |    | mm       | lo: level | lo: batt | x 100 |
    +----+------+----+----+----------+-----------+----------+-------+
      11..12   13..14   15..16   17        18         19..20    21     22
    +--------+--------+--------+---------+----------+---------+------+----+
    | mag X  | mag Y  | mag Z  | °C int8 | humid. % | frame   | res. | 81 |
    |        |        |        |         |          | counter |      |    |
    +--------+--------+--------+---------+----------+---------+------+----+

    DO200 telemetry, type 0x01, 21 bytes (no temperature, no humidity)
      0    1..2   3    4    5..16      17..18    19     20
    +----+------+----+----+----------+---------+------+----+
    | 80 | dev  | 01 | 15 | as DO201 | frame   | res. | 81 |
    |    | code |    |    |          | counter |      |    |
    +----+------+----+----+----------+---------+------+----+

    DO201/DO202 parameters, type 0x03, 16 bytes
      0    1..2   3    4    5      6      7
    +----+------+----+----+------+------+----------+
    | 80 | dev  | 03 | 10 | fw a | fw b | upload h |
    |    | code |    |    |      |      |          |
    +----+------+----+----+------+------+----------+
      8            9          10..11      12          13..14   15
    +------------+----------+-----------+-----------+--------+----+
    | detect min | level cm | magnetic  | battery % | res.   | 81 |
    |            |          | threshold |           |        |    |
    +------------+----------+-----------+-----------+--------+----+

    DO200 parameters, type 0x03, 17 bytes (read from the vendor's example only)
      0    1..2   3    4    5      6      7          8
    +----+------+----+----+------+------+----------+------------+
    | 80 | dev  | 03 | 11 | fw a | fw b | upload h | ultrasonic |
    |    | code |    |    |      |      |          | interval   |
    +----+------+----+----+------+------+----------+------------+
      9            10..11    12..13      14..15   16
    +------------+---------+-----------+--------+----+
    | magnetic   | unknown | magnetic  | res.   | 81 |
    | interval s |         | threshold |        |    |
    +------------+---------+-----------+--------+----+

Configuration downlinks (``encode_downlink``) are ASCII hex text, upper-case::

      0..3     4..7                 8..9     10..           last 2
    +--------+--------------------+--------+--------------+--------+
    | "8002" | "9999" DO201/DO202 | option | value, 2 hex | "81"   |
    |        | "8888" DO200       | 2 hex  | (4 for 0F)   |        |
    +--------+--------------------+--------+--------------+--------+

The vendor's own telemetry example carries -117 °C; we decode what the layout says and
leave plausibility to the edge.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final, Literal

from firmware_protocols.errors import DecodeError, EncodeError
from firmware_protocols.sensors._common import Fields, KindEncoder, fail, parse_firmware
from firmware_protocols.sensors.reading import SensorReading

__all__ = [
    "ENCODERS",
    "FMT",
    "MODELS",
    "DingtekCommand",
    "decode",
    "decode_downlink",
    "encode_downlink",
]

FMT: Final = "dingtek-do20x"
PORT: Final = 3
MODELS: Final = ("DO200", "DO201", "DO202")
Family = Literal["DO200", "DO201/DO202"]

_HEAD: Final = 0x80
_TAIL: Final = 0x81
_TELEMETRY_DO200: Final = 0x01
_TELEMETRY: Final = 0x02
_PARAMETERS: Final = 0x03

# distance, b7, b8, volts, x, y, z, [temperature, humidity,] frame counter
_T201: Final = struct.Struct(">5xHBBHhhhbBH2x")
_T200: Final = struct.Struct(">5xHBBHhhhH2x")
# fw.a, fw.b, upload, detect, level threshold, magnetic threshold, battery threshold
_P201: Final = struct.Struct(">5xBBBBBHB3x")
# fw.a, fw.b, upload, ultrasonic detect, magnetic detect, unknown, magnetic threshold
_P200: Final = struct.Struct(">5xBBBBBHH3x")

_DEVICE_CODES: Final[dict[str, int]] = {"DO200": 0x0002, "DO201": 0x0031, "DO202": 0x0032}


def _telemetry_reading(
    data: bytes,
    *,
    distance: int,
    b7: int,
    b8: int,
    centivolts: int,
    mag: tuple[int, int, int],
    frame_counter: int,
    temperature: float | None,
    humidity: int | None,
) -> SensorReading:
    battery_alarm = bool(b8 & 0x0F)
    extra: dict[str, object] = {
        "device_code": (data[1] << 8) | data[2],
        "distance_mm": distance,
        "level_alarm": bool(b7 & 0x0F),
        "magnetic_alarm": bool(b8 >> 4),
        "battery_alarm": battery_alarm,
    }
    if humidity is not None:
        extra["humidity_pct"] = humidity
    return SensorReading(
        fmt=FMT,
        kind="telemetry",
        occupied=bool(b7 >> 4),
        battery_mv=centivolts * 10,
        # The sensor raises its battery alarm at its configured threshold (percent).
        battery_health="low" if battery_alarm else "normal",
        temperature_c=temperature,
        mag_xyz=mag,
        frame_counter=frame_counter,
        raw=data,
        extra=extra,
    )


def _telemetry_201(data: bytes) -> SensorReading:
    distance, b7, b8, cv, x, y, z, temperature, humidity, fc = _T201.unpack(data)
    return _telemetry_reading(
        data,
        distance=distance,
        b7=b7,
        b8=b8,
        centivolts=cv,
        mag=(x, y, z),
        frame_counter=fc,
        temperature=float(temperature),
        humidity=humidity,
    )


def _telemetry_200(data: bytes) -> SensorReading:
    distance, b7, b8, cv, x, y, z, fc = _T200.unpack(data)
    return _telemetry_reading(
        data,
        distance=distance,
        b7=b7,
        b8=b8,
        centivolts=cv,
        mag=(x, y, z),
        frame_counter=fc,
        temperature=None,
        humidity=None,
    )


def _parameters_201(data: bytes) -> SensorReading:
    fw_a, fw_b, upload, detect, level, magnetic, battery = _P201.unpack(data)
    return SensorReading(
        fmt=FMT,
        kind="parameters",
        firmware=f"{fw_a}.{fw_b}",
        raw=data,
        extra={
            "device_code": (data[1] << 8) | data[2],
            "upload_interval_h": upload,
            "detection_interval_min": detect,
            "level_threshold_cm": level,
            "magnetic_threshold": magnetic,
            "battery_threshold_pct": battery,
        },
    )


def _parameters_200(data: bytes) -> SensorReading:
    fw_a, fw_b, upload, ultrasonic, magnetic_s, _unknown, magnetic = _P200.unpack(data)
    return SensorReading(
        fmt=FMT,
        kind="parameters",
        firmware=f"{fw_a}.{fw_b}",
        raw=data,
        extra={
            "device_code": (data[1] << 8) | data[2],
            "upload_interval_h": upload,
            "ultrasonic_detection_interval": ultrasonic,
            "magnetic_detection_interval_s": magnetic_s,
            "magnetic_threshold": magnetic,
        },
    )


_BY_TYPE_AND_LENGTH: Final = {
    (_TELEMETRY, 23): _telemetry_201,
    (_TELEMETRY_DO200, 21): _telemetry_200,
    (_PARAMETERS, 16): _parameters_201,
    (_PARAMETERS, 17): _parameters_200,
}
_LENGTHS_BY_TYPE: Final = {_TELEMETRY: "23", _TELEMETRY_DO200: "21", _PARAMETERS: "16 or 17"}


def decode(data: bytes, port: int | None) -> SensorReading:
    """Decode one Dingtek uplink frame (port 3; ``None`` is taken as 3)."""
    if port is not None and port != PORT:
        fail(FMT, f"unknown port {port} (Dingtek uses port 3)", data, port)
    n = len(data)
    if n < 6:
        fail(FMT, f"frame needs at least 6 bytes, got {n}", data, PORT, n)
    if data[0] != _HEAD:
        fail(FMT, f"frame starts with 0x{data[0]:02X}, not 0x80", data, PORT, 0)
    if data[-1] != _TAIL:
        fail(FMT, f"frame ends with 0x{data[-1]:02X}, not 0x81", data, PORT, n - 1)
    if data[4] != n:
        fail(FMT, f"length byte says {data[4]}, frame has {n} bytes", data, PORT, 4)
    frame_type = data[3]
    handler = _BY_TYPE_AND_LENGTH.get((frame_type, n))
    if handler is None:
        if frame_type in _LENGTHS_BY_TYPE:
            expected = _LENGTHS_BY_TYPE[frame_type]
            reason = f"frame type 0x{frame_type:02X} needs {expected} bytes, got {n}"
        else:
            reason = f"unknown frame type 0x{frame_type:02X}"
        fail(FMT, reason, data, PORT, 3)
    return handler(data)


# ---- uplink encoders (for simulators and round-trip tests) ------------------------------


def _model(f: Fields) -> str:
    model = f.str_("model", "DO201")
    if model not in MODELS:
        raise f.error(f"model {model!r} not one of {MODELS}", port=PORT)
    return model


def _frame(model: str, f: Fields, frame_type: int, body: bytes) -> bytes:
    device_code = f.int_("device_code", 0, 0xFFFF, _DEVICE_CODES[model])
    f.done()
    size = 5 + len(body) + 1
    return bytes([_HEAD, device_code >> 8, device_code & 0xFF, frame_type, size]) + body + b"\x81"


def _enc_telemetry(f: Fields) -> tuple[int, bytes]:
    model = _model(f)
    occupied = f.bool_("occupied")
    distance = f.int_("distance_mm", 0, 0xFFFF, 0)
    alarms = [f.bool_(name, False) for name in ("level_alarm", "magnetic_alarm", "battery_alarm")]
    battery_mv = f.number("battery_mv", 3600)
    x, y, z = f.mag_xyz()
    frame_counter = f.int_("frame_counter", 0, 0xFFFF, 0)
    centivolts = round(battery_mv / 10)
    if not 0 <= centivolts <= 0xFFFF:
        raise f.error(f"battery_mv={battery_mv} outside 0..655350", port=PORT)
    b7 = (occupied << 4) | alarms[0]
    b8 = (alarms[1] << 4) | alarms[2]
    if model == "DO200":
        body = _T200.pack(distance, b7, b8, centivolts, x, y, z, frame_counter)[5:-2]
        return PORT, _frame(model, f, _TELEMETRY_DO200, body + b"\x00")
    temperature = round(f.number("temperature_c", 20))
    humidity = f.int_("humidity_pct", 0, 0xFF, 0)
    if not -128 <= temperature <= 127:
        raise f.error(f"temperature_c={temperature} outside a signed byte", port=PORT)
    body = _T201.pack(distance, b7, b8, centivolts, x, y, z, temperature, humidity, frame_counter)[
        5:-2
    ]
    return PORT, _frame(model, f, _TELEMETRY, body + b"\x00")


def _enc_parameters(f: Fields) -> tuple[int, bytes]:
    model = _model(f)
    fw_a, fw_b = parse_firmware(FMT, f.kind, f.str_("firmware", "1.1"), 2)
    upload = f.int_("upload_interval_h", 1, 168, 24)
    magnetic = f.int_("magnetic_threshold", 1, 0xFFFF, 60)
    if model == "DO200":
        ultrasonic = f.int_("ultrasonic_detection_interval", 0, 0xFF, 2)
        magnetic_s = f.int_("magnetic_detection_interval_s", 0, 0xFF, 10)
        body = _P200.pack(fw_a, fw_b, upload, ultrasonic, magnetic_s, 0, magnetic)[5:-3]
        return PORT, _frame(model, f, _PARAMETERS, body + b"\x00\x00")
    detect = f.int_("detection_interval_min", 1, 60, 30)
    level = f.int_("level_threshold_cm", 0, 0xFF, 60)
    battery = f.int_("battery_threshold_pct", 5, 99, 20)
    body = _P201.pack(fw_a, fw_b, upload, detect, level, magnetic, battery)[5:-3]
    return PORT, _frame(model, f, _PARAMETERS, body + b"\x00\x00")


ENCODERS: Final[dict[str, KindEncoder]] = {
    "telemetry": _enc_telemetry,
    # The sensor has no separate status or heartbeat frame: every report is telemetry,
    # and it announces itself after power-up with its parameter frame.
    "status": _enc_telemetry,
    "heartbeat": _enc_telemetry,
    "parameters": _enc_parameters,
    "startup": _enc_parameters,
}


# ---- configuration downlink (ASCII hex text) --------------------------------------------

# option name -> (option code, hex digits of the value, lowest, highest)
_Option = tuple[int, int, int, int]
_OPTIONS_9999: Final[dict[str, _Option]] = {
    "upload_interval": (0x01, 2, 1, 168),
    "level_threshold": (0x02, 2, 0, 0xFF),
    "battery_threshold": (0x05, 2, 5, 99),
    "detection_interval": (0x08, 2, 1, 60),
    "magnetic_threshold": (0x0F, 4, 1, 0xFFFF),
}
# The DO200 numbers its options differently (vendor codec): 02 is its magnetic threshold.
_OPTIONS_8888: Final[dict[str, _Option]] = {
    "upload_interval": (0x01, 2, 1, 168),
    "magnetic_threshold": (0x02, 2, 1, 0xFF),
    "magnetic_detection_interval": (0x04, 2, 1, 0xFF),
}
_FAMILIES: Final[dict[str, tuple[Family, dict[str, _Option]]]] = {
    "8888": ("DO200", _OPTIONS_8888),
    "9999": ("DO201/DO202", _OPTIONS_9999),
}
_FAMILY_OF_MODEL: Final = {"DO200": "8888", "DO201": "9999", "DO202": "9999"}
_HEX: Final = frozenset("0123456789ABCDEFabcdef")


@dataclass(frozen=True, slots=True, kw_only=True)
class DingtekCommand:
    """One configuration downlink: which sensor family, which option, which value.

    ``option`` is one of ``upload_interval`` (hours), ``level_threshold`` (cm),
    ``battery_threshold`` (%), ``detection_interval`` (minutes), ``magnetic_threshold``,
    and for the DO200 ``magnetic_detection_interval`` (seconds).
    """

    family: Family
    option: str
    value: int


def encode_downlink(model: str, option: str, value: int) -> bytes:
    """``("DO201", "upload_interval", 4)`` -> ``b"80029999010481"`` (send on port 3)."""
    family_code = _FAMILY_OF_MODEL.get(model)
    if family_code is None:
        raise EncodeError(f"downlink: model {model!r} not one of {MODELS}", fmt=FMT, port=PORT)
    options = _FAMILIES[family_code][1]
    spec = options.get(option)
    if spec is None:
        raise EncodeError(
            f"downlink: {model} has no option {option!r} (has {sorted(options)})",
            fmt=FMT,
            port=PORT,
        )
    code, digits, lo, hi = spec
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise EncodeError(f"downlink: {option}={value!r} outside {lo}..{hi}", fmt=FMT, port=PORT)
    return f"8002{family_code}{code:02X}{value:0{digits}X}81".encode("ascii")


def decode_downlink(data: bytes) -> DingtekCommand:
    """The inverse of ``encode_downlink``; refuses bad framing, options and ranges."""

    def bad(reason: str, offset: int | None = None) -> DecodeError:
        return DecodeError(f"downlink: {reason}", fmt=FMT, data=data, port=PORT, offset=offset)

    try:
        text = bytes(data).decode("ascii")
    except UnicodeDecodeError as exc:
        raise bad("not ASCII text", exc.start) from exc
    if not set(text) <= _HEX:
        raise bad("not hex text")
    if len(text) < 14:
        raise bad(f"needs at least 14 characters, got {len(text)}", len(text))
    if text[:4] != "8002":
        raise bad(f"starts with {text[:4]!r}, not '8002'", 0)
    family = _FAMILIES.get(text[4:8])
    if family is None:
        raise bad(f"family {text[4:8]!r} is neither '9999' nor '8888'", 4)
    name, options = family
    code = int(text[8:10], 16)
    found = [(opt, spec) for opt, spec in options.items() if spec[0] == code]
    if not found:
        raise bad(f"{name} has no option 0x{code:02X}", 8)
    option, (_, digits, lo, hi) = found[0]
    if len(text) != 10 + digits + 2:
        raise bad(f"option {option} needs {10 + digits + 2} characters, got {len(text)}")
    if text[-2:] != "81":
        raise bad(f"ends with {text[-2:]!r}, not '81'", len(text) - 2)
    value = int(text[10 : 10 + digits], 16)
    if not lo <= value <= hi:
        raise bad(f"{option}={value} outside {lo}..{hi}", 10)
    return DingtekCommand(family=name, option=option, value=value)
