"""The sensor-payload registry: public API, error contract, speed."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_protocols.errors import DecodeError, EncodeError, ProtocolError
from firmware_protocols.sensors import (
    FORMATS,
    KINDS,
    SensorReading,
    UnknownFormatError,
    decode,
    encode,
    formats,
    kinds,
)

READING_FIELDS = (
    "fmt",
    "kind",
    "occupied",
    "battery_mv",
    "battery_health",
    "temperature_c",
    "firmware",
    "reset_cause",
    "mag_xyz",
    "frame_counter",
    "previous_state_minutes",
    "tag_id",
    "raw",
    "extra",
)


def test_formats_lists_the_three_vendor_formats() -> None:
    """Configuration validation sees exactly the registered ids."""
    assert set(FORMATS) == {"bosch-pls", "nwave-nps", "dingtek-do20x"}
    assert formats() == FORMATS


def test_sensor_reading_has_exactly_the_public_fields() -> None:
    """SensorReading's field list is a published contract."""
    assert tuple(f.name for f in dataclasses.fields(SensorReading)) == READING_FIELDS


def test_sensor_reading_is_frozen_and_hashable() -> None:
    """A reading cannot be changed after decoding and can key a dict despite its extra."""
    reading = decode("nwave-nps", b"\x95", port=1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        reading.occupied = False  # type: ignore[misc]
    assert {reading: 1}[reading] == 1


def test_decode_unknown_format_raises_unknown_format_error() -> None:
    """An unregistered id is a DecodeError with reason 'unknown format' and the bytes."""
    with pytest.raises(UnknownFormatError) as info:
        decode("m77-ascii", b"\x01", port=1)
    assert isinstance(info.value, DecodeError)
    assert isinstance(info.value, ValueError)
    assert info.value.reason == "unknown format"
    assert info.value.fmt == "m77-ascii"
    assert info.value.data == b"\x01"
    assert info.value.port == 1


def test_encode_unknown_format_raises_encode_error() -> None:
    """encode refuses an unregistered id with an error that is also an EncodeError."""
    with pytest.raises(EncodeError) as info:
        encode("acme", "status", occupied=True)
    assert isinstance(info.value, UnknownFormatError)
    with pytest.raises(UnknownFormatError):
        kinds("acme")


@pytest.mark.parametrize("fmt", FORMATS)
def test_encode_unknown_kind_raises_encode_error(fmt: str) -> None:
    """A kind the format has no frame for is refused, naming the format."""
    with pytest.raises(EncodeError) as info:
        encode(fmt, "weather", occupied=True)
    assert info.value.fmt == fmt


@pytest.mark.parametrize("fmt", FORMATS)
def test_encode_kinds_cover_what_simulators_need(fmt: str) -> None:
    """Every format can produce status, heartbeat and startup payloads."""
    assert {"status", "heartbeat", "startup"} <= set(kinds(fmt))
    assert set(kinds(fmt)) <= set(KINDS)


@pytest.mark.parametrize("fmt", FORMATS)
def test_encode_misspelt_field_raises_encode_error(fmt: str) -> None:
    """A field name the kind does not know is an error, not silently dropped."""
    with pytest.raises(EncodeError, match="ocupied"):
        encode(fmt, "status", occupied=True, ocupied=False)


@pytest.mark.parametrize("fmt", FORMATS)
def test_encode_field_given_as_none_is_ignored(fmt: str) -> None:
    """None means "not carried", so one field set serves every format."""
    assert encode(fmt, "status", occupied=True, tag_id=None, humidity_pct=None) == encode(
        fmt, "status", occupied=True
    )


@pytest.mark.parametrize("fmt", FORMATS)
def test_decode_accepts_bytearray_and_keeps_immutable_raw(fmt: str) -> None:
    """A bytearray payload decodes like bytes and the reading owns an immutable copy."""
    port, payload = encode(fmt, "status", occupied=True)
    buffer = bytearray(payload)
    reading = decode(fmt, buffer, port=port)  # type: ignore[arg-type]
    buffer[0] ^= 0xFF
    assert type(reading.raw) is bytes
    assert reading.raw == payload
    assert reading.occupied is True


@settings(max_examples=600, deadline=None)
@given(
    fmt=st.sampled_from(FORMATS),
    payload=st.binary(max_size=40),
    port=st.one_of(st.none(), st.integers(min_value=-2, max_value=260)),
)
def test_decode_random_bytes_raise_only_decode_error(
    fmt: str, payload: bytes, port: int | None
) -> None:
    """Whatever arrives on whatever port, decode returns a reading or raises DecodeError."""
    try:
        reading = decode(fmt, payload, port=port)
    except DecodeError as exc:
        assert exc.fmt == fmt
        assert exc.data == payload
        assert str(exc)
    else:
        assert reading.fmt == fmt
        assert reading.raw == payload
        assert reading.kind in KINDS


@settings(max_examples=300, deadline=None)
@given(
    fmt=st.sampled_from(FORMATS),
    occupied=st.booleans(),
    temperature_c=st.one_of(st.none(), st.floats(min_value=-300, max_value=300)),
    battery_mv=st.one_of(st.none(), st.integers(min_value=0, max_value=5000)),
)
def test_encode_random_heartbeat_gives_payload_or_encode_error(
    fmt: str, occupied: bool, temperature_c: float | None, battery_mv: int | None
) -> None:
    """encode either yields a payload that decodes to its inputs, or raises EncodeError."""
    try:
        port, payload = encode(
            fmt, "heartbeat", occupied=occupied, temperature_c=temperature_c, battery_mv=battery_mv
        )
    except EncodeError as exc:
        assert isinstance(exc, ProtocolError)
        assert exc.fmt == fmt
    else:
        reading = decode(fmt, payload, port=port)
        assert reading.occupied is occupied
        if temperature_c is not None:
            assert reading.temperature_c is not None
            assert abs(reading.temperature_c - temperature_c) <= 0.5
