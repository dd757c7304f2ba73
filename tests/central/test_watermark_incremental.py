"""The watermark moves with the insert (issue 17, finding 2): in O(new events), equal to the walk.

The walk (``central.ingest.walk``) reads a box's stored seqs from the store; the writer now
moves each box's mark from the seqs it has just committed and keeps the walk as the repair
after a restart. The property tests drive real ``IngestWriter`` batches into SQLite (random
orders, repeats, holes, dropped ranges, restarts, two writers sharing the ingest) and
compare every published mark with a walk from zero over what the store holds.
"""

from __future__ import annotations

import contextlib
import dataclasses
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, delete, event, select

from central.db import schema as t
from central.db.engine import make_engine
from central.db.migrate import upgrade
from central.ingest.service import IngestWriter
from central.ingest.walk import walk
from central.ingest.watermark import Frontier, advance
from central.sites.service import sync_site
from firmware_protocols.uplink import Event, EventsDropped
from site_model.site import Site, SiteIndex, load_site
from tests.central.helpers import BOOT, SITE_FILE, at, bay_event, event_msg, scratch_schema

BOX = "box-p1"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Engine, Site]]:
    """One store for the module on each engine; each example uses box ids of its own.
    PostgreSQL reads every box of a batch in one statement (``MarkBook._fill``, the
    held events, the state updates), SQLite one box at a time: both are held to the walk."""
    site = load_site(SITE_FILE)
    with contextlib.ExitStack() as stack:
        if request.param == "sqlite":
            url = f"sqlite:///{tmp_path_factory.mktemp('marks') / 'central.db'}"
        else:
            url = stack.enter_context(scratch_schema(request.getfixturevalue("pg_url")))
        engine = make_engine(url)
        stack.callback(engine.dispose)
        upgrade(engine)
        sync_site(engine, site)
        yield engine, site


def dropped(box_id: str, seq: int, first: int, last: int) -> Event:
    return Event(
        box_id=box_id,
        boot_id=BOOT,
        seq=seq,
        event_id=uuid.uuid5(uuid.NAMESPACE_OID, f"{box_id}/{seq}"),
        ts=at(seq),
        body=EventsDropped(first_seq=first, last_seq=last, count=last - first + 1, total=1),
    )


def walked_from_zero(engine: Engine, box_id: str) -> int:
    """What the walk makes of the store as it stands, from no watermark (rolled back)."""
    with engine.connect() as conn:
        tx = conn.begin()
        conn.execute(delete(t.watermarks).where(t.watermarks.c.box_id == box_id))
        mark = walk(conn, engine.dialect.name, box_id)
        tx.rollback()
    return mark


def forget(engine: Engine, box_id: str) -> None:
    with engine.begin() as conn:
        for table in (t.events, t.dropped_ranges, t.watermarks):
            conn.execute(delete(table).where(table.c.box_id == box_id))


# --- the pure rule ------------------------------------------------------------------------


@given(
    parts=st.lists(
        st.tuples(
            st.lists(st.integers(1, 80), max_size=8),
            st.lists(
                st.tuples(st.integers(1, 80), st.integers(0, 6)).map(lambda p: (p[0], p[0] + p[1])),
                max_size=2,
            ),
        ),
        max_size=12,
    )
)
def test_frontier_equals_advance_over_everything_seen(
    parts: list[tuple[list[int], list[tuple[int, int]]]],
) -> None:
    """Fed piece by piece in any order, the frontier is where ``advance`` puts it at once."""
    frontier = Frontier()
    seen: set[int] = set()
    ranges: list[tuple[int, int]] = []
    for seqs, more in parts:
        frontier.add(seqs, more)
        seen.update(seqs)
        ranges.extend(more)
        assert frontier.acked == advance(0, sorted(seen), ranges)


# --- through the writer, against the walk -------------------------------------------------

# One step: ("batch", writer index, [(seq, range or None)]), or ("restart", writer index).
Step = tuple[str, int, list[tuple[int, tuple[int, int] | None]]]
seq_item = st.tuples(
    st.integers(1, 16),
    st.one_of(st.none(), st.tuples(st.integers(1, 15), st.integers(0, 4))),
)
steps = st.lists(
    st.one_of(
        st.tuples(st.just("batch"), st.integers(0, 1), st.lists(seq_item, min_size=1, max_size=4)),
        st.tuples(st.just("restart"), st.integers(0, 1), st.just([])),
    ),
    min_size=1,
    max_size=14,
)


def _message(box_id: str, seq: int, drop: tuple[int, int] | None) -> tuple[str, bytes, float]:
    if drop is not None:
        first = min(drop[0], seq - 1)
        last = min(first + drop[1], seq - 1)
        if first >= 1:
            return event_msg(dropped(box_id, seq, first, last))
    return event_msg(bay_event(box_id, seq, "P1-001"))


def _run(engine: Engine, site: Site, plan: list[Step], writers: int) -> None:
    box = f"box-{uuid.uuid4().hex[:10]}"
    index = SiteIndex.of(site)
    index = dataclasses.replace(index, boxes=index.boxes | {box})  # a box of its own
    shared = writers > 1

    def new_writer() -> IngestWriter:
        return IngestWriter(engine=engine, site=index, shared=shared)

    pool = [new_writer() for _ in range(writers)]
    published = [0]
    try:
        for kind, who, items in plan:
            who %= writers
            if kind == "restart":
                pool[who] = new_writer()
                continue
            result = pool[who].store([_message(box, seq, drop) for seq, drop in items])
            published.extend(result.marks.values())
            # One at a time, every mark published is the walk's, whoever stored the rest.
            assert result.marks == {box: walked_from_zero(engine, box)}
        if shared:
            # Each commits after the other may have looked: a sweep settles both. The
            # highest mark published, and the stored one, are then the walk's.
            for w in pool:
                published.extend(w.sweep_marks().values())
            expected = walked_from_zero(engine, box)
            assert max(published) == expected
            with engine.connect() as conn:
                stored = conn.execute(
                    select(t.watermarks.c.acked_seq).where(t.watermarks.c.box_id == box)
                ).scalar()
            assert (stored or 0) == expected
    finally:
        forget(engine, box)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plan=steps)
def test_one_writer_marks_equal_the_walk(store: tuple[Engine, Site], plan: list[Step]) -> None:
    """Random orders, repeats, holes, dropped ranges and restarts: every mark is the walk's."""
    _run(*store, plan, writers=1)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plan=steps)
@example(plan=[("batch", 1, [(1, None)]), ("batch", 0, [(3, None)]), ("batch", 1, [(2, None)])])
def test_two_writers_marks_settle_at_the_walk(store: tuple[Engine, Site], plan: list[Step]) -> None:
    """Two writers sharing one box's events, one batch at a time: each batch's mark is the
    walk's (the later writer finds what the other stored), and so is the stored one."""
    _run(*store, plan, writers=2)


# --- the cost -----------------------------------------------------------------------------


def test_in_order_batches_read_events_once_and_sweep_reads_nothing(
    tmp_path: Path, site: Site
) -> None:
    """A batch of in-order events costs one read of ``events`` (the repeat check), whatever
    is stored already; a sweep of one writer's boxes reads nothing (at main each batch
    walked: the box's top seq and a page of its seqs, and the sweep walked again)."""
    engine = make_engine(f"sqlite:///{tmp_path / 'central.db'}")
    upgrade(engine)
    sync_site(engine, site)
    writer = IngestWriter(engine=engine, site=SiteIndex.of(site), shared=False)
    statements: list[str] = []

    def record(_conn, _cursor, sql: str, *_args: object) -> None:  # type: ignore[no-untyped-def]
        statements.append(sql)

    writer.store([event_msg(bay_event(BOX, seq, "P1-001")) for seq in range(1, 101)])
    event.listen(engine, "before_cursor_execute", record)
    try:
        for start in range(101, 501, 100):
            statements.clear()
            result = writer.store(
                [event_msg(bay_event(BOX, seq, "P1-001")) for seq in range(start, start + 100)]
            )
            assert result.marks == {BOX: start + 99}
            reads = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
            assert sum("FROM events" in s for s in reads) == 1, reads
        statements.clear()
        assert writer.sweep_marks() == {}
        assert statements == []
    finally:
        event.remove(engine, "before_cursor_execute", record)
        engine.dispose()
