"""Central's MQTT link is "connected" (``/healthz`` ``mqtt: true``, ``wait_connected``) only
once the broker has granted its subscriptions.

Found by the live-first replay test under load: the link said connected as soon as the
broker's CONNACK came, while its SUBSCRIBE was still on the way; a box that published in
between (it saw central up) lost its messages to nobody, 202 of 5,000 in one run. Nothing
is lost for good in the field (a box resends what central has not acked), but readiness
that is not true sends a balancer's or a technician's traffic to a central that does not
yet hear the town. Here a relay holds central's packets after its CONNECT for a while, so
the broker's grant is late as it was under load.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import Engine, create_engine

from central.db.migrate import upgrade
from central.ingest.mqtt import CentralMqtt
from central.ingest.service import IngestWriter
from central.settings import CentralSettings
from firmware_protocols.uplink import Topics, encode_payload
from simulators.broker import MosquittoBroker
from simulators.embedded_broker import EmbeddedBroker, write_access
from site_model.site import SiteIndex, load_site
from tests.central.helpers import SITE, SITE_FILE, bay_event, synced_sqlite, wait_for

HOLD_S = 1.5


class HoldingRelay:
    """A TCP relay to ``upstream`` that passes the client's first packet (its CONNECT) at
    once and holds everything after it for ``hold_s``; the answers pass at once."""

    def __init__(self, upstream: tuple[str, int], hold_s: float) -> None:
        self.upstream = upstream
        self.hold_s = hold_s
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.listener.getsockname()[1]
        self._sockets: list[socket.socket] = [self.listener]
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                client, _ = self.listener.accept()
                upstream = socket.create_connection(self.upstream)
                self._sockets += [client, upstream]
                threading.Thread(
                    target=self._pipe, args=(client, upstream, True), daemon=True
                ).start()
                threading.Thread(
                    target=self._pipe, args=(upstream, client, False), daemon=True
                ).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, hold: bool) -> None:
        first = True
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                if hold and not first:
                    time.sleep(self.hold_s)
                    hold = False
                first = False
                dst.sendall(data)


def test_connected_means_the_broker_granted_the_subscriptions(
    mosquitto: MosquittoBroker, tmp_path: Path
) -> None:
    engine, site = synced_sqlite(tmp_path / "central.db")
    relay = HoldingRelay((mosquitto.host, mosquitto.port), HOLD_S)
    settings = CentralSettings(
        site_file=SITE_FILE, mqtt_url=f"mqtt://127.0.0.1:{relay.port}", instance="c-ready"
    )
    writer = IngestWriter(engine=engine, site=SiteIndex.of(site), shared=False)
    link = CentralMqtt(settings=settings, site_id=site.id, writer=writer, writer_process=False)
    box = paho.Client(CallbackAPIVersion.VERSION2, client_id="box-p1-ready")
    link.start()
    try:
        started = time.monotonic()
        assert link.wait_connected(10)
        # Not before the held SUBSCRIBE reached the broker and its grant came back.
        assert time.monotonic() - started >= HOLD_S * 0.9
        box.connect(mosquitto.host, mosquitto.port)
        box.loop_start()
        event = encode_payload(bay_event("box-p1", 1, "P1-001"))
        box.publish(Topics(SITE, "box-p1").event, event, qos=1).wait_for_publish(5)
        wait_for(lambda: writer.stats.events_stored == 1, timeout=10, what="the event stored")
    finally:
        box.loop_stop()
        box.disconnect()
        link.stop()
        relay.close()
        engine.dispose()


def _broker_with_central_reading(tmp_path: Path, reads: list[str]) -> EmbeddedBroker:
    """The demo's embedded broker (it answers a refused filter in its SUBACK; Mosquitto 2.0
    grants it and delivers nothing), where ``central`` may subscribe only to ``reads``."""
    passwd, acl = write_access(
        tmp_path,
        passwords={"central": "central-secret"},
        publish={"central": ["#"]},
        subscribe={"central": reads},
    )
    return EmbeddedBroker(
        workdir=tmp_path, allow_anonymous=False, password_file=passwd, acl_file=acl
    )


def _link(engine: Engine, broker: EmbeddedBroker) -> CentralMqtt:
    site = load_site(SITE_FILE)
    settings = CentralSettings(
        site_file=SITE_FILE,
        mqtt_url=broker.url,
        mqtt_username="central",
        mqtt_password="central-secret",
        instance="c-acl",
    )
    writer = IngestWriter(engine=engine, site=SiteIndex.of(site), shared=False)
    return CentralMqtt(settings=settings, site_id=site.id, writer=writer, writer_process=False)


@pytest.mark.parametrize(
    ("reads", "connected"),
    [
        # An ACL that forgot central's reads of the town: up, but deaf. Not connected.
        ([f"parkgrid/v1/{SITE}/_central/status"], False),
        # Without the broker's $SYS counters central still hears every box: connected.
        ([f"parkgrid/v1/{SITE}/#"], True),
    ],
    ids=["town-refused", "sys-refused"],
)
def test_refused_subscriptions_to_the_town_are_not_connected(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, reads: list[str], connected: bool
) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'central.db'}")
    upgrade(engine)
    with _broker_with_central_reading(tmp_path, reads) as broker, caplog.at_level(logging.INFO):
        link = _link(engine, broker)
        link.start()
        try:
            assert link.wait_connected(5) is connected
            refused = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
            assert refused, "the refusal is logged"
            if connected:
                assert "$SYS/" in refused[0] and f"{SITE}/+/event" not in refused[0]
            else:
                assert f"parkgrid/v1/{SITE}/+/event" in refused[0]
                assert any("cannot hear" in r.getMessage() for r in caplog.records)
        finally:
            link.stop()
            engine.dispose()
