"""Bosch Parking Lot Sensor payloads (``bosch-pls``)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from firmware_protocols.errors import DecodeError, EncodeError
from firmware_protocols.sensors import decode, encode

FMT = "bosch-pls"

# A start-up frame: debug codes 0x123 and 0xABC, firmware 1.2.3, power on, occupied.
STARTUP = bytes.fromhex("23010000 BC0A0000 00000000 010203 02 01")


def test_bosch_vendor_example_status_occupied() -> None:
    """Port 1, 01 is occupied (SENSOR_FORMATS.md)."""
    reading = decode(FMT, b"\x01", port=1)
    assert reading.kind == "status"
    assert reading.occupied is True
    assert reading.battery_mv is None
    assert reading.temperature_c is None


def test_bosch_vendor_example_heartbeat_minus_one_degree() -> None:
    """Port 2, 01 FF is a heartbeat, occupied, -1 °C (SENSOR_FORMATS.md)."""
    reading = decode(FMT, bytes.fromhex("01FF"), port=2)
    assert reading.kind == "heartbeat"
    assert reading.occupied is True
    assert reading.temperature_c == -1.0
    assert reading.battery_mv is None
    assert reading.battery_health is None


def test_bosch_status_reads_bit_zero_only() -> None:
    """Bits other than bit 0 do not change occupancy."""
    assert decode(FMT, b"\xfe", port=1).occupied is False
    assert decode(FMT, b"\x00", port=1).occupied is False


def test_bosch_heartbeat_without_temperature_byte() -> None:
    """A one-byte heartbeat is valid; the temperature is then not carried."""
    reading = decode(FMT, b"\x00", port=2)
    assert reading.occupied is False
    assert reading.temperature_c is None


def test_bosch_startup_decodes_codes_firmware_and_cause() -> None:
    """Port 3 gives the non-zero 12-bit debug codes, firmware a.b.c and the reset cause."""
    reading = decode(FMT, STARTUP, port=3)
    assert reading.kind == "startup"
    assert reading.firmware == "1.2.3"
    assert reading.reset_cause == "power_on"
    assert reading.occupied is True
    assert reading.extra["debug_codes"] == (0x123, 0xABC)
    assert reading.extra["reset_cause_code"] == 2


def test_bosch_startup_debug_code_ignores_high_nibble() -> None:
    """Only the low nibble of the second byte belongs to the 12-bit code."""
    frame = bytearray(STARTUP)
    frame[1] = 0xF1
    assert decode(FMT, bytes(frame), port=3).extra["debug_codes"][0] == 0x123


@pytest.mark.parametrize(
    ("code", "cause"),
    [(1, "watchdog"), (2, "power_on"), (3, "system_request"), (4, "other"), (9, None)],
)
def test_bosch_startup_reset_causes(code: int, cause: str | None) -> None:
    """Each documented cause maps to its word; an undocumented one is kept as a number."""
    frame = bytearray(STARTUP)
    frame[15] = code
    reading = decode(FMT, bytes(frame), port=3)
    assert reading.reset_cause == cause
    assert reading.extra["reset_cause_code"] == code
    assert reading.firmware == "1.2.3"


@pytest.mark.parametrize(("port", "info"), [(4, "device_information"), (5, "device_usage")])
def test_bosch_info_ports_keep_raw_bytes(port: int, info: str) -> None:
    """Ports 4 and 5 are not interpreted; their bytes are kept."""
    reading = decode(FMT, b"\x10\x20\x30", port=port)
    assert reading.kind == "info"
    assert reading.raw == b"\x10\x20\x30"
    assert reading.extra == {"info": info}
    assert reading.occupied is None


def test_bosch_debug_frame_little_endian_fields() -> None:
    """Port 6: LE u32 timestamp, 12-bit code, LE u16 sequence at bytes 8..9."""
    frame = bytes.fromhex("78563412 BC0A 0000 3412")
    reading = decode(FMT, frame, port=6)
    assert reading.kind == "debug"
    assert reading.extra == {"timestamp": 0x12345678, "debug_code": 0xABC, "sequence": 0x1234}


@pytest.mark.parametrize(
    ("payload", "port"),
    [
        pytest.param(b"", 1, id="empty-status"),
        pytest.param(b"", 2, id="empty-heartbeat"),
        pytest.param(STARTUP[:16], 3, id="startup-too-short"),
        pytest.param(b"", 4, id="empty-info"),
        pytest.param(bytes(9), 6, id="debug-too-short"),
        pytest.param(b"\x01", 7, id="wrong-port"),
        pytest.param(b"\x01", 0, id="port-zero"),
        pytest.param(b"\x01", None, id="port-missing"),
    ],
)
def test_bosch_malformed_raises_decode_error(payload: bytes, port: int | None) -> None:
    """Each unreadable payload raises DecodeError carrying format, port and bytes."""
    with pytest.raises(DecodeError) as info:
        decode(FMT, payload, port=port)
    assert info.value.fmt == FMT
    assert info.value.port == port
    assert info.value.data == payload
    assert FMT in str(info.value)


def test_bosch_every_startup_prefix_is_refused() -> None:
    """A truncated start-up frame never decodes into a wrong reading."""
    for size in range(len(STARTUP)):
        with pytest.raises(DecodeError):
            decode(FMT, STARTUP[:size], port=3)


def test_bosch_trailing_bytes_are_ignored_but_kept() -> None:
    """Bytes beyond the layout do not change the reading and stay in raw."""
    reading = decode(FMT, b"\x01\x05\xaa\xbb", port=2)
    assert reading.temperature_c == 5.0
    assert reading.raw == b"\x01\x05\xaa\xbb"


@given(occupied=st.booleans())
def test_bosch_status_round_trip(occupied: bool) -> None:
    """encode then decode gives the status back on port 1."""
    port, payload = encode(FMT, "status", occupied=occupied)
    assert port == 1
    assert decode(FMT, payload, port=port).occupied is occupied


@given(occupied=st.booleans(), temperature=st.floats(min_value=-128.4, max_value=127.4))
def test_bosch_heartbeat_round_trip(occupied: bool, temperature: float) -> None:
    """Heartbeat temperature comes back within the format's 1 °C step."""
    port, payload = encode(FMT, "heartbeat", occupied=occupied, temperature_c=temperature)
    reading = decode(FMT, payload, port=port)
    assert port == 2
    assert reading.occupied is occupied
    assert reading.temperature_c is not None
    assert abs(reading.temperature_c - temperature) <= 0.5


@given(
    occupied=st.booleans(),
    firmware=st.tuples(*[st.integers(0, 255)] * 3).map(lambda t: ".".join(map(str, t))),
    cause=st.sampled_from(["watchdog", "power_on", "system_request", "other"]),
    codes=st.lists(st.integers(1, 0xFFF), max_size=3).map(tuple),
)
def test_bosch_startup_round_trip(
    occupied: bool, firmware: str, cause: str, codes: tuple[int, ...]
) -> None:
    """Start-up fields survive encode then decode exactly."""
    port, payload = encode(
        FMT, "startup", occupied=occupied, firmware=firmware, reset_cause=cause, debug_codes=codes
    )
    reading = decode(FMT, payload, port=port)
    assert (port, len(payload)) == (3, 17)
    assert (reading.occupied, reading.firmware, reading.reset_cause) == (occupied, firmware, cause)
    assert reading.extra["debug_codes"] == codes


def test_bosch_info_and_debug_round_trip() -> None:
    """The simulator can send device information, usage and debug frames."""
    port, payload = encode(FMT, "info", info="device_usage", payload=b"\x01\x02")
    assert (port, decode(FMT, payload, port=port).extra["info"]) == (5, "device_usage")
    port, payload = encode(FMT, "debug", timestamp=7, debug_code=0x321, sequence=9)
    assert decode(FMT, payload, port=port).extra == {
        "timestamp": 7,
        "debug_code": 0x321,
        "sequence": 9,
    }


@pytest.mark.parametrize(
    ("kind", "fields"),
    [
        pytest.param("heartbeat", {"occupied": True, "temperature_c": 200}, id="too-hot"),
        pytest.param("heartbeat", {"occupied": True, "battery_mv": 3000}, id="no-battery"),
        pytest.param("status", {}, id="occupied-missing"),
        pytest.param("status", {"occupied": 1}, id="occupied-not-bool"),
        pytest.param("startup", {"occupied": True, "firmware": "1.2"}, id="firmware-two-parts"),
        pytest.param("startup", {"occupied": True, "firmware": "1.2.300"}, id="firmware-big"),
        pytest.param(
            "startup",
            {"occupied": True, "firmware": "1.2.3", "reset_cause": "brownout"},
            id="cause-not-bosch",
        ),
        pytest.param(
            "startup",
            {"occupied": True, "firmware": "1.2.3", "debug_codes": (1, 2, 3, 4)},
            id="four-debug-codes",
        ),
        pytest.param(
            "startup",
            {"occupied": True, "firmware": "1.2.3", "debug_codes": (0x1000,)},
            id="debug-code-13-bits",
        ),
    ],
)
def test_bosch_encode_refuses_values_the_format_cannot_carry(
    kind: str, fields: dict[str, object]
) -> None:
    """Out-of-range or uncarried values raise EncodeError naming the format."""
    with pytest.raises(EncodeError) as info:
        encode(FMT, kind, **fields)
    assert info.value.fmt == FMT
