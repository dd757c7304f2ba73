"""End to end with the real central: simulators -> box -> mosquitto -> central -> HTTP API.

Every peer is real: the concentrator simulator writes frames on a pty, an ``EdgeBox`` reads
them and drives a pymodbus sign simulator, publishes through a Mosquitto started for the
test, and central (``create_app`` served by uvicorn on a free port, SQLite, its ingest
writer in its own process) stores the events and serves them. A watcher subscribed to the
box's ack topic checks every watermark it sees against the store at that moment: an ack
must never cover an event central does not hold, so the box never deletes one too early.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as paho
import pytest
import uvicorn
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import Engine, func, select

from central.app import create_app
from central.auth.models import Role
from central.auth.service import add_user
from central.context import Central
from central.db import schema as t
from central.settings import CentralSettings
from edge.runtime import EdgeBox
from firmware_protocols.uplink import Topics
from simulators.broker import MosquittoBroker, free_port
from simulators.concentrator import ConcentratorSimulator
from simulators.signs import SignSimulator
from tests.edge.test_box_end_to_end import SENSORS, box_config, eventually
from tests.edge.test_uplink import bay_event, make_box

SITE = "xigang"
BOX = "box-p1"

SITE_TOML = """\
[site]
id = "xigang"
name = "Xigang (test)"
timezone = "Asia/Shanghai"

[boxes.box-p1]
name = "P1 lot box"

[boxes.box-p2]
name = "P2 lot box"

[lots.P1]
name = "Market car park"
box_id = "box-p1"
bays = ["B001", "B002", "B003", "B004"]

[lots.P2]
name = "Station car park"
box_id = "box-p2"
bays = 50
"""


class CentralServer:
    """``create_app(settings)`` under uvicorn in a thread of the test process."""

    def __init__(self, settings: CentralSettings) -> None:
        self.port = free_port()
        self.app = create_app(settings)
        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="central", daemon=True)
        self.url = f"http://127.0.0.1:{self.port}"

    @property
    def central(self) -> Central:
        state: Central = self.app.state.central
        return state

    async def start(self) -> CentralServer:
        self.thread.start()
        await eventually(lambda: self.server.started, within=30)
        return self

    async def stop(self) -> None:
        self.server.should_exit = True
        await asyncio.to_thread(self.thread.join, 30)


@dataclass
class AckWatcher:
    """Subscribes to a box's ack topic; each watermark is checked against the store."""

    broker: MosquittoBroker
    box_id: str
    engine: Engine | None = None
    seen: list[int] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    client: paho.Client = field(init=False)

    def __post_init__(self) -> None:
        self.client = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
        self.client.on_message = self._on_message
        self.client.on_connect = lambda c, *_: c.subscribe(Topics(SITE, self.box_id).ack, qos=1)
        self.client.reconnect_delay_set(min_delay=1, max_delay=2)
        self.client.connect(self.broker.host, self.broker.port)
        self.client.loop_start()

    def _on_message(self, _c: object, _u: object, msg: paho.MQTTMessage) -> None:
        if not msg.payload or self.engine is None:
            return
        acked = int(json.loads(msg.payload)["acked_seq"])
        with self.engine.connect() as conn:
            held = conn.execute(
                select(func.count()).where(
                    t.events.c.box_id == self.box_id, t.events.c.seq <= acked
                )
            ).scalar()
        self.seen.append(acked)
        if held != acked:
            self.violations.append(f"ack {acked} published while the store held {held} of them")

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def settings_for(tmp_path: Path, broker: MosquittoBroker) -> CentralSettings:
    site_file = tmp_path / "site.toml"
    site_file.write_text(SITE_TOML)
    return CentralSettings(
        site_file=site_file,
        database_url=f"sqlite:///{tmp_path / 'central.db'}",
        mqtt_url=f"mqtt://{broker.host}:{broker.port}",
        instance="central-e2e",
        lots_cache_s=0,
        batch_delay_s=0.01,
    )


@pytest.fixture
def watcher(mosquitto: MosquittoBroker) -> Iterator[AckWatcher]:
    w = AckWatcher(mosquitto, BOX)
    yield w
    w.close()


@contextlib.asynccontextmanager
async def edge_box(tmp_path: Path, broker: MosquittoBroker) -> AsyncIterator[tuple[EdgeBox, Any]]:
    async with (
        ConcentratorSimulator(sensors=SENSORS, link=tmp_path / "ttyCONC") as sim,
        SignSimulator(units={1: "parkgrid-guidance"}, tcp=("127.0.0.1", 0)) as signs,
    ):
        assert signs.port is not None
        box = EdgeBox(box_config(tmp_path, broker, sim.path, signs.port))
        task = asyncio.create_task(box.run())
        try:
            await eventually(lambda: box.uplink.live)
            yield box, sim
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            box.outbox.close()


async def test_end_to_end_car_arrival_reaches_the_api_and_the_outbox_waits_for_central(
    tmp_path: Path, mosquitto: MosquittoBroker, watcher: AckWatcher
) -> None:
    """With central down the box keeps its events; once central runs they are stored, the
    API shows the car, the outbox empties, and no ack ever covered an event not stored."""
    async with edge_box(tmp_path, mosquitto) as (box, sim):
        for sensor in SENSORS:
            await sim.send_status(sensor, occupied=False)
        await sim.send_status("00A10001", occupied=True)
        await eventually(lambda: box.occupancy.lot_snapshot("P1", 0).occupied == 1)
        await eventually(lambda: box.outbox.depth() > 0 and box.outbox.queued == 0)
        # Central is not running: nothing acks, so nothing leaves the outbox, also after
        # the box has published (and re-published: resend_after_s is 2) its events.
        held = box.outbox.depth()
        await asyncio.sleep(2.5)
        assert box.outbox.depth() >= held and box.uplink.acked_seq == 0

        server = await CentralServer(settings_for(tmp_path, mosquitto)).start()
        try:
            central = server.central
            watcher.engine = central.engine
            add_user(
                central.engine,
                username="vera",
                password="vera-password",
                role=Role.VIEWER,
                actor="test",
            )
            async with httpx.AsyncClient(base_url=server.url, timeout=5) as http:
                token = (
                    await http.post(
                        "/api/v1/auth/login",
                        data={"username": "vera", "password": "vera-password"},
                    )
                ).json()["access_token"]
                headers = {"Authorization": f"Bearer {token}"}

                last: dict[str, Any] = {}
                deadline = asyncio.get_running_loop().time() + 20
                while not (last.get("occupied") == 1 and last.get("free") == 3):
                    assert asyncio.get_running_loop().time() < deadline, last
                    last = (await http.get("/api/v1/lots/P1")).json()
                    await asyncio.sleep(0.1)
                assert last["stale"] is False and last["capacity"] == 4
                bays = (await http.get("/api/v1/lots/P1/bays", headers=headers)).json()
                assert {b["id"]: b["state"] for b in bays}["B001"] == "occupied"

            # The box's outbox empties, and only once central holds every event.
            await eventually(lambda: box.outbox.depth() == 0, within=20)
            last_seq = box.outbox.last_seq
            with central.engine.connect() as conn:
                stored = (
                    conn.execute(
                        select(t.events.c.seq)
                        .where(t.events.c.box_id == BOX)
                        .order_by(t.events.c.seq)
                    )
                    .scalars()
                    .all()
                )
                arrival = (
                    conn.execute(
                        select(t.events.c.seq).where(
                            t.events.c.bay_id == "B001", t.events.c.to_state == "occupied"
                        )
                    )
                    .scalars()
                    .all()
                )
            assert stored == list(range(1, last_seq + 1))
            assert len(arrival) == 1
            await eventually(lambda: bool(watcher.seen) and watcher.seen[-1] == last_seq)
            assert watcher.violations == []
        finally:
            await server.stop()


async def test_end_to_end_uplink_broker_killed_mid_stream_real_central(
    tmp_path: Path, mosquitto: MosquittoBroker, watcher: AckWatcher
) -> None:
    """The uplink's key delivery case against the real central: SIGKILL of a broker without
    persistence mid-stream; every seq is stored exactly once and the outbox empties."""
    server = await CentralServer(settings_for(tmp_path, mosquitto)).start()
    box = make_box(tmp_path, mosquitto, resend_after_s=2)
    try:
        central = server.central
        watcher.engine = central.engine
        await eventually(lambda: central.mqtt is not None and central.mqtt.connected.is_set())
        uplink = await box.start()
        for i in range(150):
            uplink.emit(bay_event(i))
            if i % 10 == 0:
                await asyncio.sleep(0.005)
        mosquitto.kill()
        for i in range(150, 250):
            uplink.emit(bay_event(i))
        await asyncio.sleep(0.2)
        mosquitto.start()
        for i in range(250, 300):
            uplink.emit(bay_event(i))
            await asyncio.sleep(0.002)

        def stored() -> list[int]:
            with central.engine.connect() as conn:
                return list(
                    conn.execute(
                        select(t.events.c.seq)
                        .where(t.events.c.box_id == BOX)
                        .order_by(t.events.c.seq)
                    ).scalars()
                )

        await eventually(lambda: stored() == list(range(1, 301)), within=30)
        await eventually(lambda: box.outbox.depth() == 0, within=15)
        assert uplink.acked_seq == 300 and uplink.stats().disconnects >= 1
        assert watcher.violations == []
    finally:
        await box.stop()
        box.outbox.close()
        await server.stop()
