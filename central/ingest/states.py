"""State documents in the transaction: each checked against the site file, newest wins.

A state document (bay, lot, zone, sign) is handled by its payload type through
``APPLY_BY_STATE``. The bay, lot and zone handlers check the document against the site
file (a disagreement is recorded as a site problem) and return the row update to make;
the update applies only if the stored document is not newer, and only an applied update
is noticed to the live stream. A sign's state is upserted as it comes.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Connection,
    Table,
    TextClause,
    Update,
    and_,
    bindparam,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql

from central.db import schema as t
from central.db.engine import upsert
from central.ingest.batch import Batch, IngestContext, ts
from firmware_protocols.uplink import BayState, LotState, SignState, ZoneState


@dataclass(frozen=True)
class StateUpdate:
    """One row to update if the stored document is not newer, and the notice if it is."""

    table: Table
    key: str
    key_value: str
    values: dict[str, Any]  # its "state_ts" is what "not newer" compares
    notice: dict[str, Any]


STATE_AHEAD_S = 300.0
"""A state document dated further than this after its receipt is ordered as if written at
its receipt: a bay, lot or zone is kept in the newest state by its date, so a date years
ahead (a box's stolen credentials, or a box clock that jumped) would otherwise freeze it."""


def state_ts(batch: Batch, box_id: str, subject: str, when: Any, received_at: float) -> float:
    """A state's date for ordering (see ``STATE_AHEAD_S``); a date too far ahead is a
    clock problem of the box."""
    claimed = ts(when)
    if claimed <= received_at + STATE_AHEAD_S:
        return claimed
    batch.problems.append(
        (box_id, f"{subject}/ts", f"state dated {when.isoformat()}, "
         f"{claimed - received_at:.0f} s after central received it; ordered by its receipt")
    )  # fmt: skip
    return received_at


# What says when, not what: a document that differs from the stored one only here, with
# the same ts, is the same document again (``_update``, ``_update_all``).
NOT_COMPARED = ("state_ts", "updated_at")

# (context, connection, batch, box_id, payload, received_at) -> the update, or None
ApplyState = Callable[[IngestContext, Connection, Batch, str, Any, float], StateUpdate | None]


def apply_states(ctx: IngestContext, conn: Connection, batch: Batch) -> None:
    """Apply the batch's state documents (already conflated per topic); notice each applied
    one, in the batch's order."""
    changes: list[StateUpdate] = []
    for msg, received_at in batch.states.values():
        handler = APPLY_BY_STATE[type(msg.payload)]
        change = handler(ctx, conn, batch, msg.topic.box_id, msg.payload, received_at)
        if change is not None:
            changes.append(change)
    if conn.dialect.name == "postgresql":
        applied = _apply_grouped(conn, changes)
    else:
        applied = set()
        for change in changes:
            params = {f"v_{name}": value for name, value in change.values.items()}
            params["k_"] = change.key_value
            result = conn.execute(_update(change.table, change.key, tuple(change.values)), params)
            if result.rowcount:
                applied.add((change.table.name, change.key_value))
    batch.notices.extend(c.notice for c in changes if (c.table.name, c.key_value) in applied)


def _apply_grouped(conn: Connection, changes: list[StateUpdate]) -> set[tuple[str, str]]:
    """PostgreSQL: the updates of one table and columns in one statement (``_update_all``);
    the (table, key) of each row it changed. One topic per figure, so a key comes once."""
    groups: dict[tuple[Table, str, tuple[str, ...]], list[StateUpdate]] = {}
    for change in changes:
        groups.setdefault((change.table, change.key, tuple(change.values)), []).append(change)
    applied: set[tuple[str, str]] = set()
    for (table, key, names), rows in groups.items():
        params = {f"a_{name}": [row.values[name] for row in rows] for name in names}
        params["a_key"] = [row.key_value for row in rows]
        found = conn.execute(_update_all(table, key, names), params).scalars()
        applied.update((table.name, str(value)) for value in found)
    return applied


@functools.lru_cache(maxsize=64)
def _update_all(table: Table, key: str, names: tuple[str, ...]) -> TextClause:
    """PostgreSQL: ``_update`` for many rows, from one array per column (``unnest``), the
    keys it changed returned. Same rule: only where the stored document is older, or as
    old with other figures."""
    dialect = postgresql.dialect()
    quote = dialect.identifier_preparer.quote

    def array(param: str, column: str) -> str:
        return f"CAST(:{param} AS {table.c[column].type.compile(dialect=dialect)}[])"

    arrays = ", ".join([array("a_key", key), *(array(f"a_{n}", n) for n in names)])
    columns = ", ".join(quote(c) for c in ("k_", *names))
    sets = ", ".join(f"{quote(n)} = v.{quote(n)}" for n in names)
    differs = " OR ".join(
        f"t.{quote(n)} IS DISTINCT FROM v.{quote(n)}" for n in names if n not in NOT_COMPARED
    )
    return text(
        f"UPDATE {quote(table.name)} AS t SET {sets} FROM unnest({arrays}) AS v({columns}) "
        f"WHERE t.{quote(key)} = v.k_ AND (t.state_ts IS NULL OR t.state_ts < v.state_ts "
        f"OR (t.state_ts = v.state_ts AND ({differs}))) RETURNING t.{quote(key)}"
    )


@functools.lru_cache(maxsize=64)
def _update(table: Table, key: str, names: tuple[str, ...]) -> Update:
    """``UPDATE table SET names WHERE key = :k_`` if the stored document is older, or as old
    with other figures. The same document again (a retained state redelivered to a restarted
    process, a box's resend) changes nothing and tells no screen anything: its old ts would
    show as news. Built once per (table, columns) with bound parameters: the writer runs one
    per state document."""
    values = {name: bindparam(f"v_{name}") for name in names}
    differs = [
        table.c[name].is_distinct_from(values[name]) for name in names if name not in NOT_COMPARED
    ]
    when = values["state_ts"]
    newer = or_(
        table.c.state_ts.is_(None),
        table.c.state_ts < when,
        and_(table.c.state_ts == when, or_(*differs)),
    )
    return update(table).where(table.c[key] == bindparam("k_"), newer).values(values)


def _bay(
    ctx: IngestContext,
    conn: Connection,
    batch: Batch,
    box_id: str,
    payload: BayState,
    received_at: float,
) -> StateUpdate | None:
    place = ctx.site.bays.get(payload.bay_id)
    subject = f"bay/{payload.bay_id}"
    if place is None:
        batch.problems.append((box_id, subject, f"bay {payload.bay_id!r} is not in the site file"))
        return None
    if place.box_id != box_id:
        batch.problems.append(
            (box_id, subject, f"the site file gives bay {payload.bay_id!r} to box {place.box_id!r}")
        )
        return None
    if (payload.lot_id, payload.zone_id) != (place.lot_id, place.zone_id):
        batch.problems.append(
            (
                box_id,
                subject,
                f"bay {payload.bay_id!r} is in lot {place.lot_id!r} / zone "
                f"{place.zone_id!r} in the site file, but the box says lot "
                f"{payload.lot_id!r} / zone {payload.zone_id!r}",
            )
        )
    sensor = payload.sensor
    when = state_ts(batch, box_id, subject, payload.ts, received_at)
    values = {
        "state": payload.state.value,
        "since": ts(payload.since),
        "sensor_id": sensor.sensor_id if sensor else None,
        "sensor_json": sensor.model_dump_json() if sensor else None,
        "sensor_flags": ",".join(f.value for f in sensor.flags) if sensor else None,
        "state_ts": when,
        "updated_at": received_at,
    }
    notice = {
        "type": "bay",
        "bay_id": payload.bay_id,
        "lot_id": place.lot_id,
        "zone_id": place.zone_id,
        "state": payload.state.value,
        "since": values["since"],
        "sensor_flags": values["sensor_flags"],
    }
    return StateUpdate(t.bays, "bay_id", payload.bay_id, values, notice)


def _lot(
    ctx: IngestContext,
    conn: Connection,
    batch: Batch,
    box_id: str,
    payload: LotState,
    received_at: float,
) -> StateUpdate | None:
    site = ctx.site
    lot = site.lots.get(payload.lot_id)
    subject = f"lot/{payload.lot_id}"
    if lot is None or lot.box_id != box_id:
        owner = (
            "is not in the site file"
            if lot is None
            else (f"belongs to box {lot.box_id!r} in the site file")
        )
        batch.problems.append((box_id, subject, f"lot {payload.lot_id!r} {owner}"))
        return None
    capacity = site.capacity[payload.lot_id]
    if payload.capacity != capacity:
        batch.problems.append(
            (
                box_id,
                f"{subject}/capacity",
                f"lot {payload.lot_id!r} has {capacity} bays in the site file but "
                f"the box reports a capacity of {payload.capacity}",
            )
        )
    when = state_ts(batch, box_id, subject, payload.ts, received_at)
    # The site file's bays bound what a box may say: with a capacity of its own it could show
    # drivers more free bays than the lot has. Counts past the site's capacity are unknown,
    # never free.
    occupied = min(payload.occupied, capacity)
    closed = min(payload.closed, capacity - occupied)
    free = min(payload.free, capacity - occupied - closed)
    values = {
        "free": free,
        "occupied": occupied,
        "unknown": capacity - occupied - closed - free,
        "closed": closed,
        "reported_capacity": payload.capacity,
        "status": payload.status.value,
        "trend": payload.trend.value,
        "state_ts": when,
        "updated_at": received_at,
    }
    notice = {"type": "lot", "lot_id": payload.lot_id, **values}
    return StateUpdate(t.lots, "lot_id", payload.lot_id, values, notice)


def _zone(
    ctx: IngestContext,
    conn: Connection,
    batch: Batch,
    box_id: str,
    payload: ZoneState,
    received_at: float,
) -> StateUpdate | None:
    zone = ctx.site.zones.get(payload.zone_id)
    subject = f"zone/{payload.zone_id}"
    if zone is None or zone.box_id != box_id:
        owner = (
            "is not in the site file"
            if zone is None
            else (f"belongs to box {zone.box_id!r} in the site file")
        )
        batch.problems.append((box_id, subject, f"zone {payload.zone_id!r} {owner}"))
        return None
    if payload.zone_class.value != zone.zone_class.value:
        batch.problems.append(
            (
                box_id,
                f"{subject}/class",
                f"zone {payload.zone_id!r} is {zone.zone_class.value} in the site "
                f"file but the box runs it as {payload.zone_class.value}",
            )
        )
    window = payload.window
    when = state_ts(batch, box_id, subject, payload.ts, received_at)
    values = {
        "state": payload.state.value,
        "occupied": payload.occupied,
        "schedule_version": payload.schedule_version,
        "window_start": ts(window.start) if window else None,
        "window_end": ts(window.end) if window else None,
        "next_transition": (ts(payload.next_transition) if payload.next_transition else None),
        "state_ts": when,
        "updated_at": received_at,
    }
    notice = {"type": "zone", "zone_id": payload.zone_id, **values}
    return StateUpdate(t.zones, "zone_id", payload.zone_id, values, notice)


def _sign(
    ctx: IngestContext,
    conn: Connection,
    batch: Batch,
    box_id: str,
    payload: SignState,
    received_at: float,
) -> StateUpdate | None:
    owner = _sign_owner(ctx, conn, payload.sign_id)
    if owner is not None and owner != box_id:
        batch.problems.append(
            (box_id, f"sign/{payload.sign_id}", f"sign {payload.sign_id!r} "
             f"belongs to box {owner!r}; this box may not report it")
        )  # fmt: skip
        return None
    conn.execute(
        upsert(
            ctx.dialect,
            t.signs,
            ["sign_id"],
            ["box_id", "up", "state_json", "state_ts", "updated_at"],
        ),
        {
            "sign_id": payload.sign_id,
            "box_id": box_id,
            "up": payload.up,
            "state_json": payload.model_dump_json(),
            "state_ts": ts(payload.ts),
            "updated_at": received_at,
        },
    )
    batch.notices.append(
        {"type": "sign", "sign_id": payload.sign_id, "box_id": box_id, "up": payload.up}
    )
    return None


def _sign_owner(ctx: IngestContext, conn: Connection, sign_id: str) -> str | None:
    """The box a sign belongs to: the site file's word, else the box that first reported it
    (a box's credentials must not take over another box's sign); None if unknown."""
    listed = ctx.site.signs.get(sign_id)
    if listed is not None:
        return listed.box_id
    owner: str | None = conn.execute(
        select(t.signs.c.box_id).where(t.signs.c.sign_id == sign_id)
    ).scalar()
    return owner


APPLY_BY_STATE: dict[type, ApplyState] = {
    BayState: _bay,
    LotState: _lot,
    ZoneState: _zone,
    SignState: _sign,
}
