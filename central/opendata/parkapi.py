"""ParkAPI v3 parking sites: the push/pull JSON document ``{"items": [ParkingSite, ...]}``.

Each item carries the static fields of parkapi-sources' ``StaticParkingSiteInput`` and the
realtime ones of ``RealtimeParkingSiteInput`` (ParkAPI's ``ParkApiConverter`` validates
every item against both). The copy of the schema the tests check against is in
``tests/schemas/parkapi-v3/`` with its source. Pure: no I/O, no clock.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from central.lots.models import LotOut
from central.public.board import in_window
from site_model.site import Site


def _utc(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def osm_opening_hours(hours: str | None) -> str:
    """The site file's 'HH:MM-HH:MM' (every day) in OSM ``opening_hours`` syntax."""
    return "24/7" if hours is None or hours in ("00:00-24:00", "00:00-00:00") else f"Mo-Su {hours}"


def opening_status(lot: LotOut, hours: str | None, now: dt.datetime) -> str:
    if lot.stale or lot.status == "unknown":
        return "UNKNOWN"
    if lot.status == "closed" or (hours is not None and not in_window(hours, now)):
        return "CLOSED"
    return "OPEN"


def parking_sites(
    lots: Iterable[LotOut],
    site: Site,
    *,
    now: dt.datetime,
    static_updated: dt.datetime,
    public_url: str | None = None,
    forecasts: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The document for local time ``now`` (aware, in the site's timezone)."""
    items: list[dict[str, Any]] = []
    for lot in lots:
        entry = site.lots.get(lot.id)
        if entry is None or entry.location is None:
            continue  # ParkAPI needs a position for every site
        status = opening_status(lot, entry.hours, now)
        item: dict[str, Any] = {
            "uid": f"{site.id}-{lot.id}",
            "name": entry.name,
            "purpose": "CAR",
            "type": "OFF_STREET_PARKING_GROUND",
            "address": entry.address,
            "operator_name": site.site.name,
            "has_realtime_data": True,
            "static_data_updated_at": _utc(static_updated),
            "lat": round(entry.location.lat, 7),
            "lon": round(entry.location.lon, 7),
            "capacity": lot.capacity,
            "opening_hours": osm_opening_hours(entry.hours),
            "realtime_data_updated_at": _utc(lot.updated or now),
            "realtime_opening_status": status,
            "realtime_capacity": lot.capacity - lot.closed,
        }
        if public_url:
            item["public_url"] = public_url.rstrip("/") + f"/#lot-{lot.id}"
        if status != "UNKNOWN":
            item["realtime_free_capacity"] = lot.free
        if forecasts and forecasts.get(lot.id):
            # Not in ParkAPI v3: an extension field, which its validators ignore.
            item["x_parkgrid_forecast"] = forecasts[lot.id]
        items.append({key: value for key, value in item.items() if value is not None})
    return {"items": items}
