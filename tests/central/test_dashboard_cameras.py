"""The Cameras page in a real browser: held captures confirmed by a person, unmapped values.

One central (uvicorn on a free port, SQLite, no MQTT); a Hikvision camera pushes its
multipart ANPR alerts over HTTP: one dated 2034 (a wrong clock), one with a vehicle type no
table knows, and a day-old backlog of two. The operator sees each held capture with both
times and the skew, says which time is right (the receipt time for the 2034 one: the
truck-ban violation it carries lands in the ledger then), confirms the backlog in one
click, and sees the unknown value counted.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from central.auth.models import Role
from central.auth.service import add_user, issue_token
from tests.central.helpers import central_app, serving
from tests.central.test_dashboard import PASSWORD, _live, _login, _shot, browser
from tests.central.test_dashboard_ledger import SITE_TOML, Ledgered
from tests.firmware_protocols.camera_corpus import hik_pid_multipart, sample
from tests.firmware_protocols.test_cameras import MP_TYPE, anpr_xml, hik_multipart

__all__ = ["browser"]  # a fixture, used by name

CST = dt.timezone(dt.timedelta(hours=8))


def _ago(minutes: float) -> str:
    return (dt.datetime.now(CST) - dt.timedelta(minutes=minutes)).isoformat(timespec="seconds")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ledgered]:
    work = tmp_path_factory.mktemp("central-cameras")
    app = central_app(
        work, SITE_TOML, site_name="xigang.toml", ingest=False, instance="central-cameras-test"
    )
    with serving(app) as (url, srv):
        running = Ledgered(url=url, app=app, server=srv)
        engine = running.central.engine
        for name, role in (("duty", Role.OPERATOR), ("boss", Role.OPERATOR)):
            add_user(engine, username=name, password=PASSWORD, role=role, actor="test")
        running.cameras = {
            "CAM-DX-1": issue_token(
                engine, name="CAM-DX-1", role=Role.CAMERA, ttl_s=3600, actor="t"
            )[0]
        }
        yield running


def _push(server: Ledgered, body: bytes, content_type: str) -> dict:
    headers = {
        "Authorization": f"Bearer {server.cameras['CAM-DX-1']}",
        "Content-Type": content_type,
    }
    r = httpx.post(server.url + "/api/v1/cameras/hikvision", content=body, headers=headers)
    assert r.status_code == 201, r.text
    return dict(r.json())


def test_dashboard_cameras_held_captures_confirmed_and_unmapped_values_shown(
    browser: Browser, server: Ledgered, artifacts_dir: Path
) -> None:
    wrong_clock = _push(server, *hik_pid_multipart(sample("hikvision-anpr-cn-clock-2034.xml")))
    assert wrong_clock["held"] == "camera_clock"
    _push(server, hik_multipart(anpr_xml(uuid="odd", vehicle="excavator", when=_ago(1))), MP_TYPE)
    page: Page = _login(browser, server, "duty")
    page.goto(f"{server.url}/dashboard/cameras")
    _live(page)
    rows = page.locator("#held tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("浙A12345")
    expect(rows.first.locator(".skew")).to_contain_text("快")  # the camera is years ahead
    expect(rows.first.locator(".camera-time")).to_contain_text("2034")
    unmapped = page.locator("#unmapped tbody tr")
    expect(unmapped).to_have_count(1)
    expect(unmapped.first).to_contain_text("excavator")
    _shot(page, artifacts_dir, "cameras")

    rows.first.locator('button[data-use="received"]').click()
    expect(rows).to_have_count(0)
    ledger = server.api("GET", "/api/v1/ledger").json()
    assert [e["rule_id"] for e in ledger] == ["truck_ban"] and ledger[0]["plate"] == "浙A12345"

    # A backlog after an outage: two day-old captures, confirmed with one click, live.
    for n in range(2):
        _push(server, hik_multipart(anpr_xml(uuid=f"late-{n}", when=_ago(1440 + n))), MP_TYPE)
    expect(rows).to_have_count(2)
    page.locator('#held-cameras button[data-camera="CAM-DX-1"]').click()
    expect(rows).to_have_count(0)
    assert server.api("GET", "/api/v1/captures/held").json() == []
    page.context.close()
