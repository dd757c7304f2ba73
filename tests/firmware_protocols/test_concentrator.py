"""The concentrator envelope: encoding, single-frame decoding and the stream decoder."""

from __future__ import annotations

import struct
from binascii import crc_hqx

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_protocols import concentrator as c
from firmware_protocols.crc import ChecksumError, crc16_ccitt_false
from firmware_protocols.errors import DecodeError, EncodeError

UPLINK = c.UplinkFrame(
    sensor_id=0x00A5A5A5,
    rssi_dbm=-118,
    snr_db=-7.25,
    fmt="dingtek-do20x",
    port=3,
    payload=bytes.fromhex("8000010217" + "00a5" * 8 + "81"),
)
FRAMES: list[c.Frame] = [
    UPLINK,
    c.UplinkFrame(sensor_id=1, rssi_dbm=-60, snr_db=9.5, fmt="bosch-pls", port=1, payload=b"\x01"),
    c.UplinkFrame(sensor_id=2, rssi_dbm=0, snr_db=0.0, fmt="nwave-nps", port=2, payload=b""),
    c.StatusFrame(
        uptime_s=86_400,
        firmware="1.4.12",
        radio_frames=123_456,
        radio_crc_errors=17,
        frames_forwarded=123_400,
        queue_depth=3,
        queue_dropped=0,
    ),
    c.DownlinkAck(request_id=7, sensor_id=0xDEADBEEF, outcome=c.DownlinkOutcome.OK),
    c.DownlinkAck(request_id=8, sensor_id=42, outcome=c.DownlinkOutcome.FAILED),
    c.ConfigDownlink(request_id=9, sensor_id=42, port=3, command=b"80029999010481"),
    c.RecalibrateRequest(request_id=65_535, sensor_id=42),
    c.ReplayRequest(request_id=513),
    c.StoredUplink(request_id=513, age_ms=90_061_250, uplink=UPLINK),
    c.StoredUplink(
        request_id=0,
        age_ms=0,
        uplink=c.UplinkFrame(
            sensor_id=2, rssi_dbm=0, snr_db=0.0, fmt="nwave-nps", port=2, payload=b""
        ),
    ),
    c.ReplayEnd(request_id=513, count=620),
]
FRAME_IDS = [f"{type(f).__name__}-{i}" for i, f in enumerate(FRAMES)]


def _raw(ftype: int, body: bytes, *, length: int | None = None) -> bytes:
    """A frame built by hand, with a correct CRC over whatever is given."""
    covered = struct.pack(">HB", len(body) if length is None else length, ftype) + body
    return b"\xa5" + covered + struct.pack(">H", crc_hqx(covered, 0xFFFF))


def _drain(dec: c.ConcentratorDecoder) -> list[c.Frame]:
    return list(dec)


def test_crc_is_ccitt_false_check_value() -> None:
    """The CRC is CRC-16/CCITT-FALSE: check value 0x29B1 for "123456789"."""
    assert crc16_ccitt_false(b"123456789") == 0x29B1


def test_encode_uplink_layout() -> None:
    """An uplink's bytes follow the documented layout, big-endian, CRC last."""
    frame = c.UplinkFrame(
        sensor_id=0x1234, rssi_dbm=-120, snr_db=-7.25, fmt="nwave-nps", port=1, payload=b"\x95"
    )
    wire = c.encode_frame(frame)
    assert wire[:4] == b"\xa5\x00\x0a\x01"
    assert wire[4:14] == bytes.fromhex("00001234 ff88 e3 02 01 95")
    assert wire[14:] == struct.pack(">H", crc16_ccitt_false(wire[1:14]))


def test_format_tables_are_inverse() -> None:
    """FORMAT_IDS and FORMAT_NAMES map the three formats both ways."""
    assert dict(c.FORMAT_IDS) == {"bosch-pls": 1, "nwave-nps": 2, "dingtek-do20x": 3}
    assert {v: k for k, v in c.FORMAT_NAMES.items()} == dict(c.FORMAT_IDS)


@pytest.mark.parametrize("frame", FRAMES, ids=FRAME_IDS)
def test_frame_round_trip(frame: c.Frame) -> None:
    """Every frame type decodes back to itself, alone and through the stream."""
    wire = c.encode_frame(frame)
    assert c.decode_frame(wire) == frame
    dec = c.ConcentratorDecoder()
    dec.feed(wire)
    assert _drain(dec) == [frame]
    assert dec.stats.frames == 1
    assert dec.stats.dropped_bytes == 0
    assert dec.buffered == 0


@pytest.mark.parametrize("frame", FRAMES, ids=FRAME_IDS)
def test_stream_every_prefix_needs_more(frame: c.Frame) -> None:
    """Every proper prefix of a frame gives "need more", never a frame or a count."""
    wire = c.encode_frame(frame)
    for cut in range(len(wire)):
        dec = c.ConcentratorDecoder()
        dec.feed(wire[:cut])
        assert dec.next_frame() is None
        assert dec.buffered == cut
        assert dec.stats == c.StreamStats(bytes_in=cut)


@pytest.mark.parametrize("frame", FRAMES, ids=FRAME_IDS)
def test_stream_byte_at_a_time(frame: c.Frame) -> None:
    """Fed one byte at a time, a frame comes out exactly once, after its last byte."""
    wire = c.encode_frame(frame) * 2
    dec = c.ConcentratorDecoder()
    got: list[tuple[int, c.Frame]] = []
    for i in range(len(wire)):
        dec.feed(wire[i : i + 1])
        got.extend((i, f) for f in dec)
    half = len(wire) // 2
    assert got == [(half - 1, frame), (len(wire) - 1, frame)]


def test_stream_several_frames_in_one_feed() -> None:
    """All frames fed in one chunk come out, in order."""
    dec = c.ConcentratorDecoder()
    dec.feed(b"".join(c.encode_frame(f) for f in FRAMES))
    assert _drain(dec) == FRAMES
    assert dec.stats.frames == len(FRAMES)


def test_stream_garbage_before_and_after() -> None:
    """Garbage around a frame is dropped and counted; the frame survives."""
    wire = c.encode_frame(UPLINK)
    dec = c.ConcentratorDecoder()
    dec.feed(b"\x00\xff\x13noise" + wire + b"\x01\x02\x03")
    assert _drain(dec) == [UPLINK]
    assert dec.stats.dropped_bytes == 11
    assert dec.buffered == 0


def test_stream_start_byte_in_garbage_does_not_hide_next_frame() -> None:
    """A 0xA5 in garbage with a plausible length fails its CRC; the real frame follows."""
    wire = c.encode_frame(UPLINK)
    dec = c.ConcentratorDecoder()
    # 0xA5 0x00 0x05: a fake start claiming a 5-byte body that swallows the frame's head.
    dec.feed(b"\xa5\x00\x05" + wire)
    assert _drain(dec) == [UPLINK]
    assert dec.stats.crc_failures == 1
    assert dec.stats.dropped_bytes == 3


def test_stream_corrupted_frame_counts_crc_failure_next_frame_decoded() -> None:
    """A frame with a flipped body byte is dropped as a CRC failure; the next one decodes."""
    bad = bytearray(c.encode_frame(FRAMES[1]))
    bad[6] ^= 0x40
    dec = c.ConcentratorDecoder()
    dec.feed(bytes(bad) + c.encode_frame(UPLINK))
    assert _drain(dec) == [UPLINK]
    assert dec.stats.crc_failures == 1
    assert dec.stats.frames == 1
    assert dec.stats.dropped_bytes == len(bad)


def test_stream_garbage_inside_frame() -> None:
    """Bytes inserted inside a frame cost that frame (counted), not the next one."""
    wire = c.encode_frame(FRAMES[3])
    dec = c.ConcentratorDecoder()
    dec.feed(wire[:10] + b"\x55\x66" + wire[10:] + c.encode_frame(FRAMES[4]))
    assert _drain(dec) == [FRAMES[4]]
    assert dec.stats.crc_failures == 1


def test_stream_oversize_length_resynchronises() -> None:
    """A length over the cap is counted and the search resumes at the next byte."""
    dec = c.ConcentratorDecoder()
    dec.feed(b"\xa5\x02\x01\x01" + c.encode_frame(FRAMES[1]))
    assert _drain(dec) == [FRAMES[1]]
    assert dec.stats.oversize == 1
    assert dec.stats.dropped_bytes == 4


def test_stream_smaller_max_body_rejects_larger_frames() -> None:
    """A decoder built with a smaller cap counts larger frames as oversize."""
    dec = c.ConcentratorDecoder(max_body=8)
    assert b"\xa5" not in c.encode_frame(FRAMES[1])[1:]
    dec.feed(c.encode_frame(FRAMES[1]) + c.encode_frame(FRAMES[4]))
    assert _drain(dec) == [FRAMES[4]]
    assert dec.stats.oversize == 1


def test_stream_unknown_type_skipped_whole() -> None:
    """A checked frame of an unknown type is skipped whole, counted, and the next decodes."""
    unknown = _raw(0x7F, b"\xa5" * 10)
    dec = c.ConcentratorDecoder()
    dec.feed(unknown + c.encode_frame(FRAMES[1]))
    assert _drain(dec) == [FRAMES[1]]
    assert dec.stats.unknown_types == 1
    assert dec.stats.crc_failures == 0
    assert dec.stats.dropped_bytes == len(unknown)


def test_stream_unknown_format_id_counted() -> None:
    """An uplink with a format id outside the table is counted apart and skipped."""
    frame = _raw(0x01, struct.pack(">IhbBB", 5, -90, 4, 9, 1) + b"\x01")
    dec = c.ConcentratorDecoder()
    dec.feed(frame + c.encode_frame(FRAMES[1]))
    assert _drain(dec) == [FRAMES[1]]
    assert dec.stats.unknown_formats == 1
    assert dec.stats.malformed == 0


MALFORMED = [
    pytest.param(_raw(0x01, b"\x00" * 8), id="uplink-body-too-short"),
    pytest.param(_raw(0x02, b"\x00" * 24), id="status-body-too-short"),
    pytest.param(_raw(0x02, b"\x00" * 26), id="status-body-too-long"),
    pytest.param(_raw(0x03, struct.pack(">HIB", 1, 2, 9)), id="ack-unknown-outcome"),
    pytest.param(_raw(0x03, struct.pack(">HI", 1, 2)), id="ack-body-too-short"),
    pytest.param(_raw(0x81, struct.pack(">HIB", 1, 2, 3)), id="config-empty-command"),
    pytest.param(_raw(0x81, struct.pack(">HIB", 1, 2, 3) + b"8002zz"), id="config-not-hex"),
    pytest.param(_raw(0x81, struct.pack(">HIB", 1, 2, 3) + b"800"), id="config-odd-digits"),
    pytest.param(_raw(0x81, struct.pack(">HIB", 1, 2, 3) + b"80ab"), id="config-lower-case"),
    pytest.param(_raw(0x82, b"\x00" * 7), id="recalibrate-body-too-long"),
    pytest.param(_raw(0x83, b"\x00"), id="replay-request-truncated"),
    pytest.param(_raw(0x83, b"\x00" * 3), id="replay-request-too-long"),
    pytest.param(_raw(0x04, struct.pack(">HI", 1, 2) + b"\x00" * 8), id="stored-uplink-truncated"),
    pytest.param(_raw(0x05, b"\x00" * 3), id="replay-end-truncated"),
    pytest.param(_raw(0x05, b"\x00" * 5), id="replay-end-too-long"),
]


@pytest.mark.parametrize("wire", MALFORMED)
def test_decode_frame_malformed_body_raises(wire: bytes) -> None:
    """A checked frame whose body does not read as its type raises DecodeError with bytes."""
    with pytest.raises(DecodeError) as info:
        c.decode_frame(wire)
    assert info.value.fmt == "concentrator"
    assert info.value.data


@pytest.mark.parametrize("wire", MALFORMED)
def test_stream_malformed_body_counted_and_skipped(wire: bytes) -> None:
    """The stream counts a malformed body, skips the frame whole and decodes the next."""
    dec = c.ConcentratorDecoder()
    dec.feed(wire + c.encode_frame(FRAMES[4]))
    assert _drain(dec) == [FRAMES[4]]
    assert dec.stats.malformed == 1
    assert dec.stats.dropped_bytes == len(wire)


WIRE = c.encode_frame(FRAMES[1])


@pytest.mark.parametrize(
    ("wire", "error"),
    [
        pytest.param(b"", DecodeError, id="empty"),
        pytest.param(WIRE[:-1], DecodeError, id="truncated"),
        pytest.param(WIRE + b"\x00", DecodeError, id="trailing-byte"),
        pytest.param(b"\x5a" + WIRE[1:], DecodeError, id="wrong-start-byte"),
        pytest.param(WIRE[:-1] + bytes([WIRE[-1] ^ 1]), ChecksumError, id="bad-crc"),
        pytest.param(_raw(0x01, b"", length=600), DecodeError, id="length-over-cap"),
        pytest.param(_raw(0x44, b""), DecodeError, id="unknown-type"),
    ],
)
def test_decode_frame_malformed_envelope_raises(wire: bytes, error: type[DecodeError]) -> None:
    """decode_frame refuses anything but exactly one whole checked frame."""
    with pytest.raises(error) as info:
        c.decode_frame(wire)
    assert info.value.data == wire


def test_decode_frame_checksum_error_carries_codes() -> None:
    """A CRC failure says which CRC was expected and which arrived."""
    bad = WIRE[:-2] + b"\x00\x00"
    with pytest.raises(ChecksumError) as info:
        c.decode_frame(bad)
    assert info.value.actual == 0
    assert info.value.expected == crc16_ccitt_false(WIRE[1:-2])


@pytest.mark.parametrize(
    "frame",
    [
        pytest.param(
            c.UplinkFrame(
                sensor_id=1, rssi_dbm=-60, snr_db=1.1, fmt="bosch-pls", port=1, payload=b""
            ),
            id="snr-not-quarter-db",
        ),
        pytest.param(
            c.UplinkFrame(
                sensor_id=1, rssi_dbm=-60, snr_db=40, fmt="bosch-pls", port=1, payload=b""
            ),
            id="snr-out-of-range",
        ),
        pytest.param(
            c.UplinkFrame(sensor_id=1, rssi_dbm=-60, snr_db=0, fmt="acme", port=1, payload=b""),
            id="unknown-format",
        ),
        pytest.param(
            c.UplinkFrame(
                sensor_id=2**32, rssi_dbm=-60, snr_db=0, fmt="bosch-pls", port=1, payload=b""
            ),
            id="sensor-id-too-big",
        ),
        pytest.param(
            c.UplinkFrame(
                sensor_id=1, rssi_dbm=-60, snr_db=0, fmt="bosch-pls", port=1, payload=b"x" * 504
            ),
            id="payload-over-cap",
        ),
        pytest.param(
            c.StatusFrame(
                uptime_s=1,
                firmware="1.2",
                radio_frames=0,
                radio_crc_errors=0,
                frames_forwarded=0,
                queue_depth=0,
                queue_dropped=0,
            ),
            id="firmware-not-three-parts",
        ),
        pytest.param(
            c.ConfigDownlink(request_id=1, sensor_id=1, port=3, command=b"8002 99"),
            id="command-not-hex",
        ),
        pytest.param(c.RecalibrateRequest(request_id=-1, sensor_id=1), id="negative-request-id"),
        pytest.param(c.ReplayRequest(request_id=65_536), id="replay-request-id-too-big"),
        pytest.param(
            c.StoredUplink(request_id=1, age_ms=2**32, uplink=UPLINK), id="stored-age-too-big"
        ),
        pytest.param(
            c.StoredUplink(request_id=1, age_ms=-1, uplink=UPLINK), id="stored-age-negative"
        ),
        pytest.param(c.ReplayEnd(request_id=1, count=65_536), id="replay-count-too-big"),
    ],
)
def test_encode_frame_refuses_values_out_of_range(frame: c.Frame) -> None:
    """A value the envelope cannot carry raises EncodeError, never wraps silently."""
    with pytest.raises(EncodeError):
        c.encode_frame(frame)


def test_stored_uplink_layout() -> None:
    """A stored uplink is u16 request id, u32 age in ms, then the uplink's own body."""
    stored = c.StoredUplink(request_id=0x0102, age_ms=0x03040506, uplink=UPLINK)
    wire = c.encode_frame(stored)
    uplink_body = c.encode_frame(UPLINK)[4:-2]
    assert wire[3] == 0x04
    assert wire[4:-2] == bytes.fromhex("0102 03040506") + uplink_body
    assert stored.age_s == 0x03040506 / 1000


def test_stream_stored_uplink_with_unknown_format_counted() -> None:
    """A stored uplink naming an unknown format id is counted like a live one, and skipped."""
    body = struct.pack(">HI", 7, 1000) + struct.pack(">IhbBB", 5, -90, 4, 9, 1) + b"\x01"
    dec = c.ConcentratorDecoder()
    dec.feed(_raw(0x04, body) + c.encode_frame(FRAMES[1]))
    assert _drain(dec) == [FRAMES[1]]
    assert dec.stats.unknown_formats == 1


def test_stored_uplink_payload_cap_is_smaller_by_its_header() -> None:
    """A stored uplink carries 6 bytes more than a live one: a 498-byte payload is refused
    (the concentrator leaves such a sensor out of a replay), 497 bytes fit."""
    big = c.UplinkFrame(
        sensor_id=1, rssi_dbm=-60, snr_db=0, fmt="bosch-pls", port=1, payload=b"\xa5" * 498
    )
    with pytest.raises(EncodeError):
        c.encode_frame(c.StoredUplink(request_id=1, age_ms=0, uplink=big))
    fits = c.StoredUplink(
        request_id=1,
        age_ms=0,
        uplink=c.UplinkFrame(
            sensor_id=1, rssi_dbm=-60, snr_db=0, fmt="bosch-pls", port=1, payload=b"\xa5" * 497
        ),
    )
    assert len(c.encode_frame(fits)) == c.MAX_FRAME
    assert c.decode_frame(c.encode_frame(fits)) == fits


def test_uplink_payload_at_cap_round_trips() -> None:
    """An uplink whose body is exactly MAX_BODY bytes still round-trips."""
    frame = c.UplinkFrame(
        sensor_id=1, rssi_dbm=-60, snr_db=0, fmt="bosch-pls", port=1, payload=b"\xa5" * 503
    )
    wire = c.encode_frame(frame)
    assert len(wire) == c.MAX_FRAME
    dec = c.ConcentratorDecoder()
    dec.feed(wire)
    assert _drain(dec) == [frame]


def test_downlink_ack_ok_property() -> None:
    """DownlinkAck.ok is true only for the OK outcome."""
    assert FRAMES[4].ok is True  # type: ignore[union-attr]
    assert FRAMES[5].ok is False  # type: ignore[union-attr]


# --- properties ---

_uplinks = st.builds(
    c.UplinkFrame,
    sensor_id=st.integers(0, 2**32 - 1),
    rssi_dbm=st.integers(-32768, 32767),
    snr_db=st.integers(-128, 127).map(lambda q: q / 4),
    fmt=st.sampled_from(sorted(c.FORMAT_IDS)),
    port=st.integers(0, 255),
    payload=st.binary(max_size=40),
)
frame_strategy = st.one_of(
    _uplinks,
    st.builds(
        c.StatusFrame,
        uptime_s=st.integers(0, 2**32 - 1),
        firmware=st.tuples(*[st.integers(0, 255)] * 3).map(lambda t: ".".join(map(str, t))),
        radio_frames=st.integers(0, 2**32 - 1),
        radio_crc_errors=st.integers(0, 2**32 - 1),
        frames_forwarded=st.integers(0, 2**32 - 1),
        queue_depth=st.integers(0, 2**16 - 1),
        queue_dropped=st.integers(0, 2**32 - 1),
    ),
    st.builds(
        c.DownlinkAck,
        request_id=st.integers(0, 2**16 - 1),
        sensor_id=st.integers(0, 2**32 - 1),
        outcome=st.sampled_from(c.DownlinkOutcome),
    ),
    st.builds(
        c.ConfigDownlink,
        request_id=st.integers(0, 2**16 - 1),
        sensor_id=st.integers(0, 2**32 - 1),
        port=st.integers(0, 255),
        command=st.binary(min_size=1, max_size=20).map(lambda b: b.hex().upper().encode()),
    ),
    st.builds(
        c.RecalibrateRequest,
        request_id=st.integers(0, 2**16 - 1),
        sensor_id=st.integers(0, 2**32 - 1),
    ),
    st.builds(c.ReplayRequest, request_id=st.integers(0, 2**16 - 1)),
    st.builds(
        c.StoredUplink,
        request_id=st.integers(0, 2**16 - 1),
        age_ms=st.integers(0, 2**32 - 1),
        uplink=_uplinks,
    ),
    st.builds(c.ReplayEnd, request_id=st.integers(0, 2**16 - 1), count=st.integers(0, 2**16 - 1)),
)


@settings(max_examples=300)
@given(data=st.binary(max_size=2000), chunk=st.integers(1, 300))
def test_stream_random_bytes_never_crash_nor_yield_unchecked_frames(
    data: bytes, chunk: int
) -> None:
    """Random bytes never raise; every frame yielded is really in the input, CRC and all."""
    dec = c.ConcentratorDecoder()
    got: list[c.Frame] = []
    for i in range(0, len(data), chunk):
        dec.feed(data[i : i + chunk])
        got.extend(dec)
        assert dec.buffered < c.MAX_FRAME
    for frame in got:
        wire = c.encode_frame(frame)
        assert wire in data
        assert c.decode_frame(wire) == frame
    assert dec.stats.frames == len(got)
    delivered = sum(len(c.encode_frame(f)) for f in got)
    assert dec.stats.bytes_in == delivered + dec.stats.dropped_bytes + dec.buffered


@settings(max_examples=300)
@given(frame=frame_strategy)
def test_frame_round_trip_property(frame: c.Frame) -> None:
    """Any representable frame survives encode then decode unchanged."""
    assert c.decode_frame(c.encode_frame(frame)) == frame


no_start_garbage = st.binary(max_size=60).map(lambda b: b.replace(b"\xa5", b"\x5a"))


@settings(max_examples=300)
@given(
    parts=st.lists(st.tuples(no_start_garbage, frame_strategy), max_size=8),
    tail=no_start_garbage,
    chunk=st.integers(1, 64),
)
def test_stream_recovers_all_frames_between_garbage(
    parts: list[tuple[bytes, c.Frame]], tail: bytes, chunk: int
) -> None:
    """Frames separated by garbage without a start byte are all recovered, in order."""
    data = b"".join(g + c.encode_frame(f) for g, f in parts) + tail
    dec = c.ConcentratorDecoder()
    got: list[c.Frame] = []
    for i in range(0, len(data), chunk):
        dec.feed(data[i : i + chunk])
        got.extend(dec)
    assert got == [f for _, f in parts]
    assert dec.stats.dropped_bytes + dec.buffered == sum(len(g) for g, _ in parts) + len(tail)
