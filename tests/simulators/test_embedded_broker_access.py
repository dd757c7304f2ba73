"""The demo's embedded broker (amqtt) run as the town's broker is: passwords and the same
publish/subscribe lists as the Mosquitto ACL provision-box writes (central.provision)."""

from __future__ import annotations

import queue
import uuid
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from central.provision import box_access, central_access, new_password
from simulators.embedded_broker import EmbeddedBroker, write_access

SITE = "testtown"
ROOT = f"parkgrid/v1/{SITE}"


class Client:
    """A paho MQTT 3.1.1 client on its own thread; ``accepted`` is the CONNACK's verdict."""

    def __init__(self, broker: EmbeddedBroker, user: str | None, password: str | None) -> None:
        self.received: queue.Queue[tuple[str, bytes]] = queue.Queue()
        answer: queue.Queue[bool] = queue.Queue()
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=uuid.uuid4().hex[:12], protocol=paho.MQTTv311
        )
        if user is not None:
            self.client.username_pw_set(user, password)
        self.client.on_connect = lambda _c, _u, _f, rc, _p: answer.put(not rc.is_failure)
        self.client.on_disconnect = lambda *_: answer.put(False)
        self.client.on_message = lambda _c, _u, m: self.received.put((m.topic, m.payload))
        self.client.connect(broker.host, broker.port, keepalive=10)
        self.client.loop_start()
        self.accepted = answer.get(timeout=15)

    def subscribe(self, *filters: str) -> list[bool]:
        granted: queue.Queue[list[bool]] = queue.Queue()
        self.client.on_subscribe = lambda _c, _u, _m, rcs, _p: granted.put(
            [not rc.is_failure for rc in rcs]
        )
        self.client.subscribe([(f, 1) for f in filters])
        return granted.get(timeout=10)

    def publish(self, topic: str, payload: bytes) -> None:
        self.client.publish(topic, payload, qos=1).wait_for_publish(10)

    def until(self, payload: bytes) -> list[str]:
        topics = []
        while True:
            topic, got = self.received.get(timeout=10)
            topics.append(topic)
            if got == payload:
                return topics

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def field_broker(tmp_path: Path) -> Iterator[tuple[EmbeddedBroker, dict[str, str]]]:
    passwords = {"central": new_password(), "box-p1": new_password(), "box-p2": new_password()}
    accesses = [central_access(), box_access(SITE, "box-p1"), box_access(SITE, "box-p2")]
    passwd, acl = write_access(
        tmp_path,
        passwords=passwords,
        publish={a.user: list(a.writes) for a in accesses},
        subscribe={a.user: list(a.reads) for a in accesses},
    )
    broker = EmbeddedBroker(
        workdir=tmp_path, allow_anonymous=False, password_file=passwd, acl_file=acl
    )
    with broker:
        yield broker, passwords


def test_embedded_field_refuses_anonymous_and_wrong_passwords(
    field_broker: tuple[EmbeddedBroker, dict[str, str]],
) -> None:
    broker, passwords = field_broker
    for user, password in ((None, None), ("box-p1", "wrong"), ("nobody", passwords["box-p1"])):
        client = Client(broker, user, password)
        try:
            assert not client.accepted, f"{user or 'anonymous'} was let in"
        finally:
            client.close()
    box = Client(broker, "box-p1", passwords["box-p1"])
    try:
        assert box.accepted
    finally:
        box.close()


def test_embedded_field_acl_as_mosquittos(
    field_broker: tuple[EmbeddedBroker, dict[str, str]],
) -> None:
    """box-p1 reads its own commands, every lot and box status, not box-p2's commands; what it
    writes into box-p2's subtree never reaches central."""
    broker, passwords = field_broker
    central = Client(broker, "central", passwords["central"])
    box = Client(broker, "box-p1", passwords["box-p1"])
    try:
        assert central.accepted and box.accepted
        assert central.subscribe(f"{ROOT}/+/status", f"{ROOT}/+/lot/+") == [True, True]
        assert box.subscribe(f"{ROOT}/box-p2/cmd/+") == [False]
        assert box.subscribe(f"{ROOT}/box-p1/cmd/+", f"{ROOT}/+/lot/+", f"{ROOT}/+/status") == [
            True,
            True,
            True,
        ]
        box.publish(f"{ROOT}/box-p2/status", b"forged")
        box.publish(f"{ROOT}/box-p1/status", b"own status")
        assert central.until(b"own status") == [f"{ROOT}/box-p1/status"]
        central.publish(f"{ROOT}/box-p2/cmd/rebirth", b"not for p1")
        central.publish(f"{ROOT}/box-p1/cmd/rebirth", b"for p1")
        central.publish(f"{ROOT}/box-p2/status", b"p2 online")
        assert box.until(b"p2 online") == [
            f"{ROOT}/box-p1/status",
            f"{ROOT}/box-p1/cmd/rebirth",
            f"{ROOT}/box-p2/status",
        ]
    finally:
        box.close()
        central.close()
