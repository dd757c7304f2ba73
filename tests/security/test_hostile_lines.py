"""Attacks on the seq lines of the uplink wire (issue 17's ``line``/``line_from``), with a
box's own MQTT credentials through the field broker (password file and ACL from
``provision-box``), against a real ``central serve``."""

from __future__ import annotations

import json
import uuid

from firmware_protocols.uplink import Topics
from firmware_protocols.uplink.models import MAX_SEQ, SEQ_HEADROOM
from tests.badinput.test_mqtt_payloads import good_event
from tests.faults.rig import SITE_ID, record
from tests.security.test_hostile_protocol import (
    BOX,
    Client,
    Field,
    _problem,
    _quarantine_reasons,
    _stored,
    _wait,
    field,
)

__all__ = ["field"]  # the module's fixture, shared with test_hostile_protocol.py


def _on_line(seq: int, box: str, line: uuid.UUID, line_from: int) -> bytes:
    doc = json.loads(good_event(1, box=box))
    doc.update(seq=seq, event_id=str(uuid.uuid4()), line=str(line), line_from=line_from)
    return json.dumps(doc).encode()


def test_hostile_line_jump_does_not_move_the_watermark_to_the_top(field: Field) -> None:
    """A box's credentials publish events of made-up lines between events of its real line
    (line_from 1): one starting at 2^63-1 (the top), one starting where a real line could
    not be renumbered above it, one whose seq is below its line's start. Each is refused;
    the real line goes on being stored and acked."""
    central, broker = field.central, field.broker
    topics = Topics(SITE_ID, BOX)
    real = uuid.uuid4()
    forged = [
        (MAX_SEQ, MAX_SEQ),
        (MAX_SEQ - SEQ_HEADROOM, MAX_SEQ - SEQ_HEADROOM - 1),
        (5, 1000),
    ]
    before = len(_quarantine_reasons(central, BOX))
    box = Client(broker.port, BOX, field.secrets[BOX])
    try:
        for seq in (1, 2, 3):
            box.publish(topics.event, _on_line(seq, BOX, real, 1))
        _wait(lambda: central.watermarks().get(BOX, 0) == 3, "the real line acked to 3")
        for n, (seq, line_from) in enumerate(forged, start=4):
            box.publish(topics.event, _on_line(seq, BOX, uuid.uuid4(), line_from))
            box.publish(topics.event, _on_line(n, BOX, real, 1))
            _wait(
                lambda n=n: _stored(central, BOX, n) or central.watermarks()[BOX] > n,  # type: ignore[misc]
                f"the real line's seq {n} stored, or the watermark moved past it",
            )
            assert central.watermarks()[BOX] == n
        _wait(
            lambda: len(_quarantine_reasons(central, BOX)) >= before + len(forged),
            "the forged lines quarantined",
        )
    finally:
        box.close()
    reasons = _quarantine_reasons(central, BOX)[before:]
    assert sum("top" in r for r in reasons) == 2, reasons
    assert sum("above the event's own seq" in r for r in reasons) == 1, reasons  # the wire's
    assert _problem(central, BOX, "events/line_implausible")
    record(
        "hostile",
        "seq line jump",
        {
            "attack": "a box's credentials publish, between events of its real line, events "
            "of made-up lines starting at 2^63-1, at 2^63-1 - 2^40, and above their own seq",
            "tried": len(forged),
            "refused": len(forged),
            "notes": "quarantined with the reason (the first two a site problem, the third "
            "refused by the wire format); the real line's next "
            "event stored each time (was: the watermark went to 2^63-1 and the real line "
            "was held back for good, the box unable to renumber above it)",
        },
    )
