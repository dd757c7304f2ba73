"""A lot's occupancy history and dwell times, read from the rollups.

The counts at a sample time ``T`` are the lot's bays, all ``unknown``, plus the count
changes filed up to ``T`` (``central.history.chain``): the hour rows up to ``T``'s hour,
the minute rows from there to ``T``'s minute, and, when ``T`` is not a whole minute, the
raw changes of that part of a minute (each with its ``prev_state``). A sample on a whole
minute therefore never reads ``events``, and stays exact after retention has dropped the
raw events; between whole minutes it is exact while they are held (after that, the state
at the minute before). Reads are range scans of the rollups' primary keys, ranges merged
and asked in chunks, then summed with bisection: no per-bay look-up, no replay.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Float, and_, column, func, or_, select
from sqlalchemy import values as values_list

from central.db import schema as t
from central.db.engine import per_row
from central.history.chain import HOUR, INDEX, MINUTE, STATES

FEW = 8  # ranges in a WHERE; more are joined as a VALUES list
CHUNK = 2000  # ranges per statement
Counts = list[int]  # free, occupied, unknown, closed


def samples(start_ts: float, end_ts: float, step_s: int) -> list[float]:
    """The sample times ``start``, ``start + step``, ... up to ``end`` (as the API has
    always made them: by repeated addition)."""
    out = []
    sample = start_ts
    while sample <= end_ts + 1e-9:
        out.append(sample)
        sample += step_s
    return out


def _merge(ranges: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """Half-open ranges ``(lo, hi]`` merged where they touch; empty ones left out."""
    out: list[tuple[float, float]] = []
    for lo, hi in sorted(r for r in ranges if r[1] > r[0]):
        if out and lo <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


def _in_ranges(
    conn: Connection, query: Any, col: Any, ranges: Sequence[tuple[float, float]]
) -> list[Any]:
    """The rows of ``query`` whose ``col`` lies in one of ``ranges`` (``(lo, hi]``). A few
    ranges go in its WHERE; many are a ``VALUES`` list, each range one index range scan
    (``per_row``; PostgreSQL's plan for hundreds of ORs was a bitmap of them all, 1.3 s
    for a quarter's hourly heat-map samples)."""
    merged = _merge(ranges)
    if len(merged) <= FEW:
        if not merged:
            return []
        return list(
            conn.execute(query.where(or_(*(and_(col > lo, col <= hi) for lo, hi in merged))))
        )
    rows: list[Any] = []
    for i in range(0, len(merged), CHUNK):
        w = (
            values_list(column("lo", Float), column("hi", Float), name="w")
            .data(merged[i : i + CHUNK])
            .cte("w")
        )
        each = query.where(col > w.c.lo, col <= w.c.hi)
        rows.extend(conn.execute(per_row(conn.dialect.name, w, each)))
    return rows


class _Sums:
    """Sums of count changes over ``(lo, hi]`` of their keys, by bisection."""

    def __init__(self, keyed: list[tuple[float, Sequence[int]]]) -> None:
        keyed.sort(key=lambda kv: kv[0])
        self.keys = [k for k, _ in keyed]
        self.cum: list[Counts] = [[0, 0, 0, 0]]
        for _, values in keyed:
            last = self.cum[-1]
            self.cum.append([a + b for a, b in zip(last, values, strict=True)])

    def between(self, lo: float, hi: float) -> Counts:
        if hi <= lo:
            return [0, 0, 0, 0]
        a = self.cum[bisect.bisect_right(self.keys, lo)]
        b = self.cum[bisect.bisect_right(self.keys, hi)]
        return [y - x for x, y in zip(a, b, strict=True)]


def _counts_rows(conn: Connection, table: Any, key: str, lot_id: str, ranges: Any) -> _Sums:
    query = select(table.c[key], *(table.c[s] for s in STATES)).where(table.c.lot_id == lot_id)
    rows = _in_ranges(conn, query, table.c[key], ranges)
    return _Sums([(row[0], row[1:]) for row in rows])


def _one_hot(state: str | None) -> Counts:
    out = [0, 0, 0, 0]
    out[INDEX.get(state or "unknown", INDEX["unknown"])] = 1
    return out


def counts_at(
    conn: Connection, lot_id: str, bays: set[str], times: Sequence[float]
) -> list[Counts]:
    """The lot's (free, occupied, unknown, closed) at each of ``times`` (ascending)."""
    if not times:
        return []
    hours = [math.floor(x / HOUR) for x in times]
    minutes = [math.floor(x / MINUTE) for x in times]
    h = t.lot_hours
    base = conn.execute(
        select(*(func.coalesce(func.sum(h.c[s]), 0) for s in STATES)).where(
            h.c.lot_id == lot_id, h.c.hour <= hours[0]
        )
    ).one()
    by_hour = _counts_rows(conn, h, "hour", lot_id, [(hours[0], hours[-1])])
    by_minute = _counts_rows(
        conn, t.lot_minutes, "minute", lot_id,
        [(hr * 60, mi) for hr, mi in zip(hours, minutes, strict=True)],
    )  # fmt: skip
    partial = [(mi * MINUTE, x) for mi, x in zip(minutes, times, strict=True) if x > mi * MINUTE]
    raw = _raw_changes(conn, lot_id, bays, partial) if partial else _Sums([])
    out = []
    for x, hr, mi in zip(times, hours, minutes, strict=True):
        parts = (
            base,
            by_hour.between(hours[0], hr),
            by_minute.between(hr * 60, mi),
            raw.between(mi * MINUTE, x),
        )
        total = [sum(p[i] for p in parts) for i in range(4)]
        total[INDEX["unknown"]] += len(bays)
        out.append(total)
    return out


def _raw_changes(
    conn: Connection, lot_id: str, bays: set[str], ranges: list[tuple[float, float]]
) -> _Sums:
    e = t.events
    query = select(e.c.ts, e.c.bay_id, e.c.prev_state, e.c.to_state).where(
        e.c.lot_id == lot_id, e.c.kind == "bay_changed"
    )
    keyed = []
    for ts, bay_id, prev, to in _in_ranges(conn, query, e.c.ts, ranges):
        if bay_id in bays and to != prev:
            keyed.append((ts, [a - b for a, b in zip(_one_hot(to), _one_hot(prev), strict=True)]))
    return _Sums(keyed)


def stays(conn: Connection, lot_id: str, start_ts: float, end_ts: float) -> list[float]:
    """How long each stay lasted that ended in ``[start, end]`` and began at most a day
    before ``start``, shortest first."""
    s = t.bay_stays
    lasted = conn.execute(
        select(s.c.ended - s.c.began).where(
            s.c.lot_id == lot_id,
            s.c.ended >= start_ts,
            s.c.ended <= end_ts,
            s.c.began >= start_ts - 86400,
        )
    ).scalars()
    return sorted(lasted)


def lot_bays(conn: Connection, lot_id: str) -> set[str]:
    return set(conn.execute(select(t.bays.c.bay_id).where(t.bays.c.lot_id == lot_id)).scalars())


def lots_at(conn: Connection, start: int, step: int, count: int) -> dict[str, list[Counts]]:
    """Every lot's (free, occupied, unknown, closed) at ``start``, ``start + step``, ...
    (``count`` samples; ``start`` and ``step`` whole minutes): the county overview's
    sparklines in one pass. The counts now are the bays' tips (``bay_tips``); a sample's
    are those less the count changes filed after it, summed per sample in SQL."""
    if start % MINUTE or step % MINUTE or step <= 0:
        raise ValueError("start and step must be whole minutes")
    b, tip, m = t.bays, t.bay_tips, t.lot_minutes
    now: dict[str, Counts] = {}
    for lot_id, bays in conn.execute(
        select(b.c.lot_id, func.count()).where(b.c.lot_id.is_not(None)).group_by(b.c.lot_id)
    ):
        now[lot_id] = [0, 0, int(bays), 0]
    known = (
        select(tip.c.lot_id, tip.c.state, func.count())
        .select_from(tip.join(b, and_(b.c.bay_id == tip.c.bay_id, b.c.lot_id == tip.c.lot_id)))
        .where(tip.c.state.is_not(None))
        .group_by(tip.c.lot_id, tip.c.state)
    )
    for lot_id, state, n in conn.execute(known):
        row = now[lot_id]
        row[INDEX[state]] += int(n)
        row[INDEX["unknown"]] -= int(n)
    # The first sample index not before the change's minute end: the change counts from it.
    first = (m.c.minute * MINUTE - start + step - 1) // step
    after = conn.execute(
        select(m.c.lot_id, first, *(func.sum(m.c[s]) for s in STATES))
        .where(m.c.lot_id.in_(sorted(now)), m.c.minute > start // MINUTE)  # the PK, per lot
        .group_by(m.c.lot_id, first)
    ).all()
    later: dict[str, dict[int, Counts]] = {}
    for lot_id, j, *values in after:
        later.setdefault(lot_id, {})[int(j)] = [int(v) for v in values]
    out = {}
    for lot_id, total in now.items():
        by_index = later.get(lot_id, {})
        suffix = [0, 0, 0, 0]
        for j in (k for k in by_index if k >= count):
            suffix = [a + c for a, c in zip(suffix, by_index[j], strict=True)]
        series: list[Counts] = [[0, 0, 0, 0]] * count
        for j in range(count - 1, -1, -1):
            series[j] = [a - c for a, c in zip(total, suffix, strict=True)]
            if j in by_index:
                suffix = [a + c for a, c in zip(suffix, by_index[j], strict=True)]
        out[lot_id] = series
    return out
