"""Vendor ground-sensor payloads: one registry, one ``SensorReading`` out of every format.

Theory of operation: a radio sensor's payload means nothing without its vendor format and
radio port. Configuration names the format by id (``FORMATS``); ``decode(fmt, payload,
port=...)`` looks the format up in a dict and hands the bytes to that format's port (or
frame-type) table, which unpacks fixed offsets with ``int.from_bytes`` / ``struct``. A
payload that does not read raises ``DecodeError`` naming format, port and bytes; nothing
here returns ``None`` for a failure. ``encode(fmt, kind, **fields)`` is the inverse, for
the simulators: it returns ``(port, payload)`` exactly as the vendor's sensor would send it.

Formats and their layouts (byte diagrams in each module and in ``docs/protocols/``):

    bosch-pls       Bosch Parking Lot Sensor      ports 1..6
    nwave-nps       Nwave NPS405 / NPS310         ports 1, 2, 3, 6, 10
    dingtek-do20x   Dingtek DO200 / DO201 / DO202 port 3, framed 0x80 ... 0x81

The Dingtek configuration downlink (ASCII hex text) is ``encode_dingtek_downlink`` /
``decode_dingtek_downlink``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from firmware_protocols.errors import DecodeError, EncodeError
from firmware_protocols.sensors import bosch, dingtek, nwave
from firmware_protocols.sensors._common import Decoder, Fields, KindEncoder
from firmware_protocols.sensors.dingtek import DingtekCommand
from firmware_protocols.sensors.dingtek import decode_downlink as decode_dingtek_downlink
from firmware_protocols.sensors.dingtek import encode_downlink as encode_dingtek_downlink
from firmware_protocols.sensors.errors import UnknownFormatError
from firmware_protocols.sensors.reading import KINDS, BatteryHealth, Kind, SensorReading

__all__ = [
    "FORMATS",
    "KINDS",
    "BatteryHealth",
    "DecodeError",
    "DingtekCommand",
    "EncodeError",
    "Kind",
    "SensorReading",
    "UnknownFormatError",
    "decode",
    "decode_dingtek_downlink",
    "encode",
    "encode_dingtek_downlink",
    "formats",
    "kinds",
]

_DECODERS: Final[dict[str, Decoder]] = {
    bosch.FMT: bosch.decode,
    nwave.FMT: nwave.decode,
    dingtek.FMT: dingtek.decode,
}
_ENCODERS: Final[dict[str, Mapping[str, KindEncoder]]] = {
    bosch.FMT: bosch.ENCODERS,
    nwave.FMT: nwave.ENCODERS,
    dingtek.FMT: dingtek.ENCODERS,
}

FORMATS: Final[tuple[str, ...]] = tuple(_DECODERS)
"""The registered format ids, for configuration validation."""


def formats() -> tuple[str, ...]:
    """The registered format ids."""
    return FORMATS


def kinds(fmt: str) -> tuple[str, ...]:
    """The kinds ``encode`` can produce for ``fmt``."""
    try:
        return tuple(_ENCODERS[fmt])
    except KeyError:
        raise UnknownFormatError(fmt) from None


def decode(fmt: str, payload: bytes, *, port: int | None = None) -> SensorReading:
    """Decode one vendor payload received on radio ``port``.

    Raises:
        DecodeError: the payload does not read as ``fmt`` says (``UnknownFormatError``
            for a format id that is not registered).
    """
    if type(payload) is not bytes:
        # The reading keeps the payload, so it must own an immutable copy.
        payload = bytes(payload)
    try:
        decoder = _DECODERS[fmt]
    except KeyError:
        raise UnknownFormatError(fmt, data=payload, port=port) from None
    return decoder(payload, port)


def encode(fmt: str, kind: str, **fields: object) -> tuple[int, bytes]:
    """Build the ``(port, payload)`` a sensor of format ``fmt`` sends for ``kind``.

    Fields are named as ``SensorReading``'s (``occupied``, ``battery_mv``,
    ``temperature_c``, ``firmware``, ``reset_cause``, ``frame_counter``,
    ``previous_state_minutes``, ``mag_xyz``, ``tag_id``) or as the format's ``extra`` keys.
    Values are quantised to the format's steps; a value out of range, an unknown field
    with a value other than ``None``, or an unknown kind raises ``EncodeError``.
    """
    try:
        encoders = _ENCODERS[fmt]
    except KeyError:
        raise UnknownFormatError(fmt) from None
    encoder = encoders.get(kind)
    if encoder is None:
        raise EncodeError(f"{fmt} cannot encode kind {kind!r} (can: {sorted(encoders)})", fmt=fmt)
    return encoder(Fields(fmt, kind, fields))
