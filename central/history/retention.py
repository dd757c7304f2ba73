"""Raw events age out; rollups stay.

With ``RAW_EVENTS_KEEP_DAYS`` set, the process holding the ``history-retention`` lease
drops, once an hour, the raw events of every month that ended more than that many days
ago (UTC months): on PostgreSQL whole monthly partitions are dropped
(``central.history.partitions``) and what the default partition holds below the cut is
deleted; on SQLite the rows are deleted by range. The cut is recorded
(``history_marks.raw_from``): the history then reads those months from the rollups alone,
and the repair refuses to rebuild them.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from typing import Any

from sqlalchemy import Engine, delete

from central.db import schema as t
from central.db.engine import upsert, writer
from central.history import partitions
from central.history.rollups import RAW_FROM, raw_from
from central.leases.job import LeasedJob

log = logging.getLogger(__name__)


def month_start(ts: float) -> float:
    """The start (UTC) of the month that holds ``ts``."""
    day = dt.datetime.fromtimestamp(ts, dt.UTC)
    return dt.datetime(day.year, day.month, 1, tzinfo=dt.UTC).timestamp()


def cut_for(now: float, keep_days: float) -> float:
    """Raw events before this go: the start of the month holding ``now - keep_days``."""
    return month_start(now - keep_days * 86400)


def drop_raw_events(engine: Engine, before: float) -> int:
    """Drop the raw events with ``ts < before``; the rows dropped (a dropped partition
    counts its rows). Moves ``raw_from`` to ``before`` (never back)."""
    with writer(engine).begin() as conn:
        held = raw_from(conn)
        if held is not None and held >= before:
            return 0
        dropped = 0
        if partitions.partitioned(conn):
            dropped += partitions.drop_before(conn, before)
        dropped += conn.execute(delete(t.events).where(t.events.c.ts < before)).rowcount or 0
        conn.execute(
            upsert(conn.dialect.name, t.history_marks, ["name"], ["value"]),
            {"name": RAW_FROM, "value": before},
        )
    log.info("dropped %d raw events before %s", dropped, dt.datetime.fromtimestamp(before, dt.UTC))
    return dropped


class RetentionJob:
    """Once an hour, in a thread: the partitions ahead (PostgreSQL) and the cut, for the
    process holding the ``history-retention`` lease."""

    def __init__(
        self,
        engine: Engine,
        *,
        keep_days: float,
        holds: Any = None,
        interval_s: float = 3600.0,
        clock: Any = time.time,
    ) -> None:
        self.engine = engine
        self.keep_days = keep_days
        self.holds = holds or (lambda: True)
        self.interval_s = interval_s
        self.clock = clock
        self._job = LeasedJob(
            "history-retention",
            self.run_once,
            interval_s=interval_s,
            holds=self.holds,
            first_at_start=True,
        )

    def start(self) -> RetentionJob:
        self._job.start()
        return self

    def stop(self) -> None:
        self._job.stop()

    def run_once(self) -> int:
        now = self.clock()
        with writer(self.engine).begin() as conn:
            if partitions.partitioned(conn):
                partitions.ensure_ahead(conn, now)
        if self.keep_days <= 0:
            return 0
        return drop_raw_events(self.engine, cut_for(now, self.keep_days))
