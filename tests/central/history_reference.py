"""The history and dwell answers as central made them before the rollups (issue 17): a
replay of the raw events, kept here as the reference the rollups must agree with.

History: every bay's last change before ``start`` (a look-up per bay), then the lot's
changes in the range replayed in order and sampled at each step. Dwell: the lot's changes
from a day before ``start``, stays ended inside the range.
"""

from __future__ import annotations

import statistics
from typing import Any

from sqlalchemy import Engine, select

from central.db import schema as t


def history(
    engine: Engine, lot_id: str, start_ts: float, end_ts: float, step_s: int
) -> list[tuple[float, int, int, int, int]]:
    """(at, free, occupied, unknown, closed) at each sample."""
    e = t.events
    with engine.connect() as conn:
        bay_ids = list(
            conn.execute(select(t.bays.c.bay_id).where(t.bays.c.lot_id == lot_id)).scalars()
        )
        state: dict[str, str] = {}
        for bay_id in bay_ids:
            last = conn.execute(
                select(e.c.to_state)
                .where(e.c.bay_id == bay_id, e.c.kind == "bay_changed", e.c.ts < start_ts)
                .order_by(e.c.ts.desc(), e.c.seq.desc())
                .limit(1)
            ).scalar()
            state[bay_id] = last or "unknown"
        changes = conn.execute(
            select(e.c.ts, e.c.bay_id, e.c.to_state)
            .where(
                e.c.lot_id == lot_id,
                e.c.kind == "bay_changed",
                e.c.ts >= start_ts,
                e.c.ts <= end_ts,
            )
            .order_by(e.c.ts, e.c.seq)
        ).all()
    counts = {"free": 0, "occupied": 0, "unknown": 0, "closed": 0}
    for value in state.values():
        counts[value] += 1
    out = []
    index = 0
    sample = start_ts
    while sample <= end_ts + 1e-9:
        while index < len(changes) and changes[index].ts <= sample:
            _, bay_id, to_state = changes[index]
            index += 1
            before = state.get(bay_id)
            if before is None:
                continue
            counts[before] -= 1
            counts[to_state] += 1
            state[bay_id] = to_state
        out.append(
            (sample, counts["free"], counts["occupied"], counts["unknown"], counts["closed"])
        )
        sample += step_s
    return out


def dwell(engine: Engine, lot_id: str, start_ts: float, end_ts: float) -> dict[str, Any]:
    e = t.events
    with engine.connect() as conn:
        rows = conn.execute(
            select(e.c.bay_id, e.c.ts, e.c.to_state)
            .where(
                e.c.lot_id == lot_id,
                e.c.kind == "bay_changed",
                e.c.ts >= start_ts - 86400,
                e.c.ts <= end_ts,
            )
            .order_by(e.c.bay_id, e.c.ts, e.c.seq)
        ).all()
    stays: list[float] = []
    began: dict[str, float] = {}
    for bay_id, ts_, to_state in rows:
        if to_state == "occupied":
            began.setdefault(bay_id, ts_)
        elif bay_id in began:
            since = began.pop(bay_id)
            if ts_ >= start_ts:
                stays.append(ts_ - since)
    stays.sort()
    return {
        "stays": len(stays),
        "mean_s": statistics.fmean(stays) if stays else None,
        "median_s": statistics.median(stays) if stays else None,
        "max_s": stays[-1] if stays else None,
    }
