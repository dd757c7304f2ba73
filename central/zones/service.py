from __future__ import annotations

import datetime as dt
import time
from typing import Any

from sqlalchemy import Engine, select

from central.boxes.availability import box_of, reported_now
from central.db import schema as t
from central.errors import NotFound
from central.zones.models import ZoneOut
from site_model.availability import DEFAULT_SETTINGS, AvailabilitySettings, zone_view


def _dt(ts: float | None) -> dt.datetime | None:
    return None if ts is None else dt.datetime.fromtimestamp(ts, dt.UTC)


def _zone_out(row: Any, settings: AvailabilitySettings, now: float) -> ZoneOut:
    box, _ = box_of(row, settings, now)
    availability = zone_view(box, row.state_ts is not None, current=reported_now(row))
    return ZoneOut(
        id=row.zone_id,
        name=row.name,
        zone_class=row.zone_class,
        box_id=row.box_id,
        state=row.state,
        occupied=row.occupied,
        schedule_version=row.schedule_version,
        window_start=_dt(row.window_start),
        window_end=_dt(row.window_end),
        next_transition=_dt(row.next_transition),
        stale=availability.value != "online",
        availability=availability.value,
        updated=_dt(row.state_ts),
    )


def list_zones(
    engine: Engine,
    *,
    zone_id: str | None = None,
    settings: AvailabilitySettings = DEFAULT_SETTINGS,
) -> list[ZoneOut]:
    now = time.time()
    query = (
        select(t.zones, t.boxes.c.online, t.boxes.c.seen, t.boxes.c.status_changed_at)
        .select_from(t.zones.outerjoin(t.boxes, t.boxes.c.box_id == t.zones.c.box_id))
        .order_by(t.zones.c.zone_id)
    )
    if zone_id is not None:
        query = query.where(t.zones.c.zone_id == zone_id)
    with engine.connect() as conn:
        zones = [_zone_out(row, settings, now) for row in conn.execute(query)]
    if zone_id is not None and not zones:
        raise NotFound("zone", zone_id)
    return zones
