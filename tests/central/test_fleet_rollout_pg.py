"""The rollout engine runs in one ``central serve`` among several (PostgreSQL's advisory
lease ``fleet``), and a survivor goes on with a rollout when its holder is killed -9."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from central.db import schema as t
from central.db.engine import make_engine
from central.fleet import rollout_store
from central.fleet.rollout_models import RolloutIn
from simulators.broker import MosquittoBroker
from site_model.site import load_site
from tests.central.helpers import SITE_FILE, wait_for
from tests.central.rollout_support import StandInBox, store_releases
from tests.central.test_processes_pg import Serve, _started, holder

pytestmark = pytest.mark.timeout(300)
BOXES = ("box-p1", "box-p2", "box-s1")


@pytest.fixture
def two(pg_schema_url: str, mosquitto: MosquittoBroker, tmp_path: Path) -> Iterator[list[Serve]]:
    store_releases(tmp_path / "releases", tmp_path, {"1.1.0": False})
    env = {"PARKGRID_RELEASES_DIR": str(tmp_path / "releases"), "PARKGRID_ROLLOUT_STEP_S": "0.2"}
    with _started([Serve(n, pg_schema_url, mosquitto, tmp_path, env) for n in ("a", "b")]) as pair:
        yield pair


def test_a_rollout_goes_on_in_the_survivor_after_its_engine_is_killed(
    two: list[Serve], pg_schema_url: str, mosquitto: MosquittoBroker, tmp_path: Path
) -> None:
    for serve in two:
        wait_for(serve.healthy, timeout=90, what=f"central {serve.name} to be healthy")
    first = wait_for(lambda: holder(pg_schema_url, "fleet"), what="a holder of the fleet lease")
    victim = next(s for s in two if s.name == first)
    survivor = next(s for s in two if s.name != first)
    engine = make_engine(pg_schema_url)
    boxes = {box: StandInBox(mosquitto, box, "1.0.0") for box in BOXES}
    boxes["box-p1"].gate_s = 3.0  # the canary confirms after the engine's holder is dead
    try:
        for box in boxes.values():
            box.online()
        online = select(t.boxes.c.box_id).where(t.boxes.c.online.is_(True))
        wait_for(lambda: len(_rows(engine, online)) == 3, timeout=20, what="the births stored")
        started = rollout_store.start(
            engine,
            load_site(SITE_FILE),
            releases_dir=tmp_path / "releases",
            request=RolloutIn(version="1.1.0", town="testtown"),
            actor="test",
        )
        wait_for(lambda: boxes["box-p1"].installs, timeout=20, what="the canary's install")
        victim.proc.kill()
        after = wait_for(lambda: holder(pg_schema_url, "fleet"), timeout=10,
                         what="the survivor to take the lease")  # fmt: skip
        assert after == survivor.name
        done = wait_for(
            lambda: (r := rollout_store.get(engine, started.id)).state == "done" and r,
            timeout=40,
            what="the survivor to finish the rollout",
        )
        assert {b.box_id: b.state for b in done.boxes} == dict.fromkeys(BOXES, "confirmed")
        assert [len(b.installs) for b in boxes.values()] == [1, 1, 1]  # none sent twice
        assert survivor.healthy()
    finally:
        for box in boxes.values():
            box.close()
        engine.dispose()


def _rows(engine, query) -> list[object]:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return list(conn.execute(query).all())
