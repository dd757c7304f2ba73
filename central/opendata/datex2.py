"""DATEX II v3 parking: a ``ParkingTablePublication`` (the lots) and a
``ParkingStatusPublication`` (their occupancy), each as a ``d2:payload`` document.

Namespaces and element names as in the DATEX II v3 schema files (``DATEXII_3_Parking.xsd``,
``DATEXII_3_Common.xsd``, ``DATEXII_3_LocationReferencing.xsd``, ``DATEXII_3_D2Payload.xsd``);
the tests validate both documents against a copy of them (``tests/schemas/datex2-v3/``).
Pure: no I/O, no clock. Written with ElementTree, so every text is escaped.
"""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET
from collections.abc import Iterable

from central.lots.models import LotOut
from central.opendata.parkapi import opening_status
from site_model.site import Site

NS = {
    "d2": "http://datex2.eu/schema/3/d2Payload",
    "com": "http://datex2.eu/schema/3/common",
    "loc": "http://datex2.eu/schema/3/locationReferencing",
    "par": "http://datex2.eu/schema/3/parking",
    "xsi": "http://www.w3.org/2001/XMLSchema-instance",
}
for _prefix, _uri in NS.items():
    ET.register_namespace(_prefix, _uri)

LANG = "zh"
COUNTRY = "cn"
_STATUS = {
    "spacesAvailable": "spacesAvailable",
    "almostFull": "almostFull",
    "full": "full",
    "closed": "unknown",  # closure is said by parkingSiteOpeningStatus
    "unknown": "unknown",
}
_TREND = {"filling": "increasing", "emptying": "decreasing", "steady": "stable"}
_OPENING = {"OPEN": "open", "CLOSED": "closed", "UNKNOWN": "statusUnknown"}


def _q(name: str) -> str:
    prefix, local = name.split(":")
    return f"{{{NS[prefix]}}}{local}"


def _sub(parent: ET.Element, name: str, text: str | None = None, **attrs: str) -> ET.Element:
    element = ET.SubElement(
        parent, _q(name), {(_q(k) if ":" in k else k): v for k, v in attrs.items()}
    )
    if text is not None:
        element.text = text
    return element


def _time(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _multilingual(parent: ET.Element, name: str, text: str) -> None:
    values = _sub(_sub(parent, name), "com:values")
    _sub(values, "com:value", text[:1024], lang=LANG)


def _payload(kind: str, site: Site, now: dt.datetime) -> ET.Element:
    root = ET.Element(
        _q("d2:payload"),
        {_q("xsi:type"): kind, "lang": LANG, "modelBaseVersion": "3"},
    )
    _sub(root, "com:publicationTime", _time(now))
    creator = _sub(root, "com:publicationCreator")
    _sub(creator, "com:country", COUNTRY)
    _sub(creator, "com:nationalIdentifier", site.id)
    return root


def record_id(site: Site, lot_id: str) -> str:
    return f"{site.id}-{lot_id}"


def _bytes(root: ET.Element) -> bytes:
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def table_publication(
    lots: Iterable[LotOut], site: Site, *, now: dt.datetime, version_time: dt.datetime
) -> bytes:
    """The lots as ``UrbanParkingSite`` records: name, spaces, position, address, hours."""
    root = _payload("par:ParkingTablePublication", site, now)
    table = _sub(root, "par:parkingTable", id=f"{site.id}-lots", version="1")
    _multilingual(table, "par:parkingTableName", site.site.name)
    _sub(table, "par:parkingTableVersionTime", _time(version_time))
    for lot in lots:
        entry = site.lots.get(lot.id)
        if entry is None or entry.location is None:
            continue
        record = _sub(
            table,
            "par:parkingRecord",
            **{"xsi:type": "par:UrbanParkingSite", "id": record_id(site, lot.id), "version": "1"},
        )
        _multilingual(record, "par:parkingName", entry.name)
        if entry.address:
            _multilingual(record, "par:parkingDescription", entry.address)
        _sub(record, "par:parkingRecordVersionTime", _time(version_time))
        _sub(record, "par:parkingNumberOfSpaces", str(lot.capacity))
        location = _sub(record, "par:parkingLocation", **{"xsi:type": "loc:PointLocation"})
        point = _sub(_sub(location, "loc:pointByCoordinates"), "loc:pointCoordinates")
        _sub(point, "loc:latitude", f"{entry.location.lat:.7f}")
        _sub(point, "loc:longitude", f"{entry.location.lon:.7f}")
        _sub(record, "par:urbanParkingSiteType", "offStreetParking")
    return _bytes(root)


def status_publication(lots: Iterable[LotOut], site: Site, *, now: dt.datetime) -> bytes:
    """Each lot's occupancy (``ParkingSiteStatus``): vacant and occupied spaces, trend, status."""
    root = _payload("par:ParkingStatusPublication", site, now)
    _sub(
        root,
        "par:parkingTableReference",
        id=f"{site.id}-lots",
        version="1",
        targetClass="par:ParkingTable",
    )
    for lot in lots:
        entry = site.lots.get(lot.id)
        if entry is None or entry.location is None:
            continue
        status = _sub(root, "par:parkingRecordStatus", **{"xsi:type": "par:ParkingSiteStatus"})
        _sub(
            status,
            "par:parkingRecordReference",
            id=record_id(site, lot.id),
            version="1",
            targetClass="par:ParkingRecord",
        )
        _sub(status, "par:parkingStatusOriginTime", _time(lot.updated or now))
        occupancy = _sub(status, "par:parkingOccupancy")
        opening = opening_status(lot, entry.hours, now)
        if opening != "UNKNOWN":
            in_service = lot.capacity - lot.closed
            _sub(occupancy, "par:parkingNumberOfSpacesOverride", str(in_service))
            _sub(occupancy, "par:parkingNumberOfVacantSpaces", str(lot.free))
            _sub(occupancy, "par:parkingNumberOfOccupiedSpaces", str(lot.occupied))
            if in_service > 0:
                percent = round(100.0 * lot.occupied / in_service, 1)
                _sub(occupancy, "par:parkingOccupancy", f"{percent:.1f}")
            if lot.trend in _TREND:
                _sub(occupancy, "par:parkingOccupancyTrend", _TREND[lot.trend])
        _sub(
            status,
            "par:parkingSiteStatus",
            _STATUS.get(lot.status, "unknown") if opening != "UNKNOWN" else "unknown",
        )
        _sub(status, "par:parkingSiteOpeningStatus", _OPENING[opening])
    return _bytes(root)
