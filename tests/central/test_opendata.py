"""ParkAPI v3 and DATEX II v3 feeds, validated against their published schemas.

The schemas are copies in ``tests/schemas/`` (their sources named in its README). Each
feed is also shown to fail validation when broken, so a pass means something.
"""

from __future__ import annotations

import copy
import datetime as dt
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import jsonschema
import pytest
import xmlschema
from fastapi.testclient import TestClient

from central.ingest.service import IngestWriter
from tests.central.test_public_page import SITE, _feed, running_central

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = ROOT / "tests" / "schemas"
PARKAPI = SCHEMAS / "parkapi-v3" / "parking-sites.json"
DATEX = SCHEMAS / "datex2-v3"
PAR = "{http://datex2.eu/schema/3/parking}"
LATE = dt.datetime(2026, 6, 3, 23, 30, tzinfo=dt.timezone(dt.timedelta(hours=8))).timestamp()


@pytest.fixture(scope="module")
def datex_schema() -> xmlschema.XMLSchema:
    return xmlschema.XMLSchema(
        str(DATEX / "DATEXII_3_D2Payload.xsd"),
        locations=[("http://datex2.eu/schema/3/parking", "DATEXII_3_Parking.xsd")],
    )


@pytest.fixture(scope="module")
def parkapi_validator() -> jsonschema.Draft202012Validator:
    import json

    schema = json.loads(PARKAPI.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    # jsonschema checks "date-time" and "uri" only with optional packages: check them here.
    formats = jsonschema.FormatChecker()

    @formats.checks("date-time", raises=ValueError)
    def _date_time(value: object) -> bool:
        if not isinstance(value, str):
            return True
        if "T" not in value:
            raise ValueError("no time")
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        return parsed.tzinfo is not None

    @formats.checks("uri")
    def _uri(value: object) -> bool:
        if not isinstance(value, str):
            return True
        parts = urlsplit(value)
        return bool(parts.scheme and parts.netloc)

    return jsonschema.Draft202012Validator(schema, format_checker=formats)


@pytest.fixture
def app(tmp_path: Path) -> Iterator[tuple[TestClient, IngestWriter]]:
    with running_central(tmp_path) as running:
        yield running


def test_parkapi_v3_validates_and_carries_realtime_free_capacity_and_status(
    app, parkapi_validator
) -> None:
    client, _ = app
    response = client.get("/api/v1/parkapi/v3/parking-sites")
    assert response.status_code == 200 and "authorization" not in response.request.headers
    document = response.json()
    parkapi_validator.validate(document)
    items = {item["uid"]: item for item in document["items"]}
    assert set(items) == {f"xigang-{lot_id}" for lot_id in SITE.lots}
    p1 = items["xigang-P1"]
    assert (p1["realtime_free_capacity"], p1["realtime_opening_status"]) == (57, "OPEN")
    assert p1["capacity"] == 180 and p1["opening_hours"] == "Mo-Su 05:00-22:00"
    assert (p1["lat"], p1["lon"]) == (34.9612, 117.0935)
    assert items["xigang-P2"]["realtime_free_capacity"] == 0
    assert items["xigang-P2"]["opening_hours"] == "24/7"
    p4 = items["xigang-P4"]  # its box never reported
    assert p4["realtime_opening_status"] == "UNKNOWN" and "realtime_free_capacity" not in p4


def test_parkapi_validation_fails_on_a_broken_document(app, parkapi_validator) -> None:
    client, _ = app
    good = client.get("/api/v1/parkapi/v3/parking-sites").json()
    for breakage in (
        lambda item: item.pop("capacity"),
        lambda item: item.update(realtime_opening_status="MAYBE"),
        lambda item: item.update(realtime_free_capacity=-1),
        lambda item: item.update(static_data_updated_at="yesterday"),
        lambda item: item.pop("realtime_data_updated_at"),
    ):
        bad = copy.deepcopy(good)
        breakage(bad["items"][0])
        assert not parkapi_validator.is_valid(bad)


def test_datex2_table_publication_validates(app, datex_schema) -> None:
    client, _ = app
    response = client.get("/api/v1/datex2/v3/parking-table")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/xml")
    datex_schema.validate(response.content)
    root = ET.fromstring(response.content)
    records = root.findall(f"{PAR}parkingTable/{PAR}parkingRecord")
    assert [r.get("id") for r in records] == [f"xigang-{lot_id}" for lot_id in SITE.lots]
    p1 = records[0]
    assert p1.findtext(f"{PAR}parkingNumberOfSpaces") == "180"
    assert SITE.lots["P1"].name in ET.tostring(p1, encoding="unicode")


def test_datex2_status_publication_validates_with_occupancy(app, datex_schema) -> None:
    client, _ = app
    response = client.get("/api/v1/datex2/v3/parking-status")
    assert response.status_code == 200
    datex_schema.validate(response.content)
    root = ET.fromstring(response.content)
    by_id = {
        status.find(f"{PAR}parkingRecordReference").get("id"): status
        for status in root.findall(f"{PAR}parkingRecordStatus")
    }
    assert set(by_id) == {f"xigang-{lot_id}" for lot_id in SITE.lots}
    p1 = by_id["xigang-P1"]
    assert p1.findtext(f"{PAR}parkingOccupancy/{PAR}parkingNumberOfVacantSpaces") == "57"
    assert p1.findtext(f"{PAR}parkingOccupancy/{PAR}parkingNumberOfOccupiedSpaces") == "123"
    assert p1.findtext(f"{PAR}parkingSiteStatus") == "spacesAvailable"
    assert by_id["xigang-P2"].findtext(f"{PAR}parkingSiteStatus") == "full"
    p4 = by_id["xigang-P4"]
    assert p4.findtext(f"{PAR}parkingSiteOpeningStatus") == "statusUnknown"
    assert p4.find(f"{PAR}parkingOccupancy/{PAR}parkingNumberOfVacantSpaces") is None


def test_datex2_validation_fails_on_a_broken_document(app, datex_schema) -> None:
    client, _ = app
    good = client.get("/api/v1/datex2/v3/parking-status").content
    broken = [
        good.replace(b"spacesAvailable", b"plentyOfRoom"),
        good.replace(b'modelBaseVersion="3"', b'modelBaseVersion="2"'),
        good.replace(b"<com:publicationTime>", b"<com:publicationTime>at "),
    ]
    for document in broken:
        assert document != good
        assert not datex_schema.is_valid(document)


def test_a_lot_outside_its_hours_is_closed_in_both_feeds(app, datex_schema) -> None:
    client, _ = app
    client.app.state.public_clock = lambda: LATE  # 23:30: P1 (05:00-22:00) is shut
    items = {i["uid"]: i for i in client.get("/api/v1/parkapi/v3/parking-sites").json()["items"]}
    assert items["xigang-P1"]["realtime_opening_status"] == "CLOSED"
    assert items["xigang-P2"]["realtime_opening_status"] == "OPEN"  # no hours: always open
    status = client.get("/api/v1/datex2/v3/parking-status").content
    datex_schema.validate(status)
    root = ET.fromstring(status)
    p1 = next(
        s
        for s in root.findall(f"{PAR}parkingRecordStatus")
        if s.find(f"{PAR}parkingRecordReference").get("id") == "xigang-P1"
    )
    assert p1.findtext(f"{PAR}parkingSiteOpeningStatus") == "closed"


@pytest.mark.parametrize(
    ("path", "follows_counts"),
    [
        ("/api/v1/parkapi/v3/parking-sites", True),
        ("/api/v1/datex2/v3/parking-table", False),  # static: names, spaces, places
        ("/api/v1/datex2/v3/parking-status", True),
    ],
)
def test_feeds_are_public_and_cached(app, path: str, follows_counts: bool) -> None:
    client, writer = app
    first = client.get(path)
    assert first.status_code == 200
    assert first.headers["cache-control"] == "public, max-age=2"
    again = client.get(path, headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304
    _feed(writer, "P1", free=11)
    changed = client.get(path, headers={"If-None-Match": first.headers["etag"]})
    assert (changed.status_code == 200) is follows_counts
