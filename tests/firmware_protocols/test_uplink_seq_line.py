"""The seq line's identity on the wire: ``line`` and ``line_from`` on events, births and acks.

A line is one outbox file's numbering (random id made with the file; ``line_from`` the first
seq it may hold). Both are optional: a document without them is a legacy one and encodes
byte for byte as before, so old boxes (whose models forbid unknown fields) keep reading
central's acks.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid

import pytest

from firmware_protocols.errors import DecodeError
from firmware_protocols.uplink import (
    AckWatermark,
    BayChanged,
    Event,
    Topics,
    decode_message,
    encode_payload,
)
from firmware_protocols.uplink.models import BayOccupancy

TS = dt.datetime(2026, 12, 6, 8, 0, tzinfo=dt.UTC)
LINE = uuid.UUID("6f1c1c55-0000-4000-8000-00000000abcd")
T = Topics("xigang", "box-p1")


def event(seq: int, **line: object) -> Event:
    body = BayChanged(
        bay_id="P1-001",
        lot_id="P1",
        from_state=BayOccupancy.FREE,
        to_state=BayOccupancy.OCCUPIED,
        sensor_ts=TS,
    )
    return Event(
        box_id="box-p1",
        boot_id=uuid.UUID(int=1),
        seq=seq,
        event_id=uuid.UUID(int=seq),
        ts=TS,
        body=body,
        **line,  # type: ignore[arg-type]
    )


def test_event_and_ack_carry_the_line_round_trip() -> None:
    """An event and an ack with a line survive encode -> decode with it."""
    ev = event(12, line=LINE, line_from=10)
    data = encode_payload(ev)
    assert json.loads(data)["line"] == str(LINE) and json.loads(data)["line_from"] == 10
    assert decode_message(T.event, data).payload == ev
    ack = AckWatermark(box_id="box-p1", acked_seq=11, line=LINE, line_from=10, ts=TS)
    decoded = decode_message(T.ack, encode_payload(ack)).payload
    assert decoded == ack and isinstance(decoded, AckWatermark) and decoded.line == LINE


def test_legacy_documents_encode_without_the_line_fields() -> None:
    """No line: the bytes have no ``line``/``line_from`` keys at all (an old box forbids
    unknown fields, even null ones), and such documents decode with ``line`` None."""
    ack = AckWatermark(box_id="box-p1", acked_seq=7, ts=TS)
    data = encode_payload(ack)
    assert b"line" not in data
    assert set(json.loads(data)) == {"v", "box_id", "acked_seq", "ts"}
    ev = decode_message(T.event, encode_payload(event(3))).payload
    assert isinstance(ev, Event) and ev.line is None and ev.line_from is None


@pytest.mark.parametrize(
    ("doc", "reason"),
    [
        pytest.param({"line": str(LINE)}, "line_from", id="line-without-from"),
        pytest.param({"line_from": 1}, "line_from", id="from-without-line"),
        pytest.param({"line": str(LINE), "line_from": 13}, "line_from", id="from-above-seq"),
        pytest.param({"line": str(LINE), "line_from": 0}, "line_from", id="from-zero"),
        pytest.param({"line": "not-a-uuid", "line_from": 1}, "line", id="line-not-uuid"),
    ],
)
def test_event_with_a_bad_line_is_refused(doc: dict[str, object], reason: str) -> None:
    """The pair comes together, and an event's seq is never below its line's first seq."""
    data = json.loads(encode_payload(event(12)))
    data.update(doc)
    with pytest.raises(DecodeError, match=reason):
        decode_message(T.event, json.dumps(data).encode())


def test_ack_with_half_a_line_is_refused() -> None:
    """An ack names a whole line (id and first seq) or none."""
    data = json.loads(encode_payload(AckWatermark(box_id="box-p1", acked_seq=7, ts=TS)))
    data["line"] = str(LINE)
    with pytest.raises(DecodeError, match="line_from"):
        decode_message(T.ack, json.dumps(data).encode())
