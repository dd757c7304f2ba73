"""The store and the ingest writer, on SQLite and on PostgreSQL (the same code)."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from sqlalchemy import Engine, func, select

from central.db import schema as t
from central.db.migrate import current, differences, upgrade
from central.ingest.service import IngestWriter
from central.lots import service as lots
from firmware_protocols.uplink import (
    AlertRaised,
    AlertResolved,
    CommandReply,
    Event,
    EventsDropped,
    Topics,
)
from firmware_protocols.uplink.models import AlertType, CommandName, Severity
from site_model.site import SiteIndex
from tests.central.helpers import (
    BOOT,
    SITE,
    at,
    bay_event,
    bay_state,
    birth,
    death,
    event_msg,
    lot_state,
    raw,
)
from tests.faults.rig import record

P1 = Topics(SITE, "box-p1")


def _writer(engine: Engine, index: SiteIndex) -> tuple[IngestWriter, list[tuple[str, bytes]]]:
    published: list[tuple[str, bytes]] = []
    writer = IngestWriter(
        engine=engine, site=index, publish=lambda topic, data, _r: published.append((topic, data))
    )
    return writer, published


def _count(engine: Engine, table: object, *where: object) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table).where(*where)).scalar())


def test_store_migrations_match_the_schema(engine: Engine) -> None:
    """After upgrade the database is at head and equals schema.metadata; upgrading is idempotent."""
    from alembic.script import ScriptDirectory

    from central.db.migrate import _config

    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert current(engine) == head
    assert differences(engine) == []
    upgrade(engine)
    assert current(engine) == head


def test_store_events_are_stored_once(engine: Engine, site_index: SiteIndex) -> None:
    """A repeated (box, seq), in the same batch or a later one, is counted and dropped."""
    writer, _ = _writer(engine, site_index)
    first = [event_msg(bay_event("box-p1", seq, "P1-001")) for seq in (1, 2, 3)]
    writer.process([*first, first[0]])
    writer.process([first[1], event_msg(bay_event("box-p1", 4, "P1-002"))])
    assert _count(engine, t.events) == 4
    assert writer.stats.events_stored == 4
    assert writer.stats.events_duplicate == 2


def test_store_watermark_waits_for_a_hole_and_acks_after_commit(
    engine: Engine, site_index: SiteIndex
) -> None:
    """The ack stops below a missing seq, passes it once it arrives, and is retained."""
    writer, published = _writer(engine, site_index)
    marks = writer.process([event_msg(bay_event("box-p1", s, "P1-001")) for s in (1, 2, 4, 5)])
    assert marks == {"box-p1": 2}
    topic, data = published[-1]
    assert topic == P1.ack and b'"acked_seq":2' in data
    # The ack is published only after the rows are visible to any other connection.
    assert _count(engine, t.events, t.events.c.box_id == "box-p1") == 4
    marks = writer.process([event_msg(bay_event("box-p1", 3, "P1-001", historical=True))])
    assert marks == {"box-p1": 5}
    with engine.connect() as conn:
        stored = conn.execute(select(t.watermarks.c.acked_seq)).scalar()
    assert stored == 5


def test_store_events_dropped_lets_the_watermark_pass(
    engine: Engine, site_index: SiteIndex
) -> None:
    """An events_dropped range counts as settled."""
    writer, _ = _writer(engine, site_index)
    dropped = Event(
        box_id="box-p1",
        boot_id=BOOT,
        seq=10,
        event_id=uuid.uuid4(),
        ts=at(10),
        body=EventsDropped(first_seq=3, last_seq=9, count=7, total=7),
    )
    marks = writer.process(
        [
            event_msg(bay_event("box-p1", 1, "P1-001")),
            event_msg(bay_event("box-p1", 2, "P1-001")),
            event_msg(dropped),
        ]
    )
    assert marks == {"box-p1": 10}


def test_store_quarantines_bad_and_foreign_messages(engine: Engine, site_index: SiteIndex) -> None:
    """Garbage, an unknown box and another site's topic go to quarantine with a reason."""
    writer, _ = _writer(engine, site_index)
    unknown_box = bay_event("box-zz", 1, "P1-001")
    writer.process(
        [
            raw(P1.event, b"\xff\xfe not json"),
            raw(Topics(SITE, "box-zz").event, unknown_box),
            raw(Topics("othertown", "box-p1").event, bay_event("box-p1", 1, "P1-001")),
            raw("parkgrid/v9/x", b"{}"),
            event_msg(bay_event("box-p1", 1, "P1-001")),
        ]
    )
    with engine.connect() as conn:
        rows = conn.execute(select(t.quarantine).order_by(t.quarantine.c.id)).all()
    reasons = [row.reason for row in rows]
    assert len(rows) == 4
    assert "invalid" in reasons[0] or "JSON" in reasons[0]
    assert "box 'box-zz' is not in the site file" in reasons[1]
    assert "othertown" in reasons[2]
    assert "not a parkgrid topic" in reasons[3]
    assert bytes(rows[0].payload) == b"\xff\xfe not json"
    assert _count(engine, t.events) == 1


def test_store_states_conflate_and_offline_box_is_stale(
    engine: Engine, site_index: SiteIndex
) -> None:
    """Latest state wins; when the box dies its free bays read unknown and free is 0."""
    writer, _ = _writer(engine, site_index)
    writer.process(
        [
            raw(P1.status, birth("box-p1")),
            raw(P1.lot("P1"), lot_state(free=9, occupied=1)),
            raw(P1.lot("P1"), lot_state(free=7, occupied=3, ts=1)),
            raw(P1.bay("P1-001"), bay_state("P1-001", "occupied")),
            raw(P1.bay("P1-002"), bay_state("P1-002", "free")),
        ]
    )
    lot = lots.get_lot(engine, "P1")
    assert (lot.free, lot.occupied, lot.stale, lot.status) == (7, 3, False, "spacesAvailable")
    # An older document arriving late does not overwrite a newer one.
    writer.process([raw(P1.lot("P1"), lot_state(free=1, occupied=9, ts=-60))])
    assert lots.get_lot(engine, "P1").free == 7
    writer.process([raw(P1.status, death("box-p1"))])
    lot = lots.get_lot(engine, "P1")
    assert (lot.free, lot.stale, lot.status, lot.last_known_free) == (0, True, "unknown", 7)
    assert lot.unknown == 7
    bays = {b.id: b for b in lots.list_bays(engine, lot_id="P1")}
    assert bays["P1-002"].state == "unknown" and bays["P1-002"].reported_state == "free"
    assert bays["P1-001"].state == "occupied" and bays["P1-001"].stale


def test_store_a_state_document_received_again_notifies_no_one(
    engine: Engine, site_index: SiteIndex
) -> None:
    """The same document twice (a retained state redelivered to a restarted process, a
    box's resend) changes nothing: no notice, so no screen shows a stale ts as news. A new
    document with the same ts but other figures still applies."""
    heard: list[dict[str, object]] = []
    writer, _ = _writer(engine, site_index)
    writer.notify = heard.extend
    writer.wants_notices = lambda: True
    doc = lot_state(free=7, occupied=3)
    writer.process([raw(P1.status, birth("box-p1")), raw(P1.lot("P1"), doc)])
    assert [n["free"] for n in heard if n["type"] == "lot"] == [7]
    writer.process([raw(P1.lot("P1"), doc)])
    bay = bay_state("P1-001", "occupied")
    writer.process([raw(P1.bay("P1-001"), bay)])
    writer.process([raw(P1.bay("P1-001"), bay)])
    assert [n["free"] for n in heard if n["type"] == "lot"] == [7]
    assert len([n for n in heard if n["type"] == "bay"]) == 1
    same_ts = doc.model_copy(update={"free": 6, "occupied": 4})
    writer.process([raw(P1.lot("P1"), same_ts)])
    assert [n["free"] for n in heard if n["type"] == "lot"] == [7, 6]
    assert lots.get_lot(engine, "P1").free == 6


def test_store_lot_with_every_bay_unknown_is_unknown_not_full(
    engine: Engine, site_index: SiteIndex
) -> None:
    """A box that has heard none of its sensors reports free 0 and 'full': central says the
    lot is unknown (the availability rule), never full for lack of news."""
    writer, _ = _writer(engine, site_index)
    writer.process(
        [raw(P1.status, birth("box-p1")), raw(P1.lot("P1"), lot_state(free=0, occupied=0))]
    )
    lot = lots.get_lot(engine, "P1")
    assert (lot.status, lot.free, lot.unknown, lot.stale) == ("unknown", 0, 10, True)
    assert lot.availability == "unknown"


def test_store_site_disagreements_are_recorded(engine: Engine, site_index: SiteIndex) -> None:
    """A bay, lot or capacity the site file does not agree with becomes a site problem."""
    writer, _ = _writer(engine, site_index)
    writer.process(
        [
            raw(P1.bay("P1-099"), bay_state("P1-099")),
            raw(P1.lot("P2"), lot_state("P2", free=4, occupied=0, capacity=4)),
            raw(P1.lot("P1"), lot_state("P1", free=5, occupied=3, capacity=8)),
            raw(P1.status, birth("box-p1", sensor_count=12)),
        ]
    )
    with engine.connect() as conn:
        problems = {r.subject: r.message for r in conn.execute(select(t.site_problems))}
    assert "not in the site file" in problems["bay/P1-099"]
    assert "box-p2" in problems["lot/P2"]
    assert "capacity of 8" in problems["lot/P1/capacity"]
    assert "12 sensors" in problems["status.sensor_count"]


def _alert(seq: int, body: AlertRaised | AlertResolved) -> Event:
    return Event(
        box_id="box-p1", boot_id=BOOT, seq=seq, event_id=uuid.uuid4(), ts=at(seq), body=body
    )


def test_store_alerts_follow_the_newest_event(engine: Engine, site_index: SiteIndex) -> None:
    """Raise, escalate and resolve update one alert; a late older step never reopens it."""
    writer, _ = _writer(engine, site_index)

    def raised(step: int) -> AlertRaised:
        return AlertRaised(
            alert_id="a-1",
            alert_type=AlertType.ZONE_OVERSTAY,
            severity=Severity.WARNING,
            step=step,
            since=at(0),
            message=f"step {step}",
            zone_id="S1",
        )

    resolved = AlertResolved(alert_id="a-1", alert_type=AlertType.ZONE_OVERSTAY, since=at(0))
    writer.process([event_msg(_alert(1, raised(0)))])
    writer.process([event_msg(_alert(3, resolved))])
    writer.process([event_msg(_alert(2, raised(1)))])  # a resend, older than the resolve
    with engine.connect() as conn:
        row = conn.execute(select(t.alerts)).one()
    assert (row.state, row.step, row.last_seq) == ("resolved", 0, 3)
    assert row.resolved_by == "box:box-p1"


def test_store_command_reply_is_matched(engine: Engine, site_index: SiteIndex) -> None:
    """A reply on reply/{name} lands on the stored command with the same id."""
    writer, _ = _writer(engine, site_index)
    command_id = uuid.uuid4()
    with engine.begin() as conn:
        conn.execute(
            t.commands.insert().values(
                command_id=str(command_id),
                box_id="box-p1",
                name="rebirth",
                payload='{"body":{"command":"rebirth"}}',
                issued_by="user:op",
                issued_at=0.0,
            )
        )
    reply = CommandReply(
        command_id=command_id,
        command=CommandName.REBIRTH,
        ok=False,
        error="expired",
        ts=dt.datetime.now(dt.UTC),
    )
    writer.process([raw(P1.reply("rebirth"), reply)])
    with engine.connect() as conn:
        row = conn.execute(select(t.commands)).one()
    assert (row.reply_ok, row.reply_error) == (False, "expired")


def test_store_history_and_dwell_from_events(engine: Engine, site_index: SiteIndex) -> None:
    """Occupancy at each step and stay durations are computed from the bay events."""
    writer, _ = _writer(engine, site_index)
    t0 = dt.datetime(2025, 3, 1, 8, 0, tzinfo=dt.UTC)

    def when(minutes: int) -> dt.datetime:
        return t0 + dt.timedelta(minutes=minutes)

    plan = [
        (1, "P1-001", "free", -60),
        (2, "P1-002", "free", -60),
        (3, "P1-001", "occupied", 10),
        (4, "P1-002", "occupied", 20),
        (5, "P1-001", "free", 40),
        (6, "P1-002", "free", 140),
    ]
    writer.process(
        [event_msg(bay_event("box-p1", seq, bay, to, when=when(m))) for seq, bay, to, m in plan]
    )
    history = lots.occupancy_history(engine, lot_id="P1", start=t0, end=when(60), step_s=900)
    occupied = [p.occupied for p in history.points]
    assert occupied == [0, 1, 2, 1, 1]  # 08:00, 08:15, 08:30, 08:45, 09:00
    assert history.points[0].free == 2 and history.points[0].unknown == 8
    dwell = lots.dwell_stats(engine, lot_id="P1", start=t0, end=when(180))
    assert dwell.stays == 2
    assert sorted([dwell.mean_s, dwell.max_s]) == [(30 * 60 + 120 * 60) / 2, 120 * 60]
    assert dwell.histogram["15m-1h"] == 1 and dwell.histogram["1h-4h"] == 1


def test_store_walk_ignores_a_dropped_range_above_every_stored_seq(
    engine: Engine, site_index: SiteIndex
) -> None:
    """A range stored before central checked the claims (reaching past the event that
    reported it) never carries the watermark: it counts only below a stored seq."""
    writer, _ = _writer(engine, site_index)
    writer.process([event_msg(bay_event("box-p1", 1, "P1-001"))])
    with engine.begin() as conn:
        conn.execute(
            t.dropped_ranges.insert(),
            {"box_id": "box-p1", "first_seq": 2, "last_seq": 2**63 - 2, "count": 0,
             "reported_at": 0.0},
        )  # fmt: skip
    marks = writer.process([event_msg(bay_event("box-p1", 1, "P1-001"))])
    assert marks == {"box-p1": 1}


def test_store_refuses_a_dropped_range_longer_than_the_outbox(
    engine: Engine, site_index: SiteIndex
) -> None:
    """The birth says the event lane holds 1,000,000 bytes (62,500 events at most): a longer
    range is quarantined and counted; a range that fits settles its seqs."""
    writer, _ = _writer(engine, site_index)

    def dropped(seq: int, first: int, last: int) -> Event:
        body = EventsDropped(first_seq=first, last_seq=last, count=0, total=0)
        return Event(
            box_id="box-p1", boot_id=BOOT, seq=seq, event_id=uuid.uuid4(), ts=at(seq), body=body
        )

    marks = writer.process(
        [raw(P1.status, birth("box-p1")), event_msg(dropped(100_000, 1, 99_999))]
    )
    assert marks == {}
    assert writer.stats.events_refused["dropped_range"] == 1
    assert _count(engine, t.quarantine, t.quarantine.c.reason.contains("can hold")) == 1
    assert _count(engine, t.dropped_ranges) == 0
    marks = writer.process([event_msg(dropped(62_501, 1, 62_500))])
    assert marks == {"box-p1": 62_501}


def _flood_ranges(engine: Engine, box: str, n: int, base: int) -> None:
    """``n`` one-seq ranges from ``base`` and the events that reported them, above a hole."""
    with engine.begin() as conn:
        conn.execute(
            t.dropped_ranges.insert(),
            [{"box_id": box, "first_seq": base + i, "last_seq": base + i, "count": 1,
              "reported_at": 0.0} for i in range(n)],
        )  # fmt: skip
        conn.execute(
            t.events.insert(),
            [{"box_id": box, "seq": 2 * base + i, "boot_id": str(BOOT),
              "event_id": str(uuid.uuid4()), "kind": "events_dropped", "ts": 0.0,
              "received_at": 0.0, "historical": False, "payload": "{}"} for i in range(n)],
        )  # fmt: skip


def test_store_walk_reads_ranges_a_page_at_a_time(
    engine: Engine, site_index: SiteIndex, monkeypatch: pytest.MonkeyPatch
) -> None:
    """3,000 ranges reported far above a hole (a box flooding central with events_dropped)
    reach each walk a page at a time, not all at once: a batch of that box stays cheap
    (bench: 360 ms -> 12 ms per batch with 100,000 such ranges)."""
    import central.ingest.walk as ingest

    writer, _ = _writer(engine, site_index)
    writer.process([event_msg(bay_event("box-p1", 1, "P1-001"))])
    _flood_ranges(engine, "box-p1", 3000, 10_000)
    # A central started after the flood: its first batch of the box repairs the mark with
    # the walk (a running writer moves the mark by what it stores and reads only a hole).
    writer, _ = _writer(engine, site_index)
    seen: list[int] = []
    real = ingest.advance

    def counting(acked: int, seqs: list[int], dropped: list[tuple[int, int]]) -> int:
        seen.append(len(dropped))
        return real(acked, seqs, dropped)

    monkeypatch.setattr(ingest, "advance", counting)
    marks = writer.process([event_msg(bay_event("box-p1", 2, "P1-001"))])
    assert marks == {"box-p1": 2}
    assert seen and max(seen) <= ingest.RANGE_CHUNK < 3000
    record(
        "hostile",
        "dropped-range flood above a hole",
        {
            "attack": "3,000 one-seq events_dropped ranges (and their events) far above a "
            "box's watermark, so every later walk would read them all",
            "tried": 3000,
            "refused": f"read {max(seen)} per walk",
            "notes": "the walk pages ranges (1,000) like seqs; 100,000 such ranges: "
            "360-470 ms per one-event batch before, 12 ms after",
        },
    )


@pytest.mark.parametrize("seed", range(8))
def test_store_walk_in_small_pages_equals_the_whole_walk(
    engine: Engine, site_index: SiteIndex, monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    """With pages of 2 ranges and 3 seqs, the walk ends where the longest settled prefix
    ends (ranges chained over ranges, seqs over ranges, holes)."""
    import random

    import central.ingest.walk as ingest

    monkeypatch.setattr(ingest, "RANGE_CHUNK", 2)
    monkeypatch.setattr(ingest, "WALK_CHUNK", 3)
    rng = random.Random(seed)
    held = sorted(rng.sample(range(1, 80), 25))
    ranges: dict[int, int] = {}
    for _ in range(12):
        first = rng.randrange(1, 80)
        ranges[first] = max(ranges.get(first, 0), first + rng.randrange(0, 6))
    top = 100  # the reporting events sit above every range
    writer, _ = _writer(engine, site_index)
    with engine.begin() as conn:
        conn.execute(
            t.dropped_ranges.insert(),
            [{"box_id": "box-p1", "first_seq": f, "last_seq": last, "count": 0,
              "reported_at": 0.0} for f, last in ranges.items()],
        )  # fmt: skip
    writer.process([event_msg(bay_event("box-p1", s, "P1-001")) for s in [*held, top]])
    settled = set(held) | {top}
    for first, last in ranges.items():
        settled.update(range(first, last + 1))
    expected = 0
    while expected + 1 in settled:
        expected += 1
    with engine.connect() as conn:
        mark = conn.execute(select(t.watermarks.c.acked_seq)).scalar()
    assert mark == expected
