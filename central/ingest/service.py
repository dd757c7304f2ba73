"""The ingest writer: a batch of raw MQTT messages in, one transaction, acks out.

Theory of operation
-------------------
The MQTT client's network thread only queues ``(topic, payload, received_at)``; this writer
takes a batch off the queue and, in **one** transaction:

1. decodes each message (``decode_message``); a failure, a foreign site or a box the site
   file does not know goes to ``quarantine`` with its topic, bytes and reason;
2. inserts the batch's events with ``INSERT .. ON CONFLICT (box_id, seq) DO NOTHING
   RETURNING``: what comes back is new, the rest are repeats (counted, dropped); only new
   events have side effects (alerts, dropped seq ranges);
3. applies state documents, conflated per topic (the latest in the batch wins; a document
   older than the stored one is ignored), and command replies;
4. walks each box's watermark forward over the stored seqs (``watermark.advance``).

After the commit, and never before, it publishes each touched box's ``AckWatermark``
(retained): the box may then delete those events from its outbox. A crash before the
commit loses nothing: the box still has every event above the last published watermark
and sends it again. ::

    paho thread --(topic, bytes, t)--> queue --batch--> [decode | insert | states | walk]
                                                               |  commit
                                                               v
                                                  publish acks, notify the live stream

With several central processes on a shared subscription, one box's events are spread over
processes and a walk may run before another process's rows are visible; ``sweep()`` walks
recently touched boxes again a moment later, so the watermark always catches up.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine, and_, bindparam, func, or_, select, update

from central.db import schema as t
from central.db.engine import BulkInsert, insert_ignore, upsert, writer
from central.ingest import claims
from central.ingest.watermark import advance
from central.quarantine.retention import QuarantineRetention
from central.site import SiteIndex
from firmware_protocols.errors import DecodeError
from firmware_protocols.uplink import (
    AckWatermark,
    AlertRaised,
    AlertResolved,
    BayChanged,
    BayState,
    BoxStatus,
    CentralStatus,
    CommandReply,
    Event,
    EventsDropped,
    LotState,
    Message,
    SignState,
    TopicKind,
    Topics,
    ZoneState,
    decode_payload,
    encode_payload,
    parse_topic,
)
from firmware_protocols.uplink.codec import check_message
from firmware_protocols.uplink.topics import ParsedTopic

log = logging.getLogger(__name__)

RawMessage = tuple[str, bytes, float]  # topic, payload, received_at (epoch seconds)
Publish = Callable[[str, bytes, bool], None]  # topic, payload, retain
Notify = Callable[[list[dict[str, Any]]], None]

QUARANTINE_KEEP_BYTES = 64 * 1024
WALK_CHUNK = 5000
RANGE_CHUNK = 1000


@dataclass
class IngestStats:
    """Counters for /metrics; plain ints, updated by the writer thread only."""

    messages: Counter[str] = field(default_factory=Counter)
    events_stored: int = 0
    events_duplicate: int = 0
    quarantined: int = 0
    # events refused for a claim central cannot believe: "dropped_range", "seq_replayed"
    events_refused: Counter[str] = field(default_factory=Counter)
    quarantine_dropped: Counter[str] = field(default_factory=Counter)  # by retention: size, age
    batches: int = 0
    batch_seconds_total: float = 0.0
    last_batch_size: int = 0
    last_commit_at: float = 0.0
    lag_seconds: float = 0.0  # received -> committed, oldest message of the last batch
    acks_published: int = 0
    site_problems: int = 0
    replies_unmatched: int = 0
    errors: int = 0
    store_full: bool = False  # the last batch failed because the database's disk is full
    store_full_batches: int = 0  # batches refused (not stored, not acked) for a full disk
    box_last_seen: dict[str, float] = field(default_factory=dict)

    def merge(self, other: IngestStats) -> None:
        """Add another writer's counters (the writer process's, one batch at a time)."""
        self.messages.update(other.messages)
        self.events_stored += other.events_stored
        self.events_duplicate += other.events_duplicate
        self.quarantined += other.quarantined
        self.events_refused.update(other.events_refused)
        self.quarantine_dropped.update(other.quarantine_dropped)
        self.batches += other.batches
        self.batch_seconds_total += other.batch_seconds_total
        self.acks_published += other.acks_published
        self.site_problems += other.site_problems
        self.replies_unmatched += other.replies_unmatched
        self.errors += other.errors
        self.store_full = other.store_full
        self.store_full_batches += other.store_full_batches
        if other.batches:
            self.last_batch_size = other.last_batch_size
            self.last_commit_at = other.last_commit_at
            self.lag_seconds = other.lag_seconds
        self.box_last_seen.update(other.box_last_seen)


@dataclass
class BatchResult:
    """What a committed batch leaves to do: acks to publish, notices, central statuses.

    Plain data, so the writer process can hand it to the MQTT process over a pipe.
    """

    marks: dict[str, int] = field(default_factory=dict)
    notices: list[dict[str, Any]] = field(default_factory=list)
    central_statuses: list[CentralStatus] = field(default_factory=list)


@dataclass
class _Batch:
    """What one batch holds after decoding, before the transaction."""

    quarantine: list[dict[str, Any]] = field(default_factory=list)
    events: dict[tuple[str, int], tuple[Event, dict[str, Any]]] = field(default_factory=dict)
    states: dict[str, tuple[Message, float]] = field(default_factory=dict)
    statuses: list[tuple[BoxStatus, float]] = field(default_factory=list)
    replies: list[tuple[str, CommandReply, float]] = field(default_factory=list)
    seen: dict[str, float] = field(default_factory=dict)
    problems: list[tuple[str, str, str]] = field(default_factory=list)
    notices: list[dict[str, Any]] = field(default_factory=list)
    central_statuses: list[CentralStatus] = field(default_factory=list)


def _ts(value: Any) -> float:
    return value.timestamp()


class IngestWriter:
    """Turns batches of raw messages into one committed transaction and the acks after it.

    ``publish`` sends an MQTT message (the ack); ``notify`` receives change notices for the
    live stream after each commit; ``on_central_status`` sees other central instances'
    status documents.
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
    ) -> None:
        self.engine = writer(engine)
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
        self._lock = threading.Lock()  # one batch at a time, whoever calls
        columns = {c.name: None for c in t.events.c if c.name != "id"}
        self._insert_events = BulkInsert(
            engine,
            insert_ignore(self.dialect, t.events, ["box_id", "seq"]).values(columns).inline(),
        )
        self._insert_quarantine = t.quarantine.insert()

    # --- decoding -------------------------------------------------------------------------

    def _decode(self, raw: Sequence[RawMessage]) -> _Batch:
        batch = _Batch()
        site = self.site
        for topic, data, received_at in raw:
            try:
                msg = _decode_message(topic, data)
            except DecodeError as exc:
                batch.quarantine.append(_quarantined(topic, data, str(exc), received_at))
                continue
            kind = msg.topic.kind
            self.stats.messages[kind.value] += 1
            if kind is TopicKind.CENTRAL_STATUS:
                if isinstance(msg.payload, CentralStatus):
                    batch.central_statuses.append(msg.payload)
                continue
            box_id = msg.topic.box_id
            if msg.topic.site != site.site_id:
                reason = f"site {msg.topic.site!r} is not this central's site {site.site_id!r}"
                batch.quarantine.append(_quarantined(topic, data, reason, received_at, box_id))
                continue
            if box_id not in site.boxes:
                reason = f"box {box_id!r} is not in the site file"
                batch.quarantine.append(_quarantined(topic, data, reason, received_at, box_id))
                continue
            batch.seen[box_id] = received_at
            payload = msg.payload
            if isinstance(payload, Event):
                key = (box_id, payload.seq)
                if key in batch.events:
                    first = batch.events[key][0].event_id
                    if first != payload.event_id:
                        reason = claims.replayed_seq(payload.seq, str(first), str(payload.event_id))
                        self._refuse(batch, "seq_replayed", topic, data, reason, received_at)
                    else:
                        self.stats.events_duplicate += 1
                    continue
                batch.events[key] = (payload, _event_row(payload, data, received_at))
            elif isinstance(payload, BoxStatus):
                batch.statuses.append((payload, received_at))
            elif isinstance(payload, CommandReply):
                batch.replies.append((box_id, payload, received_at))
            elif isinstance(payload, BayState | LotState | ZoneState | SignState):
                batch.states[topic] = (msg, received_at)
            # ack and cmd are central's own topics; it does not subscribe to them.
        return batch

    # --- the transaction ------------------------------------------------------------------

    def process(self, raw: Sequence[RawMessage]) -> dict[str, int]:
        """Store one batch, then publish its acks and notices; return the watermark of each
        box that had events in it."""
        result = self.store(raw)
        self.finish(result)
        return result.marks

    def finish(self, result: BatchResult) -> None:
        """After the commit: publish the acks, pass on central statuses, notify listeners."""
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
            batch = self._decode(raw)
            with self.engine.begin() as conn:
                if batch.events:
                    self._refuse_implausible_drops(conn, batch)
                new_events = self._store_events(conn, batch) if batch.events else []
                kept, dropped = self.retention.admit(conn, batch.quarantine)
                if kept:
                    conn.execute(self._insert_quarantine, kept)
                self._apply_events(conn, batch, new_events, live)
                self._apply_statuses(conn, batch)
                self._apply_states(conn, batch)
                self._apply_replies(conn, batch)
                self._apply_seen(conn, batch)
                self._record_problems(conn, batch)
                boxes = sorted({box for box, _ in batch.events})
                marks = {box: self._walk(conn, box) for box in boxes}
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
            now = time.monotonic()
            for box in boxes:
                self._recent[box] = now
            for row in batch.quarantine:
                batch.notices.append(
                    {"type": "quarantine", "topic": row["topic"], "reason": row["reason"]}
                )
            return BatchResult(
                marks=marks, notices=batch.notices, central_statuses=batch.central_statuses
            )

    def _store_events(self, conn: Connection, batch: _Batch) -> list[tuple[Event, dict[str, Any]]]:
        # Which are repeats: one indexed range read per box. A row another process inserts
        # between this read and the insert is still ignored by ON CONFLICT; its side effects
        # are idempotent (alerts keep their last seq, dropped ranges are keyed).
        by_box: dict[str, list[int]] = {}
        for box, seq in batch.events:
            by_box.setdefault(box, []).append(seq)
        held: dict[tuple[str, int], str] = {}
        for box, seqs in by_box.items():
            found = conn.execute(
                select(t.events.c.seq, t.events.c.event_id).where(
                    t.events.c.box_id == box,
                    t.events.c.seq >= min(seqs),
                    t.events.c.seq <= max(seqs),
                )
            )
            held.update(((box, seq), event_id) for seq, event_id in found)
        for key, (event, row) in list(batch.events.items()):
            held_id = held.get(key)
            if held_id is not None and held_id != str(event.event_id):
                del batch.events[key]  # refused, not a repeat
                reason = claims.replayed_seq(event.seq, held_id, str(event.event_id))
                topic = Topics(self.site.site_id, event.box_id).event
                self._refuse(
                    batch, "seq_replayed", topic, row["payload"].encode(), reason,
                    row["received_at"],
                )  # fmt: skip
        new = [item for key, item in batch.events.items() if key not in held]
        self._insert_events.execute(conn, [row for _, row in new])
        return new

    def _refuse(
        self, batch: _Batch, why: str, topic: str, data: bytes, reason: str, received_at: float
    ) -> None:
        """Quarantine an event whose claim central cannot believe; count it; record it as a
        site problem (the ops page and ``parkgrid_central_site_problems`` show it)."""
        box_id = topic.split("/")[3]
        batch.quarantine.append(_quarantined(topic, data, reason, received_at, box_id))
        batch.problems.append((box_id, f"events/{why}", reason))
        self.stats.events_refused[why] += 1

    def _refuse_implausible_drops(self, conn: Connection, batch: _Batch) -> None:
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
                topic = Topics(self.site.site_id, box_id).event
                self._refuse(
                    batch, "dropped_range", topic, row["payload"].encode(), reason,
                    row["received_at"],
                )  # fmt: skip

    def _apply_events(
        self, conn: Connection, batch: _Batch, new: list[tuple[Event, dict[str, Any]]], live: bool
    ) -> None:
        site = self.site
        for event, row in new:
            body = event.body
            box_id = event.box_id
            if isinstance(body, BayChanged):
                if body.bay_id not in site.bays:
                    batch.problems.append(
                        (
                            box_id,
                            f"bay/{body.bay_id}",
                            f"bay {body.bay_id!r} is not in the site file",
                        )
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
            elif isinstance(body, AlertRaised | AlertResolved):
                self._apply_alert(conn, event, body, row["received_at"])
                batch.notices.append(
                    {
                        "type": body.kind,
                        "box_id": box_id,
                        "alert_id": body.alert_id,
                        "alert_type": body.alert_type.value,
                    }
                )
            elif isinstance(body, EventsDropped):
                conn.execute(
                    insert_ignore(self.dialect, t.dropped_ranges, ["box_id", "first_seq"]),
                    {
                        "box_id": box_id,
                        "first_seq": body.first_seq,
                        "last_seq": body.last_seq,
                        "count": body.count,
                        "reported_at": row["received_at"],
                    },
                )

    def _apply_alert(
        self, conn: Connection, event: Event, body: AlertRaised | AlertResolved, now: float
    ) -> None:
        key = and_(t.alerts.c.box_id == event.box_id, t.alerts.c.alert_id == body.alert_id)
        current = conn.execute(select(t.alerts.c.last_seq, t.alerts.c.state).where(key)).first()
        common = {
            "alert_type": body.alert_type.value,
            "since": _ts(body.since),
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
            values["resolved_at"] = _ts(event.ts)
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

    def _apply_statuses(self, conn: Connection, batch: _Batch) -> None:
        for status, received_at in batch.statuses:
            online = status.state.value == "online"
            values: dict[str, Any] = {
                "online": online,
                "seen": True,
                "boot_id": str(status.boot_id),
                "offline_reason": None if online else (status.reason and status.reason.value),
                "status_ts": _ts(status.ts),
                "status_changed_at": received_at,
            }
            if online:
                values.update(
                    software_version=status.software_version,
                    config_hash=status.config_hash,
                    sensor_count=status.sensor_count,
                    status_json=status.model_dump_json(),
                )
                self._check_birth(batch, status)
            conn.execute(t.boxes.update().where(t.boxes.c.box_id == status.box_id).values(values))
            batch.notices.append(
                {"type": "box", "box_id": status.box_id, "online": online, "at": received_at}
            )

    def _check_birth(self, batch: _Batch, status: BoxStatus) -> None:
        expected = sum(1 for place in self.site.bays.values() if place.box_id == status.box_id)
        if status.sensor_count is not None and status.sensor_count != expected:
            batch.problems.append(
                (
                    status.box_id,
                    "status.sensor_count",
                    f"the box maps {status.sensor_count} sensors but the site file gives it "
                    f"{expected} bays",
                )
            )

    def _apply_states(self, conn: Connection, batch: _Batch) -> None:
        site = self.site
        for msg, received_at in batch.states.values():
            box_id = msg.topic.box_id
            payload = msg.payload
            if isinstance(payload, BayState):
                place = site.bays.get(payload.bay_id)
                subject = f"bay/{payload.bay_id}"
                if place is None:
                    batch.problems.append(
                        (box_id, subject, f"bay {payload.bay_id!r} is not in the site file")
                    )
                    continue
                if place.box_id != box_id:
                    batch.problems.append(
                        (
                            box_id,
                            subject,
                            f"the site file gives bay {payload.bay_id!r} to box {place.box_id!r}",
                        )
                    )
                    continue
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
                ts = _ts(payload.ts)
                table = t.bays
                values = {
                    "state": payload.state.value,
                    "since": _ts(payload.since),
                    "sensor_id": sensor.sensor_id if sensor else None,
                    "sensor_json": sensor.model_dump_json() if sensor else None,
                    "sensor_flags": ",".join(f.value for f in sensor.flags) if sensor else None,
                    "state_ts": ts,
                    "updated_at": received_at,
                }
                where = t.bays.c.bay_id == payload.bay_id
                notice = {
                    "type": "bay",
                    "bay_id": payload.bay_id,
                    "lot_id": place.lot_id,
                    "zone_id": place.zone_id,
                    "state": payload.state.value,
                    "since": values["since"],
                    "sensor_flags": values["sensor_flags"],
                }
            elif isinstance(payload, LotState):
                lot = site.lots.get(payload.lot_id)
                subject = f"lot/{payload.lot_id}"
                if lot is None or lot.box_id != box_id:
                    owner = (
                        "is not in the site file"
                        if lot is None
                        else (f"belongs to box {lot.box_id!r} in the site file")
                    )
                    batch.problems.append((box_id, subject, f"lot {payload.lot_id!r} {owner}"))
                    continue
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
                ts = _ts(payload.ts)
                table = t.lots
                values = {
                    "free": payload.free,
                    "occupied": payload.occupied,
                    "unknown": payload.unknown,
                    "closed": payload.closed,
                    "reported_capacity": payload.capacity,
                    "status": payload.status.value,
                    "trend": payload.trend.value,
                    "state_ts": ts,
                    "updated_at": received_at,
                }
                where = t.lots.c.lot_id == payload.lot_id
                notice = {"type": "lot", "lot_id": payload.lot_id, **values}
            elif isinstance(payload, ZoneState):
                zone = site.zones.get(payload.zone_id)
                subject = f"zone/{payload.zone_id}"
                if zone is None or zone.box_id != box_id:
                    owner = (
                        "is not in the site file"
                        if zone is None
                        else (f"belongs to box {zone.box_id!r} in the site file")
                    )
                    batch.problems.append((box_id, subject, f"zone {payload.zone_id!r} {owner}"))
                    continue
                if payload.zone_class.value != zone.zone_class.value:
                    batch.problems.append(
                        (
                            box_id,
                            f"{subject}/class",
                            f"zone {payload.zone_id!r} is {zone.zone_class.value} in the site "
                            f"file but the box runs it as {payload.zone_class.value}",
                        )
                    )
                ts = _ts(payload.ts)
                table = t.zones
                window = payload.window
                values = {
                    "state": payload.state.value,
                    "occupied": payload.occupied,
                    "schedule_version": payload.schedule_version,
                    "window_start": _ts(window.start) if window else None,
                    "window_end": _ts(window.end) if window else None,
                    "next_transition": (
                        _ts(payload.next_transition) if payload.next_transition else None
                    ),
                    "state_ts": ts,
                    "updated_at": received_at,
                }
                where = t.zones.c.zone_id == payload.zone_id
                notice = {"type": "zone", "zone_id": payload.zone_id, **values}
            elif isinstance(payload, SignState):
                conn.execute(
                    upsert(
                        self.dialect,
                        t.signs,
                        ["sign_id"],
                        ["box_id", "up", "state_json", "state_ts", "updated_at"],
                    ),
                    {
                        "sign_id": payload.sign_id,
                        "box_id": box_id,
                        "up": payload.up,
                        "state_json": payload.model_dump_json(),
                        "state_ts": _ts(payload.ts),
                        "updated_at": received_at,
                    },
                )
                batch.notices.append(
                    {"type": "sign", "sign_id": payload.sign_id, "box_id": box_id, "up": payload.up}
                )
                continue
            else:  # pragma: no cover - _decode only files the four state kinds here
                continue
            newer = or_(table.c.state_ts.is_(None), table.c.state_ts <= ts)
            result = conn.execute(update(table).where(where, newer).values(values))
            if result.rowcount:
                batch.notices.append(notice)

    def _apply_replies(self, conn: Connection, batch: _Batch) -> None:
        for box_id, reply, received_at in batch.replies:
            result = conn.execute(
                t.commands.update()
                .where(
                    t.commands.c.command_id == str(reply.command_id),
                    t.commands.c.box_id == box_id,
                )
                .values(reply_ok=reply.ok, reply_error=reply.error, reply_at=received_at)
            )
            if result.rowcount:
                batch.notices.append(
                    {
                        "type": "command_reply",
                        "box_id": box_id,
                        "command_id": str(reply.command_id),
                        "ok": reply.ok,
                    }
                )
            else:
                self.stats.replies_unmatched += 1

    def _apply_seen(self, conn: Connection, batch: _Batch) -> None:
        if batch.seen:
            conn.execute(
                t.boxes.update()
                .where(t.boxes.c.box_id == bindparam("b_box_id"))
                .values(last_seen_at=bindparam("b_seen")),
                [{"b_box_id": box, "b_seen": at} for box, at in batch.seen.items()],
            )

    def _record_problems(self, conn: Connection, batch: _Batch) -> None:
        if not batch.problems:
            return
        now = time.time()
        unique = {(box, subject): message for box, subject, message in batch.problems}
        for (box, subject), message in unique.items():
            key = and_(t.site_problems.c.box_id == box, t.site_problems.c.subject == subject)
            result = conn.execute(
                t.site_problems.update()
                .where(key)
                .values(message=message, last_seen_at=now, count=t.site_problems.c.count + 1)
            )
            if not result.rowcount:
                conn.execute(
                    t.site_problems.insert(),
                    {
                        "box_id": box,
                        "subject": subject,
                        "message": message,
                        "first_seen_at": now,
                        "last_seen_at": now,
                        "count": 1,
                    },
                )
                self.stats.site_problems += 1
                log.warning("site disagreement: box %s, %s: %s", box, subject, message)

    # --- the watermark --------------------------------------------------------------------

    def _walk(self, conn: Connection, box_id: str) -> int:
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
                insert_ignore(self.dialect, t.watermarks, ["box_id"]),
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

    def publish_marks(self, marks: dict[str, int]) -> None:
        """Publish each box's watermark, retained. Only for committed marks."""
        if self.publish is None:
            return
        now = _now_dt()
        for box_id, acked in marks.items():
            ack = AckWatermark(box_id=box_id, acked_seq=acked, ts=now)
            self.publish(Topics(self.site.site_id, box_id).ack, encode_payload(ack), True)
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
        if not boxes:
            return {}
        with self._lock:
            with self.engine.begin() as conn:
                marks = {box: self._walk(conn, box) for box in boxes}
            moved = {b: m for b, m in marks.items() if m > self._published.get(b, -1)}
            self._published.update(moved)
            return moved

    def republish_acks(self) -> int:
        """Publish every box's stored watermark again (after a reconnect to the broker)."""
        with self.engine.connect() as c:
            rows = c.execute(select(t.watermarks.c.box_id, t.watermarks.c.acked_seq)).all()
        self.publish_marks({box: acked for box, acked in rows if box in self.site.boxes})
        return len(rows)


def is_disk_full(exc: BaseException) -> bool:
    """The store refused a write for want of space (SQLite SQLITE_FULL, PostgreSQL 53100)."""
    orig = getattr(exc, "orig", exc)
    if getattr(orig, "sqlite_errorname", None) == "SQLITE_FULL":
        return True
    if getattr(orig, "sqlstate", None) == "53100":  # disk_full
        return True
    text = str(orig).lower()
    return "database or disk is full" in text or "no space left on device" in text


_store_full = threading.Event()  # per process: log the full disk once, and its end once


def store_with_retries(
    writer: IngestWriter, raw: Sequence[RawMessage], live: bool | None = None
) -> BatchResult:
    """``writer.store`` tried five times with back-off; a batch that keeps failing is dropped.

    Dropping loses nothing: its events were never acked, so the boxes send them again. A
    full disk is said once in plain words (not a traceback per attempt), shown as the
    ``parkgrid_central_ingest_store_full`` gauge, and its end is logged once.
    """
    for attempt in range(1, 6):
        try:
            result = writer.store(raw, live=live)
        except Exception as exc:
            writer.stats.errors += 1
            if is_disk_full(exc):
                writer.stats.store_full = True
                if not _store_full.is_set():
                    _store_full.set()
                    log.error(
                        "central's database is full (%s): ingest is not storing or acking "
                        "events; the boxes keep them and send them again when space returns",
                        getattr(exc, "orig", exc),
                    )
            else:
                log.exception("ingest batch of %d failed (attempt %d)", len(raw), attempt)
            time.sleep(min(0.2 * 2**attempt, 5))
            continue
        writer.stats.store_full = False
        if _store_full.is_set():
            _store_full.clear()
            log.warning("central's database has space again: ingest is storing and acking")
        return result
    if writer.stats.store_full:
        writer.stats.store_full_batches += 1
    log.error("dropping a batch of %d after 5 failures; boxes will resend", len(raw))
    return BatchResult()


def _now_dt() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@functools.lru_cache(maxsize=65536)
def _parse_topic(topic: str) -> ParsedTopic:
    return parse_topic(topic)


def _decode_message(topic: str, data: bytes) -> Message:
    """``decode_message`` with the topic parse cached: a box's topics repeat endlessly."""
    parsed = _parse_topic(topic)
    payload = decode_payload(parsed.kind, data)
    check_message(parsed, payload, topic=topic, data=data)
    return Message(topic=parsed, payload=payload)


def _quarantined(
    topic: str, data: bytes, reason: str, received_at: float, box_id: str | None = None
) -> dict[str, Any]:
    if box_id is None:
        parts = topic.split("/")
        box_id = parts[3][:64] if len(parts) > 3 and parts[0] == "parkgrid" else None
    return {
        "topic": topic[:1000],
        "payload": data[:QUARANTINE_KEEP_BYTES],
        "payload_size": len(data),
        "reason": reason[:2000],
        "box_id": box_id,
        "received_at": received_at,
    }


def _event_row(event: Event, data: bytes, received_at: float) -> dict[str, Any]:
    body = event.body
    if isinstance(body, BayChanged):
        at, to_state = body.sensor_ts, body.to_state.value
    else:
        at, to_state = event.ts, None
    return {
        "box_id": event.box_id,
        "seq": event.seq,
        "boot_id": str(event.boot_id),
        "event_id": str(event.event_id),
        "kind": body.kind,
        "ts": at.timestamp(),
        "received_at": received_at,
        "historical": event.historical,
        "lot_id": getattr(body, "lot_id", None),
        "zone_id": getattr(body, "zone_id", None),
        "bay_id": getattr(body, "bay_id", None),
        "to_state": to_state,
        "payload": data.decode(),
    }
