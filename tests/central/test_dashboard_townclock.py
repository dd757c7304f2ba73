"""The dashboard on the town's clock: a demo's town at 60x, in Chromium, and the clock's API.

Central reads the town's clock from a demo state file (``central.townclock``); the
dashboard gets it through its data block and ``GET /api/v1/clock`` and shows the API's
times (the boxes' wall times) on it: the clock at the top, the tables, the charts' ranges.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Browser, Page

from central.auth.models import Role
from central.auth.service import add_user
from tests.central.helpers import central_app, serving, wait_for
from tests.central.test_dashboard import _submit_login, browser
from tests.central.test_public_page import SITE_FILE

__all__ = ["browser"]  # a fixture, used by name

SHANGHAI = dt.timezone(dt.timedelta(hours=8))
TOWN_START = dt.datetime(2026, 6, 3, 10, 20, tzinfo=SHANGHAI).timestamp()
SPEED = 60.0
PASSWORD = "townclock-test-pw"


def _app(work: Path, clock: dict[str, float] | None) -> object:
    path = work / "demo.json"
    if clock is not None:
        path.write_text(json.dumps(clock))
    return central_app(
        work,
        SITE_FILE.read_text(encoding="utf-8"),
        site_name="xigang.toml",
        ingest=False,
        forecast_every_s=0,
        town_clock_file=path if clock is not None else None,
    )


def test_the_clock_api_gives_the_towns_time_and_the_site_zone(tmp_path: Path) -> None:
    wall_start = time.time()
    app = _app(tmp_path, {"sim_start": TOWN_START, "wall_start": wall_start, "speed": SPEED})
    with TestClient(app) as client:  # type: ignore[arg-type]
        got = client.get("/api/v1/clock").json()
        page = client.get("/dashboard/").text
    assert got["simulated"] is True and got["speed"] == SPEED
    assert got["timezone"] == "Asia/Shanghai"
    assert got["town"] == pytest.approx(TOWN_START + (got["wall"] - wall_start) * SPEED)
    assert '"clock":{"town":' in page and '"simulated":true' in page  # in the data block


def test_a_real_town_is_on_the_wall_clock_and_says_so(tmp_path: Path) -> None:
    with TestClient(_app(tmp_path, None)) as client:  # type: ignore[arg-type]
        got = client.get("/api/v1/clock").json()
    assert got["simulated"] is False and got["speed"] == 1.0
    assert got["town"] == got["wall"] and abs(got["wall"] - time.time()) < 60


@pytest.fixture(scope="module")
def town_page(browser: Browser, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Page]:
    work = tmp_path_factory.mktemp("townclock")
    wall_start = time.time()
    app = _app(work, {"sim_start": TOWN_START, "wall_start": wall_start, "speed": SPEED})
    with serving(app) as (url, _srv):
        engine = wait_for(lambda: getattr(getattr(app.state, "central", None), "engine", None))
        add_user(engine, username="duty", password=PASSWORD, role=Role.ADMIN, actor="t")
        context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="zh-CN")
        context.set_default_timeout(15_000)
        page = context.new_page()
        page.wall_start = wall_start  # type: ignore[attr-defined]
        page.base = url  # type: ignore[attr-defined]
        page.goto(f"{url}/dashboard/")
        page.wait_for_url("**/dashboard/login**")
        _submit_login(page, "duty", PASSWORD)
        page.wait_for_url("**/dashboard/")
        yield page
        context.close()


def _town_hm(page: Page) -> tuple[int, int]:
    text = page.locator("#clock").inner_text()
    hh, mm = text.split()[1].split(":")[:2]
    return int(hh), int(mm)


def test_the_clock_at_the_top_shows_town_time_labelled_with_its_speed(town_page: Page) -> None:
    clock = town_page.locator("#clock")
    wait_for(lambda: "镇上时间" in clock.inner_text(), what="the clock's label")
    assert "×60" in clock.inner_text()
    assert "60" in (clock.get_attribute("title") or "")
    # A few wall seconds after the start are minutes in the town, not this machine's time.
    hour, minute = _town_hm(town_page)
    town_now = dt.datetime.fromtimestamp(TOWN_START, SHANGHAI)
    assert (hour, minute) >= (town_now.hour, town_now.minute) and hour in (10, 11, 12)


def test_tables_show_stored_times_on_the_towns_clock(town_page: Page) -> None:
    town_page.goto(f"{town_page.base}/dashboard/users")  # type: ignore[attr-defined]
    row = town_page.locator("#users tbody tr", has_text="duty")
    # The user was made a few wall seconds after the town's 10:20 on 3 June: 06/03 10:2x
    # (later on a slow machine, each wall second a town minute), whatever today's date is.
    wait_for(lambda: "06/03 1" in row.inner_text(), what="the user's time in town time")


def test_the_history_chart_asks_for_the_towns_day(town_page: Page) -> None:
    base = town_page.base  # type: ignore[attr-defined]
    # A day of quarter hours in the town: 15 wall seconds each at 60x.
    with town_page.expect_request(lambda r: "/history?" in r.url and "step=15" in r.url) as asked:
        town_page.goto(f"{base}/dashboard/history?lot=P1")
    day = parse_qs(urlparse(asked.value.url).query)
    # The town's midnight of 3 June, on central's (wall) axis: 10 h 20 min of town before
    # the start are 620 wall seconds at 60x.
    start = dt.datetime.fromisoformat(day["start"][0].replace("Z", "+00:00")).timestamp()
    assert start == pytest.approx(town_page.wall_start - 620, abs=2)  # type: ignore[attr-defined]


def test_the_ledgers_date_filter_asks_for_the_towns_day(town_page: Page) -> None:
    base = town_page.base  # type: ignore[attr-defined]
    town_page.goto(f"{base}/dashboard/ledger")
    town_page.wait_for_selector("#f-start")
    with town_page.expect_request(
        lambda r: "/api/v1/ledger?" in r.url and "start=" in r.url
    ) as asked:
        town_page.fill("#f-start", "2026-06-03")
        town_page.dispatch_event("#f-start", "change")
    start = parse_qs(urlparse(asked.value.url).query)["start"][0]
    # Entries under 3 June in the town: from the town's midnight, 620 wall s before the start.
    at = dt.datetime.fromisoformat(start.replace("Z", "+00:00")).timestamp()
    assert at == pytest.approx(town_page.wall_start - 620, abs=2)  # type: ignore[attr-defined]


def test_the_grid_report_opens_on_the_towns_month_labelled_town_time(town_page: Page) -> None:
    base = town_page.base  # type: ignore[attr-defined]
    with town_page.expect_request(lambda r: "/api/v1/reports/grids?" in r.url) as asked:
        town_page.goto(f"{base}/dashboard/grids")
    assert parse_qs(urlparse(asked.value.url).query)["month"] == ["2026-06"]  # June in the town
    summary = town_page.locator("#g-summary")
    wait_for(lambda: "2026-06" in summary.inner_text(), what="the report's summary")
    assert "镇上时间" in summary.inner_text()
