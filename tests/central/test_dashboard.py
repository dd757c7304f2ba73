"""The office dashboard in a real browser (Playwright + Debian's Chromium) against a live central.

One central (uvicorn on a free port, SQLite, a real Mosquitto) per module, fed by paho
clients publishing exactly what edge boxes publish: births with health, a week of bay
changes (so the curves have something to draw), lot, bay, zone and sign states, alerts.
The browser logs in, watches the overview while a car arrives, checks a bay's colour,
acknowledges an alert, loses and regains the stream, and screenshots every page.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as paho
import pytest
import uvicorn
from paho.mqtt.enums import CallbackAPIVersion
from playwright.sync_api import Browser, Page, expect, sync_playwright
from pydantic import BaseModel
from sqlalchemy import func, select

from central.auth.models import Role
from central.auth.service import add_user
from central.db import schema as t
from firmware_protocols.uplink import BayChanged, BayState, BoxStatus, Event, LotState, Topics
from firmware_protocols.uplink import encode_payload as encode
from firmware_protocols.uplink.models import (
    AlertRaised,
    AlertType,
    BayOccupancy,
    ClockStatus,
    HealthSummary,
    LaneHealth,
    LotStatus,
    Online,
    OutboxHealth,
    ReleaseReport,
    SensorFlag,
    SensorInfo,
    SensorsHealth,
    SerialLineHealth,
    Severity,
    SignArrow,
    SignBusHealth,
    SignColour,
    SignDisplay,
    SignMode,
    SignState,
    SignUnitHealth,
    Trend,
    Window,
    ZoneClass,
    ZoneOpenState,
    ZoneState,
)
from simulators.broker import MosquittoBroker
from tests.central.helpers import central_app, serving, wait_for
from tests.doc_images import publish

SITE = "xigang"
TZ = dt.timezone(dt.timedelta(hours=8))
CHROMIUM = "/usr/bin/chromium"
PASSWORD = "dashboard-test-pw"
GREEN, RED = "rgb(31, 163, 92)", "rgb(216, 60, 60)"

SITE_TOML = """
[site]
id = "xigang"
name = "西岗镇"
timezone = "Asia/Shanghai"

[boxes.box-p1]
name = "新港路停车场设备"
[boxes.box-p2]
name = "香舍里大街停车场设备"
[boxes.box-p3]
name = "镇政府停车场设备"
[boxes.box-p4]
name = "汽车站停车场设备"
[boxes.box-z1]
name = "笃西路摊点设备"
[boxes.box-z2]
name = "新港路夜市设备"

[lots.P1]
name = "新港路停车场"
box_id = "box-p1"
bays = 30
[lots.P2]
name = "香舍里大街停车场"
box_id = "box-p2"
bays = 20
[lots.P3]
name = "镇政府停车场"
box_id = "box-p3"
bays = 40
[lots.P4]
name = "汽车站停车场"
box_id = "box-p4"
bays = 24

[zones.Z1]
name = "笃西路早市摊点"
class = "regulated"
box_id = "box-z1"
bays = 6
[zones.Z2]
name = "新港路夜市摊点"
class = "controlled"
box_id = "box-z2"
bays = 4
"""

LOTS = {"P1": ("box-p1", 30), "P2": ("box-p2", 20), "P3": ("box-p3", 40), "P4": ("box-p4", 24)}
# Free bays now, per lot: green, amber, red (full), green.
FREE_NOW = {"P1": 12, "P2": 2, "P3": 0, "P4": 9}
ARRIVAL_BAY = "P1-003"  # kept free by the generator; the test's car parks here
BOOT = uuid.UUID("6a1c2f4e-2d7b-4a55-9b0e-1c3f5a7d9e20")


def _bays(lot: str) -> list[str]:
    return [f"{lot}-{n:03d}" for n in range(1, LOTS[lot][1] + 1)]


def _profile(hour: float, lot: str) -> float:
    """Target occupancy of a lot at a local hour: a morning and an evening peak."""
    peak = {"P1": 0.75, "P2": 0.9, "P3": 0.95, "P4": 0.7}[lot]
    morning = max(0.0, 1 - abs(hour - 10) / 4)
    evening = max(0.0, 1 - abs(hour - 18) / 3)
    return 0.08 + (peak - 0.08) * max(morning, evening * 0.85)


@dataclass
class FakeBox:
    """A paho client publishing as one edge box: QoS 1, retained states, numbered events."""

    broker: MosquittoBroker
    box_id: str
    seq: int = 0
    client: paho.Client = field(init=False)

    def __post_init__(self) -> None:
        self.topics = Topics(SITE, self.box_id)
        self.client = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
        self.client.max_inflight_messages_set(1000)
        self.client.connect(self.broker.host, self.broker.port)
        self.client.loop_start()
        self.pending: list[paho.MQTTMessageInfo] = []

    def send(self, topic: str, payload: BaseModel, *, retain: bool = False) -> None:
        self.pending.append(self.client.publish(topic, encode(payload), qos=1, retain=retain))

    def flush(self) -> None:
        for info in self.pending:
            info.wait_for_publish(10)
        self.pending.clear()

    def event(self, body: Any, when: dt.datetime, *, historical: bool = False) -> None:
        self.seq += 1
        self.send(
            self.topics.event,
            Event(
                box_id=self.box_id,
                boot_id=BOOT,
                seq=self.seq,
                event_id=uuid.uuid5(uuid.NAMESPACE_OID, f"{self.box_id}/{self.seq}"),
                ts=when,
                historical=historical,
                body=body,
            ),
        )

    def close(self) -> None:
        self.flush()
        self.client.loop_stop()
        self.client.disconnect()


def _birth(box_id: str, sensors: int, *, signs: int = 1, low: int = 0) -> BoxStatus:
    lane = LaneHealth(depth=0, bytes=0, cap_bytes=8_000_000)
    return BoxStatus(
        box_id=box_id,
        state=Online.ONLINE,
        boot_id=BOOT,
        ts=dt.datetime.now(dt.UTC),
        software_version="0.1.0",
        config_hash="sha256:3f1c9a0d5e7b2c4a8f6e1d0b9c7a5e3f",
        sensor_count=sensors,
        clock=ClockStatus(synchronised=True, offset_s=0.004),
        release=ReleaseReport(
            version="0.1.0",
            state="rolled_back",
            failed_version="0.2.0",
            reason="failed its health gate: not connected to the broker",
            ts=dt.datetime.now(dt.UTC),
        )
        if box_id == "box-p1"
        else None,
        health=HealthSummary(
            outbox=OutboxHealth(
                state=lane,
                event=LaneHealth(depth=3, bytes=1400, cap_bytes=8_000_000),
                oldest_event_age_s=1.2,
            ),
            serial_lines=(
                SerialLineHealth(line="rs485-1", up=True, frames=18_233, crc_errors=4, timeouts=0),
            ),
            sign_buses=(
                SignBusHealth(
                    bus="signs",
                    units=tuple(
                        SignUnitHealth(unit=u, up=True, requests=5_400, timeouts=2)
                        for u in range(1, signs + 1)
                    ),
                ),
            )
            if signs
            else (),
            sensors=SensorsHealth(total=sensors, low_battery=low),
        ),
    )


def _sensor(bay: str, now: dt.datetime, *, low: bool = False) -> SensorInfo:
    return SensorInfo(
        sensor_id=f"S-{bay}",
        battery_pct=11 if low else 87,
        battery_mv=3310 if low else 3620,
        rssi_dbm=-88.0,
        last_seen=now - dt.timedelta(seconds=40),
        flags=(SensorFlag.LOW_BATTERY,) if low else (),
    )


def _lot_state(lot: str, free: int, occupied: int, trend: Trend) -> LotState:
    capacity = LOTS[lot][1]
    status = (
        LotStatus.FULL
        if free == 0
        else LotStatus.ALMOST_FULL
        if free <= capacity * 0.1
        else LotStatus.SPACES_AVAILABLE
    )
    return LotState(
        lot_id=lot,
        capacity=capacity,
        free=free,
        occupied=occupied,
        unknown=capacity - free - occupied,
        closed=0,
        status=status,
        trend=trend,
        ts=dt.datetime.now(dt.UTC),
    )


class Town:
    """Every box of the test site, publishing the past week and the present."""

    def __init__(self, broker: MosquittoBroker) -> None:
        self.boxes = {box: FakeBox(broker, box) for box in ("box-p1", "box-p2", "box-p3", "box-p4")}
        self.boxes["box-z1"] = FakeBox(broker, "box-z1")
        self.boxes["box-z2"] = FakeBox(broker, "box-z2")
        self.states: dict[str, str] = {}

    def publish_history_and_present(self) -> None:
        rng = random.Random(6)
        now = dt.datetime.now(TZ)
        start = (now - dt.timedelta(days=8)).replace(hour=0, minute=0, second=0, microsecond=0)
        step = dt.timedelta(minutes=40)
        for lot, (box_id, _) in LOTS.items():
            box = self.boxes[box_id]
            box.send(box.topics.status, _birth(box_id, LOTS[lot][1], low=1), retain=True)
            state = dict.fromkeys(_bays(lot), "free")
            t = start
            while t < now - dt.timedelta(minutes=10):
                target = _profile(t.hour + t.minute / 60, lot)
                for bay in state:
                    if bay == ARRIVAL_BAY:
                        continue
                    flip = rng.random()
                    occupied = state[bay] == "occupied"
                    to = None
                    if not occupied and flip < target * 0.45:
                        to = "occupied"
                    elif occupied and flip < (1 - target) * 0.45:
                        to = "free"
                    if to is not None:
                        when = t + dt.timedelta(seconds=rng.randrange(0, 2400))
                        self._change(box, lot, bay, to, min(when, now), historical=True)
                        state[bay] = to
                t += step
            # The present: exactly FREE_NOW[lot] free, the arrival bay among them.
            bays = _bays(lot)
            free = {ARRIVAL_BAY} if lot == "P1" else set()
            free |= set(bays[len(bays) - (FREE_NOW[lot] - len(free)) :])
            for bay in bays:
                want = "free" if bay in free else "occupied"
                if state[bay] != want:
                    self._change(box, lot, bay, want, now - dt.timedelta(minutes=5))
                    state[bay] = want
                self.states[bay] = want
                low = bay == bays[1]
                box.send(
                    box.topics.bay(bay),
                    BayState(
                        bay_id=bay,
                        lot_id=lot,
                        state=BayOccupancy(want),
                        since=now - dt.timedelta(minutes=5 + rng.randrange(0, 90)),
                        sensor=_sensor(bay, now, low=low),
                        ts=dt.datetime.now(dt.UTC),
                    ),
                    retain=True,
                )
            trend = {"P1": Trend.FILLING, "P2": Trend.FILLING, "P3": Trend.STEADY}.get(
                lot, Trend.EMPTYING
            )
            box.send(
                box.topics.lot(lot),
                _lot_state(lot, FREE_NOW[lot], LOTS[lot][1] - FREE_NOW[lot], trend),
                retain=True,
            )
            self._guidance_sign(box, lot, FREE_NOW[lot])
        self._zones(now)
        self._alerts(now)
        for box in self.boxes.values():
            box.flush()

    def _change(
        self, box: FakeBox, lot: str, bay: str, to: str, when: dt.datetime, historical: bool = False
    ) -> None:
        frm = "occupied" if to == "free" else "free"
        body = BayChanged(
            bay_id=bay,
            lot_id=lot,
            from_state=BayOccupancy(frm),
            to_state=BayOccupancy(to),
            sensor_id=f"S-{bay}",
            sensor_ts=when,
        )
        box.event(body, when, historical=historical)

    def _guidance_sign(self, box: FakeBox, lot: str, free: int) -> None:
        colour = SignColour.RED if free == 0 else SignColour.GREEN
        if 0 < free <= LOTS[lot][1] * 0.1:
            colour = SignColour.AMBER
        box.send(
            box.topics.sign(f"{lot}-entry"),
            SignState(
                sign_id=f"{lot}-entry",
                bus="signs",
                unit=1,
                profile="parkgrid-guidance",
                display=SignDisplay(
                    mode=SignMode.COUNT if free else SignMode.TEXT,
                    count=free if free else None,
                    text=None if free else "满 FULL",
                    colour=colour,
                    arrow=SignArrow.RIGHT if free else SignArrow.NONE,
                ),
                up=True,
                last_verified=dt.datetime.now(dt.UTC),
                ts=dt.datetime.now(dt.UTC),
            ),
            retain=True,
        )

    def _zones(self, now: dt.datetime) -> None:
        z1 = self.boxes["box-z1"]
        z1.send(z1.topics.status, _birth("box-z1", 6, signs=1), retain=True)
        day = now.replace(hour=0, minute=0, second=0, microsecond=0)
        z1.send(
            z1.topics.zone("Z1"),
            ZoneState(
                zone_id="Z1",
                zone_class=ZoneClass.REGULATED,
                state=ZoneOpenState.CLOSING,
                window=Window(start=day.replace(hour=6), end=day.replace(hour=9)),
                next_transition=now + dt.timedelta(minutes=12),
                occupied=4,
                schedule_version=3,
                ts=dt.datetime.now(dt.UTC),
            ),
            retain=True,
        )
        z2 = self.boxes["box-z2"]
        z2.send(z2.topics.status, _birth("box-z2", 4, signs=0), retain=True)
        z2.send(
            z2.topics.zone("Z2"),
            ZoneState(
                zone_id="Z2",
                zone_class=ZoneClass.CONTROLLED,
                state=ZoneOpenState.CLOSED,
                window=None,
                next_transition=day.replace(hour=18) + dt.timedelta(days=1),
                occupied=0,
                schedule_version=3,
                ts=dt.datetime.now(dt.UTC),
            ),
            retain=True,
        )
        z2.flush()
        # The night-market box then loses its link (its Last Will): "boxes offline" shows 1.
        dead = BoxStatus(box_id="box-z2", state=Online.OFFLINE, boot_id=BOOT, ts=now)
        z2.send(z2.topics.status, dead, retain=True)

    def _alerts(self, now: dt.datetime) -> None:
        raised = [
            (
                "box-z1",
                AlertRaised(
                    alert_id="Z1-overstay-1",
                    alert_type=AlertType.ZONE_OVERSTAY,
                    severity=Severity.ESCALATED,
                    step=2,
                    since=now - dt.timedelta(minutes=35),
                    message="笃西路早市摊点：经营时段已结束，仍有 4 个摊位占用",
                    zone_id="Z1",
                ),
            ),
            (
                "box-p2",
                AlertRaised(
                    alert_id="P2-battery-002",
                    alert_type=AlertType.SENSOR_LOW_BATTERY,
                    severity=Severity.WARNING,
                    since=now - dt.timedelta(hours=3),
                    message="P2-002 地磁检测器电量 11%",
                    lot_id="P2",
                    bay_id="P2-002",
                    sensor_id="S-P2-002",
                ),
            ),
            (
                "box-p3",
                AlertRaised(
                    alert_id="P3-sign-down",
                    alert_type=AlertType.SIGN_DOWN,
                    severity=Severity.CRITICAL,
                    since=now - dt.timedelta(minutes=8),
                    message="P3 出口诱导屏无应答 (timeout)",
                    lot_id="P3",
                    sign_id="P3-exit",
                ),
            ),
        ]
        for box_id, body in raised:
            self.boxes[box_id].event(body, body.since)

    def car_arrives(self, free_after: int) -> None:
        """A car parks in the arrival bay: the box's event, bay state and lot state."""
        box = self.boxes["box-p1"]
        now = dt.datetime.now(dt.UTC)
        self._change(box, "P1", ARRIVAL_BAY, "occupied", now)
        self.set_bay("P1", ARRIVAL_BAY, "occupied")
        box.send(
            box.topics.lot("P1"),
            _lot_state("P1", free_after, 30 - free_after, Trend.FILLING),
            retain=True,
        )
        self._guidance_sign(box, "P1", free_after)
        box.flush()

    def set_bay(self, lot: str, bay: str, state: str) -> None:
        box = self.boxes[LOTS[lot][0]]
        now = dt.datetime.now(dt.UTC)
        box.send(
            box.topics.bay(bay),
            BayState(
                bay_id=bay,
                lot_id=lot,
                state=BayOccupancy(state),
                since=now,
                sensor=_sensor(bay, now),
                ts=now,
            ),
            retain=True,
        )
        box.flush()

    def close(self) -> None:
        for box in self.boxes.values():
            box.close()


@dataclass
class Server:
    url: str
    app: Any
    server: uvicorn.Server

    @property
    def central(self) -> Any:
        return self.app.state.central

    def token(self, user: str) -> str:
        r = httpx.post(
            f"{self.url}/api/v1/auth/login", data={"username": user, "password": PASSWORD}
        )
        r.raise_for_status()
        return str(r.json()["access_token"])

    def cut_connections(self) -> None:
        """Drop every open HTTP connection, as a flaky office network would."""

        def cut() -> None:
            for conn in list(self.server.server_state.connections):
                conn.transport.close()

        self.central.hub.loop.call_soon_threadsafe(cut)


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MosquittoBroker]:
    with MosquittoBroker(workdir=tmp_path_factory.mktemp("broker")) as b:
        yield b


@pytest.fixture(scope="module")
def server(broker: MosquittoBroker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    work = tmp_path_factory.mktemp("central")
    app = central_app(
        work,
        SITE_TOML,
        site_name="xigang.toml",
        mqtt_url=broker.url,
        instance="central-dashboard-test",
    )
    with serving(app) as (url, srv):
        running = Server(url=url, app=app, server=srv)
        wait_for(lambda: running.central.mqtt.wait_connected(0.1), what="central's MQTT link")
        engine = running.central.engine
        for name, role in (("duty", Role.OPERATOR), ("watch", Role.VIEWER), ("chief", Role.ADMIN)):
            add_user(engine, username=name, password=PASSWORD, role=role, actor="test")
        yield running


@pytest.fixture(scope="module")
def town(broker: MosquittoBroker, server: Server) -> Iterator[Town]:
    town = Town(broker)
    town.publish_history_and_present()
    total = sum(box.seq for box in town.boxes.values())

    def stored() -> bool:
        lots = httpx.get(f"{server.url}/api/v1/lots").json()["lots"]
        with server.central.engine.connect() as conn:
            events = conn.execute(select(func.count()).select_from(t.events)).scalar()
        return {lot["id"]: lot["free"] for lot in lots} == FREE_NOW and events == total

    wait_for(stored, timeout=30, what="the town's state to reach central")
    yield town
    town.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    args = [
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
    ]
    if os.geteuid() == 0:
        args.append("--no-sandbox")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=args)
        yield b
        b.close()


def _login(browser: Browser, server: Server, user: str) -> Page:
    context = browser.new_context(viewport={"width": 1440, "height": 900}, accept_downloads=True)
    context.set_default_timeout(10_000)
    page = context.new_page()
    page.goto(f"{server.url}/dashboard/")
    expect(page).to_have_url(f"{server.url}/dashboard/login?next=%2Fdashboard%2F")
    _submit_login(page, user)
    expect(page).to_have_url(f"{server.url}/dashboard/")
    return page


def _submit_login(page: Page, user: str, password: str = PASSWORD) -> None:
    """Fill in the dashboard's login form (the page shows it) and send it."""
    page.fill("#username", user)
    page.fill("#password", password)
    page.click("#login-button")


@pytest.fixture(scope="module")
def operator_page(browser: Browser, server: Server, town: Town) -> Iterator[Page]:
    page = _login(browser, server, "duty")
    yield page
    page.context.close()


def _shot(page: Page, artifacts_dir: Path, name: str, *, full: bool = True) -> Path:
    path = artifacts_dir / f"dashboard-{name}.png"
    page.mouse.move(0, 0)
    page.screenshot(path=str(path), full_page=full, animations="disabled")
    return path


def _live(page: Page) -> None:
    expect(page.locator("#live")).to_have_attribute("data-state", "on")


def test_dashboard_overview_count_changes_live_when_a_car_arrives(
    operator_page: Page, server: Server, town: Town, artifacts_dir: Path
) -> None:
    """The overview shows each lot's free count and colour; a car's arrival changes it in place."""
    page = operator_page
    page.goto(f"{server.url}/dashboard/")
    _live(page)
    p1 = page.locator('[data-lot="P1"]')
    expect(p1.locator(".free")).to_have_text("12")
    expect(p1.locator(".lot-name")).to_have_text("新港路停车场")
    expect(p1).to_have_class(re.compile(r"\bgreen\b"))
    expect(page.locator('[data-lot="P2"]')).to_have_class(re.compile(r"\bamber\b"))
    expect(page.locator('[data-lot="P3"] .free')).to_have_text("0")
    expect(page.locator('[data-lot="P3"]')).to_have_class(re.compile(r"\bred\b"))
    expect(page.locator('[data-lot="P3"] .badge')).to_have_text("已满")
    expect(page.locator("#boxes-off")).to_have_text("1 / 6")
    expect(page.locator("#alerts-total")).to_have_text("3")
    expect(page.locator('[data-severity="critical"] b')).to_have_text("1")
    expect(page.locator("#town-free")).to_have_text("23 / 114")
    expect(p1.locator(".spark path")).to_have_count(2)
    page.evaluate("window.__sameDocument = true")

    town.car_arrives(free_after=11)

    expect(p1.locator(".free")).to_have_text("11")
    expect(page.locator("#town-free")).to_have_text("22 / 114")
    assert page.evaluate("window.__sameDocument") is True, "the page was reloaded"
    page.set_viewport_size({"width": 1440, "height": 540})
    path = _shot(page, artifacts_dir, "overview", full=False)
    page.set_viewport_size({"width": 1440, "height": 900})
    publish(path, "dashboard-overview.png")


def test_dashboard_lot_page_colours_bays_by_state(
    operator_page: Page, server: Server, town: Town, artifacts_dir: Path
) -> None:
    """On the lot page an occupied bay is red, a free one green, and a change repaints it."""
    page = operator_page
    town.car_arrives(free_after=11)
    page.goto(f"{server.url}/dashboard/")
    page.locator('[data-lot="P1"]').click()
    expect(page).to_have_url(f"{server.url}/dashboard/lot?id=P1")
    _live(page)
    bay = page.locator(f'[data-bay="{ARRIVAL_BAY}"]')
    expect(bay).to_have_attribute("data-state", "occupied")
    expect(bay).to_have_css("background-color", RED)
    expect(page.locator('[data-bay="P1-030"]')).to_have_css("background-color", GREEN)
    expect(page.locator('[data-bay="P1-002"]')).to_have_class("bay occupied flagged")
    expect(page.locator('[data-sign="P1-entry"] .led')).to_have_text("→ 11")
    expect(page.locator("#curve path.series")).to_have_count(2)
    bay.hover()
    expect(page.locator("#tip")).to_contain_text(f"S-{ARRIVAL_BAY}")
    expect(page.locator("#tip")).to_contain_text("87%")

    town.set_bay("P1", ARRIVAL_BAY, "free")

    expect(bay).to_have_css("background-color", GREEN)
    page.locator('[data-bay="P1-002"]').hover()
    expect(page.locator("#tip")).to_contain_text("电量低")
    _shot(page, artifacts_dir, "lot")


def test_dashboard_operator_acknowledges_an_alert(
    operator_page: Page, server: Server, town: Town, artifacts_dir: Path
) -> None:
    """An operator acknowledges an alert from the alerts page; who and when are shown and stored."""
    page = operator_page
    page.goto(f"{server.url}/dashboard/alerts")
    _live(page)
    rows = page.locator("#alerts tbody tr")
    expect(rows).to_have_count(3)
    expect(rows.first).to_have_class("sev-critical")
    row = page.locator("#alerts tbody tr", has_text="早市")
    row.locator("input.note").fill("已通知网格员")
    row.locator('button[data-action="acknowledge"]').click()
    expect(row.locator(".state")).to_have_text("已确认")
    expect(row.locator(".who")).to_contain_text("user:duty")
    token = server.token("duty")
    alerts = httpx.get(
        f"{server.url}/api/v1/alerts?state=acknowledged",
        headers={"Authorization": f"Bearer {token}"},
    ).json()
    assert [(a["alert_id"], a["acknowledged_by"]) for a in alerts] == [
        ("Z1-overstay-1", "user:duty")
    ]
    page.select_option("#f-severity", "critical")
    expect(rows).to_have_count(1)
    page.select_option("#f-severity", "")
    _shot(page, artifacts_dir, "alerts")


def test_dashboard_stream_loss_reconnects_and_says_so(
    operator_page: Page, server: Server, town: Town
) -> None:
    """A dropped stream shows as lost, reconnects by itself, says so, and updates again."""
    page = operator_page
    page.goto(f"{server.url}/dashboard/")
    _live(page)
    server.cut_connections()
    expect(page.locator("#live")).to_have_attribute("data-state", "lost")
    expect(page.locator("#banner")).to_contain_text("中断")
    expect(page.locator("#live")).to_have_attribute("data-state", "back")
    expect(page.locator("#banner")).to_contain_text("重新连接")
    town.car_arrives(free_after=10)
    expect(page.locator('[data-lot="P1"] .free')).to_have_text("10")


def test_dashboard_other_pages_render(
    operator_page: Page, server: Server, town: Town, artifacts_dir: Path
) -> None:
    """Zones, boxes and history pages show their figures; the history CSV downloads."""
    page = operator_page
    page.goto(f"{server.url}/dashboard/zones")
    z1 = page.locator('[data-zone="Z1"]')
    expect(z1).to_contain_text("规范区")
    expect(z1.locator(".state.closing")).to_have_text("宽限期")
    expect(z1.locator(".ladder i.on")).to_have_count(3)
    _shot(page, artifacts_dir, "zones")

    page.goto(f"{server.url}/dashboard/boxes")
    p1 = page.locator('[data-box="box-p1"]')
    expect(p1).to_contain_text("rs485-1")
    expect(p1).to_contain_text("sha256:3f1c9a0d5e7b")
    expect(p1).to_contain_text("S-P1-002")
    expect(page.locator('[data-box="box-z2"] .badge')).to_have_text("离线")
    # its birth says nothing of the site-derived configuration: pending, not reported
    expect(p1.locator(".fleet-state")).to_have_text("待下发")
    # its birth says it went back from release 0.2.0 by itself, and why
    expect(p1.locator(".release-state")).to_have_text("已回滚")
    expect(p1.locator(".release-reason")).to_contain_text("0.2.0: failed its health gate")
    p1.locator('input[name="text"]').fill("满")
    p1.locator('button[data-command="sign-override"]').click()
    expect(p1.locator(".cmds")).to_contain_text("sign-override")
    _shot(page, artifacts_dir, "boxes")

    page.goto(f"{server.url}/dashboard/history?lot=P2")
    expect(page.locator("#h-plot path.series")).to_have_count(1)
    expect(page.locator("#h-heat rect")).to_have_count(7 * 24)
    expect(page.locator("#h-summary")).to_contain_text("个点")
    day_summary = page.locator("#h-summary").text_content()
    page.select_option("#h-range", "week")
    # The week's count differs from the day's (a week is 144 + hourly points, a day 4 an
    # hour): waiting for the change, not only for "points", is waiting for the week's plot.
    expect(page.locator("#h-summary")).not_to_have_text(day_summary or "")
    expect(page.locator("#h-summary")).to_contain_text("个点")
    with page.expect_download() as download:
        page.click("#h-csv")
    text = Path(download.value.path()).read_text()
    assert text.startswith("at,occupied,free,unknown,closed,occupancy\n")
    assert len(text.splitlines()) > 24
    _shot(page, artifacts_dir, "history")


def test_dashboard_roles_language_and_kiosk(
    browser: Browser, server: Server, town: Town, artifacts_dir: Path
) -> None:
    """A viewer sees no actions; an admin manages users; English and kiosk mode work."""
    viewer = _login(browser, server, "watch")
    try:
        viewer.goto(f"{server.url}/dashboard/alerts")
        expect(viewer.locator("#alerts tbody tr")).to_have_count(3)
        expect(viewer.locator("button[data-action]")).to_have_count(0)
        expect(viewer.locator('nav a[href="/dashboard/users"]')).to_be_hidden()
        viewer.goto(f"{server.url}/dashboard/?lang=en&kiosk=1")
        _live(viewer)
        expect(viewer.locator('[data-lot="P3"] .badge')).to_have_text("Full")
        expect(viewer.locator("#alerts-total")).to_have_text("3")
        expect(viewer.locator('[data-lot="P4"] .spark path')).to_have_count(2)
        expect(viewer.locator("nav.nav")).to_be_hidden()
        expect(viewer.locator("#logout")).to_be_hidden()
        _shot(viewer, artifacts_dir, "kiosk-en", full=False)
    finally:
        viewer.context.close()
    admin = _login(browser, server, "chief")
    try:
        admin.goto(f"{server.url}/dashboard/users")
        expect(admin.locator('[data-user="duty"]')).to_contain_text("操作员")
        admin.fill('#add-user input[name="username"]', "night")
        admin.fill('#add-user input[name="password"]', "night-shift-pw")
        admin.click('#add-user button[type="submit"]')
        expect(admin.locator('[data-user="night"]')).to_contain_text("查看员")
        _shot(admin, artifacts_dir, "users")
    finally:
        admin.context.close()
