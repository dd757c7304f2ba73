"""Cases: edge alerts that need a person become cases in their grid; the loop, time limits,
escalation, and the per-grid monthly figures."""

from __future__ import annotations

import datetime as dt
import io
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlalchemy import Engine, select

from central.app import create_app
from central.auth.models import Role
from central.auth.service import add_user
from central.cases import service
from central.cases.routing import grid_of
from central.db import schema as t
from central.db.engine import make_engine
from central.errors import Conflict
from central.ingest.service import IngestWriter
from central.settings import CentralSettings
from firmware_protocols.uplink import AlertRaised, AlertResolved, Event
from firmware_protocols.uplink.models import AlertType, Severity
from site_model.site import Site, SiteIndex, load_site
from tests.central.helpers import BOOT, SITE_FILE, at, event_msg

T0 = dt.datetime(2025, 3, 10, 2, 0, tzinfo=dt.UTC).timestamp()  # 10:00 local, March 2025


def _alert(
    box: str,
    seq: int,
    alert_type: AlertType,
    *,
    step: int = 0,
    severity: Severity = Severity.WARNING,
    resolved: bool = False,
    alert_id: str = "A1",
    **where: str,
) -> Event:
    if resolved:
        body: AlertRaised | AlertResolved = AlertResolved(
            alert_id=alert_id, alert_type=alert_type, since=at(0), message="cleared", **where
        )
    else:
        body = AlertRaised(
            alert_id=alert_id,
            alert_type=alert_type,
            severity=severity,
            step=step,
            since=at(0),
            message=f"{alert_type.value} step {step}",
            **where,
        )
    return Event(box_id=box, boot_id=BOOT, seq=seq, event_id=uuid.uuid4(), ts=at(seq), body=body)


def _ingest(engine: Engine, site: Site, *events: Event) -> None:
    writer = IngestWriter(engine=engine, site=SiteIndex.of(site))
    writer.process([event_msg(e) for e in events])
    keys = [(e.box_id, e.body.alert_id) for e in events]  # type: ignore[union-attr]
    service.sync_alert_cases(engine, site, keys=keys, now=T0)


def _cases(engine: Engine) -> list[dict]:
    return service.list_cases(engine)


def test_cases_routing_by_place(site: Site) -> None:
    """Segments, lots, zones and bays route to the grid that lists them."""
    assert grid_of(site, "segment:R1") == "G1" and grid_of(site, "lot:P1") == "G1"
    assert grid_of(site, "zone:S1") == "G2" and grid_of(site, "bay:P2-A") == "G2"
    assert grid_of(site, "bay:S1-001") == "G2" and grid_of(site, "lot:P9") is None


def test_cases_from_alerts_that_need_a_person(engine: Engine, site: Site) -> None:
    """A sign fault and an escalated stall zone become cases; a first zone warning and a low
    battery do not; a further step and the box's resolution are noted in the history."""
    _ingest(
        engine,
        site,
        _alert("box-s1", 1, AlertType.ZONE_OVERSTAY, zone_id="S1", alert_id="Z1"),
        _alert("box-p2", 1, AlertType.SIGN_DOWN, sign_id="sign-9", alert_id="S9"),
        _alert("box-p1", 1, AlertType.SENSOR_LOW_BATTERY, bay_id="P1-001", alert_id="B1"),
    )
    cases = _cases(engine)
    assert [(c["kind"], c["grid_id"]) for c in cases] == [("sign_down", "G2")]
    sign_case = cases[0]
    assert sign_case["state"] == "registered" and sign_case["place"] == "lot:P2"
    # sign_down has a 120-minute acknowledgement limit in the site file
    assert dt.datetime.fromisoformat(sign_case["ack_due_at"]).timestamp() == T0 + 7200
    _ingest(
        engine,
        site,
        _alert(
            "box-s1",
            2,
            AlertType.ZONE_OVERSTAY,
            zone_id="S1",
            alert_id="Z1",
            step=1,
            severity=Severity.ESCALATED,
        ),
    )
    zone = [c for c in _cases(engine) if c["kind"] == "zone_overstay"]
    assert len(zone) == 1 and zone[0]["grid_id"] == "G2" and zone[0]["place"] == "zone:S1"
    _ingest(
        engine,
        site,
        _alert(
            "box-s1",
            3,
            AlertType.ZONE_OVERSTAY,
            zone_id="S1",
            alert_id="Z1",
            step=2,
            severity=Severity.CRITICAL,
        ),
        _alert("box-s1", 4, AlertType.ZONE_OVERSTAY, zone_id="S1", alert_id="Z1", resolved=True),
    )
    history = service.get_case(engine, zone[0]["id"])["history"]
    assert [h["action"] for h in history] == ["register", "alert_step", "alert_resolved"]
    assert len(_cases(engine)) == 2
    service.sync_alert_cases(engine, site, now=T0 + 5)  # the sweep's catch-up adds nothing
    assert len(_cases(engine)) == 2


def test_cases_closed_loop_with_reopen(engine: Engine, site: Site) -> None:
    """dispatch -> acknowledge -> handle -> verify -> close; reopen returns to dispatched."""
    _ingest(
        engine,
        site,
        _alert("box-p1", 1, AlertType.BAY_OCCUPIED_WHILE_CLOSED, bay_id="P1-002", lot_id="P1"),
    )
    case_id = _cases(engine)[0]["id"]
    with pytest.raises(Conflict):
        service.act(engine, case_id=case_id, action="close", actor="user:olga", note=None)
    for n, action in enumerate(("dispatch", "acknowledge", "handle", "verify", "close")):
        case = service.act(
            engine,
            case_id=case_id,
            action=action,
            actor="user:olga",
            note=f"step {n}",
            now=T0 + 60 * (n + 1),
        )
    assert case["state"] == "closed" and case["actions"] == ["reopen"]
    assert dt.datetime.fromisoformat(case["acknowledged_at"]).timestamp() == T0 + 120
    case = service.act(
        engine,
        case_id=case_id,
        action="reopen",
        actor="user:olga",
        note="car is back",
        now=T0 + 600,
    )
    assert case["state"] == "dispatched" and case["reopened"] == 1 and case["closed_at"] is None
    assert [h["to_state"] for h in case["history"]][-1] == "dispatched"


def test_cases_escalate_when_limits_pass(engine: Engine, site: Site) -> None:
    """Not acknowledged within 30 min: level 1 once; not closed within 72 h: level 2."""
    _ingest(
        engine,
        site,
        _alert("box-p1", 1, AlertType.BAY_OCCUPIED_WHILE_CLOSED, bay_id="P1-002", lot_id="P1"),
    )
    assert service.sweep(engine, site, now=T0 + 30 * 60 - 1) == {
        "escalated_ack": 0,
        "escalated_close": 0,
    }
    assert service.sweep(engine, site, now=T0 + 30 * 60 + 1)["escalated_ack"] == 1
    assert service.sweep(engine, site, now=T0 + 40 * 60)["escalated_ack"] == 0
    assert service.sweep(engine, site, now=T0 + 72 * 3600 + 1)["escalated_close"] == 1
    case = service.get_case(engine, _cases(engine)[0]["id"], now=T0 + 72 * 3600 + 2)
    assert case["escalation"] == 2 and case["overdue"] is True
    assert [h["action"] for h in case["history"]].count("escalate") == 2


def test_cases_grid_report_figures(engine: Engine, site: Site) -> None:
    """Per grid and month: counts, median times, overdue, repeat places; XLSX has them."""
    for n in range(3):
        _ingest(
            engine,
            site,
            _alert(
                "box-p1",
                n + 1,
                AlertType.BAY_OCCUPIED_WHILE_CLOSED,
                bay_id="P1-002",
                lot_id="P1",
                alert_id=f"A{n}",
            ),
        )
    ids = [c["id"] for c in _cases(engine)]
    service.act(engine, case_id=ids[0], action="dispatch", actor="u", note=None, now=T0 + 60)
    service.act(engine, case_id=ids[0], action="acknowledge", actor="u", note=None, now=T0 + 120)
    service.act(engine, case_id=ids[1], action="dispatch", actor="u", note=None, now=T0 + 60)
    service.act(engine, case_id=ids[1], action="handle", actor="u", note=None, now=T0 + 2400)
    report = service.grid_report(engine, site, month="2025-03", now=T0 + 3600)
    g1 = next(g for g in report["grids"] if g["grid_id"] == "G1")
    g2 = next(g for g in report["grids"] if g["grid_id"] == "G2")
    assert g1["cases"] == 3 and g2["cases"] == 0 and g1["duty_role"] == "road chief"
    assert g1["median_ack_s"] == (120 + 2400) / 2 and g1["median_close_s"] is None
    assert g1["overdue"] == 2  # one acknowledged after 40 min, one not yet after 60 min
    assert g1["repeat_places"] == {"lot:P1": 3}
    assert service.grid_report(engine, site, month="2025-04")["grids"][0]["cases"] == 0
    sheet = load_workbook(io.BytesIO(service.grid_report_xlsx(report))).active
    assert sheet is not None and sheet.cell(1, 1).value == "grid"
    assert [sheet.cell(r, 1).value for r in (2, 3)] == ["G1", "G2"]


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    db_url = f"sqlite:///{tmp_path / 'central.db'}"
    settings = CentralSettings(site_file=SITE_FILE, database_url=db_url, ingest=False)
    with TestClient(create_app(settings)) as client:
        engine = make_engine(db_url)
        for name, role in (("olga", Role.OPERATOR), ("ada", Role.ADMIN)):
            add_user(engine, username=name, password=f"{name}-password", role=role, actor="t")
        client.engine = engine  # type: ignore[attr-defined]
        yield client
        engine.dispose()


def _login(client: TestClient, name: str) -> dict[str, str]:
    token = client.post(
        "/api/v1/auth/login", data={"username": name, "password": f"{name}-password"}
    ).json()
    return {"Authorization": f"Bearer {token['access_token']}"}


def test_cases_api(client: TestClient) -> None:
    """List, act, sweep, report and its XLSX over HTTP; bad input is a 4xx."""
    site = load_site(SITE_FILE)
    engine = client.engine  # type: ignore[attr-defined]
    writer = IngestWriter(engine=engine, site=SiteIndex.of(site))
    writer.process([event_msg(_alert("box-p2", 1, AlertType.SIGN_DOWN, lot_id="P2"))])
    olga, ada = _login(client, "olga"), _login(client, "ada")
    swept = client.post("/api/v1/cases/sweep", headers=ada)
    assert swept.status_code == 200
    cases = client.get("/api/v1/cases", params={"grid_id": "G2"}, headers=olga).json()
    assert len(cases) == 1 and cases[0]["actions"] == ["dispatch"]
    case_id = cases[0]["id"]
    moved = client.post(
        f"/api/v1/cases/{case_id}/actions", json={"action": "dispatch"}, headers=olga
    )
    assert moved.status_code == 200 and moved.json()["state"] == "dispatched"
    assert (
        client.post(
            f"/api/v1/cases/{case_id}/actions", json={"action": "close"}, headers=olga
        ).status_code
        == 409
    )
    assert client.get("/api/v1/cases/999", headers=olga).status_code == 404
    assert client.post("/api/v1/cases/sweep", headers=olga).status_code == 403
    month = dt.datetime.now(dt.UTC).strftime("%Y-%m")
    report = client.get("/api/v1/reports/grids", params={"month": month}, headers=olga).json()
    assert next(g for g in report["grids"] if g["grid_id"] == "G2")["cases"] == 1
    xlsx = client.get("/api/v1/reports/grids.xlsx", params={"month": month}, headers=olga)
    assert xlsx.status_code == 200 and xlsx.content[:2] == b"PK"
    for bad in ("2025-13", "March", "2025-3"):
        response = client.get("/api/v1/reports/grids", params={"month": bad}, headers=olga)
        assert response.status_code == 422, bad
    with engine.connect() as conn:
        assert conn.execute(select(t.case_history.c.action)).scalars().all() == [
            "register",
            "dispatch",
        ]
