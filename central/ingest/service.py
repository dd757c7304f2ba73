"""The ingest writer: a batch of raw MQTT messages in, one transaction, acks out.

Theory of operation
-------------------
The MQTT client's network thread only queues ``(topic, payload, received_at)``; this writer
takes a batch off the queue and, in **one** transaction:

1. decodes each message (``decode_message``); a failure, a foreign site or a box the site
   file does not know goes to ``quarantine`` with its topic, bytes and reason;
2. inserts the batch's events with ``INSERT .. ON CONFLICT (box_id, seq, ts) DO
   NOTHING`` after one read of the seqs held: the rest are repeats (counted, dropped); only
   new events have side effects (alerts, dropped seq ranges, the history rollups,
   ``central.history.rollups``);
3. applies state documents, conflated per topic (the latest in the batch wins; a document
   older than the stored one is ignored), and command replies;
4. moves each box's watermark from the seqs and dropped ranges it has just stored
   (``marks.MarkBook``: in memory, O(new events); the walk over the store only repairs a
   box the process has not seen since it started).

After the commit, and never before, it publishes each touched box's ``AckWatermark``
(retained): the box may then delete those events from its outbox. A crash before the
commit loses nothing: the box still has every event above the last published watermark
and sends it again. ::

    paho thread --(topic, bytes, t)--> queue --batch--> [decode | insert | states | marks]
                                                               |  commit
                                                               v
                                                  publish acks, notify the live stream

With several central processes on a shared subscription, one box's events are spread over
processes: a process's mark may wait at a hole another process is filling. ``sweep()``
settles recently touched boxes left waiting at a hole a moment later (reading only the
hole) and publishes a stored mark another process moved past the one this process
published last, so the watermark always catches up; with one process nothing waits that
the store could fill, and the sweep reads nothing.

Where each step lives: ``batch`` (the data a batch is made of), ``decode`` (decode and
file each message by payload type, through a table), ``events`` (refuse, insert, apply by
event body type, through a table), ``states`` (state documents by type, through a table),
``boxes`` (statuses, replies, last seen, site problems), ``marks`` (each box's watermark,
moved by the insert), ``walk`` (the watermark walk, the repair), ``retries`` (retries and
the full disk). This module runs them in order and publishes.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid
from collections.abc import Callable, Sequence

from sqlalchemy import Engine, select

from central.db import schema as t
from central.db.engine import BulkInsert, insert_ignore, writer
from central.ingest.batch import (
    Batch,
    BatchResult,
    IngestContext,
    IngestStats,
    Notify,
    Publish,
    RawMessage,
)
from central.ingest.boxes import apply_replies, apply_seen, apply_statuses, record_problems
from central.ingest.decode import decode_batch
from central.ingest.events import (
    NewEvent,
    apply_events,
    hold_boxes,
    refuse_implausible_drops,
    store_events,
)
from central.ingest.lines import Line, sort_lines
from central.ingest.marks import MarkBook
from central.ingest.retries import is_disk_full, store_with_retries
from central.ingest.states import apply_states
from central.quarantine.retention import QuarantineRetention
from central.stream.relay import notify_in
from firmware_protocols.uplink import (
    AckWatermark,
    CentralStatus,
    EventsDropped,
    Topics,
    encode_payload,
)
from site_model.site import SiteIndex

__all__ = [
    "BatchResult",
    "IngestStats",
    "IngestWriter",
    "Notify",
    "Publish",
    "RawMessage",
    "is_disk_full",
    "store_with_retries",
]


class IngestWriter:
    """Turns batches of raw messages into one committed transaction and the acks after it.

    ``publish`` sends an MQTT message (the ack); ``notify`` receives change notices for the
    live stream after each commit; ``on_central_status`` sees other central instances'
    status documents. ``shared``: other processes store this site's events too (an ingest
    group); the marks then also read what they stored. Without a group say False: one
    writer's marks need no read of the store. ``lease``: whether this process republishes
    every stored ack after a reconnect (``central.leases``; None: always).
    ``stream_channel``: send each batch's notices with ``pg_notify`` in its transaction,
    for every process's live stream (``central.stream.relay``).
    """

    def __init__(
        self,
        *,
        engine: Engine,
        site: SiteIndex,
        publish: Publish | None = None,
        notify: Notify | None = None,
        on_central_status: Callable[[CentralStatus], None] | None = None,
        stats: IngestStats | None = None,
        sweep_window_s: float = 3.0,
        wants_notices: Callable[[], bool] | None = None,
        retention: QuarantineRetention | None = None,
        shared: bool = True,
        lease: Callable[[], bool] | None = None,
        stream_channel: str | None = None,
    ) -> None:
        self.engine = writer(engine)
        self.shared = shared
        self.lease = lease  # republish every ack only while this holds (one process does)
        # PostgreSQL with several processes: notices go out with the commit (stream.relay).
        self.stream_channel = stream_channel
        self.marks = MarkBook(engine.dialect.name, shared=shared)
        self.retention = retention or QuarantineRetention()
        self.dialect = engine.dialect.name
        self.site = site
        self.publish = publish
        self.notify = notify
        self.on_central_status = on_central_status
        self.stats = stats or IngestStats()
        self.sweep_window_s = sweep_window_s
        self.wants_notices = wants_notices or (lambda: True)
        self._recent: dict[str, float] = {}  # box -> monotonic time of its last event batch
        self._published: dict[str, int] = {}
        self._lines: dict[str, Line | None] = {}  # each box's seq line, named in its acks
        self._lock = threading.Lock()  # one batch at a time, whoever calls
        columns = {c.name: None for c in t.events.c if c.name != "id"}
        self._insert_events = BulkInsert(
            engine,
            insert_ignore(self.dialect, t.events, ["box_id", "seq", "ts"]).values(columns).inline(),
        )
        self._insert_quarantine = t.quarantine.insert()

    def _context(self) -> IngestContext:
        # Built per batch: the writer process swaps ``stats`` between batches.
        return IngestContext(site=self.site, stats=self.stats, dialect=self.dialect)

    # --- the transaction ------------------------------------------------------------------

    def process(self, raw: Sequence[RawMessage]) -> dict[str, int]:
        """Store one batch, then publish its acks and notices; return the watermark of each
        box that had events in it."""
        result = self.store(raw)
        self.finish(result)
        return result.marks

    def finish(self, result: BatchResult) -> None:
        """After the commit: publish the acks, pass on central statuses, notify listeners."""
        self._lines.update(result.lines)
        self.publish_marks(result.marks)
        if self.on_central_status is not None:
            for status in result.central_statuses:
                self.on_central_status(status)
        if self.notify is not None and result.notices:
            self.notify(result.notices)

    def store(self, raw: Sequence[RawMessage], *, live: bool | None = None) -> BatchResult:
        """Decode and store one batch in one transaction; publish nothing.

        ``live``: build per-event notices for the live stream (default: ask
        ``wants_notices``). The acks in the result may be published once this returns: the
        transaction is committed.
        """
        if not raw:
            return BatchResult()
        if live is None:
            live = self.notify is not None and self.wants_notices()
        with self._lock:
            started = time.monotonic()
            ctx = self._context()
            batch = decode_batch(ctx, raw)
            boxes = sorted({box for box, _ in batch.events})
            try:
                marks, dropped, new_events, lines = self._transaction(ctx, batch, live)
            except BaseException:
                self.marks.forget(boxes)  # the book moved with a transaction that did not commit
                raise
            committed = time.time()
            self._published.update(marks)
            stats = self.stats
            stats.quarantined += len(batch.quarantine)
            stats.quarantine_dropped.update(dropped)
            stats.events_stored += len(new_events)
            stats.events_duplicate += len(batch.events) - len(new_events)
            stats.batches += 1
            stats.last_batch_size = len(raw)
            stats.batch_seconds_total += time.monotonic() - started
            stats.last_commit_at = committed
            stats.lag_seconds = committed - min(r[2] for r in raw)
            stats.box_last_seen.update(batch.seen)
            stats.seq_gaps.update(self.marks.gaps(marks))
            now = time.monotonic()
            for box in marks:
                self._recent[box] = now
            return BatchResult(
                marks=marks,
                notices=batch.notices,
                central_statuses=batch.central_statuses,
                lines=lines,
            )

    def _transaction(
        self, ctx: IngestContext, batch: Batch, live: bool
    ) -> tuple[dict[str, int], dict[str, int], list[NewEvent], dict[str, Line | None]]:
        """The batch's one transaction; the marks, the quarantine's drops, the new events
        and each box's seq line."""
        with self.engine.begin() as conn:
            if self.shared:
                hold_boxes(conn, sorted({box for box, _ in batch.events}))
            lines = sort_lines(ctx, conn, batch)
            for box, mark in lines.raised.items():
                self.marks.raise_to(box, mark)
            if batch.events:
                refuse_implausible_drops(ctx, conn, batch)
            new_events = store_events(ctx, conn, batch, self._insert_events) if batch.events else []
            kept, dropped = self.retention.admit(conn, batch.quarantine)
            if kept:
                conn.execute(self._insert_quarantine, kept)
            apply_events(ctx, conn, batch, new_events, live)
            apply_statuses(ctx, conn, batch)
            apply_states(ctx, conn, batch)
            apply_replies(ctx, conn, batch)
            apply_seen(conn, batch)
            record_problems(ctx, conn, batch)
            # Every event left in the batch is stored now (new, or a repeat of a stored one).
            stored: dict[str, list[int]] = {}
            firsts: dict[str, list[int]] = {}
            for (box, seq), (event, _row) in batch.events.items():
                stored.setdefault(box, []).append(seq)
                if isinstance(event.body, EventsDropped):
                    firsts.setdefault(box, []).append(event.body.first_seq)
            # A box whose events were all held back is acked too: on that ack it renumbers.
            marks = {**lines.held_back, **self.marks.move(conn, stored, firsts)}
            for row in batch.quarantine:
                batch.notices.append(
                    {"type": "quarantine", "topic": row["topic"], "reason": row["reason"]}
                )
            if self.stream_channel is not None and batch.notices:
                notify_in(conn, self.stream_channel, batch.notices)
        return marks, dropped, new_events, lines.lines

    # --- the watermark --------------------------------------------------------------------

    def publish_marks(self, marks: dict[str, int]) -> None:
        """Publish each box's watermark, retained, naming the seq line it counts (none for
        a legacy box). Only for committed marks."""
        if self.publish is None:
            return
        now = _now_dt()
        for box_id, acked in marks.items():
            line = self._lines.get(box_id)
            ack = AckWatermark(
                box_id=box_id,
                acked_seq=acked,
                ts=now,
                line=None if line is None else uuid.UUID(line[0]),
                line_from=None if line is None else line[1],
            )
            self.publish(Topics(self.site.site_of(box_id), box_id).ack, encode_payload(ack), True)
            self.stats.acks_published += 1

    def sweep(self) -> dict[str, int]:
        """Walk recently touched boxes again and publish any watermark that moved.

        Needed when several processes share the ingest: each walks right after its own
        commit, and may not yet see rows another process is committing.
        """
        moved = self.sweep_marks()
        self.publish_marks(moved)
        return moved

    def sweep_marks(self) -> dict[str, int]:
        """``sweep`` without the publishing: the committed marks that moved."""
        now = time.monotonic()
        boxes = [b for b, at in self._recent.items() if now - at <= self.sweep_window_s]
        for box in [b for b, at in self._recent.items() if now - at > self.sweep_window_s]:
            del self._recent[box]
        with self._lock:
            sweepable = self.marks.sweepable(boxes)
            if not sweepable:
                return {}
            try:
                with self.engine.begin() as conn:
                    marks = self.marks.sweep(conn, sweepable)
            except BaseException:
                self.marks.forget(sweepable)
                raise
            moved = {b: m for b, m in marks.items() if m > self._published.get(b, -1)}
            self._published.update(moved)
            # What this sweep publishes may reach the broker after a higher ack another
            # process published meanwhile: sweep the box once more (it then reads that).
            for box in moved:
                self._recent[box] = now
            return moved

    def republish_acks(self) -> int:
        """Publish every box's stored watermark again (after a reconnect to the broker);
        with several processes, only the one holding the lease does."""
        if self.lease is not None and not self.lease():
            return 0
        wm = t.watermarks.c
        with self.engine.connect() as c:
            rows = c.execute(select(wm.box_id, wm.acked_seq, wm.line, wm.line_from)).all()
        rows = [row for row in rows if row[0] in self.site.boxes]
        self._lines.update(
            (box, None if line is None else (line, int(line_from)))
            for box, _, line, line_from in rows
        )
        self.publish_marks({box: acked for box, acked, _, _ in rows})
        return len(rows)


def _now_dt() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
