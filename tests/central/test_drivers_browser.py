"""The drivers' page in a real browser (Playwright + Debian's Chromium) against a live central.

One central (uvicorn on a free port, SQLite, a real Mosquitto) on the town's site file, fed
by a paho client publishing what the lot boxes publish (births and retained lot states).
A phone (390×844, touch) opens ``/`` without a login, sees every lot with a number, watches
a count change without a reload, sorts by distance; a browser with JavaScript off still
sees every figure; nothing is ever asked of another origin. Screenshots for the docs.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from playwright.sync_api import Browser, BrowserContext, Page, Route, expect
from pydantic import BaseModel

from central.app import create_app
from central.auth.models import Role
from central.auth.service import add_user
from central.db.engine import make_engine
from central.db.migrate import upgrade
from central.lots.generated import GeneratedChange, write_generated_history
from central.settings import CentralSettings
from firmware_protocols.uplink import Topics
from firmware_protocols.uplink import encode_payload as encode
from simulators.broker import MosquittoBroker
from simulators.history import bay_changes, town_days
from site_model.site import load_site
from tests.central.helpers import birth, lot_state, serving, wait_for
from tests.central.test_dashboard import _submit_login, browser
from tests.doc_images import publish

__all__ = ["browser"]  # a fixture, used by name

ROOT = Path(__file__).resolve().parents[2]
SITE_FILE = ROOT / "sites" / "xigang.toml"
SITE = load_site(SITE_FILE)
# 10:20 in Xigang: every lot open, the morning market shut, the night market opening at 18:00.
TOWN_NOW = dt.datetime(2026, 6, 3, 10, 20, tzinfo=dt.timezone(dt.timedelta(hours=8))).timestamp()
FREE = {"P1": 57, "P2": 0, "P3": 12, "P4": 88}
PHONE = {"width": 390, "height": 844}
PASSWORD = "drivers-test-pw"


@dataclass
class Boxes:
    """A paho client publishing as the lot boxes: births and retained lot states, QoS 1."""

    broker: MosquittoBroker
    client: paho.Client = field(init=False)

    def __post_init__(self) -> None:
        self.client = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
        self.client.connect(self.broker.host, self.broker.port)
        self.client.loop_start()

    def send(self, topic: str, payload: BaseModel) -> None:
        self.client.publish(topic, encode(payload), qos=1, retain=True).wait_for_publish(10)

    def born(self) -> None:
        for lot_id, lot in SITE.lots.items():
            sensors = len(lot.bay_ids(lot_id))
            self.send(Topics(SITE.id, lot.box_id).status, birth(lot.box_id, sensors))
            self.set_free(lot_id, FREE[lot_id])

    def set_free(self, lot_id: str, free: int) -> None:
        lot = SITE.lots[lot_id]
        capacity = len(lot.bay_ids(lot_id))
        state = lot_state(lot_id, free=free, occupied=capacity - free, capacity=capacity)
        self.send(Topics(SITE.id, lot.box_id).lot(lot_id), state)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@dataclass
class Server:
    url: str
    app: Any


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MosquittoBroker]:
    with MosquittoBroker(workdir=tmp_path_factory.mktemp("broker")) as b:
        yield b


def _three_weeks_of_history(url: str, wall_start: float) -> None:
    """The town model's last three weeks, so the page has forecasts to show; stored on
    central's (wall) axis, as the demo stores them, the town's 10:20 being ``wall_start``."""
    engine = make_engine(url)
    upgrade(engine)
    today = dt.datetime.fromtimestamp(TOWN_NOW, dt.timezone(dt.timedelta(hours=8))).date()
    days = town_days(SITE, first_day=today - dt.timedelta(days=21), days=21, seed=5)
    changes = (
        GeneratedChange(wall_start + (at - TOWN_NOW), bay, occupied)
        for at, bay, occupied in bay_changes(days)
    )
    write_generated_history(engine, SITE, changes, until=wall_start - 3600, source="tests")
    engine.dispose()


@pytest.fixture(scope="module")
def server(broker: MosquittoBroker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    work = tmp_path_factory.mktemp("central-drivers")
    # The town's clock reads 10:20 now and runs at the wall's pace: every time on the page
    # (the clock, "updated") is on it, as in the demo.
    wall_start = time.time()
    _three_weeks_of_history(f"sqlite:///{work / 'central.db'}", wall_start)
    town_clock = work / "town-clock.json"
    town_clock.write_text(
        json.dumps({"sim_start": TOWN_NOW, "wall_start": wall_start, "speed": 1.0})
    )
    settings = CentralSettings(
        site_file=SITE_FILE,
        database_url=f"sqlite:///{work / 'central.db'}",
        mqtt_url=broker.url,
        instance="central-drivers-test",
        public_burst=10_000,  # one test client address stands for many phones here
        town_clock_file=town_clock,
    )
    app = create_app(settings)
    with serving(app) as (url, _srv):
        running = Server(url=url, app=app)
        wait_for(lambda: app.state.central.mqtt.wait_connected(0.1), what="central's MQTT link")
        engine = app.state.central.engine
        add_user(engine, username="duty", password=PASSWORD, role=Role.VIEWER, actor="t")
        yield running


@pytest.fixture(scope="module")
def boxes(broker: MosquittoBroker, server: Server) -> Iterator[Boxes]:
    boxes = Boxes(broker)
    boxes.born()

    def arrived() -> bool:
        import httpx

        lots = httpx.get(f"{server.url}/api/v1/lots").json()["lots"]
        return {lot["id"]: lot["free"] for lot in lots} == FREE

    wait_for(arrived, timeout=30, what="the lot states to reach central")
    yield boxes
    boxes.close()


@dataclass
class Foreign:
    """Every request the page made to anything but central (each one aborted)."""

    origin: str
    urls: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def attach(self, context: BrowserContext) -> None:
        def route(r: Route) -> None:
            if r.request.url.startswith(self.origin + "/"):
                r.continue_()
            else:
                self.urls.append(r.request.url)
                r.abort()

        context.route("**/*", route)


def _phone(browser: Browser, server: Server, **options: Any) -> tuple[Page, Foreign]:
    context = browser.new_context(
        viewport=PHONE,
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
        locale="zh-CN",  # as a Chinese phone's chat app asks
        **options,
    )
    context.set_default_timeout(15_000)
    foreign = Foreign(origin=server.url)
    foreign.attach(context)
    page = context.new_page()
    page.on("pageerror", lambda e: foreign.errors.append(str(e)))
    return page, foreign


def _counts(page: Page) -> dict[str, str]:
    return {
        lot_id: page.locator(f"#lot-{lot_id} .count").inner_text().strip() for lot_id in SITE.lots
    }


def _shot(page: Page, artifacts_dir: Path, name: str) -> None:
    path = artifacts_dir / f"drivers-{name}.png"
    page.screenshot(path=str(path), full_page=False, animations="disabled")
    publish(path, f"drivers-{name}.png")


def test_drivers_phone_sees_every_lot_and_a_change_without_reload(
    browser: Browser, server: Server, boxes: Boxes, artifacts_dir: Path
) -> None:
    page, foreign = _phone(browser, server)
    response = page.goto(f"{server.url}/")
    assert response is not None and response.status == 200
    assert page.url == f"{server.url}/"  # no login, no redirect
    assert _counts(page) == {lot_id: str(free) for lot_id, free in FREE.items()}
    expect(page.locator("#lot-P2 .state")).to_have_text("已满")
    expect(page.locator("#status")).to_contain_text("实时更新")  # the script runs
    expect(page.locator("#lot-P1 .forecast")).to_contain_text("60 分钟后", timeout=30_000)
    _shot(page, artifacts_dir, "phone")
    page.evaluate("window.__sameDocument = true")
    changed_at = time.monotonic()
    boxes.set_free("P1", 42)
    expect(page.locator("#lot-P1 .count")).to_have_text("42", timeout=30_000)
    print(f"P1 changed on the open page {time.monotonic() - changed_at:.2f} s after publishing")
    assert page.evaluate("window.__sameDocument === true")  # updated live, not reloaded
    assert foreign.urls == [] and foreign.errors == []
    page.context.close()


def test_drivers_page_works_with_javascript_off(
    browser: Browser, server: Server, boxes: Boxes
) -> None:
    page, foreign = _phone(browser, server, java_script_enabled=False)
    page.goto(f"{server.url}/")
    counts = _counts(page)
    assert set(counts) == set(SITE.lots)
    assert all(value.isdigit() for value in counts.values()), counts
    expect(page.locator("#lot-P2 .state")).to_have_text("已满")
    expect(page.locator("#near")).to_be_hidden()  # needs the script: not offered
    assert page.locator("#lot-P1 .go a").count() == 3
    assert foreign.urls == []
    page.context.close()


def test_drivers_sorts_by_distance_when_the_phone_gives_its_location(
    browser: Browser, server: Server, boxes: Boxes
) -> None:
    p4 = SITE.lots["P4"].location
    assert p4 is not None
    page, foreign = _phone(
        browser,
        server,
        geolocation={"latitude": p4.lat + 0.0005, "longitude": p4.lon},
        permissions=["geolocation"],
    )
    page.goto(f"{server.url}/")
    expect(page.locator("#lots .lot").first).to_have_attribute("id", "lot-P4")
    expect(page.locator("#lot-P4 .dist")).to_contain_text("m")
    assert foreign.urls == []
    page.context.close()


def test_drivers_desktop_and_english(
    browser: Browser, server: Server, boxes: Boxes, artifacts_dir: Path
) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="zh-CN")
    foreign = Foreign(origin=server.url)
    foreign.attach(context)
    page = context.new_page()
    page.goto(f"{server.url}/")
    expect(page.locator("#lots .lot")).to_have_count(len(SITE.lots))
    _shot(page, artifacts_dir, "desktop")
    page.click("a.lang")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator("#lot-P2 .state")).to_have_text("Full")
    assert foreign.urls == []
    context.close()


def test_office_dashboard_shows_the_forecast_on_each_lot_card(
    browser: Browser, server: Server, boxes: Boxes
) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="zh-CN")
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.goto(f"{server.url}/dashboard/")
    _submit_login(page, "duty", PASSWORD)
    expect(page).to_have_url(f"{server.url}/dashboard/")
    p1 = page.locator('#cards [data-lot="P1"] .forecast')
    expect(p1).to_contain_text("预计空位", timeout=30_000)
    expect(p1).to_contain_text("60 分钟后")
    context.close()
