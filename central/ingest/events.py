"""Events in the transaction: refuse what central cannot believe, insert, apply side effects.

Only new events have side effects; what they are is looked up by the event body's type in
``APPLY_BY_BODY`` (a bay change is checked against the site file and noticed live, an
alert is raised or resolved, a dropped seq range is recorded for the watermark walk).
Bodies with no entry (sensor and sign faults, zone transitions) are stored and nothing
more.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, and_, bindparam, select, text

from central.db import schema as t
from central.db.engine import BulkInsert, insert_ignore
from central.history import rollups
from central.ingest import claims
from central.ingest.batch import Batch, IngestContext, refuse, ts
from central.leases import lease_key
from firmware_protocols.uplink import (
    AlertRaised,
    AlertResolved,
    BayChanged,
    Event,
    EventsDropped,
    Topics,
)

NewEvent = tuple[Event, dict[str, Any]]  # the decoded event and its ``events`` row
# (context, connection, batch, event, row, live)
ApplyEvent = Callable[[IngestContext, Connection, Batch, Event, dict[str, Any], bool], None]


def hold_boxes(conn: Connection, boxes: list[str]) -> None:
    """PostgreSQL: hold each box of the batch until the transaction ends (an advisory
    transaction lock, taken in sorted order), so two processes filing the same box's events
    take turns: the second reads the first's rows as held, and a redelivered event moves the
    rollups, the alerts and the notices once. A no-op elsewhere (SQLite has one writer)."""
    if conn.dialect.name != "postgresql" or not boxes:
        return
    keys = sorted({lease_key(f"ingest-box:{box}") for box in boxes})
    conn.execute(_HOLD_BOXES, {"keys": keys})


# Built once: the writer runs them for every batch.
_HOLD_BOXES = text(
    "SELECT pg_advisory_xact_lock(k) FROM "
    "(SELECT unnest(CAST(:keys AS bigint[])) AS k ORDER BY 1) AS held"
)
_HELD = select(t.events.c.seq, t.events.c.event_id).where(
    t.events.c.box_id == bindparam("box"),
    t.events.c.seq >= bindparam("lo"),
    t.events.c.seq <= bindparam("hi"),
)
# PostgreSQL: every box's range in one statement (a batch of a county's live events names
# a box or two per event; one read per box was a third of the writer's statements). The
# LATERAL subquery reads each box's range through its index, as ``_HELD`` does. Its
# ``OFFSET 0`` keeps the planner from flattening it into a join: measured, the flattened
# form's plan (a month's partition grows faster than its statistics) hashed the batch
# against a scan of every stored event, 18 ms a batch and PostgreSQL at a quarter of a
# core after a 200,000-event replay (tests/central/test_ingest_plans.py).
_HELD_ALL = text(
    "SELECT h.box, e.seq, e.event_id FROM unnest(CAST(:boxes AS text[]), "
    "CAST(:los AS bigint[]), CAST(:his AS bigint[])) AS h(box, lo, hi) "
    "CROSS JOIN LATERAL (SELECT seq, event_id FROM events "
    "WHERE box_id = h.box AND seq >= h.lo AND seq <= h.hi OFFSET 0) AS e"
)


def held_events(conn: Connection, by_box: dict[str, list[int]]) -> dict[tuple[str, int], str]:
    """The event id stored under each (box, seq) between each box's lowest and highest
    seq of ``by_box``: one read on PostgreSQL, one per box elsewhere."""
    held: dict[tuple[str, int], str] = {}
    if conn.dialect.name == "postgresql":
        boxes = list(by_box)
        params = {
            "boxes": boxes,
            "los": [min(by_box[box]) for box in boxes],
            "his": [max(by_box[box]) for box in boxes],
        }
        held.update(
            ((box, seq), str(event_id)) for box, seq, event_id in conn.execute(_HELD_ALL, params)
        )
        return held
    for box, seqs in by_box.items():
        found = conn.execute(_HELD, {"box": box, "lo": min(seqs), "hi": max(seqs)})
        held.update(((box, seq), event_id) for seq, event_id in found)
    return held


def store_events(
    ctx: IngestContext, conn: Connection, batch: Batch, insert: BulkInsert
) -> list[NewEvent]:
    """Insert the batch's events; return the new ones (repeats are left out, a seq held by
    another event is refused)."""
    # Which are repeats: one indexed range read per box (one statement on PostgreSQL). A
    # row another process inserts between this read and the insert is still ignored by ON
    # CONFLICT; its side effects are idempotent (alerts keep their last seq, dropped ranges
    # are keyed).
    by_box: dict[str, list[int]] = {}
    for box, seq in batch.events:
        by_box.setdefault(box, []).append(seq)
    held = held_events(conn, by_box)
    for key, (event, row) in list(batch.events.items()):
        held_id = held.get(key)
        if held_id is not None and held_id != str(event.event_id):
            del batch.events[key]  # refused, not a repeat
            reason = claims.replayed_seq(event.seq, held_id, str(event.event_id))
            topic = Topics(ctx.site.site_of(event.box_id), event.box_id).event
            refuse(
                ctx, batch, "seq_replayed", topic, row["payload"].encode(), reason,
                row["received_at"],
            )  # fmt: skip
    new = [item for key, item in batch.events.items() if key not in held]
    rows = [row for _, row in new]
    rollups.apply(conn, ctx.dialect, rows, lambda bay: _lot_of(ctx, bay))
    insert.execute(conn, rows)
    return new


def _lot_of(ctx: IngestContext, bay_id: str) -> str | None:
    place = ctx.site.bays.get(bay_id)
    return None if place is None else place.lot_id


def refuse_implausible_drops(ctx: IngestContext, conn: Connection, batch: Batch) -> None:
    """Refuse a dropped seq range longer than the box's outbox could ever hold."""
    # The strictest word the box gave: its stored birth and any birth in this batch (a
    # birth arriving with the report may come before or after it; a drop happened under
    # the older cap if the box was reconfigured in between).
    births: dict[str, list[int]] = {}
    for status, _ in batch.statuses:
        if status.health is not None:
            cap = claims.capacity_of(status.health.outbox.event.cap_bytes)
            births.setdefault(status.box_id, []).append(cap)
    capacity: dict[str, int | None] = {}
    for key, (event, row) in list(batch.events.items()):
        body = event.body
        if not isinstance(body, EventsDropped):
            continue
        box_id = event.box_id
        if box_id not in capacity:
            status = conn.execute(
                select(t.boxes.c.status_json).where(t.boxes.c.box_id == box_id)
            ).scalar()
            known = [c for c in (claims.outbox_capacity(status),) if c is not None]
            words = known + births.get(box_id, [])
            capacity[box_id] = min(words) if words else None
        reason = claims.implausible_drop(body, capacity[box_id])
        if reason is not None:
            del batch.events[key]
            topic = Topics(ctx.site.site_of(box_id), box_id).event
            refuse(
                ctx, batch, "dropped_range", topic, row["payload"].encode(), reason,
                row["received_at"],
            )  # fmt: skip


def apply_events(
    ctx: IngestContext, conn: Connection, batch: Batch, new: list[NewEvent], live: bool
) -> None:
    """The side effects of the new events, each by its body's handler."""
    for event, row in new:
        handler = APPLY_BY_BODY.get(type(event.body))
        if handler is not None:
            handler(ctx, conn, batch, event, row, live)


def _bay_changed(
    ctx: IngestContext,
    conn: Connection,
    batch: Batch,
    event: Event,
    row: dict[str, Any],
    live: bool,
) -> None:
    body = event.body
    assert isinstance(body, BayChanged)
    box_id = event.box_id
    if body.bay_id not in ctx.site.bays:
        batch.problems.append(
            (box_id, f"bay/{body.bay_id}", f"bay {body.bay_id!r} is not in the site file")
        )
    if live:
        batch.notices.append(
            {
                "type": "bay_changed",
                "box_id": box_id,
                "seq": event.seq,
                "bay_id": body.bay_id,
                "lot_id": body.lot_id,
                "zone_id": body.zone_id,
                "to_state": row["to_state"],
                "at": row["ts"],
                "historical": event.historical,
            }
        )


def _alert(
    ctx: IngestContext,
    conn: Connection,
    batch: Batch,
    event: Event,
    row: dict[str, Any],
    live: bool,
) -> None:
    body = event.body
    assert isinstance(body, AlertRaised | AlertResolved)
    _apply_alert(conn, event, body, row["received_at"])
    batch.notices.append(
        {
            "type": body.kind,
            "box_id": event.box_id,
            "alert_id": body.alert_id,
            "alert_type": body.alert_type.value,
        }
    )


def _events_dropped(
    ctx: IngestContext,
    conn: Connection,
    batch: Batch,
    event: Event,
    row: dict[str, Any],
    live: bool,
) -> None:
    body = event.body
    assert isinstance(body, EventsDropped)
    conn.execute(
        insert_ignore(ctx.dialect, t.dropped_ranges, ["box_id", "first_seq"]),
        {
            "box_id": event.box_id,
            "first_seq": body.first_seq,
            "last_seq": body.last_seq,
            "count": body.count,
            "reported_at": row["received_at"],
        },
    )


def _apply_alert(
    conn: Connection, event: Event, body: AlertRaised | AlertResolved, now: float
) -> None:
    key = and_(t.alerts.c.box_id == event.box_id, t.alerts.c.alert_id == body.alert_id)
    current = conn.execute(select(t.alerts.c.last_seq, t.alerts.c.state).where(key)).first()
    common = {
        "alert_type": body.alert_type.value,
        "since": ts(body.since),
        "lot_id": body.lot_id,
        "zone_id": body.zone_id,
        "bay_id": body.bay_id,
        "sign_id": body.sign_id,
        "sensor_id": body.sensor_id,
        "updated_at": now,
        "last_seq": event.seq,
    }
    if isinstance(body, AlertRaised):
        values = {
            **common,
            "severity": body.severity.value,
            "step": body.step,
            "message": body.message,
        }
    else:
        values = {**common, "state": "resolved", "resolved_by": f"box:{event.box_id}"}
        values["resolved_at"] = ts(event.ts)
        if body.message is not None:
            values["message"] = body.message
    if current is None:
        conn.execute(
            t.alerts.insert(),
            {
                "box_id": event.box_id,
                "alert_id": body.alert_id,
                "severity": "info",
                "step": 0,
                "message": None,
                "state": "raised",
                "raised_at": now,
                **values,
            },
        )
    elif current.last_seq < event.seq:
        # An older event arriving late (a resend) never undoes a newer one.
        conn.execute(t.alerts.update().where(key).values(**values))


APPLY_BY_BODY: dict[type, ApplyEvent] = {
    BayChanged: _bay_changed,
    AlertRaised: _alert,
    AlertResolved: _alert,
    EventsDropped: _events_dropped,
}
