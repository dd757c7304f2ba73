"""Nwave NPS405 / NPS310 payloads (``nwave-nps``)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from firmware_protocols.errors import DecodeError, EncodeError
from firmware_protocols.sensors import decode, encode
from firmware_protocols.sensors.nwave import compress_minutes, decompress_minutes

FMT = "nwave-nps"


def test_nwave_vendor_example_status_previous_state_74() -> None:
    """Port 1, 95 is occupied with the previous state lasting 74 minutes."""
    reading = decode(FMT, bytes([0x95]), port=1)
    assert reading.kind == "status"
    assert reading.occupied is True
    assert reading.previous_state_minutes == 74
    assert reading.extra == {"previous_state_error_minutes": 0, "previous_state_overflow": False}


def test_nwave_vendor_example_startup() -> None:
    """Port 3, 02 04 09 02 00 is firmware 2.4.9, power on, free."""
    reading = decode(FMT, bytes.fromhex("0204090200"), port=3)
    assert reading.kind == "startup"
    assert reading.firmware == "2.4.9"
    assert reading.reset_cause == "power_on"
    assert reading.occupied is False


def test_nwave_vendor_example_heartbeat_six_bytes() -> None:
    """The vendor's heartbeat (with three trailing bytes): 3344 mV, -10 °C, normal."""
    reading = decode(FMT, bytes.fromhex("00D3D800590B"), port=2)
    assert reading.kind == "heartbeat"
    assert reading.occupied is False
    assert reading.battery_mv == 3344
    assert reading.temperature_c == -10.0
    assert reading.battery_health == "normal"
    assert reading.extra == {"hw_health": 0}


def test_nwave_vendor_example_registration_with_tag_battery() -> None:
    """The vendor's 6-byte registration: occupied, 160 min (error 4), tag 1F345678, 3.2 V."""
    reading = decode(FMT, bytes.fromhex("D1201F345678"), port=10)
    assert reading.kind == "registration"
    assert reading.occupied is True
    assert reading.previous_state_minutes == 160
    assert reading.tag_id == "1F345678"
    assert reading.extra == {
        "previous_state_error_minutes": 4,
        "previous_state_overflow": False,
        "tag_battery_mv": 3200,
    }


def test_nwave_registration_five_bytes_reads_tag_from_byte_one() -> None:
    """The documented 5-byte layout: tag id in bytes 1..4, upper-case hex."""
    reading = decode(FMT, bytes.fromhex("03DEADBEEF"), port=10)
    assert reading.tag_id == "DEADBEEF"
    assert reading.occupied is True
    assert reading.previous_state_minutes == 1
    assert "tag_battery_mv" not in reading.extra


def test_nwave_registration_bit_zero_clear_reports_no_occupancy() -> None:
    """When bit 0 is clear the frame carries no occupancy and no previous state."""
    reading = decode(FMT, bytes.fromhex("FE0000002A"), port=10)
    assert reading.occupied is None
    assert reading.previous_state_minutes is None
    assert reading.tag_id == "0000002A"
    assert reading.extra == {}


@pytest.mark.parametrize(
    ("v", "minutes", "error", "overflow"),
    [
        (0, 0, 0, False),
        (89, 89, 0, False),
        (90, 90, 4, False),
        (91, 95, 4, False),
        (119, 235, 4, False),
        (120, 240, 59, False),
        (126, 600, 59, False),
        (127, 660, None, True),
    ],
)
def test_nwave_previous_state_decompression_boundaries(
    v: int, minutes: int, error: int | None, overflow: bool
) -> None:
    """Each band of the 7-bit code decodes as SENSOR_FORMATS.md says, with its error bound."""
    assert decompress_minutes(v) == (minutes, error, overflow)
    reading = decode(FMT, bytes([(v << 1) | 0]), port=1)
    assert reading.occupied is False
    assert reading.previous_state_minutes == minutes
    assert reading.extra["previous_state_error_minutes"] == error
    assert reading.extra["previous_state_overflow"] is overflow


@given(minutes=st.integers(min_value=0, max_value=20_000))
def test_nwave_previous_state_compression_round_trip(minutes: int) -> None:
    """Decoded minutes are at most the true value and within the stated error bound."""
    port, payload = encode(FMT, "status", occupied=True, previous_state_minutes=minutes)
    reading = decode(FMT, payload, port=port)
    assert port == 1
    decoded = reading.previous_state_minutes
    assert decoded is not None
    if reading.extra["previous_state_overflow"]:
        assert minutes >= 660
    else:
        assert 0 <= minutes - decoded <= reading.extra["previous_state_error_minutes"]


def test_nwave_compress_refuses_negative() -> None:
    """A negative duration is not representable."""
    with pytest.raises(ValueError):
        compress_minutes(-1)
    with pytest.raises(EncodeError):
        encode(FMT, "status", occupied=True, previous_state_minutes=-1)


@pytest.mark.parametrize(
    ("battery_b1", "temperature_b2", "health"),
    [
        pytest.param(125, 0x00, "normal", id="3000mV-10C"),
        pytest.param(124, 0x00, "low", id="2996mV-10C"),
        pytest.param(100, 0x00, "low", id="2900mV-10C"),
        pytest.param(99, 0x00, "critical", id="2896mV-10C"),
        pytest.param(100, 0xE2, "low", id="2900mV-minus5C-warm-rule"),
        pytest.param(100, 0xE1, "normal", id="2900mV-minus5.5C-cold-rule"),
        pytest.param(75, 0xE1, "low", id="2800mV-cold"),
        pytest.param(74, 0xE1, "critical", id="2796mV-cold"),
    ],
)
def test_nwave_heartbeat_battery_health_follows_temperature(
    battery_b1: int, temperature_b2: int, health: str
) -> None:
    """Limits are 3000/2900 mV at -5 °C and above, 2900/2800 mV below."""
    reading = decode(FMT, bytes([0x01, battery_b1, temperature_b2]), port=2)
    assert reading.battery_health == health
    assert reading.battery_mv == 2500 + 4 * battery_b1


def test_nwave_heartbeat_hardware_health_is_bits_six_to_zero() -> None:
    """Health is b0 & 0x7F exactly as documented; bit 7 is ignored."""
    reading = decode(FMT, bytes([0xFF, 0, 0]), port=2)
    assert reading.occupied is True
    assert reading.extra["hw_health"] == 0x7F
    assert reading.temperature_c == 10.0


@pytest.mark.parametrize(
    ("code", "cause"),
    [
        (0, "rejoin"),
        (1, "watchdog"),
        (2, "power_on"),
        (3, "user_request"),
        (4, None),
        (6, "brownout"),
        (7, "other"),
    ],
)
def test_nwave_startup_reset_causes(code: int, cause: str | None) -> None:
    """Documented codes map to words; unassigned ones keep the frame and the number."""
    reading = decode(FMT, bytes([1, 0, 0, code, 1]), port=3)
    assert reading.reset_cause == cause
    assert reading.extra["reset_cause_code"] == code
    assert reading.firmware == "1.0.0"


def test_nwave_debug_port_keeps_raw() -> None:
    """Port 6 debug frames are kept as bytes."""
    reading = decode(FMT, b"\x01\x02", port=6)
    assert (reading.kind, reading.raw, reading.occupied) == ("debug", b"\x01\x02", None)


@pytest.mark.parametrize(
    ("payload", "port"),
    [
        pytest.param(b"", 1, id="empty-status"),
        pytest.param(b"\x01\x02", 2, id="heartbeat-too-short"),
        pytest.param(bytes.fromhex("02040902"), 3, id="startup-too-short"),
        pytest.param(bytes.fromhex("03DEADBE"), 10, id="registration-too-short"),
        pytest.param(b"", 6, id="empty-debug"),
        pytest.param(b"\x95", 4, id="wrong-port"),
        pytest.param(b"\x95", None, id="port-missing"),
    ],
)
def test_nwave_malformed_raises_decode_error(payload: bytes, port: int | None) -> None:
    """Each unreadable payload raises DecodeError carrying format, port and bytes."""
    with pytest.raises(DecodeError) as info:
        decode(FMT, payload, port=port)
    assert (info.value.fmt, info.value.port, info.value.data) == (FMT, port, payload)


@given(
    occupied=st.booleans(),
    battery_mv=st.integers(min_value=2500, max_value=3520),
    temperature=st.floats(min_value=-54, max_value=73.5),
    health=st.integers(0, 0x7F),
)
def test_nwave_heartbeat_round_trip(
    occupied: bool, battery_mv: int, temperature: float, health: int
) -> None:
    """Battery comes back within the 4 mV step, temperature within 0.5 °C."""
    port, payload = encode(
        FMT,
        "heartbeat",
        occupied=occupied,
        battery_mv=battery_mv,
        temperature_c=temperature,
        hw_health=health,
    )
    reading = decode(FMT, payload, port=port)
    assert port == 2
    assert reading.occupied is occupied
    assert reading.battery_mv is not None and abs(reading.battery_mv - battery_mv) < 4
    assert reading.temperature_c is not None and abs(reading.temperature_c - temperature) <= 0.5
    assert reading.extra["hw_health"] == (health & 0x7E) | occupied


@given(
    occupied=st.booleans(),
    firmware=st.tuples(*[st.integers(0, 255)] * 3).map(lambda t: ".".join(map(str, t))),
    cause=st.sampled_from(["rejoin", "watchdog", "power_on", "user_request", "brownout", "other"]),
)
def test_nwave_startup_round_trip(occupied: bool, firmware: str, cause: str) -> None:
    """Start-up fields survive encode then decode exactly."""
    port, payload = encode(FMT, "startup", occupied=occupied, firmware=firmware, reset_cause=cause)
    reading = decode(FMT, payload, port=port)
    assert port == 3
    assert (reading.occupied, reading.firmware, reading.reset_cause) == (occupied, firmware, cause)


@given(
    occupied=st.sampled_from([True, None]),
    minutes=st.integers(0, 89),
    tag=st.binary(min_size=4, max_size=4),
    tag_battery_mv=st.one_of(st.none(), st.integers(0, 255).map(lambda v: v * 100)),
)
def test_nwave_registration_round_trip(
    occupied: bool | None, minutes: int, tag: bytes, tag_battery_mv: int | None
) -> None:
    """Both registration layouts round-trip; occupancy None stays None."""
    port, payload = encode(
        FMT,
        "registration",
        occupied=occupied,
        previous_state_minutes=minutes,
        tag_id=tag.hex().upper(),
        tag_battery_mv=tag_battery_mv,
    )
    reading = decode(FMT, payload, port=port)
    assert port == 10
    assert reading.tag_id == tag.hex().upper()
    assert reading.occupied is occupied
    assert reading.previous_state_minutes == (minutes if occupied else None)
    assert reading.extra.get("tag_battery_mv") == tag_battery_mv


@pytest.mark.parametrize(
    ("kind", "fields"),
    [
        pytest.param(
            "heartbeat",
            {"occupied": True, "battery_mv": 2400, "temperature_c": 10},
            id="battery-low-end",
        ),
        pytest.param(
            "heartbeat",
            {"occupied": True, "battery_mv": 3600, "temperature_c": 10},
            id="battery-high-end",
        ),
        pytest.param(
            "heartbeat",
            {"occupied": True, "battery_mv": 3000, "temperature_c": 80},
            id="temperature-high",
        ),
        pytest.param(
            "heartbeat",
            {"occupied": True, "battery_mv": 3000, "temperature_c": float("nan")},
            id="temperature-nan",
        ),
        pytest.param(
            "startup",
            {"occupied": True, "firmware": "1.2.3", "reset_cause": "system_request"},
            id="cause-not-nwave",
        ),
        pytest.param(
            "registration", {"occupied": False, "tag_id": "00000001"}, id="registration-free"
        ),
        pytest.param("registration", {"occupied": True, "tag_id": "12345"}, id="tag-short"),
        pytest.param("registration", {"occupied": True, "tag_id": "1234567G"}, id="tag-not-hex"),
    ],
)
def test_nwave_encode_refuses_values_the_format_cannot_carry(
    kind: str, fields: dict[str, object]
) -> None:
    """Out-of-range or uncarried values raise EncodeError naming the format."""
    with pytest.raises(EncodeError) as info:
        encode(FMT, kind, **fields)
    assert info.value.fmt == FMT
