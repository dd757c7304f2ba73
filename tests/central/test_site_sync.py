"""Loading the site file at start-up writes only what differs from the store.

Found by the county bench (kill -9 of one central process, started again while the other
ingested at 1x): the restarted process's ``sync_site`` upserted all 34,900 bays, locking
every row, while the running process's ingest updated bays in its batches; PostgreSQL
found a deadlock, the start-up failed and the process exited. A sync of an unchanged site
now writes no row (and so takes no row lock); a changed thing is written alone.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, event, select, update

from central.db import schema as t
from central.db.engine import make_engine
from central.db.migrate import upgrade
from central.sites.service import sync_site
from site_model.site import Site

WRITES = ("INSERT", "UPDATE", "DELETE")


def _writes(engine: Engine) -> list[str]:
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().upper().startswith(WRITES):
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    return seen


def test_a_second_sync_of_an_unchanged_site_writes_nothing(engine: Engine, site: Site) -> None:
    writes = _writes(engine)
    counts = sync_site(engine, site)  # the fixture synced it once already
    assert writes == []
    assert counts["bays"] == len(list(site.lot_bays())) + len(list(site.zone_bays()))


def test_a_sync_writes_what_changed_and_keeps_the_live_state(engine: Engine, site: Site) -> None:
    lot_id = next(iter(site.lots))
    bay_id = next(bay for lot, bay in site.lot_bays() if lot == lot_id)
    with engine.begin() as conn:  # a box reported the bay
        conn.execute(update(t.bays).where(t.bays.c.bay_id == bay_id).values(state="occupied"))
    renamed = site.model_copy(
        update={"lots": {**site.lots, lot_id: site.lots[lot_id].model_copy(update={"name": "New"})}}
    )
    writes = _writes(engine)
    sync_site(engine, renamed)
    assert len(writes) == 1 and "lots" in writes[0], writes  # the one lot, nothing else
    with engine.connect() as conn:
        name = conn.execute(select(t.lots.c.name).where(t.lots.c.lot_id == lot_id)).scalar()
        state = conn.execute(select(t.bays.c.state).where(t.bays.c.bay_id == bay_id)).scalar()
    assert (name, state) == ("New", "occupied")


def test_a_process_starting_while_another_ingests_does_not_wait_for_its_rows(
    pg_schema_url: str, site: Site
) -> None:
    """Another process's ingest holds a bay's row in its open transaction: a process
    starting now syncs the unchanged site without waiting for it (it waited, and with the
    ingest waiting in turn for a row the sync held, PostgreSQL broke the deadlock by failing
    the start-up)."""
    running = make_engine(pg_schema_url)
    upgrade(running)
    sync_site(running, site)
    starting = make_engine(pg_schema_url)

    @event.listens_for(starting, "connect")
    def no_waiting(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.autocommit = True
        dbapi_conn.execute("SET lock_timeout = '2s'")  # waiting at all fails the test
        dbapi_conn.autocommit = False

    bay_id = next(bay for _, bay in site.lot_bays())
    try:
        with running.begin() as ingest:  # an ingest batch, mid-transaction
            ingest.execute(update(t.bays).where(t.bays.c.bay_id == bay_id).values(state="free"))
            counts = sync_site(starting, site)
        assert counts["bays"] > 0
    finally:
        starting.dispose()
        running.dispose()


def test_a_sync_that_loses_a_deadlock_is_tried_again(
    engine: Engine, site: Site, monkeypatch: Any
) -> None:
    """A file that changes bays the running ingest is writing can still meet it in a
    deadlock (PostgreSQL fails one side, 40P01): the start-up tries the sync again rather
    than exiting; any other error is raised at once."""
    import psycopg
    import pytest
    from sqlalchemy.exc import OperationalError

    from central.sites import service

    real, calls = service._sync_table, []

    def once_deadlocked(*args: Any) -> None:
        calls.append(args[2].name)
        if len(calls) == 1:
            raise OperationalError("INSERT INTO bays", {}, psycopg.errors.DeadlockDetected())
        real(*args)

    monkeypatch.setattr(service, "_sync_table", once_deadlocked)
    assert sync_site(engine, site)["bays"] > 0
    assert calls[:2] == ["boxes", "boxes"]  # the whole transaction again, from the start

    def broken(*args: Any) -> None:
        raise OperationalError("INSERT INTO bays", {}, psycopg.errors.DiskFull())

    monkeypatch.setattr(service, "_sync_table", broken)
    with pytest.raises(OperationalError):
        sync_site(engine, site)
