"""The rollups equal a recomputation from the events, whatever the order (issue 17,
finding 6): random bay changes (every state, a bay the site file does not have, repeats)
go through real ``IngestWriter`` batches in random order, by one writer or two sharing the
ingest, into SQLite; then the rollups the ingest kept equal ``rollups.rebuild`` from the
stored events, and the history at whole minutes and the dwell times equal the replay of
the events (``history_reference``).
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, delete

from central.db import schema as t
from central.db.engine import make_engine
from central.db.migrate import upgrade
from central.history import rollups
from central.ingest.service import IngestWriter
from central.sites.service import sync_site
from site_model.site import Site, SiteIndex, load_site
from tests.central import history_reference as ref
from tests.central.helpers import SITE_FILE, T0, bay_event, event_msg
from tests.central.test_history_rollups import _dwell, _dwell_same, _history, _rollups, _same

BAYS = ["P1-001", "P1-002", "P1-003", "P1-999"]  # the last one is not in the site file
STATES = ["free", "occupied", "unknown", "closed"]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Engine, Site]]:
    site = load_site(SITE_FILE)
    engine = make_engine(f"sqlite:///{tmp_path_factory.mktemp('rollups') / 'central.db'}")
    upgrade(engine)
    sync_site(engine, site)
    yield engine, site
    engine.dispose()


change = st.tuples(
    st.sampled_from(BAYS), st.sampled_from(STATES), st.integers(0, 240).map(lambda n: n * 7.5)
)
plan = st.tuples(
    st.lists(change, min_size=1, max_size=30),
    st.randoms(use_true_random=False),
    st.integers(1, 2),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plan=plan)
def test_rollups_equal_a_recomputation_from_events(
    store: tuple[Engine, Site], plan: tuple[list[tuple[str, str, float]], random.Random, int]
) -> None:
    engine, site = store
    changes, rng, writers = plan
    with engine.begin() as conn:
        for table in (t.events, t.lot_minutes, t.lot_hours, t.bay_stays, t.bay_tips,
                      t.watermarks, t.site_problems):  # fmt: skip
            conn.execute(delete(table))
    t0 = T0.timestamp()
    messages = []
    for seq, (bay, state, offset) in enumerate(changes, start=1):
        when = dt.datetime.fromtimestamp(t0 + offset, dt.UTC)
        lot = "P1"
        messages.append(event_msg(bay_event("box-p1", seq, bay, state, lot_id=lot, when=when)))
    messages += rng.sample(messages, k=len(messages) // 4)  # repeats
    rng.shuffle(messages)
    index = SiteIndex.of(site)
    pool = [IngestWriter(engine=engine, site=index, shared=writers > 1) for _ in range(writers)]
    i = 0
    while i < len(messages):
        size = rng.randint(1, 6)
        pool[rng.randrange(writers)].store(messages[i : i + size])
        i += size
    kept = _rollups(engine)
    with engine.begin() as conn:
        for table in (t.lot_minutes, t.lot_hours, t.bay_stays, t.bay_tips):
            conn.execute(delete(table))
        rollups.rebuild(conn)
    assert _rollups(engine) == kept
    start, end = t0 - 60, t0 + 1860
    _same(_history(engine, "P1", start, end, 60), ref.history(engine, "P1", start, end, 60))
    _same(
        _history(engine, "P1", start + 3.75, end, 45),
        ref.history(engine, "P1", start + 3.75, end, 45),
    )
    _dwell_same(_dwell(engine, "P1", start, end), ref.dwell(engine, "P1", start, end))
