"""Lots: live figures (by the availability rule, site_model/availability.py), bays,
occupancy history and dwell times.

History and dwell are read from the rollups kept at ingest (``central.history``): a
range's cost grows with its samples and its hours, not with its events.
"""

from __future__ import annotations

import bisect
import datetime as dt
import json
import statistics
import threading
import time
from typing import Any

from pydantic import TypeAdapter
from sqlalchemy import Engine, select

from central.boxes.availability import box_of, reported_now
from central.db import schema as t
from central.errors import Invalid, NotFound
from central.history import read as history_read
from central.lots.models import (
    BayOut,
    DwellStats,
    Location,
    LotOut,
    LotsOut,
    OccupancyHistory,
    OccupancyPoint,
    SensorOut,
)
from site_model.availability import (
    DEFAULT_SETTINGS,
    Availability,
    AvailabilitySettings,
    LotFigures,
    bay_view,
    lot_view,
)

MAX_POINTS = 9000  # a leap year of hours (the heat map of a year)
MAX_RANGE_DAYS = 366


def _dt(ts: float | None) -> dt.datetime | None:
    return None if ts is None else dt.datetime.fromtimestamp(ts, dt.UTC)


def _lot_out(row: Any, settings: AvailabilitySettings, now: float) -> LotOut:
    box, age = box_of(row, settings, now)
    capacity = row.capacity
    figures = None
    if row.state_ts is not None:
        figures = LotFigures(
            capacity=capacity,
            free=row.free,
            occupied=row.occupied,
            unknown=row.unknown,
            closed=row.closed or 0,
            status=row.status,
        )
    view = lot_view(box, figures, capacity=capacity, age_s=age, current=reported_now(row))
    location = Location(lat=row.lat, lon=row.lon) if row.lat is not None else None
    return LotOut(
        id=row.lot_id,
        name=row.name,
        capacity=capacity,
        free=view.free,
        occupied=view.occupied,
        unknown=view.unknown,
        closed=view.closed,
        status=view.status,  # type: ignore[arg-type]
        trend=row.trend if view.availability is Availability.ONLINE else None,
        stale=view.stale,
        availability=view.availability.value,
        age_s=None if view.age_s is None else round(view.age_s, 1),
        last_known_free=row.free,
        updated=_dt(row.state_ts),
        location=location,
        address=row.address,
    )


def _lots_query() -> Any:
    return (
        select(t.lots, t.boxes.c.online, t.boxes.c.seen, t.boxes.c.status_changed_at)
        .select_from(t.lots.outerjoin(t.boxes, t.boxes.c.box_id == t.lots.c.box_id))
        .order_by(t.lots.c.lot_id)
    )


def list_lots(
    engine: Engine,
    settings: AvailabilitySettings = DEFAULT_SETTINGS,
    *,
    only: frozenset[str] | None = None,
) -> list[LotOut]:
    """Every lot with its figures; ``only``: a town's lots (a county, site_model/county.py)."""
    now = time.time()
    query = _lots_query()
    if only is not None:
        query = query.where(t.lots.c.lot_id.in_(sorted(only)))
    with engine.connect() as conn:
        return [_lot_out(row, settings, now) for row in conn.execute(query)]


def get_lot(
    engine: Engine, lot_id: str, settings: AvailabilitySettings = DEFAULT_SETTINGS
) -> LotOut:
    with engine.connect() as conn:
        row = conn.execute(_lots_query().where(t.lots.c.lot_id == lot_id)).first()
    if row is None:
        raise NotFound("lot", lot_id)
    return _lot_out(row, settings, time.time())


_LOTS = TypeAdapter(LotsOut)
_LOT = TypeAdapter(LotOut)


class LotsCache:
    """The public lot list, pre-encoded: rebuilt when a lot or box changes, or after
    ``max_age_s`` (changes made by other processes). The open-data endpoint serves bytes."""

    def __init__(
        self,
        engine: Engine,
        *,
        max_age_s: float = 1.0,
        settings: AvailabilitySettings = DEFAULT_SETTINGS,
        only: frozenset[str] | None = None,
    ) -> None:
        self.engine = engine
        self.max_age_s = max_age_s
        self.settings = settings
        self.only = only  # a town's lots; None: every lot in the store
        self._built_at = 0.0
        self._version = 0
        self._built_version = -1
        self._list = b""
        self._one: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def invalidate(self) -> None:
        self._version += 1

    def _fresh(self) -> bool:
        return (
            self._built_version == self._version
            and time.monotonic() - self._built_at < self.max_age_s
        )

    def _build(self) -> None:
        with self._lock:
            if self._fresh():
                return
            version = self._version
            lots = list_lots(self.engine, self.settings, only=self.only)
            self._list = _LOTS.dump_json(LotsOut(lots=lots))
            self._one = {lot.id: _LOT.dump_json(lot) for lot in lots}
            self._built_at = time.monotonic()
            self._built_version = version

    def fresh(self) -> bool:
        return self._fresh()

    def all(self) -> bytes:
        if not self._fresh():
            self._build()
        return self._list

    def one(self, lot_id: str) -> bytes:
        if not self._fresh():
            self._build()
        found = self._one.get(lot_id)
        if found is None:
            raise NotFound("lot", lot_id)
        return found


def _bay_out(row: Any, settings: AvailabilitySettings, now: float) -> BayOut:
    box, _ = box_of(row, settings, now)
    reported = row.state
    availability, state = bay_view(box, reported, current=reported_now(row))
    sensor = None
    if row.sensor_id is not None:
        sensor = SensorOut(
            sensor_id=row.sensor_id,
            flags=[f for f in (row.sensor_flags or "").split(",") if f],
            detail=json.loads(row.sensor_json) if row.sensor_json else None,
        )
    return BayOut(
        id=row.bay_id,
        lot_id=row.lot_id,
        zone_id=row.zone_id,
        state=state,
        reported_state=reported,
        stale=availability is not Availability.ONLINE,
        availability=availability.value,
        since=_dt(row.since),
        updated=_dt(row.state_ts),
        sensor=sensor,
    )


def list_bays(
    engine: Engine,
    *,
    lot_id: str | None = None,
    zone_id: str | None = None,
    settings: AvailabilitySettings = DEFAULT_SETTINGS,
) -> list[BayOut]:
    now = time.time()
    query = (
        select(t.bays, t.boxes.c.online, t.boxes.c.seen, t.boxes.c.status_changed_at)
        .select_from(t.bays.outerjoin(t.boxes, t.boxes.c.box_id == t.bays.c.box_id))
        .order_by(t.bays.c.bay_id)
    )
    with engine.connect() as conn:
        if lot_id is not None:
            if (
                conn.execute(select(t.lots.c.lot_id).where(t.lots.c.lot_id == lot_id)).first()
                is None
            ):
                raise NotFound("lot", lot_id)
            query = query.where(t.bays.c.lot_id == lot_id)
        if zone_id is not None:
            query = query.where(t.bays.c.zone_id == zone_id)
        return [_bay_out(row, settings, now) for row in conn.execute(query)]


def _range(
    start: dt.datetime | None, end: dt.datetime | None, default_s: float
) -> tuple[float, float]:
    end_ts = end.timestamp() if end else time.time()
    start_ts = start.timestamp() if start else end_ts - default_s
    if end_ts <= start_ts:
        raise Invalid("end must be after start", field="end")
    if end_ts - start_ts > MAX_RANGE_DAYS * 86400:
        raise Invalid(f"a range is at most {MAX_RANGE_DAYS} days", field="start")
    return start_ts, end_ts


def _lot_capacity(conn: Any, lot_id: str) -> int:
    capacity = conn.execute(select(t.lots.c.capacity).where(t.lots.c.lot_id == lot_id)).scalar()
    if capacity is None:
        raise NotFound("lot", lot_id)
    return int(capacity)


def occupancy_history(
    engine: Engine,
    *,
    lot_id: str,
    start: dt.datetime | None,
    end: dt.datetime | None,
    step_s: int,
) -> OccupancyHistory:
    """The lot's counts at ``start``, ``start + step``, ... up to ``end``, from the
    rollups (``central.history.read``)."""
    start_ts, end_ts = _range(start, end, 86400)
    if (end_ts - start_ts) / step_s > MAX_POINTS:
        raise Invalid(f"at most {MAX_POINTS} points: choose a larger step", field="step")
    times = history_read.samples(start_ts, end_ts, step_s)
    with engine.connect() as conn:
        capacity = _lot_capacity(conn, lot_id)
        bays = history_read.lot_bays(conn, lot_id)
        counts = history_read.counts_at(conn, lot_id, bays, times)
    points = []
    for sample, (free, occupied, unknown, closed) in zip(times, counts, strict=True):
        in_service = capacity - closed
        points.append(
            OccupancyPoint(
                at=dt.datetime.fromtimestamp(sample, dt.UTC),
                occupied=occupied,
                free=free,
                unknown=unknown,
                closed=closed,
                occupancy=occupied / in_service if in_service > 0 else 0.0,
            )
        )
    return OccupancyHistory(
        lot_id=lot_id,
        capacity=capacity,
        start=dt.datetime.fromtimestamp(start_ts, dt.UTC),
        end=dt.datetime.fromtimestamp(end_ts, dt.UTC),
        step_s=step_s,
        points=points,
    )


DWELL_BUCKETS = ((900, "<15m"), (3600, "15m-1h"), (4 * 3600, "1h-4h"), (86400, "4h-24h"))


def dwell_stats(
    engine: Engine, *, lot_id: str, start: dt.datetime | None, end: dt.datetime | None
) -> DwellStats:
    """How long bays stayed occupied: stays that ended inside the range (and began at most
    a day before it), from the rollups' stays."""
    start_ts, end_ts = _range(start, end, 7 * 86400)
    with engine.connect() as conn:
        _lot_capacity(conn, lot_id)
        stays = history_read.stays(conn, lot_id, start_ts, end_ts)
    histogram = {label: 0 for _, label in DWELL_BUCKETS} | {">24h": 0}
    limits = [limit for limit, _ in DWELL_BUCKETS]
    for stay in stays:
        i = bisect.bisect_right(limits, stay)
        histogram[DWELL_BUCKETS[i][1] if i < len(DWELL_BUCKETS) else ">24h"] += 1
    return DwellStats(
        lot_id=lot_id,
        start=dt.datetime.fromtimestamp(start_ts, dt.UTC),
        end=dt.datetime.fromtimestamp(end_ts, dt.UTC),
        stays=len(stays),
        mean_s=statistics.fmean(stays) if stays else None,
        median_s=statistics.median(stays) if stays else None,
        p90_s=stays[min(len(stays) - 1, int(0.9 * len(stays)))] if stays else None,
        max_s=stays[-1] if stays else None,
        histogram=histogram,
    )


def ngsi_lots(lots: list[LotOut], *, site_id: str) -> list[dict[str, Any]]:
    """The lots as FIWARE ``OffStreetParking`` entities (NGSI v2, key-values)."""
    entities = []
    for lot in lots:
        status = ["unknown"] if lot.stale else [_NGSI_STATUS.get(lot.status, "unknown")]
        if lot.status != "closed" and not lot.stale:
            status.insert(0, "open")
        entity: dict[str, Any] = {
            "id": f"urn:ngsi-ld:OffStreetParking:{site_id}:{lot.id}",
            "type": "OffStreetParking",
            "name": lot.name,
            "category": ["public"],
            "totalSpotNumber": lot.capacity,
            "availableSpotNumber": None if lot.stale else lot.free,
            "occupiedSpotNumber": None if lot.stale else lot.occupied,
            "status": status,
            "dateModified": lot.updated.isoformat().replace("+00:00", "Z") if lot.updated else None,
        }
        if lot.location is not None:
            entity["location"] = {
                "type": "Point",
                "coordinates": [lot.location.lon, lot.location.lat],
            }
        if lot.address:
            entity["address"] = {"streetAddress": lot.address}
        entities.append(entity)
    return entities


_NGSI_STATUS = {
    "spacesAvailable": "spacesAvailable",
    "almostFull": "almostFull",
    "full": "full",
    "closed": "closed",
    "unknown": "unknown",
}
