"""The records the outbox holds and hands out: stored and queued events, drop ranges, stats."""

from __future__ import annotations

from dataclasses import dataclass

from edge.outbox_line import SeqLine


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredEvent:
    """One committed event as the outbox holds it."""

    seq: int
    event_id: str
    ts: str
    """The event time as the JSON string the envelope carries (quotes included)."""
    boot_id: str
    body: bytes

    def envelope(self, box_id: str, *, historical: bool, line: SeqLine | None = None) -> bytes:
        """The ``Event`` JSON for the wire, built without re-validating the stored body;
        with ``line``, it names the seq line (without, a legacy envelope).

        Field order and spelling are those of ``encode_payload(Event(...))``; the tests
        check the bytes with ``decode_message``.
        """
        return b"".join(
            (
                b'{"v":1,"box_id":"',
                box_id.encode(),
                b'","boot_id":"',
                self.boot_id.encode(),
                b'","seq":',
                str(self.seq).encode(),
                b',"event_id":"',
                self.event_id.encode(),
                b'","ts":',
                self.ts.encode(),
                b',"historical":',
                b"true" if historical else b"false",
                b',"body":',
                self.body,
                b"" if line is None else line.envelope_tail(),
                b"}",
            )
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class DropRange:
    """Events ``first_seq..last_seq`` deleted unsent because the lane was full."""

    first_seq: int
    last_seq: int
    count: int


@dataclass(frozen=True, slots=True, kw_only=True)
class OutboxStats:
    depth: int
    bytes: int
    queued: int
    last_seq: int
    state_depth: int
    state_bytes: int
    state_dirty: int
    state_refused_total: int
    dropped_events_total: int
    overflow_active: bool
    corrupt_recoveries: int


@dataclass(frozen=True, slots=True)
class QueuedEvent:
    """An event appended and numbered, waiting in memory for the next group commit."""

    seq: int
    event_id: str
    ts: str
    created: float
    body: bytes
    boot_id: str
