"""The demo's embedded broker (amqtt in a child process) with our clients and our programs.

Clients speak MQTT 3.1.1, as the edge uplink (its ``MqttLink``) and central without an
ingest group (paho) do. One broker serves the module; every test uses topics of its own.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import func, select

from central.db import schema as t
from central.db.engine import make_engine
from central.db.migrate import upgrade
from central.ingest.mqtt import CentralMqtt
from central.ingest.service import IngestWriter
from central.settings import CentralSettings
from central.sites.service import sync_site
from edge.agents.uplink.mqtt_link import LinkSettings, MqttLink
from edge.config import parse_config
from edge.runtime import EdgeBox
from firmware_protocols.uplink import Topics
from simulators.concentrator import ConcentratorSimulator
from simulators.embedded_broker import EmbeddedBroker
from site_model.site import SiteIndex, load_site
from tests.central.helpers import SITE_FILE
from tests.edge.test_box_end_to_end import SENSORS, bay_events, eventually, lot_states, rig


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker(workdir=tmp_path_factory.mktemp("amqtt")) as broker:
        yield broker


def fresh_topic() -> str:
    return f"test/{uuid.uuid4().hex[:10]}"


class PahoClient:
    """A paho MQTT 3.1.1 client that records what it receives."""

    def __init__(self, broker: EmbeddedBroker, *, will: tuple[str, bytes] | None = None) -> None:
        self.received: list[paho.MQTTMessage] = []
        self.lock = threading.Lock()
        self.connected = threading.Event()
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=uuid.uuid4().hex[:12], protocol=paho.MQTTv311
        )
        if will is not None:
            self.client.will_set(will[0], will[1], qos=1, retain=True)
        self.client.on_connect = lambda *_: self.connected.set()
        self.client.on_message = self._on_message
        self.client.connect(broker.host, broker.port, keepalive=10)
        self.client.loop_start()
        assert self.connected.wait(10), "no CONNACK"

    def _on_message(self, _c: object, _u: object, msg: paho.MQTTMessage) -> None:
        with self.lock:
            self.received.append(msg)

    def subscribe(self, topic: str) -> None:
        done = threading.Event()
        self.client.on_subscribe = lambda *_: done.set()
        self.client.subscribe(topic, qos=1)
        assert done.wait(10), "no SUBACK"

    def messages(self) -> list[paho.MQTTMessage]:
        with self.lock:
            return list(self.received)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def wait_until(check: Callable[[], Any], within: float = 15.0) -> Any:
    deadline = time.monotonic() + within
    while not (value := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within} s")
        time.sleep(0.02)
    return value


def box_link(embedded: EmbeddedBroker, on_message: Callable[[str, bytes], None]) -> MqttLink:
    """The box's MQTT adapter on the embedded broker."""
    settings = LinkSettings(
        host=embedded.host, port=embedded.port, client_id=f"box-{uuid.uuid4().hex[:10]}"
    )
    return MqttLink(settings, on_message=on_message)


async def test_embedded_broker_qos1_in_order_between_paho_and_the_box_link(
    embedded: EmbeddedBroker,
) -> None:
    """QoS 1 both ways: every message once, in order, paho to the box's link and back."""
    count = 400
    to_box, to_paho = fresh_topic(), fresh_topic()
    sub = PahoClient(embedded)
    sub.subscribe(to_paho)
    pub = PahoClient(embedded)
    got: list[int] = []
    all_in = asyncio.Event()

    def on_message(_topic: str, payload: bytes) -> None:
        got.append(int(payload))
        if len(got) == count:
            all_in.set()

    try:
        async with box_link(embedded, on_message) as link:
            await link.subscribe([to_box])
            infos = [pub.client.publish(to_box, str(i).encode(), qos=1) for i in range(count)]
            async with asyncio.timeout(30):
                await all_in.wait()
            for i in range(count):
                await link.publish(to_paho, str(i).encode(), retain=False)
        await asyncio.to_thread(wait_until, lambda: len(sub.messages()) >= count)
        assert got == list(range(count))
        assert all(info.is_published() for info in infos)
        back = [(int(m.payload), m.qos) for m in sub.messages()]
        assert back == [(i, 1) for i in range(count)]
    finally:
        sub.close()
        pub.close()


async def test_embedded_broker_keeps_the_latest_retained_message_until_cleared(
    embedded: EmbeddedBroker,
) -> None:
    """A later subscriber gets only the latest retained message; an empty one clears it."""
    topic = fresh_topic()
    pub = PahoClient(embedded)
    try:
        for body in (b"first", b"latest"):
            pub.client.publish(topic, body, qos=1, retain=True).wait_for_publish(10)
        got: list[bytes] = []
        one = asyncio.Event()

        def on_message(_topic: str, payload: bytes) -> None:
            got.append(payload)
            one.set()

        async with box_link(embedded, on_message) as link:
            await link.subscribe([topic])
            async with asyncio.timeout(10):
                await one.wait()
        assert got == [b"latest"]
        pub.client.publish(topic, b"", qos=1, retain=True).wait_for_publish(10)
        late = PahoClient(embedded)
        late.subscribe(topic)
        await asyncio.sleep(0.5)  # a retained message would have come with the SUBACK
        assert late.messages() == []
        late.close()
    finally:
        pub.close()


BOX_LINK_WITH_WILL = """
import asyncio, sys
from edge.agents.uplink.mqtt_link import LinkSettings, MqttLink
async def main():
    settings = LinkSettings(host=sys.argv[1], port=int(sys.argv[2]), client_id="box-will",
                            will_topic=sys.argv[3], will_payload=b"offline")
    async with MqttLink(settings, on_message=lambda t, p: None):
        print("connected", flush=True)
        await asyncio.sleep(60)
asyncio.run(main())
"""


@pytest.mark.parametrize("client", ["paho", "box-link"])
def test_embedded_broker_publishes_a_retained_last_will(
    embedded: EmbeddedBroker, client: str
) -> None:
    """A client gone without DISCONNECT: its will reaches a subscriber and stays retained."""
    topic = fresh_topic()
    watcher = PahoClient(embedded)
    watcher.subscribe(topic)
    try:
        if client == "paho":
            dying = PahoClient(embedded, will=(topic, b"offline"))
            dying.client.loop_stop()
            sock = dying.client.socket()
            assert sock is not None
            sock.close()  # no DISCONNECT: as a crash or a cut network
        else:
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    BOX_LINK_WITH_WILL,
                    embedded.host,
                    str(embedded.port),
                    topic,
                ],
                stdout=subprocess.PIPE,
            )
            assert proc.stdout is not None and proc.stdout.readline() == b"connected\n"
            proc.kill()
            proc.wait(10)
        wait_until(lambda: watcher.messages())
        assert [m.payload for m in watcher.messages()] == [b"offline"]
        late = PahoClient(embedded)
        late.subscribe(topic)
        retained = wait_until(late.messages)
        assert [(m.payload, m.retain) for m in retained] == [(b"offline", True)]
        late.close()
    finally:
        watcher.close()


def test_embedded_broker_sends_retained_messages_only_for_the_clients_filters(
    embedded: EmbeddedBroker,
) -> None:
    """A connecting client gets no retained message of another client's filter (amqtt fix)."""
    theirs = fresh_topic()
    other = PahoClient(embedded)
    other.subscribe(theirs + "/#")
    other.client.publish(theirs + "/state", b"kept", qos=1, retain=True).wait_for_publish(10)
    mine = fresh_topic()
    newcomer = PahoClient(embedded)
    newcomer.subscribe(mine)
    newcomer.client.publish(mine, b"mine", qos=1).wait_for_publish(10)
    try:
        wait_until(newcomer.messages)
        time.sleep(0.3)
        assert [(m.topic, m.payload) for m in newcomer.messages()] == [(mine, b"mine")]
    finally:
        newcomer.close()
        other.close()


async def test_embedded_broker_carries_the_edge_box_uplink(
    tmp_path: Path, embedded: EmbeddedBroker
) -> None:
    """The real box against amqtt: a car arriving reaches the subscriber, which acks it."""
    async with rig(tmp_path, embedded) as r:  # type: ignore[arg-type]
        for sensor in SENSORS:
            await r.sim.send_status(sensor, occupied=False)
        await r.sim.send_status("00A10001", occupied=True)
        await eventually(
            lambda: any(
                b.bay_id == "B001" and b.to_state == "occupied" for b in bay_events(r.central)
            )
        )
        await eventually(
            lambda: any(s.occupied == 1 and s.free == 3 for s in lot_states(r.central))
        )
        await eventually(lambda: r.box.outbox.depth() == 0)


async def test_embedded_broker_carries_central_ingest_and_its_ack(
    tmp_path: Path, embedded: EmbeddedBroker
) -> None:
    """Central (MQTT 3.1.1) stores the real box's event and the box receives the ack."""
    site = load_site(SITE_FILE)
    engine = make_engine(f"sqlite:///{tmp_path / 'central.db'}")
    upgrade(engine)
    sync_site(engine, site)
    settings = CentralSettings(site_file=SITE_FILE, mqtt_url=embedded.url, instance="amqtt")
    writer = IngestWriter(engine=engine, site=SiteIndex.of(site))
    link = CentralMqtt(settings=settings, site_id=site.id, writer=writer, writer_process=False)
    link.start()
    sensors = {f"00B200{i:02d}": "nwave-nps" for i in range(1, 11)}  # P1's ten bays
    config = parse_config(
        {
            "site": site.id,
            "box_id": "box-p1",
            "data_dir": str(tmp_path / "box"),
            "mqtt": {"url": embedded.url, "keepalive_s": 5},
            "serial": {"conc": {"device": str(tmp_path / "ttyCONC"), "protocol": "concentrator"}},
            "lots": {
                "P1": {
                    "bays": {
                        f"P1-{i:03d}": {"sensor": sensor, "format": fmt}
                        for i, (sensor, fmt) in enumerate(sensors.items(), start=1)
                    }
                }
            },
            "sensors": {"heartbeat_timeout_s": 600},
            "health": {"listen": "127.0.0.1:0"},
        }
    )
    acks = PahoClient(embedded)
    acks.subscribe(Topics(site.id, "box-p1").ack)
    try:
        assert link.wait_connected(10)
        async with ConcentratorSimulator(sensors=sensors, link=tmp_path / "ttyCONC") as sim:
            box = EdgeBox(config)
            task = asyncio.create_task(box.run())
            try:
                await eventually(lambda: box.uplink.live)
                await sim.send_status("00B20001", occupied=True)
                # The ack watermark came back: the box dropped what central stored.
                await eventually(lambda: box.outbox.last_seq >= 1 and box.outbox.depth() == 0)
                last_seq = box.outbox.last_seq
                # Above a retained ack of an earlier line for this box (the module's broker
                # keeps retained messages), the box's line starts higher than 1.
                first_seq = box.outbox.line.first
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
                box.outbox.close()
        with engine.connect() as conn:
            kinds = conn.execute(
                select(t.events.c.kind).where(t.events.c.box_id == "box-p1")
            ).scalars()
            assert "bay_changed" in set(kinds)
            held = conn.execute(select(func.count()).select_from(t.events)).scalar()
        assert held == last_seq - first_seq + 1
        acked = [json.loads(m.payload)["acked_seq"] for m in wait_until(acks.messages)]
        assert acked[-1] == last_seq
    finally:
        acks.close()
        link.stop()
        engine.dispose()
