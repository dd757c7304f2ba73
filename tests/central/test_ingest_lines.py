"""Central's side of the seq line (central/ingest/lines.py), on SQLite and PostgreSQL.

Central keeps per box the line its watermark counts and names it in the ack; events of a
line the box is renumbering are held back (not stored, no side effects) and the box is
acked on its current line; a line starting above the watermark is taken.
"""

from __future__ import annotations

import json
import uuid

from sqlalchemy import Engine, select

from central.db import schema as t
from central.ingest.service import IngestWriter
from firmware_protocols.uplink import Event
from site_model.site import SiteIndex
from tests.central.helpers import bay_event, event_msg

BOX = "box-p1"
OLD = uuid.UUID("00000000-0000-4000-8000-000000000001")
NEW = uuid.UUID("00000000-0000-4000-8000-000000000002")


def lined(seq: int, line: uuid.UUID | None, line_from: int | None, tag: str = "") -> Event:
    event = bay_event(BOX, seq, f"P1-{seq % 10 + 1:03d}")
    event_id = uuid.uuid5(uuid.NAMESPACE_OID, f"{line}/{line_from}/{seq}/{tag}")
    return event.model_copy(update={"line": line, "line_from": line_from, "event_id": event_id})


class Acks:
    def __init__(self) -> None:
        self.sent: list[dict[str, object]] = []

    def __call__(self, topic: str, payload: bytes, retain: bool) -> None:
        assert retain and topic.endswith(f"/{BOX}/ack")
        self.sent.append(json.loads(payload))

    @property
    def last(self) -> dict[str, object]:
        return self.sent[-1]


def make_writer(engine: Engine, site_index: SiteIndex, acks: Acks) -> IngestWriter:
    return IngestWriter(engine=engine, site=site_index, publish=acks, shared=False)


def stored(engine: Engine) -> dict[int, str]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(t.events.c.seq, t.events.c.event_id).where(t.events.c.box_id == BOX)
        )
        return {seq: event_id for seq, event_id in rows}


def watermark(engine: Engine) -> tuple[int, str | None, int | None]:
    wm = t.watermarks.c
    with engine.connect() as conn:
        row = conn.execute(
            select(wm.acked_seq, wm.line, wm.line_from).where(wm.box_id == BOX)
        ).one()
    return row[0], row[1], row[2]


def test_a_new_line_below_the_watermark_is_held_back_then_taken_renumbered(
    engine: Engine, site_index: SiteIndex
) -> None:
    """Old line acked to 5; the new line's events 1..3 (first seq 1) are held back and the
    box is acked on the old line; renumbered above 5 they are taken, each stored once; a
    late copy of the stale numbering is held back again."""
    acks = Acks()
    writer = make_writer(engine, site_index, acks)
    writer.process([event_msg(lined(s, OLD, 1)) for s in range(1, 6)])
    assert acks.last["acked_seq"] == 5 and acks.last["line"] == str(OLD)
    assert acks.last["line_from"] == 1 and watermark(engine) == (5, str(OLD), 1)

    fresh = [lined(s, NEW, 1) for s in (1, 2, 3)]
    writer.process([event_msg(e) for e in fresh])
    assert len(stored(engine)) == 5  # not stored
    assert acks.last == {**acks.last, "acked_seq": 5, "line": str(OLD), "line_from": 1}
    assert writer.stats.events_refused["other_line"] == 3

    moved = [e.model_copy(update={"seq": e.seq + 5, "line_from": 6}) for e in fresh]
    writer.process([event_msg(e) for e in moved])
    held = stored(engine)
    assert [held[s] for s in (6, 7, 8)] == [str(e.event_id) for e in fresh]
    assert acks.last["acked_seq"] == 8 and acks.last["line"] == str(NEW)
    assert acks.last["line_from"] == 6 and watermark(engine) == (8, str(NEW), 6)

    writer.process([event_msg(fresh[0])])  # the stale numbering, late
    assert stored(engine) == held and writer.stats.events_refused["other_line"] == 4
    with engine.connect() as conn:
        assert conn.execute(select(t.quarantine.c.id)).first() is None


def test_a_new_central_takes_a_line_starting_above_one(
    engine: Engine, site_index: SiteIndex
) -> None:
    """An empty store and a box whose line starts at 13 (it renumbered above an earlier
    central's ack of 12): the line is taken and the watermark starts at 12."""
    acks = Acks()
    writer = make_writer(engine, site_index, acks)
    writer.process([event_msg(lined(s, NEW, 13)) for s in (13, 14)])
    assert acks.last["acked_seq"] == 14 and acks.last["line_from"] == 13
    assert watermark(engine) == (14, str(NEW), 13)


def test_a_legacy_box_gets_acks_without_a_line(engine: Engine, site_index: SiteIndex) -> None:
    """Events without a line are stored as ever and the ack names no line (an old box
    forbids unknown fields); a box that speaks lines again gets its line back."""
    acks = Acks()
    writer = make_writer(engine, site_index, acks)
    writer.process([event_msg(lined(s, None, None)) for s in (1, 2)])
    assert acks.last["acked_seq"] == 2 and "line" not in acks.last
    writer.process([event_msg(lined(3, NEW, 1))])  # upgraded: the same numbering
    assert acks.last["acked_seq"] == 3 and acks.last["line"] == str(NEW)
    writer.process([event_msg(lined(4, None, None))])  # taken back to an older release
    assert acks.last["acked_seq"] == 4 and "line" not in acks.last
    assert watermark(engine) == (4, None, None)


def test_republished_acks_name_the_line(engine: Engine, site_index: SiteIndex) -> None:
    """After a reconnect every stored watermark is published again with its line."""
    acks = Acks()
    make_writer(engine, site_index, acks).process([event_msg(lined(1, NEW, 1))])
    again = Acks()
    make_writer(engine, site_index, again).republish_acks()
    assert again.last["acked_seq"] == 1 and again.last["line"] == str(NEW)


def test_two_numberings_of_one_seq_in_a_batch_keep_the_later(
    engine: Engine, site_index: SiteIndex
) -> None:
    """The box renumbered while its first copies were on the way: in one batch, seq 6 as
    the stale numbering's event and as the renumbered one; the renumbered one is stored."""
    acks = Acks()
    writer = make_writer(engine, site_index, acks)
    writer.process([event_msg(lined(s, OLD, 1)) for s in range(1, 6)])
    stale = lined(6, NEW, 1, tag="x")
    renumbered = lined(6, NEW, 6, tag="y")
    writer.process([event_msg(stale), event_msg(renumbered)])
    assert stored(engine)[6] == str(renumbered.event_id)
    assert acks.last["acked_seq"] == 6 and acks.last["line_from"] == 6
