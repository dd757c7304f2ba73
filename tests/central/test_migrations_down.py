"""Every schema migration goes back as well as forward, on SQLite and PostgreSQL, with the
rows it can keep kept: a central release rolled back to an older one must open its store."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, insert, select, text
from sqlalchemy.exc import IntegrityError

from central.db import schema as t
from central.db.engine import make_engine
from central.db.migrate import current, differences, downgrade, upgrade
from central.history import partitions
from central.sites.service import sync_site
from site_model.site import Site
from tests.central.test_history_store import _old_rows


def _event(seq: int, ts: float) -> dict[str, object]:
    row = _old_rows(1)[0]
    return {**row, "seq": seq, "ts": ts, "received_at": ts, "event_id": f"e-{seq}-{ts}"}


def test_the_store_goes_down_to_the_first_revision_and_up_again(db_url: str, site: Site) -> None:
    engine = make_engine(db_url)
    try:
        upgrade(engine)
        head = current(engine)
        downgrade(engine, "base")
        assert current(engine) is None
        upgrade(engine)
        assert current(engine) == head and differences(engine) == []
    finally:
        engine.dispose()


def test_events_leave_their_month_partitions_with_their_rows(db_url: str, site: Site) -> None:
    """Migration 0006 backwards: the events kept, one plain table again, and a repeat is the
    same (box_id, seq) as before 0006."""
    engine = make_engine(db_url)
    try:
        upgrade(engine)
        sync_site(engine, site)
        rows = _old_rows(300)  # over two months
        with engine.begin() as conn:
            conn.execute(insert(t.events), [{**r, "prev_state": None} for r in rows])
        downgrade(engine, "0005")
        assert current(engine) == "0005"
        with engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(t.events)).scalar() == 300
            assert not partitions.partitioned(conn)
        first = rows[0]
        with pytest.raises(IntegrityError), engine.begin() as conn:  # same box and seq
            conn.execute(
                insert(t.events), [{**_event(1, float(first["ts"]) + 5), "prev_state": None}]
            )
        upgrade(engine)
        assert differences(engine) == []
        with engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(t.events)).scalar() == 300
    finally:
        engine.dispose()


def test_going_back_is_refused_when_one_seq_holds_two_events(db_url: str, site: Site) -> None:
    """After 0006 a (box, seq) may repeat at another time only if something bypassed the
    ingest; going back cannot keep both, so it is refused, naming them, and nothing changes."""
    engine = make_engine(db_url)
    try:
        upgrade(engine)
        head = current(engine)
        sync_site(engine, site)
        ts = dt.datetime(2026, 11, 3, tzinfo=dt.UTC).timestamp()
        with engine.begin() as conn:
            conn.execute(
                insert(t.events),
                [{**_event(7, ts), "prev_state": None}, {**_event(7, ts + 60), "prev_state": None}],
            )
        with pytest.raises(RuntimeError, match=r"box-p1 seq 7"):
            downgrade(engine, "0005")
        assert current(engine) == head
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM events")).scalar() == 2
    finally:
        engine.dispose()
