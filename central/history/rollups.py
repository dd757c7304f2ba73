"""The history rollups, kept in the ingest's transaction, and their repair.

Theory of operation
-------------------
``apply`` runs in the batch's transaction before its events are inserted, with the new
``bay_changed`` rows. Each bay's chain stands at its ``bay_tips`` row (locked, so two
processes sharing the ingest take turns per bay): changes after the tip, the usual case,
are walked from it alone (no read of ``events``); a change before the tip (a late event,
or a batch another process committed first) re-walks the bay's chain from its last
non-occupied change before the earliest new one, once without and once with the new
changes, and files the difference (``chain.walk``). Count changes go in as increments
(``upsert_add``), so the rows commute between processes; stays are inserted and deleted by
key; each event's ``prev_state`` is set (and the next stored event's fixed). ::

    new rows --by bay--> tip after?  yes: walk(tip, new)            --+
                                     no:  walk(anchor, stored + new)  |-> lot_minutes +=
                                          - walk(anchor, stored)     --+   lot_hours +=
                                                                            bay_stays, tips

``rebuild`` recomputes the rollups of some lots, or all, for whole hours from raw events:
the repair after a bulk load (generated history) or a doubt.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from sqlalchemy import Connection, Select, bindparam, delete, func, select, tuple_, update

from central.db import schema as t
from central.db.engine import insert_ignore, upsert_add
from central.errors import Invalid
from central.history.chain import (
    HOUR,
    MINUTE,
    OCCUPIED,
    STATES,
    UNKNOWN,
    Change,
    Contribution,
    Deltas,
    Stay,
    Tip,
    nonzero,
    walk,
)

e = t.events
BAY_CHANGED = "bay_changed"
RAW_FROM = "raw_from"


LotOf = Callable[[str], str | None]  # a bay's lot by the site file (None: not a lot's bay)


def change_of(row: Mapping[str, Any], lot_of: LotOf) -> Change:
    lot_id = row["lot_id"]
    return Change(
        ts=float(row["ts"]),
        seq=int(row["seq"]),
        box_id=str(row["box_id"]),
        lot_id=lot_id,
        to_state=str(row["to_state"]),
        counted=lot_id is not None and lot_of(row["bay_id"]) == lot_id,
    )


# Row values, so the bay's index (bay_id, ts, seq) serves the comparison and the order.
def _before(ts: float, seq: int) -> Any:
    return tuple_(e.c.ts, e.c.seq) < tuple_(ts, seq)


def _after(ts: float, seq: int) -> Any:
    return tuple_(e.c.ts, e.c.seq) > tuple_(ts, seq)


def apply(conn: Connection, dialect: str, rows: list[dict[str, Any]], lot_of: LotOf) -> None:
    """File the new ``bay_changed`` ``rows`` (not yet inserted) in the rollups; set their
    ``prev_state``."""
    by_bay: dict[str, list[tuple[Change, dict[str, Any]]]] = {}
    for row in rows:
        if row["kind"] == BAY_CHANGED and row["bay_id"] is not None:
            by_bay.setdefault(row["bay_id"], []).append((change_of(row, lot_of), row))
    if not by_bay:
        return
    bays = sorted(by_bay)
    tips = _lock_tips(conn, dialect, bays)
    total = Contribution()
    gone: set[Stay] = set()
    fixes: dict[tuple[str, int], str] = {}
    for bay in bays:
        items = sorted(by_bay[bay], key=lambda item: item[0].order)
        changes = [c for c, _ in items]
        tip = tips[bay]
        if tip.ts is None or changes[0].order > (tip.ts, tip.seq or 0):
            made = walk(bay, tip, changes)
            total.add(made)
            total.stays |= made.stays
        else:
            made, old, stored_prev = _splice(conn, bay, changes, lot_of, tip)
            total.add(made)
            total.add(old, -1)
            total.stays |= made.stays - old.stays
            gone |= old.stays - made.stays
            fixes.update(
                {k: v for k, v in made.prev.items() if k in stored_prev and stored_prev[k] != v}
            )
        for change, row in items:
            row["prev_state"] = made.prev[(change.box_id, change.seq)]
    _write(conn, dialect, total, gone, fixes)
    _save_tips(conn, {bay: tips[bay] for bay in bays})


# Built once: the ingest writer runs them for every batch with bay changes.
_tb, _s = t.bay_tips, t.bay_stays
_TIPS_FOR_UPDATE = (
    select(_tb)
    .where(_tb.c.bay_id.in_(bindparam("bays", expanding=True)))
    .order_by(_tb.c.bay_id)
    .with_for_update()
)
_SAVE_TIP = (
    update(_tb)
    .where(_tb.c.bay_id == bindparam("b"))
    .values(
        lot_id=bindparam("l"), ts=bindparam("ts_"), seq=bindparam("q"),
        state=bindparam("s"), run_began=bindparam("r"),
    )
)  # fmt: skip
_DELETE_STAY = delete(_s).where(
    _s.c.bay_id == bindparam("b"), _s.c.ended == bindparam("e"), _s.c.seq == bindparam("q")
)
_FIX_PREV = (
    update(e)
    .where(e.c.box_id == bindparam("b"), e.c.seq == bindparam("q"))
    .values(prev_state=bindparam("p"))
)


def _lock_tips(conn: Connection, dialect: str, bays: list[str]) -> dict[str, Tip]:
    conn.execute(insert_ignore(dialect, t.bay_tips, ["bay_id"]), [{"bay_id": b} for b in bays])
    found = conn.execute(_TIPS_FOR_UPDATE, {"bays": bays})
    tips = {
        r.bay_id: Tip(
            state=r.state or UNKNOWN, run_began=r.run_began, ts=r.ts, seq=r.seq, lot_id=r.lot_id
        )
        for r in found
    }
    return tips


def _splice(
    conn: Connection,
    bay: str,
    changes: list[Change],
    lot_of: LotOf,
    tip: Tip,
) -> tuple[Contribution, Contribution, dict[tuple[str, int], str | None]]:
    """New changes before the bay's tip: the chain from its last non-occupied change before
    them, walked with and without them."""
    first = changes[0]
    anchor = conn.execute(anchor_query(bay, first.ts, first.seq)).first()
    after = None if anchor is None else (anchor.ts, anchor.seq)
    stored_rows = conn.execute(chain_query(bay, after)).all()
    stored = [change_of({**r._mapping, "bay_id": bay}, lot_of) for r in stored_rows]
    stored_prev = {(r.box_id, r.seq): r.prev_state for r in stored_rows}
    start = _anchor_tip(anchor, stored_rows)
    old = walk(bay, _copy(start), stored)
    merged = sorted(stored + changes, key=lambda c: c.order)
    end = _copy(start)
    made = walk(bay, end, merged)
    tip.state, tip.run_began, tip.ts, tip.seq, tip.lot_id = (
        end.state, end.run_began, end.ts, end.seq, end.lot_id,
    )  # fmt: skip
    return made, old, stored_prev


def anchor_query(bay: str, ts: float, seq: int) -> Select[Any]:
    """The bay's last non-occupied change before (ts, seq): where a re-walk starts."""
    return (
        select(e.c.ts, e.c.seq, e.c.to_state, e.c.lot_id)
        .where(
            e.c.bay_id == bay, e.c.kind == BAY_CHANGED, e.c.to_state != OCCUPIED,
            _before(ts, seq),
        )
        .order_by(e.c.ts.desc(), e.c.seq.desc())
        .limit(1)
    )  # fmt: skip


def chain_query(bay: str, after: tuple[float, int] | None) -> Select[Any]:
    """The bay's changes after (ts, seq) (all of them with None), in order."""
    query = select(e.c.ts, e.c.seq, e.c.box_id, e.c.lot_id, e.c.to_state, e.c.prev_state).where(
        e.c.bay_id == bay, e.c.kind == BAY_CHANGED
    )
    if after is not None:
        query = query.where(_after(*after))
    return query.order_by(e.c.ts, e.c.seq)


def _anchor_tip(anchor: Any, stored_rows: list[Any]) -> Tip:
    if anchor is not None:
        return Tip(state=anchor.to_state, ts=anchor.ts, seq=anchor.seq, lot_id=anchor.lot_id)
    # No earlier non-occupied change held: the chain's start, or, after retention dropped
    # its beginning, the state its first held change says came before it.
    first_prev = stored_rows[0].prev_state if stored_rows else None
    state = first_prev or UNKNOWN
    began = stored_rows[0].ts if state == OCCUPIED and stored_rows else None
    return Tip(state=state, run_began=began)


def _copy(tip: Tip) -> Tip:
    return Tip(tip.state, tip.run_began, tip.ts, tip.seq, tip.lot_id)


def _rows(deltas: Deltas, key: str) -> list[dict[str, Any]]:
    return [
        {"lot_id": lot, key: k, **dict(zip(STATES, values, strict=True))}
        for (lot, k), values in sorted(nonzero(deltas).items())
    ]


def _write(
    conn: Connection,
    dialect: str,
    total: Contribution,
    gone: set[Stay],
    fixes: dict[tuple[str, int], str],
) -> None:
    for table, key, deltas in (
        (t.lot_minutes, "minute", total.minutes),
        (t.lot_hours, "hour", total.hours),
    ):
        rows = _rows(deltas, key)
        if rows:
            conn.execute(upsert_add(dialect, table, ["lot_id", key], STATES), rows)
    s = t.bay_stays
    if gone:
        conn.execute(
            _DELETE_STAY,
            [{"b": x.bay_id, "e": x.ended, "q": x.seq} for x in sorted(gone, key=_stay_key)],
        )
    if total.stays:
        conn.execute(
            insert_ignore(dialect, s, ["bay_id", "ended", "seq"]),
            [
                {"bay_id": x.bay_id, "ended": x.ended, "seq": x.seq, "lot_id": x.lot_id,
                 "began": x.began}
                for x in sorted(total.stays, key=_stay_key)
            ],
        )  # fmt: skip
    if fixes:
        conn.execute(
            _FIX_PREV,
            [{"b": box, "q": seq, "p": prev} for (box, seq), prev in sorted(fixes.items())],
        )


def _stay_key(stay: Stay) -> tuple[str, float, int]:
    return (stay.bay_id, stay.ended, stay.seq)


def _save_tips(conn: Connection, tips: Mapping[str, Tip]) -> None:
    conn.execute(
        _SAVE_TIP,
        [
            {"b": bay, "l": tip.lot_id, "ts_": tip.ts, "q": tip.seq, "s": tip.state,
             "r": tip.run_began}
            for bay, tip in sorted(tips.items())
        ],
    )  # fmt: skip


# --- the repair -------------------------------------------------------------------------


def raw_from(conn: Connection) -> float | None:
    """Raw events before this were dropped by retention (None: all are held)."""
    value = conn.execute(
        select(t.history_marks.c.value).where(t.history_marks.c.name == RAW_FROM)
    ).scalar()
    return None if value is None else float(value)


def bay_lots(conn: Connection) -> dict[str, str | None]:
    """Each bay's lot by the site file as loaded (``bays``)."""
    return {r.bay_id: r.lot_id for r in conn.execute(select(t.bays.c.bay_id, t.bays.c.lot_id))}


def rebuild(
    conn: Connection,
    *,
    lot_ids: Iterable[str] | None = None,
    start: float | None = None,
    end: float | None = None,
    lot_of: LotOf | None = None,
) -> int:
    """Recompute the rollups of ``lot_ids`` (default every lot) for the whole hours that
    cover ``start``..``end`` (default all time) from raw events; the changes walked.

    Refused for a range that begins before raw events were dropped (``raw_from``): their
    rollups are all that is left of them. A bay counts for its lot by ``lot_of`` (default:
    the site file as loaded, ``bays``).
    """
    lo = -math.inf if start is None else math.floor(start / HOUR) * HOUR
    hi = math.inf if end is None else math.ceil(end / HOUR) * HOUR
    dropped = raw_from(conn)
    if dropped is not None and lo < dropped:
        raise Invalid(
            "raw events before this were dropped: their rollups cannot be rebuilt", field="start"
        )
    lots = None if lot_ids is None else sorted(set(lot_ids))
    if lot_of is None:
        lot_of = bay_lots(conn).get
    query = select(
        e.c.bay_id, e.c.ts, e.c.seq, e.c.box_id, e.c.lot_id, e.c.to_state, e.c.prev_state
    ).where(e.c.kind == BAY_CHANGED, e.c.bay_id.is_not(None))
    if lots is not None:
        query = query.where(e.c.lot_id.in_(lots))
    total = Contribution()
    tips: dict[str, Tip] = {}
    fixes: dict[tuple[str, int], str] = {}
    walked = 0
    rows = conn.execute(query.order_by(e.c.bay_id, e.c.ts, e.c.seq)).all()
    i = 0
    while i < len(rows):
        bay = rows[i].bay_id
        j = i
        while j < len(rows) and rows[j].bay_id == bay:
            j += 1
        chain = rows[i:j]
        tip = _anchor_tip(None, chain)
        made = walk(bay, tip, [change_of(r._mapping, lot_of) for r in chain])
        walked += len(chain)
        total.add(made)
        total.stays |= {s for s in made.stays if lo < s.ended <= hi}
        fixes.update(
            {(r.box_id, r.seq): made.prev[(r.box_id, r.seq)] for r in chain
             if r.prev_state != made.prev[(r.box_id, r.seq)]}
        )  # fmt: skip
        tips[bay] = tip
        i = j
    _clear(conn, lots, lo, hi)
    kept = Contribution(
        minutes={k: v for k, v in total.minutes.items() if lo < k[1] * MINUTE <= hi},
        hours={k: v for k, v in total.hours.items() if lo < k[1] * HOUR <= hi},
        stays=total.stays,
    )
    _write(conn, conn.dialect.name, kept, set(), fixes)
    if tips:
        conn.execute(
            insert_ignore(conn.dialect.name, t.bay_tips, ["bay_id"]),
            [{"bay_id": b} for b in sorted(tips)],
        )
        _save_tips(conn, tips)
    return walked


def _clear(conn: Connection, lots: list[str] | None, lo: float, hi: float) -> None:
    for table, key, width in (
        (t.lot_minutes, "minute", MINUTE),
        (t.lot_hours, "hour", HOUR),
    ):
        col = table.c[key]
        where = []
        if lo > -math.inf:
            where.append(col > int(lo // width))
        if hi < math.inf:
            where.append(col <= int(hi // width))
        if lots is not None:
            where.append(table.c.lot_id.in_(lots))
        conn.execute(delete(table).where(*where))
    s = t.bay_stays
    where = [s.c.ended > lo] if lo > -math.inf else []
    if hi < math.inf:
        where.append(s.c.ended <= hi)
    if lots is not None:
        where.append(s.c.lot_id.in_(lots))
    conn.execute(delete(s).where(*where))


def count_rows(conn: Connection) -> dict[str, int]:
    """Rows of each rollup table (for the repair's report)."""
    return {
        table.name: int(conn.execute(select(func.count()).select_from(table)).scalar() or 0)
        for table in (t.lot_minutes, t.lot_hours, t.bay_stays)
    }
