from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Engine, select

from central.db import schema as t
from central.errors import NotFound
from central.zones.models import ZoneOut


def _dt(ts: float | None) -> dt.datetime | None:
    return None if ts is None else dt.datetime.fromtimestamp(ts, dt.UTC)


def _zone_out(row: Any) -> ZoneOut:
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
        stale=not row.online or row.state_ts is None,
        updated=_dt(row.state_ts),
    )


def list_zones(engine: Engine, *, zone_id: str | None = None) -> list[ZoneOut]:
    query = (
        select(t.zones, t.boxes.c.online)
        .select_from(t.zones.outerjoin(t.boxes, t.boxes.c.box_id == t.zones.c.box_id))
        .order_by(t.zones.c.zone_id)
    )
    if zone_id is not None:
        query = query.where(t.zones.c.zone_id == zone_id)
    with engine.connect() as conn:
        zones = [_zone_out(row) for row in conn.execute(query)]
    if zone_id is not None and not zones:
        raise NotFound("zone", zone_id)
    return zones
