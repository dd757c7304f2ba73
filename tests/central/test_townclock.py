"""A simulated town's clock at central, and the demo's four weeks of generated history."""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from central.app import create_app
from central.db import schema as t
from central.db.engine import make_engine
from central.db.migrate import upgrade
from central.lots.generated import GENERATED
from central.settings import CentralSettings
from central.townclock import TownClock
from parkgrid.demo_history import write_demo_history
from simulators.town import TownClock as SimClock
from tests.central.test_public_page import SITE, SITE_FILE

SHANGHAI = dt.timezone(dt.timedelta(hours=8))


def test_town_clock_is_the_wall_until_the_file_holds_one(tmp_path: Path) -> None:
    path = tmp_path / "demo.json"
    clock = TownClock(path)
    assert abs(clock.now() - time.time()) < 5 and not clock.simulated
    path.write_text(json.dumps({"phase": "starting"}))
    assert abs(clock.now() - time.time()) < 5  # no clock in it yet
    sim_start = dt.datetime(2026, 12, 5, 4, 30, tzinfo=SHANGHAI).timestamp()
    wall_start = time.time()
    path.write_text(json.dumps({"sim_start": sim_start, "wall_start": wall_start, "speed": 60}))
    assert clock.simulated
    assert abs(clock.now() - sim_start) < 5 * 60  # a few wall seconds are minutes in town
    assert clock.speed == 60 and clock.wall(clock.town(wall_start + 10)) == wall_start + 10


def test_the_drivers_page_shows_the_towns_clock(tmp_path: Path) -> None:
    path = tmp_path / "demo.json"
    sim_start = dt.datetime(2026, 12, 5, 4, 30, tzinfo=SHANGHAI).timestamp()
    path.write_text(json.dumps({"sim_start": sim_start, "wall_start": time.time(), "speed": 1}))
    settings = CentralSettings(
        site_file=SITE_FILE,
        database_url=f"sqlite:///{tmp_path / 'c.db'}",
        ingest=False,
        forecast_every_s=0,
        town_clock_file=path,
    )
    with TestClient(create_app(settings)) as client:
        clock = client.get("/api/v1/public/board").json()["clock"]
        assert clock in ("04:30", "04:31")  # the town's, not this machine's
        assert "镇上时间" in client.get("/").text


def test_demo_history_is_four_town_weeks_before_the_start_on_centrals_axis(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'central.db'}"
    engine = make_engine(url)
    upgrade(engine)
    sim_start = dt.datetime(2026, 12, 5, 4, 30, tzinfo=SHANGHAI).timestamp()
    wall_start = time.time() + 25
    clock = SimClock(sim_start=sim_start, wall_start=wall_start, speed=60)
    said: list[str] = []
    rows = write_demo_history(SITE, url, clock, days=28, say=said.append)
    assert rows > 100_000, said
    with engine.connect() as conn:
        first, last, count = conn.execute(
            select(func.min(t.events.c.ts), func.max(t.events.c.ts), func.count()).where(
                t.events.c.box_id == GENERATED
            )
        ).one()
    assert count == rows
    assert last < wall_start  # all before the town starts
    town_first = clock.sim(first)
    assert town_first >= sim_start - 29 * 86400 and town_first < sim_start - 27 * 86400
    assert "28 days" in said[-1] and "generated" in said[-1]
    assert write_demo_history(SITE, url, clock, days=1, say=said.append) == 0  # never twice
    assert "kept" in said[-1]
    engine.dispose()
