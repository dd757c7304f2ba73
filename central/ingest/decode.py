"""Decode a batch of raw messages and file each under what the transaction will do with it.

Every message is decoded and checked against the site file; a failure, a foreign site or
a box the site file does not know goes to quarantine. What is left is filed by its payload
type through ``FILE_BY_PAYLOAD``, one small handler per type: events (deduplicated within
the batch), box statuses, command replies, and state documents (conflated per topic).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from central.ingest import claims
from central.ingest.batch import (
    Batch,
    IngestContext,
    RawMessage,
    decode_message,
    event_row,
    quarantined,
    refuse,
)
from firmware_protocols.errors import DecodeError
from firmware_protocols.uplink import (
    BayState,
    BoxStatus,
    CentralStatus,
    CommandReply,
    Event,
    LotState,
    Message,
    SignState,
    TopicKind,
    ZoneState,
)

# (context, batch, message, topic, bytes, received_at)
FileMessage = Callable[[IngestContext, Batch, Message, str, bytes, float], None]


def decode_batch(ctx: IngestContext, raw: Sequence[RawMessage]) -> Batch:
    """Decode ``raw`` into a ``Batch``; nothing here touches the database."""
    batch = Batch()
    site = ctx.site
    for topic, data, received_at in raw:
        try:
            msg = decode_message(topic, data)
        except DecodeError as exc:
            batch.quarantine.append(quarantined(topic, data, str(exc), received_at))
            continue
        kind = msg.topic.kind
        ctx.stats.messages[kind.value] += 1
        if kind is TopicKind.CENTRAL_STATUS:
            if isinstance(msg.payload, CentralStatus):
                batch.central_statuses.append(msg.payload)
            continue
        box_id = msg.topic.box_id
        if msg.topic.site not in site.site_ids:
            reason = f"site {msg.topic.site!r} is not this central's site {site.site_id!r}"
            if site.towns:
                reason = f"site {msg.topic.site!r} is not a town of county {site.site_id!r}"
            batch.quarantine.append(quarantined(topic, data, reason, received_at, box_id))
            continue
        if box_id not in site.boxes:
            reason = f"box {box_id!r} is not in the site file"
            batch.quarantine.append(quarantined(topic, data, reason, received_at, box_id))
            continue
        if msg.topic.site != site.site_of(box_id):
            reason = f"box {box_id!r} is in town {site.site_of(box_id)!r}, not {msg.topic.site!r}"
            batch.quarantine.append(quarantined(topic, data, reason, received_at, box_id))
            continue
        batch.seen[box_id] = received_at
        handler = FILE_BY_PAYLOAD.get(type(msg.payload))
        # ack and cmd are central's own topics; it does not subscribe to them.
        if handler is not None:
            handler(ctx, batch, msg, topic, data, received_at)
    return batch


def _file_event(
    ctx: IngestContext, batch: Batch, msg: Message, topic: str, data: bytes, received_at: float
) -> None:
    payload = msg.payload
    assert isinstance(payload, Event)
    line_claim = claims.implausible_line(payload.line_from)
    if line_claim is not None:
        refuse(ctx, batch, "line_implausible", topic, data, line_claim, received_at)
        return
    key = (msg.topic.box_id, payload.seq)
    if key in batch.events:
        held = batch.events[key][0]
        first = held.event_id
        if (
            held.line is not None
            and payload.line is not None
            and (held.line, held.line_from) != (payload.line, payload.line_from)
        ):
            # One seq under two numberings of a box's line (it renumbered meanwhile): the
            # later numbering is the one it keeps (central/ingest/lines.py).
            if (payload.line_from or 0) > (held.line_from or 0):
                batch.events[key] = (payload, event_row(payload, data, received_at))
            ctx.stats.events_refused["other_line"] += 1
            return
        if first != payload.event_id:
            reason = claims.replayed_seq(payload.seq, str(first), str(payload.event_id))
            refuse(ctx, batch, "seq_replayed", topic, data, reason, received_at)
        else:
            ctx.stats.events_duplicate += 1
        return
    batch.events[key] = (payload, event_row(payload, data, received_at))


def _file_status(
    ctx: IngestContext, batch: Batch, msg: Message, topic: str, data: bytes, received_at: float
) -> None:
    assert isinstance(msg.payload, BoxStatus)
    batch.statuses.append((msg.payload, received_at))


def _file_reply(
    ctx: IngestContext, batch: Batch, msg: Message, topic: str, data: bytes, received_at: float
) -> None:
    assert isinstance(msg.payload, CommandReply)
    batch.replies.append((msg.topic.box_id, msg.payload, received_at))


def _file_state(
    ctx: IngestContext, batch: Batch, msg: Message, topic: str, data: bytes, received_at: float
) -> None:
    batch.states[topic] = (msg, received_at)  # the latest in the batch wins


FILE_BY_PAYLOAD: dict[type, FileMessage] = {
    Event: _file_event,
    BoxStatus: _file_status,
    CommandReply: _file_reply,
    BayState: _file_state,
    LotState: _file_state,
    ZoneState: _file_state,
    SignState: _file_state,
}
