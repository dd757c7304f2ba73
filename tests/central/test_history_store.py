"""The history rollups in the store's life: an existing store migrated (its events kept,
on PostgreSQL moved into monthly partitions, its rollups built), and two writers filing
one lot's changes at the same moment on PostgreSQL (issue 17, finding 6)."""

from __future__ import annotations

import datetime as dt
import random
import threading
import uuid
from collections.abc import Callable

from sqlalchemy import Engine, func, insert, select, text

from central.db import schema as t
from central.db.engine import make_engine
from central.db.migrate import current, differences, head, upgrade
from central.history import partitions, rollups
from central.ingest.retries import store_with_retries
from central.ingest.service import IngestWriter
from central.sites.service import sync_site
from site_model.site import Site, SiteIndex
from tests.central import history_reference as ref
from tests.central.helpers import T0, bay_event, event_msg
from tests.central.test_history_rollups import _history, _rollups, _same

STATES = ["free", "occupied", "unknown", "closed"]


def _old_rows(n: int, seed: int = 3) -> list[dict[str, object]]:
    """``events`` rows as a store at revision 0004 held them (no ``prev_state``), over two
    months."""
    rng = random.Random(seed)
    rows = []
    for seq in range(1, n + 1):
        ts = T0.timestamp() + seq * 1800 + rng.random()
        bay = f"P1-00{rng.randint(1, 4)}"
        rows.append(
            {
                "box_id": "box-p1", "seq": seq, "boot_id": "b", "event_id": str(uuid.uuid4()),
                "kind": "bay_changed", "ts": ts, "received_at": ts, "historical": False,
                "lot_id": "P1", "zone_id": None, "bay_id": bay,
                "to_state": rng.choice(STATES), "payload": "{}",
            }
        )  # fmt: skip
    return rows


def _one_lots_batches(
    rng: random.Random, count: int, size: int, second_of: Callable[[int], int]
) -> list[list[tuple[str, bytes, float]]]:
    """``count`` bay changes of box-p1 (seq 1..count, bays P1-001..006, at T0 plus
    ``second_of(seq)``) as ingest batches of ``size``."""
    events = [
        bay_event(
            "box-p1", seq, f"P1-00{rng.randint(1, 6)}", rng.choice(STATES),
            when=T0 + dt.timedelta(seconds=second_of(seq)),
        )
        for seq in range(1, count + 1)
    ]  # fmt: skip
    return [[event_msg(e) for e in events[i : i + size]] for i in range(0, count, size)]


def _rebuild_rollups(engine: Engine) -> None:
    """Throw the rollups away and rebuild them from the stored events."""
    with engine.begin() as conn:
        for table in (t.lot_minutes, t.lot_hours, t.bay_stays, t.bay_tips):
            conn.execute(table.delete())
        rollups.rebuild(conn)


def test_an_existing_store_is_migrated_with_its_events(db_url: str, site: Site) -> None:
    engine = make_engine(db_url)
    try:
        upgrade(engine, "0004")
        sync_site(engine, site)
        rows = _old_rows(3000)  # 62 days
        with engine.begin() as conn:
            conn.execute(insert(t.events), rows)
        upgrade(engine)
        assert current(engine) == head() and differences(engine) == []
        with engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(t.events)).scalar() == 3000
            if engine.dialect.name == "postgresql":
                assert partitions.partitioned(conn)
                held = set(partitions.months(conn))
                assert {(2025, 3), (2025, 4)} <= held
                in_default = conn.execute(text("SELECT count(*) FROM events_default")).scalar()
                assert in_default == 0  # every row in its month
        a, b = T0.timestamp(), T0.timestamp() + 62 * 86400
        _same(_history(engine, "P1", a, b, 3600), ref.history(engine, "P1", a, b, 3600))
        # The ingest goes on over the migrated rows: a repeat is still a repeat.
        writer = IngestWriter(engine=engine, site=SiteIndex.of(site), shared=False)
        again = bay_event("box-p1", 3001, "P1-001", "occupied", when=T0 + dt.timedelta(days=63))
        writer.store([event_msg(again)])
        writer.store([event_msg(again)])
        assert writer.stats.events_stored == 1 and writer.stats.events_duplicate == 1
    finally:
        engine.dispose()


def test_two_writers_at_once_file_what_a_rebuild_finds(pg_schema_url: str, site: Site) -> None:
    """Two writers sharing the ingest store batches of one lot's bays at the same moment
    (PostgreSQL, real concurrency): the rollups equal a rebuild, no batch failed."""
    engine = make_engine(pg_schema_url)
    try:
        upgrade(engine)
        sync_site(engine, site)
        rng = random.Random(11)
        batches = _one_lots_batches(rng, 600, 15, lambda seq: rng.randint(0, 7200))
        index = SiteIndex.of(site)
        writers = [IngestWriter(engine=engine, site=index, shared=True) for _ in range(2)]
        start = threading.Barrier(2)

        def run(w: IngestWriter, mine: list[list[tuple[str, bytes, float]]]) -> None:
            start.wait()
            for batch in mine:
                store_with_retries(w, batch)

        threads = [threading.Thread(target=run, args=(writers[i], batches[i::2])) for i in range(2)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(120)
        assert sum(w.stats.events_stored for w in writers) == 600
        assert sum(w.stats.errors for w in writers) == 0
        kept = _rollups(engine)
        _rebuild_rollups(engine)
        assert _rollups(engine) == kept
        a, b = T0.timestamp() - 60, T0.timestamp() + 7260
        _same(_history(engine, "P1", a, b, 60), ref.history(engine, "P1", a, b, 60))
    finally:
        engine.dispose()


def test_rebuild_history_command_repairs_and_refuses_what_retention_dropped(
    sqlite_url: str, site: Site
) -> None:
    """`parkgrid central rebuild-history` puts back rollups that were lost (0), and refuses
    (2) a range whose raw events retention dropped."""
    from central.history.retention import drop_raw_events
    from parkgrid.cli import main

    engine = make_engine(sqlite_url)
    try:
        upgrade(engine)
        sync_site(engine, site)
        writer = IngestWriter(engine=engine, site=SiteIndex.of(site), shared=False)
        writer.store(
            [event_msg(bay_event("box-p1", n, "P1-001", STATES[n % 4])) for n in range(1, 9)]
        )
        kept = _rollups(engine)
        with engine.begin() as conn:
            conn.execute(t.lot_minutes.delete())
        argv = ["central", "rebuild-history", "--database-url", sqlite_url]
        assert main([*argv, "--lot", "P1"]) == 0
        assert _rollups(engine) == kept
        drop_raw_events(engine, T0.timestamp() + 3600)
        assert main([*argv, "--since", "2025-03-01T00:00:00"]) == 2
    finally:
        engine.dispose()


def test_one_event_stored_by_two_writers_at_once_counts_once(
    pg_schema_url: str, site: Site
) -> None:
    """A redelivered message can reach two processes' writers at the same moment (a shared
    subscription's session moving, a box resending): both read it as new, one insert wins.
    The loser must not have moved the rollups (PostgreSQL, real concurrency)."""
    engine = make_engine(pg_schema_url)
    try:
        upgrade(engine)
        sync_site(engine, site)
        batches = _one_lots_batches(random.Random(5), 240, 8, lambda seq: seq * 7)
        index = SiteIndex.of(site)
        writers = [IngestWriter(engine=engine, site=index, shared=True) for _ in range(2)]
        start = threading.Barrier(2)

        def run(w: IngestWriter) -> None:
            for batch in batches:  # the same batches, each at the same moment in both
                start.wait(30)
                store_with_retries(w, batch)

        threads = [threading.Thread(target=run, args=(w,)) for w in writers]
        for th in threads:
            th.start()
        for th in threads:
            th.join(120)
        assert sum(w.stats.errors for w in writers) == 0
        assert sum(w.stats.events_stored for w in writers) == 240  # each filed once
        with engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(t.events)).scalar() == 240
        kept = _rollups(engine)
        _rebuild_rollups(engine)
        assert _rollups(engine) == kept
    finally:
        engine.dispose()
