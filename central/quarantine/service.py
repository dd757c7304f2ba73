from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select

from central.context import Central
from central.db import schema as t
from central.quarantine.models import QuarantinedOut, QuarantineOut, RetentionOut
from central.quarantine.retention import stored_total


def list_quarantine(
    central: Central, *, limit: int = 100, box_id: str | None = None
) -> QuarantineOut:
    """Refused messages, newest first; a county town's view: those of its boxes only."""
    q = t.quarantine
    query = select(q).order_by(q.c.id.desc()).limit(limit)
    count = select(func.count()).select_from(q)
    boxes = central.town_boxes()
    if boxes is not None:
        query = query.where(q.c.box_id.in_(sorted(boxes)))
        count = count.where(q.c.box_id.in_(sorted(boxes)))
    if box_id is not None:
        query = query.where(q.c.box_id == box_id)
        count = count.where(q.c.box_id == box_id)
    with central.engine.connect() as conn:
        total = int(conn.execute(count).scalar() or 0)
        items = [
            QuarantinedOut(
                id=row.id,
                topic=row.topic,
                box_id=row.box_id,
                reason=row.reason,
                received_at=dt.datetime.fromtimestamp(row.received_at, dt.UTC),
                payload_size=row.payload_size,
                payload=bytes(row.payload).decode("utf-8", "replace"),
            )
            for row in conn.execute(query)
        ]
        rows, held = stored_total(conn)
    return QuarantineOut(total=total, items=items, retention=retention(central, rows, held))


def retention(central: Central, rows: int, held: int) -> RetentionOut:
    settings, dropped = central.settings, central.stats.quarantine_dropped
    return RetentionOut(
        max_bytes=settings.quarantine_max_bytes,
        max_age_days=settings.quarantine_max_age_days,
        rows=rows,
        bytes=held,
        dropped_by_size=dropped["size"],
        dropped_by_age=dropped["age"],
    )
