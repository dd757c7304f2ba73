"""History from rollups (issue 17, finding 6), on SQLite and PostgreSQL.

The history and dwell endpoints read rollups kept at ingest; their answers are the ones
the replay of raw events gave (``history_reference``), on a generated history with live
events (late ones, unknown and closed bays) on top, and they stay right after the raw
events are gone (at main the history read ``events`` only: with them deleted every bay was
``unknown`` and there were no stays).
"""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

import pytest
from sqlalchemy import Engine, delete, func, select

from central.db import schema as t
from central.db.engine import make_engine
from central.db.migrate import upgrade
from central.errors import Invalid
from central.history import partitions, read, rollups
from central.history.retention import RetentionJob, drop_raw_events
from central.ingest.service import IngestWriter
from central.lots import service as lots
from central.lots.generated import GeneratedChange, write_generated_history
from central.sites.service import sync_site
from site_model.site import Site, SiteIndex
from tests.central import history_reference as ref
from tests.central.helpers import bay_event, event_msg

UTC = dt.UTC
START = dt.datetime(2026, 10, 27, tzinfo=UTC).timestamp()  # over a month's end
DAYS = 9


def _changes(site: Site, seed: int = 7) -> list[GeneratedChange]:
    rng = random.Random(seed)
    bays = site.lots["P1"].bay_ids("P1") + site.lots["P2"].bay_ids("P2")
    out = []
    for bay in bays:
        at = START + rng.uniform(0, 3600)
        while at < START + DAYS * 86400:
            out.append(GeneratedChange(at, bay, rng.random() < 0.6))
            at += rng.expovariate(1 / 5400)
    return sorted(out, key=lambda c: c.at)


def _live(site: Site, writer: IngestWriter) -> None:
    """Live events after the generated ones: unknown and closed bays, a late batch."""
    end = START + DAYS * 86400
    when = lambda s: dt.datetime.fromtimestamp(end + s, UTC)  # noqa: E731
    states = ["occupied", "closed", "unknown", "free", "occupied"]
    events = [
        bay_event("box-p1", n + 1, f"P1-00{1 + n % 4}", states[n % 5], when=when(37.5 * n + 0.25))
        for n in range(40)
    ]
    writer.store([event_msg(ev) for ev in events[20:]])
    writer.store([event_msg(ev) for ev in events[:20]])  # late: before what is stored


def _history(engine: Engine, lot: str, start: float, end: float, step: int) -> list[Any]:
    answer = lots.occupancy_history(
        engine, lot_id=lot, start=dt.datetime.fromtimestamp(start, UTC),
        end=dt.datetime.fromtimestamp(end, UTC), step_s=step,
    )  # fmt: skip
    return [(p.at.timestamp(), p.free, p.occupied, p.unknown, p.closed) for p in answer.points]


def _dwell(engine: Engine, lot: str, start: float, end: float) -> dict[str, Any]:
    d = lots.dwell_stats(
        engine, lot_id=lot, start=dt.datetime.fromtimestamp(start, UTC),
        end=dt.datetime.fromtimestamp(end, UTC),
    )  # fmt: skip
    return {"stays": d.stays, "mean_s": d.mean_s, "median_s": d.median_s, "max_s": d.max_s}


def _same(a: list[Any], b: list[Any]) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert x[0] == pytest.approx(y[0], abs=1e-6) and x[1:] == y[1:], (x, y)


def _dwell_same(a: dict[str, Any], b: dict[str, Any]) -> None:
    assert a["stays"] == b["stays"]
    for key in ("mean_s", "median_s", "max_s"):
        assert a[key] == pytest.approx(b[key], abs=1e-6)


QUERIES = [  # (lot, start offset from START, span, step)
    ("P1", 86400, 7 * 86400, 900),  # a week from midnight, the dashboard's
    ("P1", 17.3, DAYS * 86400, 3600),  # the heat map's hours, not on a minute
    ("P2", 2 * 86400 + 7.25, 86400, 60),  # a day by minutes, off the minute
    ("P1", DAYS * 86400 - 600, 3600, 30),  # the live events, old and late
    ("P1", -86400, 3 * 86400, 7200),  # from before any change
]


def test_history_and_dwell_equal_the_replay_of_events(engine: Engine, site: Site) -> None:
    end = START + DAYS * 86400
    write_generated_history(engine, site, _changes(site), until=end, source="test", since=START)
    _live(site, IngestWriter(engine=engine, site=SiteIndex.of(site), shared=False))
    for lot, offset, span, step in QUERIES:
        a = START + offset
        _same(_history(engine, lot, a, a + span, step), ref.history(engine, lot, a, a + span, step))
    for lot, a, b in (("P1", START + 86400, START + 8 * 86400), ("P2", START, end + 3600)):
        _dwell_same(_dwell(engine, lot, a, b), ref.dwell(engine, lot, a, b))
    assert _dwell(engine, "P1", START, end)["stays"] > 50  # a history with something in it


def test_history_reads_rollups_once_raw_events_are_gone(engine: Engine, site: Site) -> None:
    """Whole-minute samples and dwell need no raw event: deleted, the answers stay."""
    end = START + DAYS * 86400
    write_generated_history(engine, site, _changes(site), until=end, source="test", since=START)
    week = (START + 86400, START + 8 * 86400)
    before = [_history(engine, lot, *week, 900) for lot in ("P1", "P2")]
    dwell = _dwell(engine, "P1", *week)
    assert any(p[2] for p in before[0]) and dwell["stays"] > 0
    with engine.begin() as conn:
        conn.execute(delete(t.events))
    assert [_history(engine, lot, *week, 900) for lot in ("P1", "P2")] == before
    assert _dwell(engine, "P1", *week) == dwell


def _events(engine: Engine, where: Any = None) -> int:
    query = select(func.count()).select_from(t.events)
    with engine.connect() as conn:
        return int(conn.execute(query if where is None else query.where(where)).scalar() or 0)


def test_retention_drops_old_months_and_the_history_stays(engine: Engine, site: Site) -> None:
    end = START + DAYS * 86400
    write_generated_history(engine, site, _changes(site), until=end, source="test", since=START)
    november = dt.datetime(2026, 11, 1, tzinfo=UTC).timestamp()
    span = (START, november + 2 * 86400)
    before = _history(engine, "P1", *span, 600), _dwell(engine, "P1", *span)
    october = _events(engine, t.events.c.ts < november)
    assert october > 0
    # Kept 20 days, on 2026-11-25: October ended more than 20 days before? No: the cut is
    # the start of the month holding now - 20 days (November 5th): October's rows go.
    job = RetentionJob(engine, keep_days=20, clock=lambda: november + 24 * 86400)
    assert job.run_once() == october
    assert _events(engine, t.events.c.ts < november) == 0
    assert _events(engine) > 0  # November stays
    assert (_history(engine, "P1", *span, 600), _dwell(engine, "P1", *span)) == before
    with engine.begin() as conn, pytest.raises(Invalid):
        rollups.rebuild(conn, start=START)
    assert drop_raw_events(engine, november) == 0  # never twice, never back
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            held = partitions.months(conn)
        assert (2026, 10) not in held and (2026, 11) in held


def test_rebuild_equals_what_the_ingest_kept(engine: Engine, site: Site) -> None:
    """The repair recomputes from events what the ingest filed, late events included."""
    end = START + DAYS * 86400
    write_generated_history(engine, site, _changes(site), until=end, source="test", since=START)
    _live(site, IngestWriter(engine=engine, site=SiteIndex.of(site), shared=False))
    kept = _rollups(engine)
    with engine.begin() as conn:
        rollups.rebuild(conn, start=START + 3 * 86400 + 1234, end=end)
    assert _rollups(engine) == kept
    with engine.begin() as conn:
        for table in (t.lot_minutes, t.lot_hours, t.bay_stays):
            conn.execute(delete(table))
        rollups.rebuild(conn)
    assert _rollups(engine) == kept


def _rollups(engine: Engine) -> dict[str, set[tuple[Any, ...]]]:
    out = {}
    with engine.connect() as conn:
        for table in (t.lot_minutes, t.lot_hours, t.bay_stays, t.bay_tips):
            rows = conn.execute(select(table)).all()
            # A zero row (changes that cancelled out) says nothing.
            out[table.name] = {
                tuple(r) for r in rows
                if not (table.name.startswith("lot_") and not any(r[2:]))
            }  # fmt: skip
    return out


def test_every_lots_sparkline_in_one_pass_equals_each_lots_history(
    engine: Engine, site: Site
) -> None:
    """The county overview's query (``read.lots_at``) gives every lot's counts at each
    quarter hour, the same as each lot's history."""
    end = START + DAYS * 86400
    write_generated_history(engine, site, _changes(site), until=end, source="test", since=START)
    _live(site, IngestWriter(engine=engine, site=SiteIndex.of(site), shared=False))
    day = int(START + (DAYS - 1) * 86400)
    with engine.connect() as conn:
        every = read.lots_at(conn, day, 900, 97)
    assert set(every) == {"P1", "P2"}
    for lot in ("P1", "P2"):
        one = _history(engine, lot, day, day + 96 * 900, 900)
        assert [tuple(c) for c in every[lot]] == [p[1:] for p in one]


def test_generated_history_written_before_the_site_is_loaded_counts(
    db_url: str, site: Site
) -> None:
    """The demo and the drivers' page test write generated history into a migrated store
    before the site file is loaded: its lots' bays count all the same (they were all
    ``unknown`` when the rollups went by the store's empty ``bays``)."""
    engine = make_engine(db_url)
    try:
        upgrade(engine)
        end = START + DAYS * 86400
        write_generated_history(engine, site, _changes(site), until=end, source="t", since=START)
        sync_site(engine, site)
        a = START + 86400
        _same(
            _history(engine, "P1", a, a + 86400, 900), ref.history(engine, "P1", a, a + 86400, 900)
        )
        assert any(p[2] for p in _history(engine, "P1", a, a + 86400, 900))
    finally:
        engine.dispose()


def test_a_late_change_reads_its_bays_chain_by_the_bay_index(
    pg_schema_url: str, site: Site
) -> None:
    """Found by the county bench: a replay split over two processes files many changes
    behind their bays' tips, and each re-walk asks for the bay's last non-occupied change
    before it (``anchor_query``) and the chain after that (``chain_query``). A month's
    partition grows faster than PostgreSQL re-analyses it (every new ``ts`` lies past its
    statistics), and with the bay index on (bay_id, ts) and the order by (ts, seq) the
    planner read ``ix_events_kind_ts`` and filtered every bay change of the month: 40 ms a
    bay, and the 200,000-event replay drained at a third of its speed. The plan must read
    the bay's own index whatever the statistics say."""
    engine = make_engine(pg_schema_url)
    upgrade(engine)
    sync_site(engine, site)
    rng = random.Random(3)
    bays = [b for lot in ("P1", "P2") for b in site.lots[lot].bay_ids(lot)]
    end = START + DAYS * 86400
    with engine.begin() as conn:
        for name in partitions.months(conn).values():  # no ANALYZE behind the test's back
            conn.exec_driver_sql(f"ALTER TABLE {name} SET (autovacuum_enabled = false)")
    # Statistics taken on a day of 200 changes, then the month grows to 60,000 of them.
    few = [GeneratedChange(START + 60 * n, rng.choice(bays), n % 2 == 0) for n in range(200)]
    write_generated_history(engine, site, few, until=START + 86400, source="test", since=START)
    with engine.begin() as conn:
        conn.exec_driver_sql("ANALYZE events")
        conn.execute(delete(t.events))
    many = [
        GeneratedChange(START + 60 + n * 2.5, rng.choice(bays), n % 3 != 0) for n in range(60_000)
    ]
    write_generated_history(engine, site, many, until=end, source="test", since=START)
    bay, at = bays[0], START + 86400 + 50_000 * 2.5
    with engine.connect() as conn:
        for query in (rollups.anchor_query(bay, at, 1), rollups.chain_query(bay, (at, 1))):
            compiled = query.compile(dialect=conn.dialect)
            plan = "\n".join(
                conn.exec_driver_sql("EXPLAIN " + str(compiled), compiled.params).scalars()
            )
            assert "kind_ts" not in plan, plan
            assert "bay_id_ts_seq_idx" in plan, plan
    engine.dispose()
