"""The watermark walk: move a box's acked seq forward over its stored seqs and ranges.

The rule itself (``watermark.advance``) is pure; this module reads its inputs a page at a
time and stores the result, monotonically.
"""

from __future__ import annotations

import time

from sqlalchemy import Connection, func, select

from central.db import schema as t
from central.db.engine import insert_ignore
from central.ingest.watermark import advance

WALK_CHUNK = 5000
RANGE_CHUNK = 1000


def walk(conn: Connection, dialect: str, box_id: str) -> int:
    """Walk ``box_id``'s watermark forward and return the stored one (never lower)."""
    wm = t.watermarks
    current = conn.execute(select(wm.c.acked_seq).where(wm.c.box_id == box_id)).scalar()
    acked = start = current or 0
    # A range counts only below a stored seq of the box: the event that reported it is
    # stored with it, above it. This keeps a range stored before central checked the
    # claims (one reaching past its own report) from carrying the watermark.
    top = conn.execute(select(func.max(t.events.c.seq)).where(t.events.c.box_id == box_id))
    highest = top.scalar() or 0
    dr = t.dropped_ranges.c
    while True:
        # Both read a page at a time: a box that reported (or forged) a flood of ranges or
        # seqs far above a hole costs each walk one page of each, not all of them.
        ranges = conn.execute(
            select(dr.first_seq, dr.last_seq)
            .where(dr.box_id == box_id, dr.last_seq > acked, dr.last_seq < highest)
            .order_by(dr.first_seq)
            .limit(RANGE_CHUNK)
        ).all()
        seqs = (
            conn.execute(
                select(t.events.c.seq)
                .where(t.events.c.box_id == box_id, t.events.c.seq > acked)
                .order_by(t.events.c.seq)
                .limit(WALK_CHUNK)
            )
            .scalars()
            .all()
        )
        moved = advance(acked, seqs, [(first, last) for first, last in ranges])
        # More to read only if the walk used up a full page of either.
        more_seqs = len(seqs) == WALK_CHUNK and moved >= seqs[-1]
        more_ranges = len(ranges) == RANGE_CHUNK and moved >= ranges[-1][0] - 1
        stuck = moved == acked
        acked = moved
        if stuck or not (more_seqs or more_ranges):
            break
    if current is None:
        conn.execute(
            insert_ignore(dialect, t.watermarks, ["box_id"]),
            {"box_id": box_id, "acked_seq": acked, "updated_at": time.time()},
        )
    if acked > start:
        # Monotonic: another process may have moved it further meanwhile.
        conn.execute(
            wm.update()
            .where(wm.c.box_id == box_id, wm.c.acked_seq < acked)
            .values(acked_seq=acked, updated_at=time.time())
        )
    return max(
        acked, conn.execute(select(wm.c.acked_seq).where(wm.c.box_id == box_id)).scalar() or 0
    )
