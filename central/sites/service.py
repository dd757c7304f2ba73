"""Load the site file into the store; list the disagreements boxes have shown with it."""

from __future__ import annotations

import logging
import time
from typing import Any

from sqlalchemy import Connection, Engine, Table, delete, select
from sqlalchemy.exc import OperationalError

from central.db import schema as t
from central.db.engine import upsert, writer
from site_model.site import Site

log = logging.getLogger(__name__)

# A file that changes bays a running ingest is writing can meet it in a deadlock:
# PostgreSQL fails one side (40P01); the sync is tried again, whole, before start-up fails.
DEADLOCK = "40P01"
SYNC_ATTEMPTS = 3


def sync_site(engine: Engine, site: Site) -> dict[str, int]:
    """Make the store's boxes, lots, bays and zones match the site file.

    Descriptive columns are overwritten; the live state a box reported is kept for the
    things that remain. Things no longer in the file are removed (their history stays in
    ``events``).
    """
    dialect = engine.dialect.name
    boxes = [{"box_id": b, "name": e.name, "in_site": True} for b, e in site.boxes.items()]
    lots = [
        {
            "lot_id": lot_id,
            "name": lot.name,
            "box_id": lot.box_id,
            "capacity": len(lot.bay_ids(lot_id)),
            "lat": lot.location.lat if lot.location else None,
            "lon": lot.location.lon if lot.location else None,
            "address": lot.address,
        }
        for lot_id, lot in site.lots.items()
    ]
    zones = [
        {
            "zone_id": zone_id,
            "name": zone.name,
            "zone_class": zone.zone_class.value,
            "box_id": zone.box_id,
            "lat": zone.location.lat if zone.location else None,
            "lon": zone.location.lon if zone.location else None,
        }
        for zone_id, zone in site.zones.items()
    ]
    bays = [
        {"bay_id": bay_id, "lot_id": lot_id, "zone_id": None, "box_id": site.lots[lot_id].box_id}
        for lot_id, bay_id in site.lot_bays()
    ] + [
        {"bay_id": bay_id, "lot_id": None, "zone_id": zone_id, "box_id": site.zones[zone_id].box_id}
        for zone_id, bay_id in site.zone_bays()
    ]
    for attempt in range(1, SYNC_ATTEMPTS + 1):
        try:
            with writer(engine).begin() as conn:
                for table, key, rows in (
                    (t.boxes, "box_id", boxes),
                    (t.lots, "lot_id", lots),
                    (t.zones, "zone_id", zones),
                    (t.bays, "bay_id", bays),
                ):
                    _sync_table(conn, dialect, table, key, rows)
            break
        except OperationalError as exc:
            if getattr(exc.orig, "sqlstate", None) != DEADLOCK or attempt == SYNC_ATTEMPTS:
                raise
            log.warning("site sync lost a deadlock to a running ingest (attempt %d); again",
                        attempt)  # fmt: skip
            time.sleep(0.2 * attempt)
    return {"boxes": len(boxes), "lots": len(lots), "zones": len(zones), "bays": len(bays)}


def _sync_table(
    conn: Connection, dialect: str, table: Table, key: str, rows: list[dict[str, Any]]
) -> None:
    """Delete what is gone, upsert only the rows that are new or differ (in key order).

    A row the file does not change is not written, so not locked: a process starting while
    another ingests (and updates the same bays' live state) does not wait for it, nor make
    it wait in a deadlock (the county bench's restart failed so)."""
    columns = [c for c in rows[0] if c != key] if rows else []
    stored = {
        row[0]: tuple(row[1:])
        for row in conn.execute(select(table.c[key], *(table.c[c] for c in columns)))
    }
    gone = set(stored) - {row[key] for row in rows}
    if gone:
        conn.execute(delete(table).where(table.c[key].in_(sorted(gone))))
    changed = sorted(
        (row for row in rows if stored.get(row[key]) != tuple(row[c] for c in columns)),
        key=lambda row: row[key],
    )
    if changed:
        conn.execute(upsert(dialect, table, [key], columns), changed)


def list_problems(engine: Engine, *, box_id: str | None = None) -> list[dict[str, Any]]:
    query = select(t.site_problems).order_by(t.site_problems.c.last_seen_at.desc())
    if box_id is not None:
        query = query.where(t.site_problems.c.box_id == box_id)
    with engine.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(query)]
