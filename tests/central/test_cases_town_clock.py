"""Issue 18: a case's limits and the tow order from a bay's dwell are town time.

Central serving a town that runs 60 times faster than the wall (the demo's clock file) opens
a case whose 30 town minutes to acknowledge are 30 wall seconds, escalates it once they
pass, and orders a tow for a bay occupied 48 town hours (48 wall minutes).
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from central.app import create_app
from central.auth.models import Role
from central.auth.service import add_user
from central.captures.service import intake
from central.cases import service
from central.db import schema as t
from central.db.engine import make_engine
from central.evidence.store import DiskPictureStore
from central.ingest.service import IngestWriter
from central.settings import CentralSettings
from firmware_protocols.uplink.models import AlertType
from site_model.site import SiteIndex, load_site
from tests.central.helpers import SITE_FILE, event_msg
from tests.central.ledger_helpers import capture
from tests.central.test_cases import _alert

SPEED = 60.0


@pytest.fixture
def fast_town(tmp_path: Path) -> Iterator[TestClient]:
    yield from _central(tmp_path, sim_start=time.time())


# A town day in July 2031 (site time): never the wall's month when the test runs.
TOWN_JULY = dt.datetime(2031, 7, 15, 12, tzinfo=ZoneInfo("Asia/Shanghai")).timestamp()


@pytest.fixture
def fast_town_in_july(tmp_path: Path) -> Iterator[TestClient]:
    yield from _central(tmp_path, sim_start=TOWN_JULY)


def _central(tmp_path: Path, *, sim_start: float) -> Iterator[TestClient]:
    clock = tmp_path / "demo.json"
    now = time.time()
    clock.write_text(json.dumps({"sim_start": sim_start, "wall_start": now, "speed": SPEED}))
    db_url = f"sqlite:///{tmp_path / 'central.db'}"
    settings = CentralSettings(
        site_file=SITE_FILE, database_url=db_url, ingest=False, town_clock_file=clock
    )
    with TestClient(create_app(settings)) as client:
        engine = make_engine(db_url)
        add_user(engine, username="ada", password="ada-password", role=Role.ADMIN, actor="t")
        client.engine = engine  # type: ignore[attr-defined]
        yield client
        engine.dispose()


def _ada(client: TestClient) -> dict[str, str]:
    token = client.post(
        "/api/v1/auth/login", data={"username": "ada", "password": "ada-password"}
    ).json()["access_token"]
    return {"Authorization": f"Bearer {token}"}


def _sweep(client: TestClient) -> dict:
    response = client.post("/api/v1/cases/sweep", headers=_ada(client))
    assert response.status_code == 200
    return response.json()


def test_case_limits_are_town_time(fast_town: TestClient) -> None:
    """30 town minutes to acknowledge, 72 town hours to close: 30 s and 72 min at 60x."""
    site = load_site(SITE_FILE)
    engine = fast_town.engine  # type: ignore[attr-defined]
    writer = IngestWriter(engine=engine, site=SiteIndex.of(site))
    alert = _alert("box-p1", 1, AlertType.BAY_OCCUPIED_WHILE_CLOSED, bay_id="P1-002", lot_id="P1")
    writer.process([event_msg(alert)])
    _sweep(fast_town)  # opens the case on central's clock
    with engine.connect() as conn:
        case = conn.execute(select(t.cases)).one()
    assert case.ack_due_at - case.registered_at == pytest.approx(30 * 60 / SPEED)
    assert case.close_due_at - case.registered_at == pytest.approx(72 * 3600 / SPEED)
    opened = case.registered_at
    assert service.sweep(engine, site, now=opened + 29)["escalated_ack"] == 0
    assert service.sweep(engine, site, now=opened + 31)["escalated_ack"] == 1
    assert service.sweep(engine, site, now=opened + 72 * 60 + 1)["escalated_close"] == 1


def test_tow_order_from_bay_dwell_is_town_time(fast_town: TestClient) -> None:
    """A bay occupied 49 town hours (49 wall minutes at 60x) gets a tow order, and its case
    the town's limits."""
    engine = fast_town.engine  # type: ignore[attr-defined]
    with engine.begin() as conn:
        conn.execute(
            t.bays.update()
            .where(t.bays.c.bay_id == "P2-A")
            .values(state="occupied", since=time.time() - 49 * 3600 / SPEED)
        )
    assert len(_sweep(fast_town)["tow_orders"]) == 1
    with engine.connect() as conn:
        case = conn.execute(select(t.cases)).one()
    assert case.kind == "tow"
    assert case.ack_due_at - case.registered_at == pytest.approx(30 * 60 / SPEED)


def test_tow_order_from_captures_gets_town_limits(engine: Engine, tmp_path: Path) -> None:
    """A plate left in a lot over two local days (camera times: town time already) gives a
    tow order whose case has the town's limits when central's town runs at 60x."""
    site = load_site(SITE_FILE)
    store = DiskPictureStore(tmp_path / "pictures")
    for c in (
        capture(0, plate="苏B11111", lot_id="P1"),
        capture(23 * 3600, plate="苏B11111", lot_id="P1"),
    ):
        intake(
            engine,
            store,
            site,
            camera_id="C3",
            capture=c,
            now=c.captured_at.timestamp() + 60,
            town_speed=SPEED,
        )
    with engine.connect() as conn:
        case = conn.execute(select(t.cases)).one()
    assert case.kind == "tow"
    assert case.ack_due_at - case.registered_at == pytest.approx(30 * 60 / SPEED)


def test_grid_report_is_town_time(fast_town_in_july: TestClient) -> None:
    """At 60x a case acknowledged 30 wall seconds after it opened reports a median of 30
    town minutes, in the town's month (the report's default), not the wall's."""
    client = fast_town_in_july
    site = load_site(SITE_FILE)
    assert site.site.timezone == "Asia/Shanghai"
    engine = client.engine  # type: ignore[attr-defined]
    writer = IngestWriter(engine=engine, site=SiteIndex.of(site))
    alert = _alert("box-p1", 1, AlertType.BAY_OCCUPIED_WHILE_CLOSED, bay_id="P1-002", lot_id="P1")
    writer.process([event_msg(alert)])
    _sweep(client)
    with engine.connect() as conn:
        case = conn.execute(select(t.cases)).one()
    service.act(
        engine, case_id=case.id, action="dispatch", actor="t", note=None, now=case.registered_at
    )
    service.act(
        engine,
        case_id=case.id,
        action="acknowledge",
        actor="t",
        note=None,
        now=case.registered_at + 30,
    )
    report = client.get("/api/v1/reports/grids", headers=_ada(client)).json()
    assert report["month"] == "2031-07"
    grid = next(g for g in report["grids"] if g["grid_id"] == case.grid_id)
    assert grid["cases"] == 1
    assert grid["median_ack_s"] == pytest.approx(30 * 60)
    wall_month = dt.datetime.now(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m")
    by_wall = client.get(
        "/api/v1/reports/grids", params={"month": wall_month}, headers=_ada(client)
    ).json()
    assert sum(g["cases"] for g in by_wall["grids"]) == 0
