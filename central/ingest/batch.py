"""What one ingest batch is made of: the raw messages in, the decoded batch, the result out.

Plain data and pure helpers only (no SQL): the counters ``/metrics`` shows, the batch the
handlers fill before the transaction, the rows a quarantined message or a stored event
becomes, and the cached decoding of a message.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from firmware_protocols.uplink import (
    BayChanged,
    BoxStatus,
    CentralStatus,
    CommandReply,
    Event,
    Message,
    decode_payload,
    parse_topic,
)
from firmware_protocols.uplink.codec import check_message
from firmware_protocols.uplink.topics import ParsedTopic
from site_model.site import SiteIndex

RawMessage = tuple[str, bytes, float]  # topic, payload, received_at (epoch seconds)
Publish = Callable[[str, bytes, bool], None]  # topic, payload, retain
Notify = Callable[[list[dict[str, Any]]], None]

QUARANTINE_KEEP_BYTES = 64 * 1024


@dataclass
class IngestStats:
    """Counters for /metrics; plain ints, updated by the writer thread only."""

    messages: Counter[str] = field(default_factory=Counter)
    events_stored: int = 0
    events_duplicate: int = 0
    quarantined: int = 0
    # events refused for a claim central cannot believe: "dropped_range", "seq_replayed";
    # "other_line": held back as of a seq line the box is renumbering (central/ingest/lines)
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
    # per box, seqs missing below the lowest one held above its watermark (a hole it waits
    # at: events lost on the way, or still coming); 0 when nothing waits
    seq_gaps: dict[str, int] = field(default_factory=dict)

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
        self.seq_gaps.update(other.seq_gaps)


@dataclass
class BatchResult:
    """What a committed batch leaves to do: acks to publish, notices, central statuses.

    Plain data, so the writer process can hand it to the MQTT process over a pipe.
    """

    marks: dict[str, int] = field(default_factory=dict)
    notices: list[dict[str, Any]] = field(default_factory=list)
    central_statuses: list[CentralStatus] = field(default_factory=list)
    # each box's seq line after the batch (id, first seq), None for a legacy box
    lines: dict[str, tuple[str, int] | None] = field(default_factory=dict)


@dataclass
class Batch:
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


@dataclass(frozen=True)
class IngestContext:
    """What every handler may read: the site file, the counters, the SQL dialect."""

    site: SiteIndex
    stats: IngestStats
    dialect: str


def ts(value: Any) -> float:
    """Epoch seconds of a datetime."""
    return value.timestamp()


@functools.lru_cache(maxsize=65536)
def _parse_topic(topic: str) -> ParsedTopic:
    return parse_topic(topic)


def decode_message(topic: str, data: bytes) -> Message:
    """``decode_message`` with the topic parse cached: a box's topics repeat endlessly."""
    parsed = _parse_topic(topic)
    payload = decode_payload(parsed.kind, data)
    check_message(parsed, payload, topic=topic, data=data)
    return Message(topic=parsed, payload=payload)


def quarantined(
    topic: str, data: bytes, reason: str, received_at: float, box_id: str | None = None
) -> dict[str, Any]:
    """The quarantine row of a message central refuses: its topic, bytes and reason."""
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


def refuse(
    ctx: IngestContext,
    batch: Batch,
    why: str,
    topic: str,
    data: bytes,
    reason: str,
    received_at: float,
) -> None:
    """Quarantine an event whose claim central cannot believe; count it; record it as a
    site problem (the ops page and ``parkgrid_central_site_problems`` show it)."""
    box_id = topic.split("/")[3]
    batch.quarantine.append(quarantined(topic, data, reason, received_at, box_id))
    batch.problems.append((box_id, f"events/{why}", reason))
    ctx.stats.events_refused[why] += 1


def event_row(event: Event, data: bytes, received_at: float) -> dict[str, Any]:
    """The ``events`` row of a decoded event."""
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
        "prev_state": None,  # set by central.history.rollups for a bay change
    }
