"""Camera event codecs: Hikvision ISAPI ANPR (XML, multipart), Dahua traffic JSON, parkgrid."""

from __future__ import annotations

import contextlib
import datetime as dt
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from firmware_protocols.cameras import (
    CaptureKind,
    PictureKind,
    PlateColor,
    VehicleClass,
    decode_dahua,
    decode_hikvision,
    decode_parkgrid,
    ga_plate_type,
    normalise_plate,
    parse_multipart,
)
from firmware_protocols.errors import DecodeError

CST = dt.timezone(dt.timedelta(hours=8))
JPEG_PLATE = b"\xff\xd8\xff\xe0plate-picture\xff\xd9"
JPEG_SCENE = b"\xff\xd8\xff\xe0scene-picture\x00\r\n--not-a-boundary\xff\xd9"


def anpr_xml(
    *,
    plate: str = "蓝苏A8HK52",
    color: str = "blue",
    vehicle: str = "vehicle",
    event_type: str = "ANPR",
    uuid: str = "8f1e2d3c-0001-4a5b-9c8d-7e6f5a4b3c2d",
    when: str = "2025-03-01T16:00:00+08:00",
    gat: str = "",
) -> bytes:
    """An ANPR alert as Chinese Hikvision firmware writes it (ISAPI 2.0 namespace)."""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<EventNotificationAlert version="2.0" xmlns="http://www.isapi.org/ver20/XMLSchema">
<ipAddress>192.168.1.64</ipAddress>
<portNo>80</portNo>
<protocol>HTTP</protocol>
<macAddress>44:19:b6:00:00:01</macAddress>
<channelID>1</channelID>
<dateTime>{when}</dateTime>
<activePostCount>1</activePostCount>
<eventType>{event_type}</eventType>
<eventState>active</eventState>
<eventDescription>ANPR</eventDescription>
<channelName>R1 east</channelName>
<ANPR>
<country>CHN</country>
<licensePlate>{plate}</licensePlate>
<line>1</line>
<direction>forward</direction>
<confidenceLevel>96</confidenceLevel>
<plateType>92TypeCivil</plateType>
<plateColor>{color}</plateColor>
<licenseBright>0</licenseBright>
<vehicleType>{vehicle}</vehicleType>
<laneNo>2</laneNo>
<pictureInfoList>
<pictureInfo><fileName>licensePlatePicture.jpg</fileName><type>licensePlatePicture</type></pictureInfo>
<pictureInfo><fileName>detectionPicture.jpg</fileName><type>detectionPicture</type></pictureInfo>
</pictureInfoList>
</ANPR>
<UUID>{uuid}</UUID>
{gat}
</EventNotificationAlert>
""".encode()


def multipart(parts: list[tuple[str, str, bytes]], boundary: str = "MIME_boundary") -> bytes:
    out = b""
    for name, ctype, data in parts:
        out += (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
                f'filename="{name}"\r\nContent-Type: {ctype}\r\nContent-Length: {len(data)}\r\n\r\n'
            ).encode()
            + data
            + b"\r\n"
        )
    return out + f"--{boundary}--\r\n".encode()


MP_TYPE = "multipart/form-data; boundary=MIME_boundary"


def hik_multipart(xml: bytes | None = None) -> bytes:
    return multipart(
        [
            ("anpr.xml", "text/xml", xml or anpr_xml()),
            ("licensePlatePicture.jpg", "image/jpeg", JPEG_PLATE),
            ("detectionPicture.jpg", "image/jpeg", JPEG_SCENE),
        ]
    )


def test_hikvision_xml_alone_reads_plate_colour_and_time() -> None:
    """The colour in front of the plate is split off; time keeps its offset; no pictures."""
    capture = decode_hikvision(anpr_xml(), "application/xml; charset=utf-8")
    assert capture.plate == "苏A8HK52" and capture.plate_raw == "蓝苏A8HK52"
    assert capture.plate_color is PlateColor.BLUE and capture.plate_readable
    assert capture.vehicle_class is VehicleClass.CAR and capture.ga_plate_type == "02"
    assert capture.captured_at == dt.datetime(2025, 3, 1, 8, 0, tzinfo=dt.UTC)
    assert capture.event_id == "8f1e2d3c-0001-4a5b-9c8d-7e6f5a4b3c2d"
    assert capture.lane == 2 and capture.confidence == 96 and capture.pictures == ()


def test_hikvision_multipart_carries_both_pictures() -> None:
    """The pictures listed in pictureInfoList come out with their kinds and exact bytes."""
    capture = decode_hikvision(hik_multipart(), MP_TYPE)
    by_kind = {p.kind: p for p in capture.pictures}
    assert by_kind[PictureKind.PLATE].data == JPEG_PLATE
    assert by_kind[PictureKind.SCENE].data == JPEG_SCENE
    assert by_kind[PictureKind.SCENE].content_type == "image/jpeg"


def test_hikvision_multipart_with_bare_lf_lines() -> None:
    """Firmware that ends header lines with LF only is read the same way."""
    body = hik_multipart().replace(b"\r\n", b"\n")
    capture = decode_hikvision(body, MP_TYPE)
    assert capture.plate == "苏A8HK52" and len(capture.pictures) == 2


def test_hikvision_truck_with_gat_info_is_a_large_goods_vehicle() -> None:
    """VehicleGATInfo (sic: palteTypeByGAT) gives the GA plate type and the truck class."""
    gat = (
        "<VehicleGATInfo><palteTypeByGAT>01</palteTypeByGAT>"
        "<vehicleTypeByGAT>H11</vehicleTypeByGAT></VehicleGATInfo>"
    )
    capture = decode_hikvision(
        anpr_xml(plate="黄苏C12345", color="yellow", vehicle="vehicle", gat=gat), "text/xml"
    )
    assert capture.plate_color is PlateColor.YELLOW
    assert capture.vehicle_class is VehicleClass.TRUCK and capture.ga_plate_type == "01"


def test_hikvision_odd_numbers_are_dropped_not_fatal() -> None:
    """A non-finite lane or confidence is left out; the plate read still counts."""
    xml = anpr_xml().replace(b"<laneNo>2</laneNo>", b"<laneNo>1e400</laneNo>")
    xml = xml.replace(
        b"<confidenceLevel>96</confidenceLevel>", b"<confidenceLevel>nan</confidenceLevel>"
    )
    capture = decode_hikvision(xml, "text/xml")
    assert capture.lane is None and capture.confidence is None and capture.plate == "苏A8HK52"


def test_hikvision_no_plate_is_kept_unreadable() -> None:
    """无车牌 is no plate: an empty plate that is not readable."""
    capture = decode_hikvision(anpr_xml(plate="无车牌", color="unknown"), "text/xml")
    assert capture.plate == "" and not capture.plate_readable and capture.plate_color is None


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>
<EventNotificationAlert><eventType>ANPR</eventType><x>&lol2;</x></EventNotificationAlert>"""
XXE = b"""<?xml version="1.0"?>
<!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<EventNotificationAlert><eventType>ANPR</eventType><x>&xxe;</x></EventNotificationAlert>"""


@pytest.mark.parametrize(
    ("body", "content_type", "words"),
    [
        pytest.param(BILLION_LAUGHS, "text/xml", "refused XML", id="entity-expansion"),
        pytest.param(XXE, "text/xml", "refused XML", id="external-entity"),
        pytest.param(anpr_xml()[:-40], "text/xml", "malformed XML", id="truncated"),
        pytest.param(anpr_xml(event_type="VMD"), "text/xml", "not ANPR", id="wrong-event-type"),
        pytest.param(anpr_xml(uuid=""), "text/xml", "UUID", id="no-uuid"),
        pytest.param(anpr_xml(when="yesterday"), "text/xml", "ISO 8601", id="bad-time"),
        pytest.param(
            anpr_xml(when="0001-01-01T00:00:00+14:00"), "text/xml", "plausible", id="year-one"
        ),
        pytest.param(b"<other/>", "text/xml", "not EventNotificationAlert", id="wrong-root"),
        pytest.param(b"", "text/xml", "empty", id="empty"),
        pytest.param(b"<a>" * 100_000, "text/xml", "over", id="too-big"),
        pytest.param(b'{"a":1}', "application/json", "not ANPR", id="json-not-an-alert"),
        pytest.param(b"{}", "image/png", "neither XML", id="picture-type"),
        pytest.param(anpr_xml(plate="苏" * 40), "text/xml", "not a plate", id="long-plate"),
        pytest.param(hik_multipart()[:-30], MP_TYPE, "truncated", id="multipart-truncated"),
        pytest.param(hik_multipart(), "multipart/form-data", "boundary", id="no-boundary"),
        pytest.param(
            multipart([("licensePlatePicture.jpg", "image/jpeg", JPEG_PLATE)]),
            MP_TYPE,
            "0 alert (XML or JSON) parts",
            id="multipart-without-xml",
        ),
        pytest.param(hik_multipart(BILLION_LAUGHS), MP_TYPE, "refused XML", id="multipart-bomb"),
    ],
)
def test_hikvision_refuses_hostile_and_malformed(
    body: bytes, content_type: str, words: str
) -> None:
    """Each hostile or malformed body raises DecodeError naming the reason."""
    with pytest.raises(DecodeError) as info:
        decode_hikvision(body, content_type)
    assert words in info.value.reason


@given(st.binary(max_size=400))
def test_hikvision_arbitrary_bytes_never_escape_as_other_errors(data: bytes) -> None:
    """Any bytes give a Capture or a DecodeError, never another exception."""
    for content_type in ("text/xml", MP_TYPE):
        with contextlib.suppress(DecodeError):
            decode_hikvision(data, content_type)


@given(st.integers(min_value=0, max_value=len(hik_multipart()) - 3))  # before the final CRLF
def test_multipart_every_prefix_is_refused_as_truncated(cut: int) -> None:
    """A body cut anywhere before its closing boundary is refused, never half-read."""
    with pytest.raises(DecodeError):
        decode_hikvision(hik_multipart()[:cut], MP_TYPE)


def test_multipart_parts_keep_their_bytes() -> None:
    """Binary parts holding CR LF and look-alike dashes come out exactly."""
    parts = parse_multipart(hik_multipart(), MP_TYPE)
    assert [p.name for p in parts] == [
        "anpr.xml",
        "licensePlatePicture.jpg",
        "detectionPicture.jpg",
    ]
    assert parts[2].data == JPEG_SCENE


def dahua_event(code: str = "TrafficParking", action: str = "Start", **car: object) -> dict:
    return {
        "Code": code,
        "Action": action,
        "Index": 0,
        "Data": {
            "Class": "Traffic",
            "UTC": 1740816000,
            "UTCMS": 250,
            "EventID": 516,
            "GroupID": 175706653,
            "Lane": 2,
            "TrafficCar": {
                "PlateNumber": "苏A8HK52",
                "PlateColor": "Blue",
                "PlateType": "Normal",
                "VehicleType": "SaloonCar",
                **car,
            },
            "Object": {"ObjectType": "Plate", "Text": "苏A8HK52"},
        },
    }


def test_dahua_traffic_parking_start_and_stop() -> None:
    """Start is a sighting, Stop a departure; ids differ by action; UTC with milliseconds."""
    start = decode_dahua(json.dumps(dahua_event()).encode(), "application/json")
    stop = decode_dahua(json.dumps(dahua_event(action="Stop")).encode(), "application/json")
    assert start.kind is CaptureKind.PRESENT and stop.kind is CaptureKind.DEPARTURE
    assert start.event_id != stop.event_id
    assert start.captured_at == dt.datetime(2025, 3, 1, 8, 0, 0, 250000, tzinfo=dt.UTC)
    assert start.plate == "苏A8HK52" and start.plate_color is PlateColor.BLUE
    assert start.vehicle_class is VehicleClass.CAR and start.lane == 2


def test_dahua_junction_in_event_stream_envelope_with_pictures() -> None:
    """The notifyEventStream envelope and a multipart body with a JPEG are both read."""
    doc = {
        "method": "client.notifyEventStream",
        "params": {
            "eventList": [
                dahua_event(
                    "TrafficJunction",
                    "Pulse",
                    PlateColor="Yellow",
                    VehicleType="LargeTruck",
                    PlateNumber="苏C12345",
                )
            ]
        },
    }
    body = multipart(
        [
            ("event", "application/json", json.dumps(doc).encode()),
            ("plate.jpg", "image/jpeg", JPEG_PLATE),
        ]
    )
    capture = decode_dahua(body, MP_TYPE)
    assert capture.vehicle_class is VehicleClass.TRUCK and capture.plate_color is PlateColor.YELLOW
    assert capture.ga_plate_type == "01"
    assert capture.pictures[0].kind is PictureKind.PLATE and capture.pictures[0].data == JPEG_PLATE


@pytest.mark.parametrize(
    ("doc", "words"),
    [
        pytest.param(dahua_event("VideoMotion"), "is not one of", id="wrong-code"),
        pytest.param({"Code": "TrafficParking", "Data": {}}, "TrafficCar", id="no-car"),
        pytest.param([1, 2], "not a JSON object", id="array"),
        pytest.param(
            {**dahua_event(), "Data": {"TrafficCar": {}, "EventID": 1}}, "UTC", id="no-time"
        ),
    ],
)
def test_dahua_refuses_malformed(doc: object, words: str) -> None:
    """Wrong event codes and missing parts raise DecodeError with the reason."""
    with pytest.raises(DecodeError) as info:
        decode_dahua(json.dumps(doc).encode(), "application/json")
    assert words in info.value.reason


def test_dahua_refuses_broken_json() -> None:
    """Truncated JSON is a DecodeError."""
    with pytest.raises(DecodeError, match="malformed JSON"):
        decode_dahua(json.dumps(dahua_event()).encode()[:-5], "application/json")


def test_parkgrid_json_with_reference_and_multipart_picture() -> None:
    """A picture as a part and one by reference; time converted to UTC."""
    doc = {
        "camera_id": "C3",
        "event_id": "e-1",
        "time": "2025-03-01T16:00:00+08:00",
        "plate": "苏A·8HK52",
        "plate_color": "blue",
        "vehicle_class": "suv",
        "lot_id": "P1",
        "pictures": [
            {"name": "plate.jpg", "kind": "plate"},
            {"name": "old.jpg", "kind": "scene", "sha256": "a" * 64},
        ],
    }
    body = multipart(
        [
            ("capture", "application/json", json.dumps(doc).encode()),
            ("plate.jpg", "image/jpeg", JPEG_PLATE),
        ]
    )
    capture = decode_parkgrid(body, MP_TYPE)
    assert capture.plate == "苏A8HK52" and capture.vehicle_class is VehicleClass.SUV_MPV
    assert capture.captured_at.tzinfo == dt.UTC and capture.captured_at.hour == 8
    assert capture.pictures[0].data == JPEG_PLATE and capture.pictures[1].sha256 == "a" * 64


@pytest.mark.parametrize(
    ("doc", "words"),
    [
        pytest.param(
            {"camera_id": "C3", "event_id": "x", "time": "2025-03-01T08:00:00"},
            "timezone",
            id="naive-time",
        ),
        pytest.param(
            {
                "camera_id": "C3",
                "event_id": "x",
                "time": "2025-03-01T08:00:00Z",
                "plate_color": "purple",
            },
            "plate colour",
            id="bad-colour",
        ),
        pytest.param(
            {
                "camera_id": "C3",
                "event_id": "x",
                "time": "2025-03-01T08:00:00Z",
                "pictures": [{"name": "p.jpg"}],
            },
            "neither a part",
            id="missing-picture",
        ),
        pytest.param(
            {"camera_id": "C3", "event_id": "x", "time": "2025-03-01T08:00:00Z", "surprise": 1},
            "surprise",
            id="unknown-field",
        ),
    ],
)
def test_parkgrid_refuses_malformed(doc: dict, words: str) -> None:
    """Schema violations are DecodeErrors naming the field."""
    with pytest.raises(DecodeError) as info:
        decode_parkgrid(json.dumps(doc).encode(), "application/json")
    assert words in info.value.reason


@pytest.mark.parametrize(
    ("raw", "colour", "plate", "expected"),
    [
        pytest.param("蓝苏A8HK52", None, "苏A8HK52", PlateColor.BLUE, id="blue-prefix"),
        pytest.param("黄绿苏A12345D", None, "苏A12345D", PlateColor.YELLOW_GREEN, id="yg-prefix"),
        pytest.param("苏AD12345", None, "苏AD12345", PlateColor.GREEN, id="eight-chars-green"),
        pytest.param("ｓｕ苏Ａ８ＨＫ５２", "blue", "SU苏A8HK52", PlateColor.BLUE, id="full-width"),
        pytest.param("苏A 8HK52", "Yellow", "苏A8HK52", PlateColor.YELLOW, id="field-colour"),
        pytest.param("白苏A1234警", None, "苏A1234警", PlateColor.WHITE, id="police"),
        pytest.param("", "blue", "", PlateColor.BLUE, id="empty"),
    ],
)
def test_normalise_plate(raw: str, colour: str | None, plate: str, expected: PlateColor) -> None:
    """Prefixes, separators and full-width forms normalise to one plate text and colour."""
    assert normalise_plate(raw, colour) == (plate, expected)


@pytest.mark.parametrize(
    ("plate", "colour", "code"),
    [
        pytest.param("苏C12345", PlateColor.YELLOW, "01", id="large"),
        pytest.param("苏A8HK52", PlateColor.BLUE, "02", id="small"),
        pytest.param("苏C1234挂", PlateColor.YELLOW, "15", id="trailer"),
        pytest.param("苏A1234学", PlateColor.YELLOW, "16", id="coach"),
        pytest.param("苏A12345D", PlateColor.YELLOW_GREEN, "51", id="ne-large"),
        pytest.param("苏AD12345", PlateColor.GREEN, "52", id="ne-small"),
        pytest.param("苏A8HK52", None, None, id="unknown"),
    ],
)
def test_ga_plate_type(plate: str, colour: PlateColor | None, code: str | None) -> None:
    """GA plate-type codes follow the colour and the class suffix."""
    assert ga_plate_type(plate, colour, VehicleClass.UNKNOWN) == code
