"""Bytes <-> uplink v1 payloads, and the topic kind -> model table.

``encode_payload`` writes compact UTF-8 JSON; ``decode_payload`` validates bytes against the
model of a topic kind; ``decode_message`` does both checks central needs for any message it
receives: the topic is in the scheme, the payload is valid, and the two agree (a bay state
published on ``bay/P1-001`` is about bay ``P1-001``, an event on ``box-p1/event`` comes from
``box-p1``). Every failure is a :class:`~firmware_protocols.errors.DecodeError` with
``fmt="uplink-v1"``, the offending bytes, and pydantic's error text as the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from pydantic import BaseModel, ValidationError

from firmware_protocols.errors import DecodeError
from firmware_protocols.uplink.models import (
    AckWatermark,
    BayState,
    BoxStatus,
    CentralStatus,
    Command,
    CommandReply,
    Event,
    LotState,
    Payload,
    SignState,
    ZoneState,
)
from firmware_protocols.uplink.topics import FMT, ParsedTopic, TopicKind, parse_topic

PAYLOAD_MODELS: Final[dict[TopicKind, type[Payload]]] = {
    TopicKind.STATUS: BoxStatus,
    TopicKind.BAY: BayState,
    TopicKind.LOT: LotState,
    TopicKind.ZONE: ZoneState,
    TopicKind.SIGN: SignState,
    TopicKind.EVENT: Event,
    TopicKind.ACK: AckWatermark,
    TopicKind.CMD: Command,
    TopicKind.REPLY: CommandReply,
    TopicKind.CENTRAL_STATUS: CentralStatus,
}

# The JSON Schema file of each model under docs/protocols/uplink-v1/.
SCHEMA_FILES: Final[dict[type[Payload], str]] = {
    BoxStatus: "box-status.json",
    BayState: "bay-state.json",
    LotState: "lot-state.json",
    ZoneState: "zone-state.json",
    SignState: "sign-state.json",
    Event: "event.json",
    AckWatermark: "ack-watermark.json",
    Command: "command.json",
    CommandReply: "command-reply.json",
    CentralStatus: "central-status.json",
}


@dataclass(frozen=True, slots=True)
class Message:
    """A received message: where it came from and what it says."""

    topic: ParsedTopic
    payload: Payload


def encode_payload(payload: BaseModel) -> bytes:
    """Compact UTF-8 JSON of ``payload`` (every field written, nulls included)."""
    return payload.model_dump_json().encode()


def _validation_reason(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors(include_url=False, include_input=False):
        where = ".".join(str(p) for p in err["loc"]) or "<document>"
        parts.append(f"{where}: {err['msg']}")
    return f"invalid {exc.title}: " + "; ".join(parts)


def decode_payload(kind: TopicKind, data: bytes) -> Payload:
    """Validate ``data`` as the payload of a ``kind`` topic; raise DecodeError if it is not."""
    model = PAYLOAD_MODELS[kind]
    try:
        payload = model.model_validate_json(data)
    except ValidationError as exc:
        raise DecodeError(_validation_reason(exc), fmt=FMT, data=data) from exc
    # Checked here rather than by a "before" validator, which would turn off pydantic's
    # fast JSON path (and strict JSON parsing of dates and ids) for every message.
    if "v" not in payload.model_fields_set:
        raise DecodeError(
            f"invalid {model.__name__}: v: missing protocol version field", fmt=FMT, data=data
        )
    return payload


def decode_message(topic: str, data: bytes) -> Message:
    """Parse ``topic``, validate ``data`` for it, and check that the two agree."""
    parsed = parse_topic(topic)
    payload = decode_payload(parsed.kind, data)
    check_message(parsed, payload, topic=topic, data=data)
    return Message(topic=parsed, payload=payload)


def check_message(parsed: ParsedTopic, payload: Payload, *, topic: str, data: bytes) -> None:
    """Raise DecodeError when a parsed topic and its validated payload disagree.

    For callers that parse topics themselves (central caches the parse per topic);
    ``decode_message`` runs the same check. ``topic`` and ``data`` are the raw topic and
    payload bytes, for the error.
    """
    mismatch = _mismatch(parsed, payload)
    if mismatch is not None:
        raise DecodeError(f"topic {topic!r} disagrees with payload: {mismatch}", fmt=FMT, data=data)


def _mismatch(topic: ParsedTopic, payload: Payload) -> str | None:
    # (what, value in the topic, value in the payload)
    checks: list[tuple[str, str | None, str]] = []
    match payload:
        case BoxStatus() | Event() | AckWatermark():
            checks.append(("box_id", topic.box_id, payload.box_id))
        case BayState():
            checks.append(("bay_id", topic.id, payload.bay_id))
        case LotState():
            checks.append(("lot_id", topic.id, payload.lot_id))
        case ZoneState():
            checks.append(("zone_id", topic.id, payload.zone_id))
        case SignState():
            checks.append(("sign_id", topic.id, payload.sign_id))
        case Command():
            checks.append(("command", topic.id, payload.body.command))
        case CommandReply():
            checks.append(("command", topic.id, payload.command.value))
        case _:
            pass
    for what, in_topic, in_payload in checks:
        if in_topic != in_payload:
            return f"{what} is {in_topic!r} in the topic but {in_payload!r} in the payload"
    return None
