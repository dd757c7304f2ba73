"""The box's outbox: what must reach central, kept in SQLite until it has.

Theory of operation
-------------------
Two lanes live in one SQLite file (WAL, ``synchronous=FULL``):

* **events** keep every event until central's ack watermark covers it. Each row carries the
  persistent per-box ``seq``, an ``event_id`` (uuid4), the event time, the ``boot_id`` of
  the boot that created it and the JSON of the body. ``meta.last_seq`` is the highest seq
  ever committed and is written in the same transaction as the events, so a seq is never
  handed out twice, also after every event was acked and deleted.
* **state** keeps the latest payload per retained topic (conflated), with a dirty flag for
  "changed since last handed to the broker".

Group commit. ``append()`` does not touch the disk: it numbers the event in memory and
queues it. ``flush()`` writes every queued event, every queued state upsert and the seq
counter in ONE transaction (one fsync). The uplink runs ``flush()`` on its writer thread
a couple of milliseconds after the first ``append()`` of a burst (and sets ``flush_at`` to
0); standalone, ``append()`` flushes by itself once ``flush_at`` events are queued. Only
committed events are ever returned by ``pending()``, so nothing is published before it is
durable::

    append() --seq n, n+1, ...--> [memory queue] --flush(): BEGIN; INSERT..; meta; COMMIT-->
                                                                                |
    uplink <--pending(after_seq)-- [events: seq > acked, committed] <-----------+
    ack(upto) --DELETE seq <= upto--> gone

A seq handed out by ``append()`` but lost in a crash before ``flush()`` is handed out again
after the restart; it was never published, so no peer can have seen it, and the seq line
stays without gaps (a gap would hold central's watermark back for ever).

Overflow. When the events lane grows past ``events_max_bytes`` the oldest events are
deleted until it is under 90 % of the cap (so one overflow is one drop, not one per new
event). The deleted seq range goes to the ``drops`` table and ``dropped_events_total``
grows, both persistently; the uplink turns each unreported range into an ``EventsDropped``
event and raises one ``outbox_overflow`` alert per episode (an episode ends when the lane
is back under half the cap). The scan that picks the rows to drop reads seq and size in
pages, so memory stays bounded whatever the lane holds. The state lane is conflated by
topic; a new topic that would pass ``state_max_bytes`` is refused and counted.

Recovery. A database left by a killed process is opened as is (SQLite replays its WAL).
A file that SQLite cannot read, or that fails ``PRAGMA quick_check``, is moved aside as
``<name>.corrupt-<unix time>`` with an error log line, and a fresh one is created; the
fresh file counts the recovery in ``meta.corrupt_recoveries``.

Its rooms: ``outbox_file`` (the SQLite file: schema, opening, recovery, meta),
``outbox_records`` (the records it holds and hands out), ``outbox_errors``; this module is
the two lanes and their rules. ``StoredEvent``, ``DropRange``, ``OutboxStats`` and
``integrity_problems`` stay importable from here.
"""

from __future__ import annotations

import builtins
import datetime as dt
import logging
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Final

from pydantic import AwareDatetime, BaseModel, TypeAdapter

from edge.config import OutboxConfig
from edge.outbox_errors import SEQ_HEADROOM, AckBeyondOutbox, SeqLineFull
from edge.outbox_file import integrity_problems, load_meta, open_or_recover
from edge.outbox_line import SeqLine, read_line, shift_line
from edge.outbox_records import DropRange, OutboxStats, QueuedEvent, StoredEvent
from firmware_protocols.uplink import encode_payload
from firmware_protocols.uplink.models import MAX_SEQ

log = logging.getLogger(__name__)

DEFAULT_FLUSH_AT: Final = 1000
DROP_TO_FRACTION: Final = 0.9
EPISODE_ENDS_BELOW_FRACTION: Final = 0.5
_SCAN_PAGE: Final = 1000
_TS: Final = TypeAdapter(AwareDatetime)


class Outbox:
    """The two-lane SQLite outbox of one box, owned by the uplink.

    Thread-safe in one shape: one thread (the event loop) appends, puts states and reads;
    the writing methods (``flush``, ``ack``, ``mark_state_clean``, ``advance_past``) may
    run on another thread (the uplink's writer). Writes go through one connection, one at
    a time (``_write_lock``); reads use their own connection (WAL: readers never wait for
    a writer's fsync). The in-memory queues are swapped under ``_mem_lock``, which is never
    held across disk I/O."""

    def __init__(
        self,
        path: Path,
        *,
        config: OutboxConfig | None = None,
        events_max_bytes: int | None = None,
        state_max_bytes: int | None = None,
        boot_id: uuid.UUID | None = None,
        flush_at: int = DEFAULT_FLUSH_AT,
    ) -> None:
        """Open (or create, or recover) the outbox at ``path``.

        Args:
            config: the box's outbox limits; ``events_max_bytes`` / ``state_max_bytes``
                override it.
            boot_id: the boot stamped on appended events unless ``append`` names one
                (a fresh one if not given).
        """
        limits = config or OutboxConfig()
        self.path = Path(path)
        self.boot_id = boot_id or uuid.uuid4()
        self.events_max_bytes = events_max_bytes or limits.events_max_bytes
        self.state_max_bytes = state_max_bytes or limits.state_max_bytes
        self.flush_at = flush_at
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._closed = False  # a late writer job (an ack after shutdown) then does nothing
        self._write_lock = threading.RLock()
        self._mem_lock = threading.Lock()
        self._conn = open_or_recover(self.path)
        self._rconn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._queue: list[QueuedEvent] = []
        self._state_queue: dict[str, tuple[bytes, bool]] = {}
        self._report_queue: list[int] = []
        self._meta_dirty: set[str] = set()
        self._meta = load_meta(self._conn)
        self._line = read_line(self._conn)
        self._next_seq = self._meta["last_seq"] + 1
        row = self._conn.execute("SELECT count(*), coalesce(sum(size), 0) FROM events").fetchone()
        self._depth, self._bytes = int(row[0]), int(row[1])
        srow = self._conn.execute(
            "SELECT count(*), coalesce(sum(size), 0), coalesce(sum(dirty), 0) FROM state"
        ).fetchone()
        self._state_sizes: dict[str, int] = dict(
            self._conn.execute("SELECT topic, size FROM state").fetchall()
        )
        self._state_bytes = int(srow[1])
        self._state_dirty = int(srow[2])
        self._state_refused_total = 0
        self._episode_started = False

    @staticmethod
    def path_in(data_dir: Path) -> Path:
        """Where a box keeps its outbox: the one place that names the file."""
        return data_dir / "outbox.sqlite"

    @classmethod
    def for_box(cls, *, data_dir: Path, boot_id: uuid.UUID, events_max_bytes: int,
                state_max_bytes: int) -> Outbox:  # fmt: skip
        """The outbox at ``{data_dir}/outbox.sqlite``."""
        return cls(
            cls.path_in(data_dir),
            boot_id=boot_id,
            events_max_bytes=events_max_bytes,
            state_max_bytes=state_max_bytes,
        )

    def close(self) -> None:
        """Flush what is queued and close the file."""
        with self._write_lock:
            self._flush_locked()
            self._closed = True
            self._rconn.close()
            self._conn.close()

    # --- events lane --------------------------------------------------------------------

    def append(self, body: BaseModel, ts: dt.datetime, *, boot_id: uuid.UUID | None = None) -> int:
        """Queue an event body for the next group commit and return its seq.

        With ``flush_at`` > 0 the append commits by itself once that many are queued; the
        uplink sets it to 0 (its writer thread commits, never the caller)."""
        event_id = str(uuid.uuid4())
        ts_json = _TS.dump_json(ts).decode()
        encoded = encode_payload(body)
        boot = str(boot_id or self.boot_id)
        with self._mem_lock:
            seq = self._next_seq
            self._next_seq += 1
            self._queue.append(
                QueuedEvent(seq=seq, event_id=event_id, ts=ts_json, created=ts.timestamp(),
                        body=encoded, boot_id=boot)
            )  # fmt: skip
            full = bool(self.flush_at) and len(self._queue) >= self.flush_at
        if full:
            self.flush()
        return seq

    @property
    def closed(self) -> bool:
        """``close()`` was called: writes are then no-ops."""
        return self._closed

    @property
    def queued(self) -> int:
        """Events appended but not yet committed."""
        with self._mem_lock:
            return len(self._queue)

    @property
    def last_seq(self) -> int:
        """The highest committed seq (0 before the first)."""
        return self._meta["last_seq"]

    def flush(self) -> int:
        """Commit every queued event and state upsert in one transaction; return the events.

        Then enforce the events lane's byte cap (in a second transaction).
        """
        with self._write_lock:
            return self._flush_locked()

    def _flush_locked(self) -> int:
        if self._closed:
            return 0
        with self._mem_lock:
            if not (self._queue or self._state_queue or self._report_queue or self._meta_dirty):
                return 0
            queue, self._queue = self._queue, []
            states, self._state_queue = self._state_queue, {}
            reports, self._report_queue = self._report_queue, []
        old_last = self._meta["last_seq"]
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            if queue:
                conn.executemany(
                    "INSERT INTO events (seq, event_id, ts, created, boot_id, body, size) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [
                        (q.seq, q.event_id, q.ts, q.created, q.boot_id, q.body, len(q.body))
                        for q in queue
                    ],
                )
                self._meta["last_seq"] = queue[-1].seq
                self._meta_dirty.add("last_seq")
            if states:
                now = time.time()
                conn.executemany(
                    "INSERT INTO state (topic, payload, size, dirty, updated) "
                    "VALUES (?, ?, ?, ?, ?) ON CONFLICT(topic) DO UPDATE SET "
                    "payload = excluded.payload, size = excluded.size, "
                    "dirty = excluded.dirty, updated = excluded.updated",
                    [(t, p, len(p), int(d), now) for t, (p, d) in states.items()],
                )
            if reports:
                conn.executemany(
                    "UPDATE drops SET reported = 1 WHERE first_seq = ?", [(r,) for r in reports]
                )
            self._write_meta()
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            self._meta["last_seq"] = old_last
            # Put the work back so a later flush retries it in order.
            with self._mem_lock:
                self._queue = queue + self._queue
                for topic, value in states.items():
                    self._state_queue.setdefault(topic, value)
                self._report_queue = reports + self._report_queue
            raise
        self._depth += len(queue)
        self._bytes += sum(len(q.body) for q in queue)
        if self._bytes > self.events_max_bytes:
            self._drop_oldest()
        elif (
            self._meta["overflow_active"]
            and self._bytes < self.events_max_bytes * EPISODE_ENDS_BELOW_FRACTION
        ):
            self._set_meta_now("overflow_active", 0)
        return len(queue)

    def _write_meta(self) -> None:
        if self._meta_dirty:
            self._conn.executemany(
                "INSERT INTO meta (key, value) VALUES (?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                [(k, self._meta[k]) for k in sorted(self._meta_dirty)],
            )
            self._meta_dirty.clear()

    def _set_meta_now(self, key: str, value: int) -> None:
        self._meta[key] = value
        self._meta_dirty.add(key)
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            self._write_meta()
            self._conn.execute("COMMIT")
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise

    def _drop_oldest(self) -> None:
        target = int(self.events_max_bytes * DROP_TO_FRACTION)
        excess = self._bytes - target
        freed = 0
        count = 0
        first_seq: int | None = None
        last_seq = 0
        after = -1
        # Page through (seq, size) only: the bodies never enter memory.
        while freed < excess:
            rows = self._conn.execute(
                "SELECT seq, size FROM events WHERE seq > ? ORDER BY seq LIMIT ?",
                (after, _SCAN_PAGE),
            ).fetchall()
            if not rows:
                break
            for seq, size in rows:
                if first_seq is None:
                    first_seq = seq
                last_seq = seq
                freed += size
                count += 1
                if freed >= excess:
                    break
            after = last_seq
        if first_seq is None:
            return
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute("DELETE FROM events WHERE seq <= ?", (last_seq,))
            conn.execute(
                "INSERT INTO drops (first_seq, last_seq, count) VALUES (?, ?, ?)",
                (first_seq, last_seq, count),
            )
            self._meta["dropped_events_total"] += count
            self._meta_dirty.add("dropped_events_total")
            if not self._meta["overflow_active"]:
                self._meta["overflow_active"] = 1
                self._meta["overflow_episodes"] += 1
                self._meta_dirty.update(("overflow_active", "overflow_episodes"))
                self._episode_started = True
            self._write_meta()
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        self._depth -= count
        self._bytes -= freed
        log.warning(
            "outbox events lane over its cap of %d bytes: dropped %d oldest events "
            "(seq %d..%d), %d dropped in all",
            self.events_max_bytes,
            count,
            first_seq,
            last_seq,
            self._meta["dropped_events_total"],
        )

    @property
    def acked_seq(self) -> int:
        """The highest ack this outbox applied (0: central never acked this seq line)."""
        return self._meta["acked_seq"]

    def ack(self, upto_seq: int) -> int:
        """Delete the committed events with ``seq <= upto_seq``; return how many went.

        Raises ``AckBeyondOutbox`` (deleting nothing) for an ack above the last committed
        seq: only committed events are ever published, so central cannot hold more.
        """
        with self._write_lock:
            return self._ack_locked(upto_seq)

    def _ack_locked(self, upto_seq: int) -> int:
        if self._closed:
            return 0  # central's watermark deletes these after the next connect
        if upto_seq > self._meta["last_seq"]:
            raise AckBeyondOutbox(upto_seq, self._meta["last_seq"])
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            row = conn.execute(
                "SELECT count(*), coalesce(sum(size), 0) FROM events WHERE seq <= ?", (upto_seq,)
            ).fetchone()
            conn.execute("DELETE FROM events WHERE seq <= ?", (upto_seq,))
            if upto_seq > self._meta["acked_seq"]:
                conn.execute(
                    "INSERT INTO meta (key, value) VALUES ('acked_seq', ?) "
                    "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                    (upto_seq,),
                )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        self._meta["acked_seq"] = max(self._meta["acked_seq"], upto_seq)
        self._depth -= int(row[0])
        self._bytes -= int(row[1])
        return int(row[0])

    def advance_past(self, acked_seq: int) -> int:
        """Renumber this outbox's events above ``acked_seq``; return the shift (0: none).

        For a legacy ack (no line) ahead of this outbox (the file was recreated, so its
        seqs restarted at 1): central holds every seq up to ``acked_seq`` from the old file
        and would drop these as repeats; none of them was stored, so all of them, queued
        or committed, and the drop ranges move up by ``acked_seq`` in one transaction with
        the counter (``_shift_locked``). Event bodies are not rewritten: an
        ``events_dropped`` body already queued keeps the old numbers. Raises
        ``SeqLineFull``, changing nothing, for a watermark that would leave fewer than
        ``SEQ_HEADROOM`` seqs above the renumbered line (2**63-1 is the top).
        """
        with self._write_lock:
            self._flush_locked()
            if acked_seq <= self._meta["last_seq"]:
                return 0
            return self._shift_locked(acked_seq, acked_seq)

    @property
    def line(self) -> SeqLine:
        """This outbox's seq line: its id (made with the file) and its first seq."""
        return self._line

    def move_line_above(self, acked_seq: int) -> int:
        """Renumber this outbox's events so its line starts above ``acked_seq``, another
        line's watermark; return the shift (0: the line already starts above it).

        For an ack naming a line other than this outbox's: central holds that line's seqs
        up to ``acked_seq`` and would take this line's events there for repeats, but none
        of this line's events is among them, so nothing is deleted: every event, queued or
        committed, and the drop ranges move up, keeping order and spacing, in one
        transaction with the counter and the line's first seq. Raises ``SeqLineFull``,
        changing nothing, near the top of the seq line (as ``advance_past``).
        """
        with self._write_lock:
            self._flush_locked()
            if acked_seq < self._line.first:
                return 0
            return self._shift_locked(acked_seq - self._line.first + 1, acked_seq)

    def _shift_locked(self, offset: int, acked_seq: int) -> int:
        old_last = self._meta["last_seq"]
        if old_last + offset > MAX_SEQ - SEQ_HEADROOM:
            raise SeqLineFull(acked_seq, old_last)
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            shift_line(conn, offset)
            self._meta["last_seq"] = old_last + offset
            self._meta_dirty.add("last_seq")
            self._write_meta()
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            self._meta["last_seq"] = old_last  # whether or not the new value was set
            raise
        self._line = SeqLine(id=self._line.id, first=self._line.first + offset)
        with self._mem_lock:
            self._next_seq = self._meta["last_seq"] + 1
            self._report_queue = [first + offset for first in self._report_queue]
        log.warning(
            "outbox %s: central's watermark %d of an older seq line reaches this outbox's "
            "(recreated?): its %d events are renumbered from %d, new events continue at %d",
            self.path,
            acked_seq,
            self._depth,
            self._line.first,
            self._next_seq,
        )
        return offset

    def pending(self, after_seq: int = 0, limit: int = 1000) -> list[StoredEvent]:
        """Committed events with ``seq > after_seq``, oldest first, at most ``limit``."""
        rows = self._rconn.execute(
            "SELECT seq, event_id, ts, boot_id, body FROM events WHERE seq > ? "
            "ORDER BY seq LIMIT ?",
            (after_seq, limit),
        ).fetchall()
        return [
            StoredEvent(seq=r[0], event_id=r[1], ts=r[2], boot_id=r[3], body=bytes(r[4]))
            for r in rows
        ]

    def depth(self) -> int:
        """Committed events not yet acked."""
        return self._depth

    def bytes(self) -> int:
        """Bytes of event bodies committed and not yet acked."""
        return self._bytes

    def oldest_age(self, now: dt.datetime) -> float | None:
        """Seconds since the oldest unacked event happened; ``None`` when there is none."""
        row = self._rconn.execute("SELECT created FROM events ORDER BY seq LIMIT 1").fetchone()
        if row is None:
            return None
        return max(0.0, now.timestamp() - float(row[0]))

    # --- overflow bookkeeping -----------------------------------------------------------

    @property
    def dropped_events_total(self) -> int:
        return self._meta["dropped_events_total"]

    @property
    def overflow_active(self) -> bool:
        return bool(self._meta["overflow_active"])

    @property
    def overflow_episodes(self) -> int:
        return self._meta["overflow_episodes"]

    def take_episode_start(self) -> bool:
        """True once after a new overflow episode began (so its alert is raised once)."""
        started, self._episode_started = self._episode_started, False
        return started

    def unreported_drops(self) -> list[DropRange]:
        """Drop ranges not yet turned into an ``EventsDropped`` event (bounded: newest 100);
        a range marked reported but not yet committed is left out."""
        with self._mem_lock:
            marked = set(self._report_queue)
        rows = self._rconn.execute(
            "SELECT first_seq, last_seq, count FROM drops WHERE reported = 0 "
            "ORDER BY first_seq LIMIT 100"
        ).fetchall()
        return [
            DropRange(first_seq=r[0], last_seq=r[1], count=r[2]) for r in rows if r[0] not in marked
        ]

    def mark_reported(self, drop: DropRange) -> None:
        """Mark ``drop`` reported in the next flush, with the event that reports it."""
        with self._mem_lock:
            self._report_queue.append(drop.first_seq)

    # --- state lane ---------------------------------------------------------------------

    def put_state(self, topic: str, payload: builtins.bytes, *, dirty: bool = True) -> bool:
        """Keep ``payload`` as the latest for ``topic``; False if a new topic was refused."""
        old = self._state_sizes.get(topic)
        if old is None and self._state_bytes + len(payload) > self.state_max_bytes:
            self._state_refused_total += 1
            if self._state_refused_total == 1 or self._state_refused_total % 1000 == 0:
                log.warning(
                    "outbox state lane full (%d bytes): refused new topic %s (%d refused)",
                    self.state_max_bytes,
                    topic,
                    self._state_refused_total,
                )
            return False
        self._state_bytes += len(payload) - (old or 0)
        self._state_sizes[topic] = len(payload)
        with self._mem_lock:
            self._state_queue[topic] = (payload, dirty)
        return True

    def mark_state_clean(self) -> None:
        """Every state has been handed to the broker."""
        with self._write_lock:
            self._flush_locked()
            self._conn.execute("UPDATE state SET dirty = 0 WHERE dirty = 1")

    def states(self) -> Iterator[tuple[str, builtins.bytes]]:
        """Every kept state (topic, payload): committed ones, and queued ones over them.
        Reads only (no commit), so the event loop may call it."""
        with self._mem_lock:
            queued = {topic: payload for topic, (payload, _) in self._state_queue.items()}
        rows = self._rconn.execute("SELECT topic, payload FROM state ORDER BY topic").fetchall()
        kept = {str(topic): bytes(payload) for topic, payload in rows}
        kept.update(queued)
        for topic in sorted(kept):
            yield topic, kept[topic]

    def state_dirty(self) -> int:
        """States not yet handed to the broker (committed or queued); reads only."""
        with self._mem_lock:
            queued = {topic: dirty for topic, (_, dirty) in self._state_queue.items()}
        rows = self._rconn.execute("SELECT topic FROM state WHERE dirty = 1").fetchall()
        dirty = {str(r[0]) for r in rows if str(r[0]) not in queued}
        dirty.update(topic for topic, is_dirty in queued.items() if is_dirty)
        return len(dirty)

    # --- health -------------------------------------------------------------------------

    def integrity_check(self) -> list[str]:
        """``PRAGMA integrity_check``: an empty list when the file is sound."""
        with self._write_lock:
            return integrity_problems(self._conn, quick=False)

    def stats(self) -> OutboxStats:
        return OutboxStats(
            depth=self._depth,
            bytes=self._bytes,
            queued=len(self._queue),
            last_seq=self.last_seq,
            state_depth=len(self._state_sizes),
            state_bytes=self._state_bytes,
            state_dirty=self.state_dirty(),
            state_refused_total=self._state_refused_total,
            dropped_events_total=self.dropped_events_total,
            overflow_active=self.overflow_active,
            corrupt_recoveries=self._meta["corrupt_recoveries"],
        )
