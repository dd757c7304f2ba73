"""The drivers' board: what the public page and its JSON show, built from public figures only.

``build_board(lots, site, now)`` takes the lots' public figures (``LotOut``, the same the
open-data endpoint serves), the site file and the site's local time, and returns a plain
dict. Only named fields are copied, so nothing private (plates, captures, sensor ids, box
names, cases) can reach a driver by accident. Pure: no I/O, no clock.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from typing import Any

from central.lots.models import LotOut
from central.public.geo import LatLon, nav_links
from site_model.site import Site

# The driver's state of a lot, in the order a driver cares about.
AVAILABLE, TIGHT, FULL, CLOSED, NO_DATA = "available", "tight", "full", "closed", "nodata"
_BY_STATUS = {"spacesAvailable": AVAILABLE, "almostFull": TIGHT, "full": FULL, "closed": CLOSED}


def _minutes(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


def _window(hours: str) -> tuple[int, int]:
    start, end = hours.split("-")
    return _minutes(start), _minutes(end)


def in_window(hours: str, now: dt.datetime) -> bool:
    """Whether local ``now`` is inside ``'HH:MM-HH:MM'`` (which may cross midnight)."""
    start, end = _window(hours)
    t = now.hour * 60 + now.minute
    if start == end:
        return True  # "00:00-24:00" style: all day
    if start < end:
        return start <= t < end
    return t >= start or t < end


def next_change(windows: Iterable[str], now: dt.datetime) -> tuple[bool, str | None]:
    """Whether any window is open at ``now``, and the 'HH:MM' of the next open/close edge."""
    windows = list(windows)
    is_open = any(in_window(w, now) for w in windows)
    t = now.hour * 60 + now.minute
    edges: list[int] = []
    for w in windows:
        start, end = _window(w)
        edges.append(end if is_open else start)
    if not edges:
        return is_open, None
    ahead = min(edges, key=lambda edge: (edge - t) % (24 * 60) or 24 * 60)
    ahead %= 24 * 60
    return is_open, f"{ahead // 60:02d}:{ahead % 60:02d}"


def lot_state(lot: LotOut, *, open_now: bool) -> str:
    if lot.stale or lot.status == "unknown":
        return NO_DATA
    if not open_now:
        return CLOSED
    return _BY_STATUS.get(lot.status, NO_DATA)


def _local(
    value: dt.datetime | None, now: dt.datetime, to_town: Callable[[float], float] | None
) -> str | None:
    if value is None:
        return None
    epoch = to_town(value.timestamp()) if to_town is not None else value.timestamp()
    return dt.datetime.fromtimestamp(epoch, now.tzinfo).strftime("%H:%M:%S")


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def build_board(
    lots: Iterable[LotOut],
    site: Site,
    now: dt.datetime,
    forecasts: dict[str, Any] | None = None,
    *,
    to_town: Callable[[float], float] | None = None,
) -> dict[str, Any]:
    """The board for local time ``now`` (aware, in the site's timezone).

    ``to_town`` maps a report's time to the town's clock (a simulated town runs faster
    than the boxes' wall clock); the page shows every time on the town's clock.
    """
    out_lots: list[dict[str, Any]] = []
    latest: dt.datetime | None = None
    for lot in lots:
        entry = site.lots.get(lot.id)
        if entry is None:  # only what the site file publishes
            continue
        hours = entry.hours
        open_now = hours is None or in_window(hours, now)
        state = lot_state(lot, open_now=open_now)
        item: dict[str, Any] = {
            "id": lot.id,
            "name": entry.name,
            "capacity": lot.capacity,
            "free": None if state == NO_DATA else lot.free,
            "state": state,
            "trend": None if state == NO_DATA else lot.trend,
            "hours": hours,
            "address": entry.address,
            "updated": _iso(lot.updated),
            "location": None,
            "nav": None,
            "forecast": (forecasts or {}).get(lot.id),
        }
        if entry.location is not None:
            where = LatLon(entry.location.lat, entry.location.lon)
            links = nav_links(where, entry.name)
            item["location"] = {"lat": where.lat, "lon": where.lon}
            item["nav"] = {"amap": links.amap, "baidu": links.baidu, "geo": links.geo}
        if lot.updated is not None and (latest is None or lot.updated > latest):
            latest = lot.updated
        out_lots.append(item)
    zones: list[dict[str, Any]] = []
    for zone_id, zone in site.zones.items():
        is_open, change = next_change(zone.trading_hours, now)
        zones.append(
            {
                "id": zone_id,
                "name": zone.name,
                "hours": list(zone.trading_hours),
                "open_now": is_open,
                "change_at": change,
                "location": (
                    {"lat": zone.location.lat, "lon": zone.location.lon}
                    if zone.location is not None
                    else None
                ),
            }
        )
    return {
        "site": {"name": site.site.name},
        "now": now.isoformat(timespec="minutes"),
        "clock": now.strftime("%H:%M"),
        "updated": _iso(latest),
        "updated_local": _local(latest, now, to_town),
        "lots": out_lots,
        "zones": zones,
    }
