"""The conformance corpus: every field each real-shaped sample carries (issue 21)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from firmware_protocols.cameras import (
    CaptureKind,
    PictureKind,
    PlateColor,
    VehicleClass,
    decode_dahua,
    decode_hikvision,
)
from tests.firmware_protocols.camera_corpus import (
    JPEG_A,
    JPEG_B,
    JPEG_C,
    STREAM_TYPE,
    attach_stream,
    hik_pid_multipart,
    sample,
    stream_part,
)

BANGKOK = ZoneInfo("Asia/Bangkok")  # the sample camera's UTC+7
SHANGHAI = ZoneInfo("Asia/Shanghai")


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.UTC)


# --- finding 1: Dahua time -------------------------------------------------------------------


def test_dahua_realutc_is_the_instant_not_utc_plus_offset() -> None:
    """UTC 1706625295 is local wall time; RealUTC 1706600095 is 07:34:55Z."""
    capture = decode_dahua(sample("dahua-notifyEventStream-itc.json"), "application/json")
    assert capture.captured_at == utc(2024, 1, 30, 7, 34, 55) + dt.timedelta(milliseconds=305)
    assert capture.time_basis == "RealUTC"


def test_dahua_utc_without_realutc_is_local_time_in_the_cameras_zone() -> None:
    body = sample("dahua-attach-event.txt")  # UTC 1706625310, no RealUTC
    capture = decode_dahua(body, "text/plain", assume_tz=BANGKOK)
    assert capture.captured_at == utc(2024, 1, 30, 7, 35, 10, 120000)
    assert capture.time_basis == "UTC as local time in Asia/Bangkok"
    in_china = decode_dahua(body, "text/plain", assume_tz=SHANGHAI)
    assert in_china.captured_at == utc(2024, 1, 30, 6, 35, 10, 120000)


def test_dahua_localetime_alone_is_read_in_the_cameras_zone() -> None:
    body = b'{"Code":"TrafficJunction","Data":{"EventID":1,"LocaleTime":"2024-01-30 14:34:55",'
    body += b'"TrafficCar":{"PlateNumber":"\xe6\xb5\x99A12345"}}}'
    capture = decode_dahua(body, "application/json", assume_tz=BANGKOK)
    assert capture.captured_at == utc(2024, 1, 30, 7, 34, 55)


# --- finding 2: Dahua push formats -------------------------------------------------------------


def test_dahua_itc_event_every_field() -> None:
    capture = decode_dahua(sample("dahua-notifyEventStream-itc.json"), "application/json")
    assert capture.plate == "浙A12345" and capture.plate_readable
    assert capture.plate_color is PlateColor.YELLOW  # YellowbottomBlackText
    assert capture.vehicle_class is VehicleClass.TRUCK  # slagTruck
    assert capture.ga_plate_type == "01"
    assert capture.lane == 2 and capture.direction == "Leave"
    assert capture.event_id == "TrafficJunction/175706653/516/Pulse"
    assert capture.kind is CaptureKind.PRESENT and capture.unmapped == ()


def test_dahua_key_value_text_event_alone() -> None:
    capture = decode_dahua(sample("dahua-text-event.txt"), "text/plain")
    assert capture.plate == "京X1234应急" and capture.plate_readable
    assert capture.kind is CaptureKind.DEPARTURE  # TrafficParking, Action Stop
    assert capture.vehicle_class is VehicleClass.MOTORCYCLE  # Motor
    assert capture.captured_at == utc(2024, 1, 30, 8, 23, 20)  # RealUTC
    assert capture.plate_color is PlateColor.WHITE


def test_dahua_snapmanager_key_values_with_event_base_info() -> None:
    capture = decode_dahua(sample("dahua-snapmanager-events.txt"), "text/plain", assume_tz=SHANGHAI)
    assert capture.plate == "浙A12345" and capture.plate_color is PlateColor.YELLOW
    assert capture.vehicle_class is VehicleClass.TRUCK  # DregsCar
    assert capture.lane == 3 and capture.event_id == "TrafficParking/8803/9121/Start"
    assert capture.captured_at == utc(2024, 1, 30, 6, 36, 40)


def test_dahua_attach_stream_one_capture_per_event_with_its_pictures() -> None:
    from firmware_protocols.cameras import read_dahua

    reading = read_dahua(attach_stream(), STREAM_TYPE, camera_tz=BANGKOK)
    assert reading.refused == ()
    assert reading.heartbeats == 4 and reading.ignored == ("VideoMotion",)
    plates = [c.plate for c in reading.captures]
    assert plates == ["浙A12345", "浙B54321", "浙A12345"]
    pictures = [[p.data for p in c.pictures] for c in reading.captures]
    assert pictures == [[JPEG_A], [JPEG_B, JPEG_C], [JPEG_A + b"-3"]]
    assert len({c.event_id for c in reading.captures}) == 3


def test_dahua_stream_cut_mid_part_keeps_the_whole_events() -> None:
    body = attach_stream() + stream_part("image/jpeg", JPEG_B)[:-20]
    from firmware_protocols.cameras import read_dahua

    reading = read_dahua(body, STREAM_TYPE, camera_tz=BANGKOK)
    assert len(reading.captures) == 3
    assert [r.reason for r in reading.refused] == ["stream cut inside this part"]


def test_dahua_stream_bad_part_is_refused_alone() -> None:
    body = stream_part("text/plain", b"Code=TrafficJunction;action=Pulse;data={broken")
    body += stream_part("text/plain", sample("dahua-attach-event.txt"))
    from firmware_protocols.cameras import read_dahua

    reading = read_dahua(body, STREAM_TYPE, camera_tz=BANGKOK)
    assert [c.plate for c in reading.captures] == ["浙B54321"]
    assert reading.refused[0].where == "part 0" and "not JSON" in reading.refused[0].reason


def test_dahua_itsapi_tollgate_with_base64_pictures() -> None:
    capture = decode_dahua(
        sample("dahua-itsapi-tollgate.json"), "application/json", assume_tz=SHANGHAI
    )
    assert capture.plate == "浙A99999" and capture.plate_color is PlateColor.YELLOW
    assert capture.vehicle_class is VehicleClass.TRUCK  # containerTruck
    assert capture.captured_at == utc(2024, 1, 30, 6, 40, 0, 450000)
    assert capture.lane == 1 and capture.confidence == 95 and capture.direction == "Approach"
    assert capture.event_id == "itsapi/8M049B2PAJF3085/202401301440000450-01"
    kinds = {p.kind: p.data for p in capture.pictures}
    assert kinds[PictureKind.PLATE].startswith(b"\xff\xd8") and PictureKind.SCENE in kinds


def test_dahua_parking_space_events_are_arrival_and_departure_at_a_space() -> None:
    arrived = decode_dahua(sample("dahua-parking-space-parking.json"), "application/json")
    left = decode_dahua(sample("dahua-parking-space-noparking.json"), "application/json")
    assert arrived.kind is CaptureKind.PRESENT and left.kind is CaptureKind.DEPARTURE
    assert arrived.space == left.space == "4"
    assert arrived.plate == "浙A8HK52" and arrived.vehicle_class is VehicleClass.CAR


# --- finding 3: Hikvision lane and pId pictures ---------------------------------------------------


def test_hikvision_cn_line_direction_and_pid_pictures() -> None:
    body, content_type = hik_pid_multipart()
    capture = decode_hikvision(body, content_type)
    assert capture.lane == 2 and capture.direction == "reverse"
    kinds = {p.data: p.kind for p in capture.pictures}
    assert kinds == {JPEG_C: PictureKind.PLATE, JPEG_B: PictureKind.SCENE}
    assert capture.plate == "浙A12345" and capture.plate_color is PlateColor.YELLOW
    assert capture.vehicle_class is VehicleClass.TRUCK and capture.ga_plate_type == "01"
    assert capture.captured_at == utc(2023, 8, 11, 7, 2, 36)


def test_hikvision_json_alert() -> None:
    capture = decode_hikvision(sample("hikvision-anpr.json"), "application/json")
    assert capture.plate == "粤BD12345" and capture.plate_color is PlateColor.GREEN
    assert capture.ga_plate_type == "52" and capture.vehicle_class is VehicleClass.SUV_MPV
    assert capture.lane == 1 and capture.confidence == 97
    assert capture.event_id == "2025030116000000-json-0001"


def test_hikvision_heartbeat_and_other_alerts_are_not_refusals() -> None:
    from firmware_protocols.cameras import read_hikvision

    xml = sample("hikvision-anpr-cn-pid.xml").replace(
        b">ANPR</eventType>", b">videoloss</eventType>"
    )
    xml = xml.replace(b">active<", b">inactive<")
    assert read_hikvision(xml, "text/xml").heartbeats == 1
    motion = xml.replace(b">videoloss<", b">VMD<")
    assert read_hikvision(motion, "text/xml").ignored == ("VMD",)


def test_unknown_vehicle_type_kept_raw() -> None:
    xml = sample("hikvision-anpr-cn-pid.xml").replace(b"heavyTruck", b"excavator")
    xml = xml.replace(b"<vehicleTypeByGAT>H11</vehicleTypeByGAT>", b"")
    capture = decode_hikvision(xml, "text/xml")
    assert capture.vehicle_class is VehicleClass.UNKNOWN
    assert capture.unmapped == (("vehicle_type", "excavator"),)


def test_dahua_itc_sample_as_captured_no_plate_tricycle() -> None:
    """The ITC capture as it was published: a non-motor tricycle, no plate read."""
    capture = decode_dahua(sample("dahua-notifyEventStream-itc-nonmotor.json"), "application/json")
    assert capture.captured_at == utc(2024, 1, 30, 7, 34, 55, 305000)
    assert capture.plate == "" and not capture.plate_readable and capture.plate_color is None
    assert capture.vehicle_class is VehicleClass.TRICYCLE
    assert capture.lane == 2 and capture.direction == "Leave" and capture.unmapped == ()


def test_hikvision_time_basis_with_negative_offset_and_without() -> None:
    xml = sample("hikvision-anpr-cn-pid.xml")
    west = decode_hikvision(xml.replace(b"+08:00<", b"-05:00<"), "text/xml")
    assert west.time_basis == "dateTime with its offset"
    assert west.captured_at == utc(2023, 8, 11, 20, 2, 36)
    bare = decode_hikvision(xml.replace(b"+08:00<", b"<"), "text/xml", assume_tz=SHANGHAI)
    assert bare.time_basis == "dateTime without offset, read in Asia/Shanghai"
    assert bare.captured_at == utc(2023, 8, 11, 7, 2, 36)
