"""The ledger, cases and grid report pages in a real browser (Playwright + Debian's Chromium).

One central per module (uvicorn on a free port, SQLite, no MQTT: cameras push over HTTP).
Cameras post captures exactly as they would (Hikvision ISAPI multipart with its JPEGs,
parkgrid multipart), so a no-parking violation lands in the ledger with its pictures and a
car left for days makes a tow order and a case. The browser logs in as an operator, sees
the violation appear without a reload, opens its evidence, confirms it, dispatches the case,
and reads the month's grid report.
"""

from __future__ import annotations

import datetime as dt
import io
import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from openpyxl import load_workbook
from playwright.sync_api import Browser, Page, expect

from central.auth.models import Role
from central.auth.service import add_user, issue_token
from simulators.cameras import isapi_multipart, parkgrid_multipart
from simulators.town import CaptureSeen
from tests.central.helpers import central_app, serving, wait_for
from tests.central.test_dashboard import (  # the browser and login of the dashboard test
    PASSWORD,
    Server,
    _live,
    _login,
    _shot,
    browser,
)

__all__ = ["browser"]  # a fixture, used by name

TZ = dt.timezone(dt.timedelta(hours=8))
PARKED = "苏C8K2M1"  # stays on 笃西路 past the allowed stop: a no-parking violation
LEFT = "苏CL7Q05"  # left on 香舍里大街 for two days: a tow order and a case

SITE_TOML = """
[site]
id = "xigang"
name = "西岗镇"
timezone = "Asia/Shanghai"

[boxes.box-p1]
name = "新港路停车场设备"

[lots.P1]
name = "新港路停车场"
box_id = "box-p1"
bays = 10

[segments.DX-E-W]
name = "笃西路 东转盘至西转盘"
road = "笃西路"

[segments.XSL-ALL]
name = "香舍里大街全线"
road = "香舍里大街"

[cameras.CAM-DX-1]
kind = "hikvision"
segment = "DX-E-W"

[cameras.CAM-XSL-1]
kind = "parkgrid"
segment = "XSL-ALL"

[grids.G-ROAD-DX]
name = "笃西路网格"
kind = "road"
duty_role = "笃西路路长"
segments = ["DX-E-W"]

[grids.G-ROAD-XSL]
name = "香舍里大街网格"
kind = "road"
duty_role = "香舍里大街路长"
segments = ["XSL-ALL"]
lots = ["P1"]
"""


class Ledgered(Server):
    cameras: dict[str, str]

    def post(self, shot: CaptureSeen) -> dict[str, object]:
        """Push one capture as its camera does (own format, own token)."""
        if shot.camera_id == "CAM-DX-1":
            body, ctype = isapi_multipart(shot, camera_id=shot.camera_id, tz=TZ)
            path = "/api/v1/cameras/hikvision"
        else:
            body, ctype = parkgrid_multipart(shot, camera_id=shot.camera_id)
            path = "/api/v1/captures"
        headers = {"Authorization": f"Bearer {self.cameras[shot.camera_id]}", "Content-Type": ctype}
        r = httpx.post(self.url + path, content=body, headers=headers)
        assert r.status_code == 201, r.text
        return dict(r.json())

    def api(self, method: str, path: str, user: str = "boss", **kw: object) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token(user)}"}
        return httpx.request(method, self.url + path, headers=headers, **kw)  # type: ignore[arg-type]


def _shot_of(camera: str, plate: str, ago_s: float, n: int, colour: str = "blue") -> CaptureSeen:
    at = time.time() - ago_s
    return CaptureSeen(
        at=at,
        captured_at=at,
        camera_id=camera,
        plate=plate,
        plate_colour=colour,
        vehicle_class="car",
        event_id=f"{camera}-{plate}-{n}",
        why="dashboard test",
    )


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ledgered]:
    work = tmp_path_factory.mktemp("central-ledger")
    app = central_app(
        work, SITE_TOML, site_name="xigang.toml", ingest=False, instance="central-ledger-test"
    )
    with serving(app) as (url, srv):
        running = Ledgered(url=url, app=app, server=srv)
        engine = running.central.engine
        for name, role in (("duty", Role.OPERATOR), ("boss", Role.OPERATOR), ("chief", Role.ADMIN)):
            add_user(engine, username=name, password=PASSWORD, role=role, actor="test")
        running.cameras = {
            cam: issue_token(engine, name=cam, role=Role.CAMERA, ttl_s=3600, actor="test")[0]
            for cam in ("CAM-DX-1", "CAM-XSL-1")
        }
        yield running


@pytest.fixture(scope="module")
def page(browser: Browser, server: Ledgered) -> Iterator[Page]:
    p = _login(browser, server, "duty")
    yield p
    p.context.close()


def test_dashboard_ledger_violation_appears_with_pictures_and_is_confirmed(
    page: Page, server: Ledgered, artifacts_dir: Path
) -> None:
    """A no-parking violation appears live with its camera pictures; confirming it shows."""
    page.goto(f"{server.url}/dashboard/ledger")
    _live(page)
    expect(page.locator("#ledger tbody tr")).to_have_count(0)
    page.evaluate("window.__sameDocument = true")
    answers = [
        server.post(_shot_of("CAM-DX-1", PARKED, ago_s=ago, n=n))
        for n, ago in enumerate((420, 240, 60))
    ]
    assert answers[-1]["outcomes"][0]["outcome"] == "violation"  # type: ignore[index]

    row = page.locator("#ledger tbody tr").first
    expect(row).to_contain_text(PARKED)
    expect(row.locator(".plate")).to_have_class("plate blue")
    expect(row).to_contain_text("笃西路")
    expect(row).to_contain_text("no_parking v1")
    expect(row).to_contain_text("¥100")
    expect(row.locator(".badge")).to_have_text("待审核")
    row.click()
    detail = page.locator("#detail")
    images = detail.locator(".pics img")
    expect(images).to_have_count(6)  # three captures, a plate and a scene picture each
    wait_for(
        lambda: page.evaluate(
            "[...document.querySelectorAll('#detail .pics img')]"
            ".every((i) => i.complete && i.naturalWidth > 0)"
        ),
        what="the evidence pictures to load with the bearer token",
    )
    assert images.first.get_attribute("src").startswith("blob:")  # type: ignore[union-attr]
    entry = server.api("GET", "/api/v1/ledger").json()[0]
    expect(detail.locator('[data-field="hash"]')).to_have_text(entry["hash"])
    expect(detail.locator('[data-field="prev_hash"]')).to_have_text("0" * 64)
    expect(detail.locator(".captures tbody tr")).to_have_count(3)

    detail.locator('button[data-action="confirm"]').click()
    expect(row.locator(".badge")).to_have_text("已确认")
    expect(detail.locator(".steps")).to_contain_text("user:duty")
    # Another operator's step reaches the open page through the stream, not a reload.
    seq = entry["seq"]
    step = server.api("POST", f"/api/v1/ledger/{seq}/actions", json={"action": "notify"})
    assert step.status_code == 200, step.text
    expect(row.locator(".badge")).to_have_text("已告知")
    expect(detail.locator(".steps")).to_contain_text("user:boss")
    assert page.evaluate("window.__sameDocument") is True, "the page was reloaded"

    page.select_option("#f-status", "pending_review")
    expect(page.locator("#ledger tbody tr")).to_have_count(0)
    page.select_option("#f-status", "")
    page.fill("#f-plate", "K2M")
    expect(page.locator("#ledger tbody tr")).to_have_count(1)
    with page.expect_download() as download:
        page.click("#x-csv")
    csv = Path(download.value.path()).read_text(encoding="utf-8-sig")
    assert csv.startswith("seq,") and PARKED in csv
    page.locator("#ledger tbody tr").first.click()
    expect(images.first).to_be_visible()
    _shot(page, artifacts_dir, "ledger")


def test_dashboard_ledger_admin_verifies_the_chain(
    browser: Browser, server: Ledgered, page: Page
) -> None:
    """An admin's verify button shows the chain intact; an operator has no such button."""
    page.goto(f"{server.url}/dashboard/ledger")
    expect(page.locator("#verify")).to_be_hidden()
    admin = _login(browser, server, "chief")
    try:
        admin.goto(f"{server.url}/dashboard/ledger")
        admin.click("#verify")
        expect(admin.locator("#verify-result")).to_contain_text("哈希链完整")
        expect(admin.locator("#verify-result")).to_have_class(re.compile(r"\bok\b"))
    finally:
        admin.context.close()


def test_dashboard_cases_tow_case_appears_and_is_dispatched(
    page: Page, server: Ledgered, artifacts_dir: Path
) -> None:
    """A car left for two days makes a tow case that appears live; the operator dispatches it."""
    page.goto(f"{server.url}/dashboard/cases")
    _live(page)
    expect(page.locator("#cases tbody tr")).to_have_count(0)
    first = server.post(_shot_of("CAM-XSL-1", LEFT, ago_s=25 * 3600, n=0))
    # A day-old capture arriving now is held for its camera's clock until a person says
    # the camera's time is right (the camera was catching up after an outage).
    assert first["held"] == "camera_clock"
    confirmed = server.api(
        "POST",
        "/api/v1/cameras/CAM-XSL-1/confirm-held",
        json={"use": "camera", "reason": "camera back from an outage"},
    )
    assert confirmed.status_code == 200 and len(confirmed.json()["confirmed"]) == 1
    server.post(_shot_of("CAM-XSL-1", LEFT, ago_s=30, n=1))

    row = page.locator("#cases tbody tr[data-case]").first
    expect(row).to_contain_text("拖移")
    expect(row).to_contain_text(LEFT)
    expect(row).to_contain_text("香舍里大街全线")
    expect(row).to_contain_text("香舍里大街网格")
    expect(row.locator(".state .badge")).to_have_text("已立案")
    expect(row.locator(".limits")).to_contain_text("签收 ≤")
    row.locator("input.note").fill("已通知路长")
    row.locator('button[data-action="dispatch"]').click()
    expect(row.locator(".state .badge")).to_have_text("已派遣")
    row.locator("td:nth-child(3) button").click()
    history = page.locator("tr.case-history")
    expect(history).to_contain_text("user:duty")
    expect(history).to_contain_text("已通知路长")
    case = server.api("GET", "/api/v1/cases").json()[0]
    assert case["state"] == "dispatched" and case["grid_id"] == "G-ROAD-XSL"
    _shot(page, artifacts_dir, "cases")

    page.goto(f"{server.url}/dashboard/ledger?kind=tow")
    expect(page.locator("#ledger tbody tr")).to_have_count(1)
    expect(page.locator("#ledger tbody tr .badge")).to_have_text("已下达拖移")


def test_dashboard_grid_report_shows_the_month(
    page: Page, server: Ledgered, artifacts_dir: Path
) -> None:
    """The grid report shows this month's figures per grid and downloads them as XLSX."""
    month = dt.datetime.now(TZ).strftime("%Y-%m")
    page.goto(f"{server.url}/dashboard/grids")
    expect(page.locator("#g-month")).to_have_value(month)
    dx = page.locator('tr[data-grid="G-ROAD-DX"]')
    xsl = page.locator('tr[data-grid="G-ROAD-XSL"]')
    expect(dx.locator('[data-key="violations"]')).to_have_text("1")
    expect(dx.locator('[data-key="cases"]')).to_have_text("0")
    expect(xsl.locator('[data-key="cases"]')).to_contain_text("1")
    expect(xsl.locator('[data-key="tow_orders"]')).to_have_text("1")
    expect(xsl.locator('[data-key="open"]')).to_have_text("1")
    expect(page.locator('tfoot [data-key="violations"]')).to_have_text("1")
    with page.expect_download() as download:
        page.click("#g-xlsx")
    sheet = load_workbook(io.BytesIO(Path(download.value.path()).read_bytes())).active
    assert sheet is not None
    rows = {r[0]: r for r in sheet.iter_rows(min_row=2, values_only=True)}
    assert rows["G-ROAD-XSL"][4] == 1 and rows["G-ROAD-DX"][13] == 1
    page.fill("#g-month", "2020-01")
    page.dispatch_event("#g-month", "change")
    expect(dx.locator('[data-key="violations"]')).to_have_text("0")
    page.fill("#g-month", month)
    page.dispatch_event("#g-month", "change")
    expect(dx.locator('[data-key="violations"]')).to_have_text("1")
    _shot(page, artifacts_dir, "grids")
