"""Office alerts for lost messages: the broker reports drops, or a box's seq gap lasts.

::

    broker $SYS dropped count grows (central.ingest.broker_sys)
        -> alert ("broker", "central:broker_drops"), type broker_drops, raised (count in
           the message); cleared when no drop was reported for ``quiet_s``
    a box's seq gap (IngestStats.seq_gaps, parkgrid_central_seq_gap_events) > 0 for longer
    than ``gap_after_s``
        -> alert (box, "central:seq_gap"), type seq_gap, raised; cleared when the gap is 0

``DropWatch.check(now)`` decides and writes: an alert row is written only when it opens,
grows (more drops) or clears, so an open alert is not rewritten every check; at its first
check the watch reads which of its alerts are open (a previous process's), so it clears
those that are no longer true and does not raise twice. The alerts live in ``alerts``
beside the boxes' (``central:`` ids cannot clash with a box's own), so the alerts page,
acknowledging and duty routing work for them as for any other. The thread runs it every
``interval_s`` in the process holding the ``drops-watch`` lease (central.leases).

After central starts, the broker's first retained count is everything it dropped since
it started (it cannot tell for whom): drops while central was down are reported once, and
clear after ``quiet_s``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine, and_, select

from central.db import schema as t
from central.db.engine import writer
from central.ingest.broker_sys import BrokerCounters
from central.leases.job import LeasedJob

log = logging.getLogger(__name__)

BROKER = "broker"
BROKER_DROPS = "broker_drops"
SEQ_GAP = "seq_gap"
TYPES = (BROKER_DROPS, SEQ_GAP)
Key = tuple[str, str]  # (box_id, alert_id)


def broker_key() -> Key:
    return BROKER, f"central:{BROKER_DROPS}"


def gap_key(box_id: str) -> Key:
    return box_id, f"central:{SEQ_GAP}"


class DropWatch:
    def __init__(
        self,
        engine: Engine,
        counters: BrokerCounters,
        gaps: Callable[[], dict[str, int]],
        *,
        gap_after_s: float,
        quiet_s: float,
        notify: Callable[[list[dict[str, Any]]], None] | None = None,
    ) -> None:
        self.engine = engine
        self.counters = counters
        self.gaps = gaps
        self.gap_after_s = gap_after_s
        self.quiet_s = quiet_s
        self.notify = notify
        self._open: set[Key] | None = None  # read from the store at the first check
        self._seen_dropped = 0
        self._last_drop_at = 0.0
        self._gap_since: dict[str, float] = {}

    def check(self, now: float | None = None) -> list[dict[str, Any]]:
        """Raise and clear as the counters say now; the notices of what changed."""
        now = time.time() if now is None else now
        if self._open is None:
            self._open = self._read_open()
            self._last_drop_at = now  # an alert left open is quiet from now, not from 0
        notices: list[dict[str, Any]] = []
        dropped = self.counters.dropped_total
        key = broker_key()
        if dropped > self._seen_dropped:
            grown = dropped - self._seen_dropped
            message = (
                f"the broker dropped {grown} message(s) since last seen ({dropped} in all since "
                "central started): a session's queue was full (max_queued_messages); boxes "
                "resend what central did not ack"
            )
            notices += self._raise(key, BROKER_DROPS, "critical", message, now)
            self._seen_dropped, self._last_drop_at = dropped, now  # once written
        elif key in self._open and now - self._last_drop_at >= self.quiet_s:
            notices += self._clear(key, now)
        gaps = self.gaps()
        for box_id, gap in sorted(gaps.items()):
            key = gap_key(box_id)
            if gap <= 0:
                self._gap_since.pop(box_id, None)
                if key in self._open:
                    notices += self._clear(key, now)
                continue
            since = self._gap_since.setdefault(box_id, now)
            if now - since >= self.gap_after_s and key not in self._open:
                message = (
                    f"box {box_id} has waited {now - since:.0f} s at a hole of {gap} seq(s) "
                    "above its watermark: events lost on the way or not resent"
                )
                notices += self._raise(key, SEQ_GAP, "warning", message, now)
        for key in [k for k in self._open if k[1] == gap_key("")[1] and k[0] not in gaps]:
            notices += self._clear(key, now)  # a box this process no longer counts
        if notices and self.notify is not None:
            self.notify(notices)
        return notices

    def _read_open(self) -> set[Key]:
        a = t.alerts.c
        query = select(a.box_id, a.alert_id).where(a.alert_type.in_(TYPES), a.state != "resolved")
        with self.engine.connect() as conn:
            return {(b, i) for b, i in conn.execute(query) if i.startswith("central:")}

    def _raise(
        self, key: Key, alert_type: str, severity: str, message: str, now: float
    ) -> list[dict[str, Any]]:
        box_id, alert_id = key
        where = and_(t.alerts.c.box_id == box_id, t.alerts.c.alert_id == alert_id)
        with writer(self.engine).begin() as conn:
            current = conn.execute(select(t.alerts.c.state).where(where)).first()
            if current is None:
                conn.execute(
                    t.alerts.insert(),
                    {
                        "box_id": box_id, "alert_id": alert_id, "alert_type": alert_type,
                        "severity": severity, "step": 0, "since": now, "message": message,
                        "state": "raised", "raised_at": now, "updated_at": now, "last_seq": 0,
                    },
                )  # fmt: skip
            else:
                values: dict[str, object] = {"message": message, "updated_at": now}
                if current.state == "resolved":
                    values.update(
                        state="raised", since=now, raised_at=now, acknowledged_by=None,
                        acknowledged_at=None, resolved_by=None, resolved_at=None,
                    )  # fmt: skip
                conn.execute(t.alerts.update().where(where).values(**values))
        assert self._open is not None
        self._open.add(key)
        log.warning("alert %s/%s raised: %s", box_id, alert_id, message)
        return [{"type": "alert_raised", "box_id": box_id, "alert_id": alert_id,
                 "alert_type": alert_type}]  # fmt: skip

    def _clear(self, key: Key, now: float) -> list[dict[str, Any]]:
        box_id, alert_id = key
        with writer(self.engine).begin() as conn:
            row = conn.execute(
                select(t.alerts.c.alert_type).where(
                    t.alerts.c.box_id == box_id, t.alerts.c.alert_id == alert_id
                )
            ).first()
            conn.execute(
                t.alerts.update()
                .where(
                    t.alerts.c.box_id == box_id,
                    t.alerts.c.alert_id == alert_id,
                    t.alerts.c.state != "resolved",
                )
                .values(state="resolved", resolved_by="central", resolved_at=now, updated_at=now)
            )
        assert self._open is not None
        self._open.discard(key)
        log.info("alert %s/%s cleared", box_id, alert_id)
        alert_type = row.alert_type if row is not None else None
        return [{"type": "alert_resolved", "box_id": box_id, "alert_id": alert_id,
                 "alert_type": alert_type}]  # fmt: skip


class DropWatchThread:
    """``DropWatch.check`` every ``interval_s`` while ``holds()`` (the lease)."""

    def __init__(self, watch: DropWatch, *, interval_s: float, holds: Callable[[], bool]) -> None:
        self.watch = watch
        self._job = LeasedJob("drops-watch", watch.check, interval_s=interval_s, holds=holds)

    def start(self) -> DropWatchThread:
        self._job.start()
        return self

    def stop(self) -> None:
        self._job.stop()
