from __future__ import annotations

import datetime as dt
import json
import time
from typing import Any

from sqlalchemy import Engine, func, select

from central.boxes.availability import box_of
from central.boxes.models import BoxOut, SignOut
from central.db import schema as t
from central.errors import NotFound
from site_model.site import Site


def _dt(ts: float | None) -> dt.datetime | None:
    return None if ts is None else dt.datetime.fromtimestamp(ts, dt.UTC)


def list_boxes(engine: Engine, site: Site, *, box_id: str | None = None) -> list[BoxOut]:
    problems = (
        select(t.site_problems.c.box_id, func.count().label("n"))
        .group_by(t.site_problems.c.box_id)
        .subquery()
    )
    query = (
        select(t.boxes, t.watermarks.c.acked_seq, problems.c.n)
        .select_from(
            t.boxes.outerjoin(t.watermarks, t.watermarks.c.box_id == t.boxes.c.box_id).outerjoin(
                problems, problems.c.box_id == t.boxes.c.box_id
            )
        )
        .order_by(t.boxes.c.box_id)
    )
    if box_id is not None:
        query = query.where(t.boxes.c.box_id == box_id)
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    if box_id is not None and not rows:
        raise NotFound("box", box_id)
    out = []
    now = time.time()
    for row in rows:
        availability, age = box_of(row, site.availability, now)
        status: dict[str, Any] = json.loads(row.status_json) if row.status_json else {}
        out.append(
            BoxOut(
                id=row.box_id,
                name=row.name,
                online=bool(row.online),
                availability=availability.value,
                offline_for_s=None if age is None else round(age, 1),
                seen=bool(row.seen),
                boot_id=row.boot_id,
                offline_reason=row.offline_reason,
                status_changed=_dt(row.status_changed_at),
                last_seen=_dt(row.last_seen_at),
                software_version=row.software_version,
                config_hash=row.config_hash,
                sensor_count=row.sensor_count,
                acked_seq=row.acked_seq,
                lots=site.lots_of_box(row.box_id),
                zones=site.zones_of_box(row.box_id),
                health=status.get("health"),
                clock=status.get("clock"),
                site_problems=int(row.n or 0),
            )
        )
    return out


def list_signs(engine: Engine, *, box_id: str | None = None) -> list[SignOut]:
    query = select(t.signs).order_by(t.signs.c.sign_id)
    if box_id is not None:
        query = query.where(t.signs.c.box_id == box_id)
    with engine.connect() as conn:
        return [
            SignOut(
                id=row.sign_id,
                box_id=row.box_id,
                up=row.up,
                state=json.loads(row.state_json),
                updated=_dt(row.state_ts),
            )
            for row in conn.execute(query)
        ]
