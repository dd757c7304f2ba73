"""Central's MQTT side against a real Mosquitto: acks after commit, status, shared ingest."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from fastapi.testclient import TestClient
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import func, select

from central.app import create_app
from central.db import schema as t
from central.db.engine import make_engine
from central.db.migrate import upgrade
from central.ingest.mqtt import CentralMqtt
from central.ingest.service import IngestWriter
from central.settings import CentralSettings
from central.sites.service import sync_site
from firmware_protocols.uplink import CommandReply, Topics, central_status_topic, encode_payload
from firmware_protocols.uplink.models import CommandName
from simulators.broker import MosquittoBroker
from site_model.site import SiteIndex, load_site
from tests.central.helpers import (
    SITE,
    SITE_FILE,
    bay_event,
    birth,
    death,
    lot_state,
    synced_sqlite,
    wait_for,
)

P1 = Topics(SITE, "box-p1")


class Box:
    """A bare paho client playing a box: publishes, and records what central sends it."""

    def __init__(self, broker: MosquittoBroker, box_id: str = "box-p1") -> None:
        self.topics = Topics(SITE, box_id)
        self.received: list[tuple[str, dict[str, object]]] = []
        self.lock = threading.Lock()
        self.client = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
        self.client.on_message = self._on_message
        granted = threading.Event()
        self.client.on_subscribe = lambda *_args: granted.set()
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        filters = (self.topics.ack, self.topics.cmd_filter, central_status_topic(SITE))
        self.client.subscribe([(topic, 1) for topic in filters])
        # Granted before a test publishes to it: a command sent earlier reaches nobody.
        assert granted.wait(10), "the broker did not grant the box's subscriptions"

    def _on_message(self, _c: object, _u: object, msg: paho.MQTTMessage) -> None:
        with self.lock:
            self.received.append((msg.topic, json.loads(msg.payload)))

    def publish(self, topic: str, payload: object, retain: bool = False) -> None:
        data = payload if isinstance(payload, bytes) else encode_payload(payload)  # type: ignore[arg-type]
        self.client.publish(topic, data, qos=1, retain=retain).wait_for_publish(5)

    def last(self, topic: str) -> dict[str, object] | None:
        with self.lock:
            found = [p for tp, p in self.received if tp == topic]
        return found[-1] if found else None

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture
def app_client(mosquitto: MosquittoBroker, tmp_path: Path) -> Iterator[TestClient]:
    settings = CentralSettings(
        site_file=SITE_FILE,
        database_url=f"sqlite:///{tmp_path / 'central.db'}",
        mqtt_url=f"mqtt://{mosquitto.host}:{mosquitto.port}",
        instance="central-a",
        lots_cache_s=0,
    )
    with TestClient(create_app(settings)) as client:
        wait_for(lambda: client.get("/healthz").json()["mqtt"], what="central to connect")
        yield client


def test_ingest_acks_after_commit_and_quarantines(
    app_client: TestClient, mosquitto: MosquittoBroker
) -> None:
    """Events come back as a retained ack equal to what the store holds; garbage is kept."""
    box = Box(mosquitto)
    try:
        wait_for(lambda: box.last(central_status_topic(SITE)), what="central status")
        assert box.last(central_status_topic(SITE))["state"] == "online"  # type: ignore[index]
        box.publish(P1.status, birth("box-p1"), retain=True)
        box.publish(P1.lot("P1"), lot_state(free=6, occupied=4), retain=True)
        for seq in (1, 2, 3, 5):
            box.publish(P1.event, bay_event("box-p1", seq, "P1-001"))
        box.publish(P1.event, b"{not json")
        wait_for(lambda: (box.last(P1.ack) or {}).get("acked_seq") == 3, what="ack 3")
        # Acks rise with the commits (how the batches fall is the broker's and the clock's:
        # seq 1 alone may be acked first) and never pass the hole at 4.
        acks = [int(p["acked_seq"]) for tp, p in box.received if tp == P1.ack]  # type: ignore[call-overload]
        assert acks == sorted(acks) and set(acks) <= {1, 2, 3}, acks
        box.publish(P1.event, bay_event("box-p1", 4, "P1-001", historical=True))
        wait_for(lambda: (box.last(P1.ack) or {}).get("acked_seq") == 5, what="ack 5")
        central = app_client.app.state.central  # type: ignore[attr-defined]
        with central.engine.connect() as conn:
            held = conn.execute(select(func.count()).select_from(t.events)).scalar()
            quarantined = conn.execute(select(t.quarantine.c.reason)).scalars().all()
        assert held == 5
        assert len(quarantined) == 1 and "invalid" in quarantined[0]
        lot = app_client.get("/api/v1/lots/P1").json()
        assert (lot["free"], lot["stale"]) == (6, False)
        # The box dies (its Last Will): its lot turns stale and shows no free space.
        box.publish(P1.status, death("box-p1"), retain=True)
        wait_for(lambda: app_client.get("/api/v1/lots/P1").json()["stale"], what="stale lot")
        assert app_client.get("/api/v1/lots/P1").json()["free"] == 0
    finally:
        box.close()


def test_ingest_central_status_last_will(mosquitto: MosquittoBroker, tmp_path: Path) -> None:
    """Central's retained status is online while it runs and offline after it stops."""
    engine, site = synced_sqlite(tmp_path / "c.db")
    settings = CentralSettings(
        site_file=SITE_FILE, mqtt_url=f"mqtt://127.0.0.1:{mosquitto.port}", instance="c1"
    )
    link = CentralMqtt(
        settings=settings, site_id=SITE, writer=IngestWriter(engine=engine, site=SiteIndex.of(site))
    )
    box = Box(mosquitto)
    try:
        link.start()
        assert link.wait_connected(10)
        wait_for(
            lambda: (box.last(central_status_topic(SITE)) or {}).get("state") == "online",
            what="online",
        )
        link.stop()
        wait_for(
            lambda: (box.last(central_status_topic(SITE)) or {}).get("state") == "offline",
            what="offline",
        )
    finally:
        box.close()
        engine.dispose()


def test_ingest_command_round_trip(app_client: TestClient, mosquitto: MosquittoBroker) -> None:
    """POST a command: the box gets it on cmd/, its reply is shown with the command."""
    from central.auth.models import Role
    from central.auth.service import add_user

    central = app_client.app.state.central  # type: ignore[attr-defined]
    add_user(
        central.engine, username="olga", password="olga-password", role=Role.OPERATOR, actor="test"
    )
    token = app_client.post(
        "/api/v1/auth/login", data={"username": "olga", "password": "olga-password"}
    ).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    box = Box(mosquitto)
    try:
        sent = app_client.post(
            "/api/v1/boxes/box-p1/commands",
            json={"body": {"command": "close-bay", "bay_id": "P1-003", "reason": "works"}},
            headers=headers,
        )
        assert sent.status_code == 202, sent.text
        command = sent.json()
        assert command["state"] == "sent" and command["issued_by"] == "user:olga"
        got = wait_for(lambda: box.last(P1.cmd("close-bay")), what="the command")
        assert got["command_id"] == command["id"]
        import datetime as dt
        import uuid

        box.publish(
            P1.reply("close-bay"),
            CommandReply(
                command_id=uuid.UUID(command["id"]),
                command=CommandName.CLOSE_BAY,
                ok=True,
                ts=dt.datetime.now(dt.UTC),
            ),
        )
        answered = wait_for(
            lambda: (
                (r := app_client.get(f"/api/v1/commands/{command['id']}", headers=headers).json())[
                    "state"
                ]
                == "ok"
                and r
            ),
            what="the reply",
        )
        assert answered["reply"]["ok"] is True
    finally:
        box.close()


@pytest.mark.parametrize("writer_process", [True, False], ids=["writer-process", "writer-thread"])
def test_ingest_shared_group_keeps_the_watermark(
    mosquitto: MosquittoBroker, tmp_path: Path, writer_process: bool
) -> None:
    """Two processes on one $share group store every event once and ack the last seq."""
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    engine = make_engine(url)
    upgrade(engine)
    site = load_site(SITE_FILE)
    sync_site(engine, site)
    links = []
    for name in ("a", "b"):
        settings = CentralSettings(
            site_file=SITE_FILE,
            database_url=url,
            ingest_group="ingest",
            mqtt_url=f"mqtt://127.0.0.1:{mosquitto.port}",
            instance=name,
            batch_max=50,
            batch_delay_s=0.01,
            ack_sweep_interval_s=0.2,
        )
        writer = IngestWriter(engine=make_engine(url), site=SiteIndex.of(site))
        links.append(
            CentralMqtt(
                settings=settings, site_id=SITE, writer=writer, writer_process=writer_process
            )
        )
    box = Box(mosquitto)
    try:
        for link in links:
            link.start()
            assert link.wait_connected(10)
        total = 2000
        for seq in range(1, total + 1):
            box.client.publish(P1.event, encode_payload(bay_event("box-p1", seq, "P1-001")), qos=1)
        wait_for(
            lambda: (box.last(P1.ack) or {}).get("acked_seq") == total,
            timeout=30,
            what=f"ack {total}",
        )
        with engine.connect() as conn:
            count = conn.execute(select(func.count()).select_from(t.events)).scalar()
        assert count == total
        split = [link.writer.stats.events_stored for link in links]
        assert sum(split) == total and min(split) > 0, split
    finally:
        box.close()
        for link in links:
            link.stop()
        engine.dispose()


def test_ingest_writer_process_restarts_after_dying(
    mosquitto: MosquittoBroker, tmp_path: Path
) -> None:
    """A killed writer process is replaced at the next batch; nothing stored is lost."""
    url = f"sqlite:///{tmp_path / 'c.db'}"
    engine = make_engine(url)
    upgrade(engine)
    site = load_site(SITE_FILE)
    sync_site(engine, site)
    settings = CentralSettings(
        site_file=SITE_FILE,
        database_url=url,
        mqtt_url=f"mqtt://127.0.0.1:{mosquitto.port}",
        instance="c1",
        batch_delay_s=0.01,
    )
    link = CentralMqtt(
        settings=settings, site_id=SITE, writer=IngestWriter(engine=engine, site=SiteIndex.of(site))
    )
    box = Box(mosquitto)
    try:
        link.start()
        # Central subscribes before it says online: once the box sees that, nothing is lost.
        wait_for(
            lambda: (box.last(central_status_topic(SITE)) or {}).get("state") == "online",
            what="online",
        )
        for seq in range(1, 11):
            box.client.publish(P1.event, encode_payload(bay_event("box-p1", seq, "P1-001")), qos=1)
        wait_for(lambda: (box.last(P1.ack) or {}).get("acked_seq") == 10, what="ack 10")
        handle = link.writer_process
        assert handle is not None and handle.starts == 1
        child = handle._process
        os.kill(child.pid, signal.SIGKILL)
        child.join(5)
        for seq in range(11, 21):
            box.client.publish(P1.event, encode_payload(bay_event("box-p1", seq, "P1-001")), qos=1)
        wait_for(lambda: (box.last(P1.ack) or {}).get("acked_seq") == 20, what="ack 20")
        assert handle.starts == 2
        with engine.connect() as conn:
            count = conn.execute(select(func.count()).select_from(t.events)).scalar()
        assert count == 20
        assert link.writer.stats.events_stored == 20
    finally:
        box.close()
        link.stop()
        engine.dispose()


def test_a_county_centrals_death_reaches_every_towns_boxes(
    mosquitto: MosquittoBroker, tmp_path: Path
) -> None:
    """The Last Will names one topic, the first town's. A county's central that died without
    a clean stop says ``offline`` on every other town's status topic when it is back, before
    ``online``: their boxes resend what it never acked at once (a box resends on offline ->
    online), not at their resend timer."""
    engine, site = synced_sqlite(tmp_path / "c.db")
    settings = CentralSettings(
        site_file=SITE_FILE, mqtt_url=f"mqtt://127.0.0.1:{mosquitto.port}", instance="c1"
    )
    link = CentralMqtt(
        settings=settings,
        site_id=SITE,
        site_ids=[SITE, "othertown"],
        writer=IngestWriter(engine=engine, site=SiteIndex.of(site)),
        writer_process=False,
    )
    states: dict[str, list[str]] = {SITE: [], "othertown": []}
    watcher = paho.Client(CallbackAPIVersion.VERSION2)

    def on_message(_c: object, _u: object, msg: paho.MQTTMessage) -> None:
        states[msg.topic.split("/")[2]].append(json.loads(msg.payload)["state"])

    watcher.on_message = on_message
    watcher.connect(mosquitto.host, mosquitto.port)
    watcher.loop_start()
    for town in states:
        watcher.subscribe(central_status_topic(town), qos=1)
    try:
        link.start()
        assert link.wait_connected(10)
        wait_for(lambda: states["othertown"][-1:] == ["online"], what="online")
        before = {town: len(seen) for town, seen in states.items()}
        link.connected.clear()
        sock = link.client.socket()
        assert sock is not None
        sock.shutdown(socket.SHUT_RDWR)  # no DISCONNECT: the broker publishes the will
        assert link.wait_connected(15)  # paho connects again
        for town, seen in states.items():
            start = before[town]
            wait_for(
                lambda seen=seen, start=start: seen[-1:] == ["online"] and len(seen) > start + 1,
                what=f"{town}: offline, then online",
                timeout=10,
            )
            # offline first, online last: each connect says offline, then online (paho may
            # connect more than once after the cut; a publish in flight may come again)
            after = seen[start:]
            assert after[0] == "offline" and after[-1] == "online", (town, seen)
    finally:
        watcher.loop_stop()
        watcher.disconnect()
        link.stop()
        engine.dispose()


def test_a_dead_process_is_told_to_every_towns_boxes_by_a_survivor(
    mosquitto: MosquittoBroker, tmp_path: Path
) -> None:
    """Two processes of a county's central. One dies (kill -9): its Last Will says
    ``offline`` on one town's topic only, and the events it held wait for their boxes'
    resend timer (30 s) in every other town. The survivor passes the death on: ``offline``
    (the dead instance's), then its own ``online``, on every town, so every box resends at
    once; the retained status ends ``online``."""
    engine, site = synced_sqlite(tmp_path / "c.db")
    towns = [SITE, "othertown"]

    def link(instance: str) -> CentralMqtt:
        settings = CentralSettings(
            site_file=SITE_FILE, mqtt_url=mosquitto.url, instance=instance, ingest_group="g"
        )
        writer = IngestWriter(engine=engine, site=SiteIndex.of(site), shared=True)
        return CentralMqtt(
            settings=settings, site_id=SITE, site_ids=towns, writer=writer, writer_process=False
        )

    seen: dict[str, list[tuple[str, str]]] = {town: [] for town in towns}
    watcher = paho.Client(CallbackAPIVersion.VERSION2)

    def on_message(_c: object, _u: object, msg: paho.MQTTMessage) -> None:
        status = json.loads(msg.payload)
        seen[msg.topic.split("/")[2]].append((status["state"], status["instance"]))

    watcher.on_message = on_message
    watcher.connect(mosquitto.host, mosquitto.port)
    watcher.loop_start()
    for town in towns:
        watcher.subscribe(central_status_topic(town), qos=1)
    doomed, survivor = link("c1"), link("c2")
    try:
        for process in (doomed, survivor):
            process.start()
            assert process.wait_connected(10)
        wait_for(lambda: all(s[-1:] == [("online", "c2")] for s in seen.values()), what="up")
        before = {town: len(s) for town, s in seen.items()}
        doomed.client.loop_stop()  # dead: no reconnect, no DISCONNECT
        sock = doomed.client.socket()
        assert sock is not None
        sock.shutdown(socket.SHUT_RDWR)
        for town in towns:
            wait_for(
                lambda town=town: (
                    ("offline", "c1") in seen[town][before[town] :]
                    and seen[town][-1][0] == "online"
                ),
                what=f"{town}: c1 offline, then online",
                timeout=10,
            )
            after = seen[town][before[town] :]
            first_offline = after.index(("offline", "c1"))
            assert ("online", "c2") in after[first_offline:], (town, after)
    finally:
        watcher.loop_stop()
        watcher.disconnect()
        survivor.stop()
        with contextlib.suppress(Exception):
            doomed.stop(timeout=1)
        engine.dispose()
