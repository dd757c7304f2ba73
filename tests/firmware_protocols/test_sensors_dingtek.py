"""Dingtek DO200 / DO201 / DO202 payloads and configuration downlinks (``dingtek-do20x``)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from firmware_protocols.errors import DecodeError, EncodeError
from firmware_protocols.sensors import (
    DingtekCommand,
    decode,
    decode_dingtek_downlink,
    encode,
    encode_dingtek_downlink,
)

FMT = "dingtek-do20x"

# The vendor's own examples, TheThingsNetwork/lorawan-devices vendor/dingtek/do201-codec.yaml
# and do200-codec.yaml (uplinkDecoder examples).
DO201_TELEMETRY = bytes.fromhex("800031021706B40000016100 10FFF6FFF08B2D00010081".replace(" ", ""))
DO201_PARAMETERS = bytes.fromhex("80003103100101181E3C003C14000081")
DO200_TELEMETRY = bytes.fromhex("80000201150000000001 6F0079FFB0FFF500000081".replace(" ", ""))
DO200_PARAMETERS = bytes.fromhex("8000020311000B18020A05A0003C000081")


def test_dingtek_vendor_do201_telemetry_example() -> None:
    """The vendor's DO201 telemetry decodes to its stated values, -117 °C included."""
    reading = decode(FMT, DO201_TELEMETRY, port=3)
    assert reading.kind == "telemetry"
    assert reading.occupied is False
    assert reading.battery_mv == 3530
    assert reading.battery_health == "normal"
    assert reading.mag_xyz == (16, -10, -16)
    assert reading.temperature_c == -117.0
    assert reading.frame_counter == 1
    assert reading.extra == {
        "device_code": 0x0031,
        "distance_mm": 1716,
        "level_alarm": False,
        "magnetic_alarm": False,
        "battery_alarm": False,
        "humidity_pct": 45,
    }


def test_dingtek_vendor_do201_parameters_example() -> None:
    """The vendor's DO201 parameter packet: firmware 1.1, 24 h, 30 min, 60, 60, 20 %."""
    reading = decode(FMT, DO201_PARAMETERS, port=3)
    assert reading.kind == "parameters"
    assert reading.firmware == "1.1"
    assert reading.occupied is None
    assert reading.extra == {
        "device_code": 0x0031,
        "upload_interval_h": 24,
        "detection_interval_min": 30,
        "level_threshold_cm": 60,
        "magnetic_threshold": 60,
        "battery_threshold_pct": 20,
    }


def test_dingtek_vendor_do200_telemetry_example() -> None:
    """DO200 telemetry (type 0x01, 21 bytes) carries no temperature or humidity."""
    reading = decode(FMT, DO200_TELEMETRY, port=3)
    assert reading.kind == "telemetry"
    assert reading.battery_mv == 3670
    assert reading.mag_xyz == (121, -80, -11)
    assert reading.frame_counter == 0
    assert reading.temperature_c is None
    assert "humidity_pct" not in reading.extra
    assert reading.extra["distance_mm"] == 0


def test_dingtek_vendor_do200_parameters_example() -> None:
    """DO200 parameters (17 bytes): firmware 0.11, 24 h, 2, 10 s, threshold 60."""
    reading = decode(FMT, DO200_PARAMETERS, port=3)
    assert reading.firmware == "0.11"
    assert reading.extra == {
        "device_code": 0x0002,
        "upload_interval_h": 24,
        "ultrasonic_detection_interval": 2,
        "magnetic_detection_interval_s": 10,
        "magnetic_threshold": 60,
    }


def test_dingtek_port_none_is_port_three() -> None:
    """Dingtek only uses port 3, so a missing port reads the same."""
    assert decode(FMT, DO201_TELEMETRY) == decode(FMT, DO201_TELEMETRY, port=3)


def test_dingtek_alarm_nibbles() -> None:
    """Byte 7 high nibble is parking (occupied), low nibble level; byte 8 magnet, battery."""
    frame = bytearray(DO201_TELEMETRY)
    frame[7], frame[8] = 0x10, 0x01
    reading = decode(FMT, bytes(frame), port=3)
    assert reading.occupied is True
    assert reading.battery_health == "low"
    assert reading.extra["battery_alarm"] is True
    assert reading.extra["level_alarm"] is False
    assert reading.extra["magnetic_alarm"] is False
    frame[7], frame[8] = 0x01, 0x10
    reading = decode(FMT, bytes(frame), port=3)
    assert reading.occupied is False
    assert reading.extra["level_alarm"] is True
    assert reading.extra["magnetic_alarm"] is True


def _with(frame: bytes, index: int, value: int) -> bytes:
    out = bytearray(frame)
    out[index] = value
    return bytes(out)


@pytest.mark.parametrize(
    ("payload", "port"),
    [
        pytest.param(b"", 3, id="empty"),
        pytest.param(DO201_TELEMETRY[:5], 3, id="too-short"),
        pytest.param(DO201_TELEMETRY, 1, id="wrong-port"),
        pytest.param(_with(DO201_TELEMETRY, 0, 0x81), 3, id="bad-head"),
        pytest.param(_with(DO201_TELEMETRY, 22, 0x80), 3, id="bad-tail"),
        pytest.param(DO201_TELEMETRY + b"\x81", 3, id="wrong-length-byte"),
        pytest.param(_with(DO201_TELEMETRY, 4, 0x16), 3, id="length-byte-off-by-one"),
        pytest.param(_with(DO201_TELEMETRY, 3, 0x07), 3, id="unknown-frame-type"),
        pytest.param(_with(DO201_TELEMETRY, 3, 0x03), 3, id="parameters-type-telemetry-size"),
        pytest.param(_with(DO200_TELEMETRY, 3, 0x02), 3, id="do201-type-do200-size"),
        pytest.param(bytes.fromhex("800031020600"), None, id="six-bytes-no-tail"),
    ],
)
def test_dingtek_malformed_raises_decode_error(payload: bytes, port: int | None) -> None:
    """Each bad frame raises DecodeError naming format, port 3 (or the wrong port), bytes."""
    with pytest.raises(DecodeError) as info:
        decode(FMT, payload, port=port)
    assert info.value.fmt == FMT
    assert info.value.port == (port if port is not None else 3)
    assert info.value.data == payload


def test_dingtek_malformed_messages_say_what_is_wrong() -> None:
    """The reason names the broken part of the frame and where."""
    with pytest.raises(DecodeError, match="length byte says 23, frame has 24") as info:
        decode(FMT, DO201_TELEMETRY[:-1] + b"\x00\x81", port=3)
    assert info.value.offset == 4
    with pytest.raises(DecodeError, match="unknown frame type 0x07"):
        decode(FMT, _with(DO201_TELEMETRY, 3, 0x07), port=3)
    with pytest.raises(DecodeError, match="not 0x81"):
        decode(FMT, _with(DO201_TELEMETRY, 22, 0x00), port=3)


@pytest.mark.parametrize(
    "frame", [DO201_TELEMETRY, DO201_PARAMETERS, DO200_TELEMETRY, DO200_PARAMETERS]
)
def test_dingtek_every_prefix_is_refused(frame: bytes) -> None:
    """No truncated frame decodes."""
    for size in range(len(frame)):
        with pytest.raises(DecodeError):
            decode(FMT, frame[:size], port=3)


@pytest.mark.parametrize("frame", [DO201_TELEMETRY, DO201_PARAMETERS])
def test_dingtek_garbage_before_or_after_is_refused(frame: bytes) -> None:
    """A frame with a stray byte before or after it is refused, not misread."""
    for bad in (b"\x00" + frame, frame + b"\x00", b"\x80" + frame, frame + b"\x81"):
        with pytest.raises(DecodeError):
            decode(FMT, bad, port=3)


def test_dingtek_encode_reproduces_vendor_examples() -> None:
    """The encoder builds the vendor's example frames byte for byte."""
    assert encode(
        FMT,
        "telemetry",
        occupied=False,
        distance_mm=1716,
        battery_mv=3530,
        mag_xyz=(16, -10, -16),
        temperature_c=-117,
        humidity_pct=45,
        frame_counter=1,
    ) == (3, DO201_TELEMETRY)
    assert encode(FMT, "parameters", firmware="1.1") == (3, DO201_PARAMETERS)
    assert encode(
        FMT, "telemetry", model="DO200", occupied=False, battery_mv=3670, mag_xyz=(121, -80, -11)
    ) == (3, DO200_TELEMETRY)


@given(
    model=st.sampled_from(["DO201", "DO202"]),
    occupied=st.booleans(),
    alarms=st.tuples(st.booleans(), st.booleans(), st.booleans()),
    distance=st.integers(0, 0xFFFF),
    battery_mv=st.integers(0, 65535).map(lambda cv: cv * 10),
    mag=st.tuples(*[st.integers(-0x8000, 0x7FFF)] * 3),
    temperature=st.integers(-128, 127),
    humidity=st.integers(0, 100),
    counter=st.integers(0, 0xFFFF),
)
def test_dingtek_telemetry_round_trip(
    model: str,
    occupied: bool,
    alarms: tuple[bool, bool, bool],
    distance: int,
    battery_mv: int,
    mag: tuple[int, int, int],
    temperature: int,
    humidity: int,
    counter: int,
) -> None:
    """Every telemetry field survives encode then decode exactly."""
    port, payload = encode(
        FMT,
        "telemetry",
        model=model,
        occupied=occupied,
        level_alarm=alarms[0],
        magnetic_alarm=alarms[1],
        battery_alarm=alarms[2],
        distance_mm=distance,
        battery_mv=battery_mv,
        mag_xyz=mag,
        temperature_c=temperature,
        humidity_pct=humidity,
        frame_counter=counter,
    )
    reading = decode(FMT, payload, port=port)
    assert (port, len(payload), payload[4]) == (3, 23, 23)
    assert reading.occupied is occupied
    assert reading.battery_mv == battery_mv
    assert reading.mag_xyz == mag
    assert reading.temperature_c == temperature
    assert reading.frame_counter == counter
    assert reading.extra["distance_mm"] == distance
    assert reading.extra["humidity_pct"] == humidity
    assert (
        reading.extra["level_alarm"],
        reading.extra["magnetic_alarm"],
        reading.extra["battery_alarm"],
    ) == alarms
    assert reading.extra["device_code"] == {"DO201": 0x31, "DO202": 0x32}[model]


@given(
    firmware=st.tuples(st.integers(0, 255), st.integers(0, 255)).map(lambda t: f"{t[0]}.{t[1]}"),
    upload=st.integers(1, 168),
    detect=st.integers(1, 60),
    level=st.integers(0, 255),
    magnetic=st.integers(1, 0xFFFF),
    battery=st.integers(5, 99),
)
def test_dingtek_parameters_round_trip(
    firmware: str, upload: int, detect: int, level: int, magnetic: int, battery: int
) -> None:
    """Every parameter survives encode then decode exactly."""
    port, payload = encode(
        FMT,
        "parameters",
        firmware=firmware,
        upload_interval_h=upload,
        detection_interval_min=detect,
        level_threshold_cm=level,
        magnetic_threshold=magnetic,
        battery_threshold_pct=battery,
    )
    reading = decode(FMT, payload, port=port)
    assert reading.firmware == firmware
    assert reading.extra["upload_interval_h"] == upload
    assert reading.extra["detection_interval_min"] == detect
    assert reading.extra["level_threshold_cm"] == level
    assert reading.extra["magnetic_threshold"] == magnetic
    assert reading.extra["battery_threshold_pct"] == battery


def test_dingtek_status_heartbeat_startup_aliases() -> None:
    """Status and heartbeat are telemetry frames, start-up is the parameter frame."""
    for kind in ("status", "heartbeat"):
        port, payload = encode(FMT, kind, occupied=True, battery_mv=3600, temperature_c=21)
        reading = decode(FMT, payload, port=port)
        assert (reading.kind, reading.occupied, reading.temperature_c) == ("telemetry", True, 21)
    port, payload = encode(FMT, "startup", firmware="2.3", model="DO200")
    reading = decode(FMT, payload, port=port)
    assert (reading.kind, reading.firmware, len(payload)) == ("parameters", "2.3", 17)


@pytest.mark.parametrize(
    ("kind", "fields"),
    [
        pytest.param("telemetry", {"occupied": True, "temperature_c": 128}, id="too-hot"),
        pytest.param(
            "telemetry", {"model": "DO200", "occupied": True, "temperature_c": 20}, id="do200-temp"
        ),
        pytest.param("telemetry", {"occupied": True, "mag_xyz": (0, 0, 40000)}, id="mag-big"),
        pytest.param("telemetry", {"occupied": True, "mag_xyz": (0, 0)}, id="mag-two-axes"),
        pytest.param("telemetry", {"occupied": True, "battery_mv": -10}, id="battery-negative"),
        pytest.param("telemetry", {"occupied": True, "model": "DO300"}, id="unknown-model"),
        pytest.param("startup", {"reset_cause": "power_on"}, id="startup-no-reset-cause"),
        pytest.param("parameters", {"upload_interval_h": 169}, id="upload-169h"),
        pytest.param("parameters", {"battery_threshold_pct": 4}, id="battery-4pct"),
        pytest.param("parameters", {"firmware": "1.2.3"}, id="firmware-three-parts"),
    ],
)
def test_dingtek_encode_refuses_values_the_format_cannot_carry(
    kind: str, fields: dict[str, object]
) -> None:
    """Out-of-range or uncarried values raise EncodeError naming the format."""
    with pytest.raises(EncodeError) as info:
        encode(FMT, kind, **fields)
    assert info.value.fmt == FMT


# ---- configuration downlink -------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "option", "value", "text"),
    [
        # SENSOR_FORMATS.md and the vendor's do201-codec.yaml downlink examples
        ("DO201", "upload_interval", 4, b"80029999010481"),
        ("DO201", "detection_interval", 10, b"80029999080A81"),
        ("DO201", "magnetic_threshold", 60, b"800299990F003C81"),
        ("DO201", "level_threshold", 60, b"80029999023C81"),
        ("DO201", "battery_threshold", 20, b"80029999051481"),
        ("DO202", "upload_interval", 4, b"80029999010481"),
        # do200-codec.yaml: the DO200 numbers its options differently
        ("DO200", "upload_interval", 4, b"80028888010481"),
        ("DO200", "magnetic_detection_interval", 10, b"80028888040A81"),
        ("DO200", "magnetic_threshold", 60, b"80028888023C81"),
    ],
)
def test_dingtek_downlink_vendor_examples(model: str, option: str, value: int, text: bytes) -> None:
    """The encoder gives the vendor's ASCII text and the decoder reads it back."""
    assert encode_dingtek_downlink(model, option, value) == text
    command = decode_dingtek_downlink(text)
    assert command == DingtekCommand(
        family="DO200" if model == "DO200" else "DO201/DO202", option=option, value=value
    )


@pytest.mark.parametrize(
    ("model", "option", "value"),
    [
        pytest.param("DO201", "upload_interval", 0, id="upload-0h"),
        pytest.param("DO201", "upload_interval", 169, id="upload-169h"),
        pytest.param("DO201", "battery_threshold", 4, id="battery-4pct"),
        pytest.param("DO201", "battery_threshold", 100, id="battery-100pct"),
        pytest.param("DO201", "detection_interval", 0, id="detect-0min"),
        pytest.param("DO201", "detection_interval", 61, id="detect-61min"),
        pytest.param("DO201", "magnetic_threshold", 0, id="magnetic-0"),
        pytest.param("DO201", "magnetic_threshold", 65536, id="magnetic-65536"),
        pytest.param("DO201", "level_threshold", 256, id="level-256"),
        pytest.param("DO201", "level_threshold", -1, id="level-negative"),
        pytest.param("DO201", "upload_interval", True, id="bool-value"),
        pytest.param("DO201", "magnetic_detection_interval", 10, id="do200-option-on-do201"),
        pytest.param("DO200", "battery_threshold", 20, id="do201-option-on-do200"),
        pytest.param("DO300", "upload_interval", 4, id="unknown-model"),
    ],
)
def test_dingtek_downlink_encode_range_checks(model: str, option: str, value: int) -> None:
    """Values the sensor would refuse are refused here, with the format and port."""
    with pytest.raises(EncodeError) as info:
        encode_dingtek_downlink(model, option, value)
    assert (info.value.fmt, info.value.port) == (FMT, 3)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"800299990104", id="too-short"),
        pytest.param(b"80039999010481", id="bad-prefix"),
        pytest.param(b"80027777010481", id="unknown-family"),
        pytest.param(b"80029999090481", id="unknown-option"),
        pytest.param(b"80029999010480", id="bad-suffix"),
        pytest.param(b"800299990F3C81", id="magnetic-two-digits"),
        pytest.param(b"8002999901000481", id="value-four-digits"),
        pytest.param(b"80029999010081", id="upload-0h-out-of-range"),
        pytest.param(b"8002999901 481", id="space-not-hex"),
        pytest.param(b"8002999901\xff481", id="not-ascii"),
    ],
)
def test_dingtek_downlink_decode_malformed(text: bytes) -> None:
    """Bad downlink text raises DecodeError with the format, port 3 and the bytes."""
    with pytest.raises(DecodeError) as info:
        decode_dingtek_downlink(text)
    assert (info.value.fmt, info.value.port, info.value.data) == (FMT, 3, text)


def test_dingtek_downlink_decode_accepts_lower_case_hex() -> None:
    """Hex digits are read case-insensitively, as the vendor's decoder does."""
    assert decode_dingtek_downlink(b"800299990f003c81").value == 60


@given(
    model=st.sampled_from(["DO200", "DO201", "DO202"]),
    data=st.data(),
)
def test_dingtek_downlink_round_trip(model: str, data: st.DataObject) -> None:
    """Every in-range option value round-trips through the ASCII text."""
    ranges = {
        "DO200": {
            "upload_interval": (1, 168),
            "magnetic_threshold": (1, 255),
            "magnetic_detection_interval": (1, 255),
        },
        "DO201": {
            "upload_interval": (1, 168),
            "level_threshold": (0, 255),
            "battery_threshold": (5, 99),
            "detection_interval": (1, 60),
            "magnetic_threshold": (1, 65535),
        },
    }[model if model == "DO200" else "DO201"]
    option = data.draw(st.sampled_from(sorted(ranges)))
    value = data.draw(st.integers(*ranges[option]))
    text = encode_dingtek_downlink(model, option, value)
    assert text.isascii() and text.startswith(b"8002") and text.endswith(b"81")
    command = decode_dingtek_downlink(text)
    assert (command.option, command.value) == (option, value)


@given(text=st.binary(max_size=24))
def test_dingtek_downlink_decode_random_bytes_raise_only_decode_error(text: bytes) -> None:
    """Random bytes either decode to a command or raise DecodeError."""
    try:
        command = decode_dingtek_downlink(text)
    except DecodeError as exc:
        assert exc.fmt == FMT
    else:
        assert (
            encode_dingtek_downlink(
                "DO200" if command.family == "DO200" else "DO201", command.option, command.value
            )
            == text.upper()
        )
