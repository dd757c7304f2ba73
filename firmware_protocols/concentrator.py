"""parkgrid's concentrator envelope: the binary serial frame between box and concentrator.

Theory of operation
-------------------
A concentrator hears ground sensors over radio and forwards each radio payload to the edge
box over a serial line (115200 8N1); the box sends downlinks the other way. Every message is
one frame::

     0        1        2        3        4 ........ 4+N-1   4+N      5+N
    +--------+--------+--------+--------+------------------+--------+--------+
    |  0xA5  |  LEN (u16, BE)  |  TYPE  |  BODY (LEN bytes) | CRC-16 (u16, BE)|
    +--------+--------+--------+--------+------------------+--------+--------+
             '------------- covered by the CRC ------------'

    LEN   body length, 0..MAX_BODY (512); a frame is LEN + 6 bytes
    CRC   CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF) over LEN, TYPE and BODY

There is no byte stuffing: the start byte may appear anywhere inside a frame. The stream
decoder finds a frame by searching for 0xA5, reading LEN, waiting for LEN + 6 bytes and
checking the CRC. When the CRC fails, or LEN is above the cap, the 0xA5 was not a frame
start: the search restarts at the byte after it, so a 0xA5 inside garbage never swallows
a real frame that follows. A frame whose CRC checks but whose TYPE is unknown, or whose
body does not read as its type says, is skipped whole and counted. The decoder never
raises on line noise and holds at most one partial frame (MAX_BODY + 5 bytes) once drained.
A false start with a plausible LEN delays (never loses) the frames behind it until LEN + 6
bytes have arrived.

Bodies (all integers big-endian; "i" is signed, "u" unsigned)::

    0x01 uplink (concentrator -> box), 9 + P bytes
         u32 sensor id | i16 RSSI dBm | i8 SNR in 0.25 dB | u8 format id | u8 radio port
         | P bytes vendor payload
    0x02 status / heartbeat (concentrator -> box), 25 bytes
         u32 uptime s | u8 u8 u8 firmware major.minor.patch | u32 radio frames received
         | u32 radio CRC errors | u32 frames forwarded | u16 queue depth | u32 queue dropped
    0x03 downlink ack (concentrator -> box), 7 bytes
         u16 request id | u32 sensor id | u8 outcome (0 ok, 1 failed)
    0x81 configuration downlink (box -> concentrator), 7 + C bytes
         u16 request id | u32 sensor id | u8 radio port | C bytes ASCII hex command text
         (a Dingtek command such as ``80029999010481``, sent to the sensor as text)
    0x82 recalibration request (box -> concentrator), 6 bytes
         u16 request id | u32 sensor id
    0x83 replay request (box -> concentrator), 2 bytes
         u16 request id: "send me the last uplink you heard from each sensor"
    0x04 stored uplink (concentrator -> box), 15 + P bytes
         u16 request id | u32 age ms (since the concentrator heard it, saturating)
         | the uplink's own body (9 + P bytes, as 0x01), so P is at most 497
    0x05 replay end (concentrator -> box), 4 bytes
         u16 request id | u16 stored uplinks sent for that request

The replay lets a box that starts (or re-opens its line) know every bay at once instead of
waiting for each sensor's next frame: one 0x04 per sensor the concentrator has heard, then
a 0x05. A concentrator that does not know 0x83 skips it as an unknown type and answers
nothing; the box then carries on as before.

Format ids (``FORMAT_IDS`` / ``FORMAT_NAMES``): 1 ``bosch-pls``, 2 ``nwave-nps``,
3 ``dingtek-do20x``. An uplink with another format id is counted in
``StreamStats.unknown_formats`` and skipped, so every ``UplinkFrame`` names a known format.
"""

from __future__ import annotations

import re
import struct
from binascii import crc_hqx
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, fields
from enum import IntEnum
from types import MappingProxyType
from typing import Final, TypeAlias

from firmware_protocols.crc import CRC16_INIT, ChecksumError
from firmware_protocols.errors import DecodeError, EncodeError

__all__ = [
    "FMT",
    "FORMAT_IDS",
    "FORMAT_NAMES",
    "HEADER_SIZE",
    "MAX_BODY",
    "MAX_FRAME",
    "START",
    "ChecksumError",
    "ConcentratorDecoder",
    "ConfigDownlink",
    "DownlinkAck",
    "DownlinkOutcome",
    "Frame",
    "FrameType",
    "RecalibrateRequest",
    "ReplayEnd",
    "ReplayRequest",
    "StatusFrame",
    "StoredUplink",
    "StreamStats",
    "UplinkFrame",
    "decode_frame",
    "encode_frame",
]

FMT: Final = "concentrator"
START: Final = 0xA5
_START_BYTES: Final = b"\xa5"
HEADER_SIZE: Final = 4  # start, length (2), type
_OVERHEAD: Final = HEADER_SIZE + 2
MAX_BODY: Final = 512
MAX_FRAME: Final = MAX_BODY + _OVERHEAD

FORMAT_IDS: Final[Mapping[str, int]] = MappingProxyType(
    {"bosch-pls": 1, "nwave-nps": 2, "dingtek-do20x": 3}
)
_FORMAT_NAMES: Final[dict[int, str]] = {v: k for k, v in FORMAT_IDS.items()}  # hot path
FORMAT_NAMES: Final[Mapping[int, str]] = MappingProxyType(_FORMAT_NAMES)


class FrameType(IntEnum):
    """The TYPE byte. The high bit marks the box -> concentrator direction."""

    UPLINK = 0x01
    STATUS = 0x02
    DOWNLINK_ACK = 0x03
    STORED_UPLINK = 0x04
    REPLAY_END = 0x05
    CONFIG_DOWNLINK = 0x81
    RECALIBRATE = 0x82
    REPLAY_REQUEST = 0x83


class DownlinkOutcome(IntEnum):
    """What the concentrator reports about one downlink request."""

    OK = 0
    FAILED = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class UplinkFrame:
    """One radio payload forwarded by the concentrator."""

    sensor_id: int
    rssi_dbm: int
    snr_db: float  # a multiple of 0.25 dB
    fmt: str  # a key of FORMAT_IDS
    port: int
    payload: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class StatusFrame:
    """The concentrator's heartbeat with its own counters."""

    uptime_s: int
    firmware: str  # "major.minor.patch"
    radio_frames: int
    radio_crc_errors: int
    frames_forwarded: int
    queue_depth: int
    queue_dropped: int


@dataclass(frozen=True, slots=True, kw_only=True)
class DownlinkAck:
    """The concentrator's result for the downlink request ``request_id``."""

    request_id: int
    sensor_id: int
    outcome: DownlinkOutcome

    @property
    def ok(self) -> bool:
        return self.outcome is DownlinkOutcome.OK


@dataclass(frozen=True, slots=True, kw_only=True)
class ConfigDownlink:
    """A configuration command for a sensor, carried as its ASCII hex text."""

    request_id: int
    sensor_id: int
    port: int
    command: bytes  # upper-case ASCII hex, e.g. b"80029999010481"


@dataclass(frozen=True, slots=True, kw_only=True)
class RecalibrateRequest:
    """Ask the concentrator to have a sensor recalibrate its empty-bay baseline."""

    request_id: int
    sensor_id: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplayRequest:
    """Ask the concentrator for the last uplink it heard from each sensor."""

    request_id: int


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredUplink:
    """One sensor's last uplink, as the concentrator heard it ``age_ms`` ago."""

    request_id: int
    age_ms: int  # saturates at 2**32 - 1 (49.7 days)
    uplink: UplinkFrame

    @property
    def age_s(self) -> float:
        return self.age_ms / 1000


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplayEnd:
    """The replay for ``request_id`` is over: ``count`` stored uplinks were sent."""

    request_id: int
    count: int


Frame: TypeAlias = (
    UplinkFrame
    | StatusFrame
    | DownlinkAck
    | ConfigDownlink
    | RecalibrateRequest
    | ReplayRequest
    | StoredUplink
    | ReplayEnd
)

_UPLINK = struct.Struct(">IhbBB")
_STATUS = struct.Struct(">IBBBIIIHI")
_ACK = struct.Struct(">HIB")
_CONFIG = struct.Struct(">HIB")
_RECAL = struct.Struct(">HI")
_REPLAY = struct.Struct(">H")
_STORED = struct.Struct(">HI")
_REPLAY_END = struct.Struct(">HH")
_HEADER = struct.Struct(">BHB")
_CRC = struct.Struct(">H")
_HEX_TEXT = re.compile(rb"(?:[0-9A-F]{2})+")
_FIRMWARE = re.compile(r"(\d{1,3})\.(\d{1,3})\.(\d{1,3})")


class _UnknownFormat(DecodeError):
    """An uplink naming a format id outside FORMAT_NAMES (counted apart by the stream)."""


# --- body parsers: (buffer, body offset, body length) -> frame; DecodeError if malformed ---


def _bad(reason: str, buf: bytes, off: int, length: int) -> DecodeError:
    return DecodeError(reason, fmt=FMT, data=buf[off : off + length], offset=off)


# Uplinks are the hot path: a frozen dataclass's generated __init__ pays one
# object.__setattr__ call per field, which was half the decoder's time per frame. Filling the
# slots through their descriptors (as copy and pickle do) builds the same object twice as
# fast; the check below keeps this in step with the class's fields.
_UPLINK_FIELDS: Final = ("sensor_id", "rssi_dbm", "snr_db", "fmt", "port", "payload")
if tuple(f.name for f in fields(UplinkFrame)) != _UPLINK_FIELDS:
    raise RuntimeError("UplinkFrame's fields changed: update _parse_uplink's fast path")


def _slot_setter(name: str) -> Callable[[object, object], None]:
    setter: Callable[[object, object], None] = UplinkFrame.__dict__[name].__set__
    return setter


_new = object.__new__
(_set_sensor_id, _set_rssi_dbm, _set_snr_db, _set_fmt, _set_port, _set_payload) = map(
    _slot_setter, _UPLINK_FIELDS
)


def _parse_uplink(buf: bytes, off: int, length: int) -> UplinkFrame:
    if length < 9:
        raise _bad(f"uplink body of {length} bytes, needs at least 9", buf, off, length)
    sensor_id, rssi, snr_q, fmt_id, port = _UPLINK.unpack_from(buf, off)
    fmt = _FORMAT_NAMES.get(fmt_id)
    if fmt is None:
        raise _UnknownFormat(
            f"unknown format id {fmt_id}", fmt=FMT, data=buf[off : off + length], offset=off
        )
    frame: UplinkFrame = _new(UplinkFrame)
    _set_sensor_id(frame, sensor_id)
    _set_rssi_dbm(frame, rssi)
    _set_snr_db(frame, snr_q / 4)
    _set_fmt(frame, fmt)
    _set_port(frame, port)
    _set_payload(frame, buf[off + 9 : off + length])
    return frame


def _parse_status(buf: bytes, off: int, length: int) -> StatusFrame:
    if length != _STATUS.size:
        raise _bad(f"status body of {length} bytes, needs {_STATUS.size}", buf, off, length)
    up, major, minor, patch, frames, crc_err, fwd, depth, dropped = _STATUS.unpack_from(buf, off)
    return StatusFrame(
        uptime_s=up,
        firmware=f"{major}.{minor}.{patch}",
        radio_frames=frames,
        radio_crc_errors=crc_err,
        frames_forwarded=fwd,
        queue_depth=depth,
        queue_dropped=dropped,
    )


def _parse_ack(buf: bytes, off: int, length: int) -> DownlinkAck:
    if length != _ACK.size:
        raise _bad(f"ack body of {length} bytes, needs {_ACK.size}", buf, off, length)
    request_id, sensor_id, outcome = _ACK.unpack_from(buf, off)
    if outcome > DownlinkOutcome.FAILED:
        raise _bad(f"unknown downlink outcome {outcome}", buf, off, length)
    return DownlinkAck(request_id=request_id, sensor_id=sensor_id, outcome=DownlinkOutcome(outcome))


def _parse_config(buf: bytes, off: int, length: int) -> ConfigDownlink:
    if length < _CONFIG.size + 2:
        raise _bad(f"config body of {length} bytes, needs at least 9", buf, off, length)
    request_id, sensor_id, port = _CONFIG.unpack_from(buf, off)
    command = buf[off + _CONFIG.size : off + length]
    if _HEX_TEXT.fullmatch(command) is None:
        raise _bad("config command is not upper-case ASCII hex pairs", buf, off, length)
    return ConfigDownlink(request_id=request_id, sensor_id=sensor_id, port=port, command=command)


def _parse_recalibrate(buf: bytes, off: int, length: int) -> RecalibrateRequest:
    if length != _RECAL.size:
        raise _bad(f"recalibrate body of {length} bytes, needs {_RECAL.size}", buf, off, length)
    request_id, sensor_id = _RECAL.unpack_from(buf, off)
    return RecalibrateRequest(request_id=request_id, sensor_id=sensor_id)


def _parse_replay(buf: bytes, off: int, length: int) -> ReplayRequest:
    if length != _REPLAY.size:
        raise _bad(f"replay request body of {length} bytes, needs 2", buf, off, length)
    return ReplayRequest(request_id=_REPLAY.unpack_from(buf, off)[0])


def _parse_stored(buf: bytes, off: int, length: int) -> StoredUplink:
    if length < _STORED.size + 9:
        raise _bad(f"stored uplink body of {length} bytes, needs at least 15", buf, off, length)
    request_id, age_ms = _STORED.unpack_from(buf, off)
    uplink = _parse_uplink(buf, off + _STORED.size, length - _STORED.size)
    return StoredUplink(request_id=request_id, age_ms=age_ms, uplink=uplink)


def _parse_replay_end(buf: bytes, off: int, length: int) -> ReplayEnd:
    if length != _REPLAY_END.size:
        raise _bad(f"replay end body of {length} bytes, needs 4", buf, off, length)
    request_id, count = _REPLAY_END.unpack_from(buf, off)
    return ReplayEnd(request_id=request_id, count=count)


_PARSERS: Final[dict[int, Callable[[bytes, int, int], Frame]]] = {
    FrameType.UPLINK: _parse_uplink,
    FrameType.STATUS: _parse_status,
    FrameType.DOWNLINK_ACK: _parse_ack,
    FrameType.CONFIG_DOWNLINK: _parse_config,
    FrameType.RECALIBRATE: _parse_recalibrate,
    FrameType.REPLAY_REQUEST: _parse_replay,
    FrameType.STORED_UPLINK: _parse_stored,
    FrameType.REPLAY_END: _parse_replay_end,
}


# --- encoding ---


def _pack(st: struct.Struct, what: str, *values: int) -> bytes:
    try:
        return st.pack(*values)
    except struct.error as exc:
        raise EncodeError(f"{what}: a field is out of range ({exc})", fmt=FMT) from exc


def _body(frame: Frame) -> tuple[FrameType, bytes]:
    if isinstance(frame, StoredUplink):
        head = _pack(_STORED, "stored uplink", frame.request_id, frame.age_ms)
        return FrameType.STORED_UPLINK, head + _body(frame.uplink)[1]
    if isinstance(frame, ReplayRequest):
        return FrameType.REPLAY_REQUEST, _pack(_REPLAY, "replay request", frame.request_id)
    if isinstance(frame, ReplayEnd):
        body = _pack(_REPLAY_END, "replay end", frame.request_id, frame.count)
        return FrameType.REPLAY_END, body
    if isinstance(frame, UplinkFrame):
        fmt_id = FORMAT_IDS.get(frame.fmt)
        if fmt_id is None:
            raise EncodeError(f"unknown sensor format {frame.fmt!r}", fmt=FMT)
        snr_q = frame.snr_db * 4
        if snr_q != int(snr_q):
            raise EncodeError(f"SNR {frame.snr_db} dB is not a multiple of 0.25 dB", fmt=FMT)
        head = _pack(
            _UPLINK, "uplink", frame.sensor_id, frame.rssi_dbm, int(snr_q), fmt_id, frame.port
        )
        return FrameType.UPLINK, head + bytes(frame.payload)
    if isinstance(frame, StatusFrame):
        m = _FIRMWARE.fullmatch(frame.firmware)
        if m is None:
            raise EncodeError(f"firmware {frame.firmware!r} is not major.minor.patch", fmt=FMT)
        body = _pack(
            _STATUS,
            "status",
            frame.uptime_s,
            *(int(g) for g in m.groups()),
            frame.radio_frames,
            frame.radio_crc_errors,
            frame.frames_forwarded,
            frame.queue_depth,
            frame.queue_dropped,
        )
        return FrameType.STATUS, body
    if isinstance(frame, DownlinkAck):
        body = _pack(_ACK, "ack", frame.request_id, frame.sensor_id, int(frame.outcome))
        return FrameType.DOWNLINK_ACK, body
    if isinstance(frame, ConfigDownlink):
        if _HEX_TEXT.fullmatch(frame.command) is None:
            raise EncodeError(
                "config command must be upper-case ASCII hex pairs",
                fmt=FMT,
                data=frame.command,
            )
        head = _pack(_CONFIG, "config", frame.request_id, frame.sensor_id, frame.port)
        return FrameType.CONFIG_DOWNLINK, head + frame.command
    if isinstance(frame, RecalibrateRequest):
        return FrameType.RECALIBRATE, _pack(
            _RECAL, "recalibrate", frame.request_id, frame.sensor_id
        )
    raise EncodeError(f"not a concentrator frame: {type(frame).__name__}", fmt=FMT)


def encode_frame(frame: Frame) -> bytes:
    """The wire bytes of ``frame``: start byte, length, type, body, CRC."""
    ftype, body = _body(frame)
    if len(body) > MAX_BODY:
        raise EncodeError(f"body of {len(body)} bytes is over the {MAX_BODY}-byte cap", fmt=FMT)
    covered = _HEADER.pack(START, len(body), ftype)[1:] + body
    return _START_BYTES + covered + _CRC.pack(crc_hqx(covered, CRC16_INIT))


def decode_frame(data: bytes) -> Frame:
    """Read exactly one whole frame; DecodeError (ChecksumError for the CRC) otherwise."""
    data = bytes(data)
    if len(data) < _OVERHEAD or data[0] != START:
        raise DecodeError("not a concentrator frame (short, or no start byte)", fmt=FMT, data=data)
    _, length, ftype = _HEADER.unpack_from(data)
    if length > MAX_BODY:
        raise DecodeError(f"length {length} is over the cap", fmt=FMT, data=data, offset=1)
    if len(data) != length + _OVERHEAD:
        raise DecodeError(
            f"frame is {len(data)} bytes, its length field says {length + _OVERHEAD}",
            fmt=FMT,
            data=data,
        )
    (actual,) = _CRC.unpack_from(data, len(data) - 2)
    expected = crc_hqx(data[1:-2], CRC16_INIT)
    if actual != expected:
        raise ChecksumError(
            f"CRC {actual:04X} does not match {expected:04X}",
            fmt=FMT,
            expected=expected,
            actual=actual,
            data=data,
            offset=len(data) - 2,
        )
    parser = _PARSERS.get(ftype)
    if parser is None:
        raise DecodeError(f"unknown frame type 0x{ftype:02X}", fmt=FMT, data=data, offset=3)
    return parser(data, HEADER_SIZE, length)


# --- the stream ---


@dataclass(slots=True)
class StreamStats:
    """Running counters of a ``ConcentratorDecoder``.

    Every byte fed is, in the end, in a delivered frame, in ``dropped_bytes`` or still
    buffered (``ConcentratorDecoder.buffered``).
    """

    bytes_in: int = 0
    frames: int = 0
    dropped_bytes: int = 0
    crc_failures: int = 0
    oversize: int = 0
    unknown_types: int = 0
    unknown_formats: int = 0
    malformed: int = 0


class ConcentratorDecoder:
    """Sans-I/O stream decoder: ``feed()`` bytes, then ``next_frame()`` until it says None.

    ``next_frame()`` returns a frame, or None when it needs more bytes; iterating yields
    every frame available now. Nothing fed to it makes it raise.
    """

    def __init__(self, *, max_body: int = MAX_BODY) -> None:
        if not 0 <= max_body <= MAX_BODY:
            raise ValueError(f"max_body must be within 0..{MAX_BODY}")
        self.max_body = max_body
        self.stats = StreamStats()
        self._buf = b""
        self._pos = 0

    @property
    def buffered(self) -> int:
        """Bytes held, not yet delivered or dropped."""
        return len(self._buf) - self._pos

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Take bytes from the wire."""
        self.stats.bytes_in += len(data)
        if self._pos:
            self._buf = self._buf[self._pos :] + data
            self._pos = 0
        else:
            self._buf += data

    def next_frame(self) -> Frame | None:
        """The next whole, checked frame, or None when more bytes are needed."""
        buf = self._buf
        pos = self._pos
        n = len(buf)
        stats = self.stats
        max_body = self.max_body
        while True:
            if pos >= n:
                self._buf = b""
                self._pos = 0
                return None
            if buf[pos] != START:
                i = buf.find(_START_BYTES, pos)
                if i < 0:
                    stats.dropped_bytes += n - pos
                    self._buf = b""
                    self._pos = 0
                    return None
                stats.dropped_bytes += i - pos
                pos = i
            if n - pos < 3:
                break
            length = (buf[pos + 1] << 8) | buf[pos + 2]
            if length > max_body:
                stats.oversize += 1
                stats.dropped_bytes += 1
                pos += 1
                continue
            end = pos + length + _OVERHEAD
            if end > n:
                break
            if crc_hqx(buf[pos + 1 : end - 2], CRC16_INIT) != (buf[end - 2] << 8) | buf[end - 1]:
                stats.crc_failures += 1
                stats.dropped_bytes += 1
                pos += 1
                continue
            parser = _PARSERS.get(buf[pos + 3])
            if parser is None:
                stats.unknown_types += 1
                stats.dropped_bytes += end - pos
                pos = end
                continue
            try:
                frame = parser(buf, pos + HEADER_SIZE, length)
            except _UnknownFormat:
                stats.unknown_formats += 1
                stats.dropped_bytes += end - pos
                pos = end
                continue
            except DecodeError:
                stats.malformed += 1
                stats.dropped_bytes += end - pos
                pos = end
                continue
            stats.frames += 1
            self._pos = end
            return frame
        # Keep only the partial frame, so a drained decoder holds < MAX_FRAME bytes.
        self._buf = buf[pos:]
        self._pos = 0
        return None

    def __iter__(self) -> Iterator[Frame]:
        """Every frame available from the bytes fed so far."""
        while (frame := self.next_frame()) is not None:
            yield frame
