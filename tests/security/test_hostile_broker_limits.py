"""Hostile people on the broker: a box's credentials publishing huge payloads.

Mosquitto accepts packets up to 256 MB unless told otherwise, and keeps a retained one in
memory and on disk for good; central's MQTT client reads each message whole. The town's
broker config (``deploy/mosquitto/parkgrid.conf``) must cap a packet far above the largest
uplink message and far below that. Here a real Mosquitto runs the field configuration
(password file and ACL from ``provision-box``) with the deploy file's global limits, and a
box's own credentials publish 8 MiB, retained and not, under its own topics.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path

from central.provision import password_line, upsert_password
from firmware_protocols.uplink import Topics
from simulators.broker import MosquittoBroker
from tests.badinput.test_mqtt_payloads import good_event
from tests.faults.rig import ROOT, SITE_ID, plan_boxes, record, write_site
from tests.security.test_hostile_protocol import AS_ROOT, Client, _run, _wait

DEPLOY_CONF = ROOT / "deploy" / "mosquitto" / "parkgrid.conf"
# The deploy file's settings that bound what a client may send (listeners, files and TLS
# are the deployment's own and stay out of a test broker).
LIMIT = re.compile(r"^(max_packet_size|message_size_limit)\s+\S+", re.M)

HUGE = 8 * 1024 * 1024


def _deploy_limits() -> list[str]:
    return [m.group(0) for m in LIMIT.finditer(DEPLOY_CONF.read_text())]


class Watcher(Client):
    """Central's credentials, subscribed to everything, remembering only sizes."""

    def __init__(self, port: int, password: str) -> None:
        super().__init__(port, "central", password)
        self.sizes: list[tuple[str, int]] = []
        self.client.on_message = lambda _c, _u, m: self.sizes.append((m.topic, len(m.payload)))


def test_hostile_box_publishes_huge_payloads(tmp_path: Path) -> None:
    """8 MiB from box-01's credentials, to its event topic and retained to its status topic:
    central's subscription never receives them, a later subscriber gets no such retained
    message, and the box's next ordinary event still goes through."""
    plans = plan_boxes(1, 2)
    box_id = plans[0].box_id
    site = write_site(tmp_path / "site.toml", plans)
    passwd, acl = tmp_path / "passwd", tmp_path / "acl"
    out = tmp_path / box_id
    ran = _run(["central", "provision-box", box_id, "--site", str(site), "--out", str(out),
                "--password-file", str(passwd), "--acl-file", str(acl)])  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    secret = (out / "mqtt-password").read_text().strip()
    upsert_password(passwd, line=password_line("central", "central-secret-huge"))
    broker = MosquittoBroker(
        workdir=tmp_path / "broker",
        allow_anonymous=False,
        extra_config=[f"password_file {passwd}", f"acl_file {acl}", *AS_ROOT, *_deploy_limits()],
    ).start()
    topics = Topics(SITE_ID, box_id)
    tried = [(topics.event, False), (topics.status, True)]
    try:
        watcher = Watcher(broker.port, "central-secret-huge")
        watcher.subscribe("parkgrid/#")
        for topic, retain in tried:
            box = Client(broker.port, box_id, secret)
            gone = threading.Event()
            box.client.on_disconnect = lambda *_a, gone=gone: gone.set()
            box.client.publish(topic, b"x" * HUGE, qos=1, retain=retain)
            _wait(
                lambda gone=gone: gone.is_set() or any(s >= HUGE for _, s in watcher.sizes),
                "the broker to refuse or deliver 8 MiB",
                120,
            )
            box.close()
        box = Client(broker.port, box_id, secret)
        box.publish(topics.event, good_event(1, box=box_id))
        _wait(lambda: (topics.event, len(good_event(1, box=box_id))) in watcher.sizes, "event 1")
        box.close()
        late = Watcher(broker.port, "central-secret-huge")
        late.subscribe("parkgrid/#")
        late.subscribe(topics.status)  # a second SUBACK: the retained ones came before it
        late.close()
        watcher.close()
    finally:
        broker.close()
    delivered = [s for _, s in watcher.sizes + late.sizes if s >= HUGE]
    assert delivered == [], f"the broker passed on {len(delivered)} payload(s) of 8 MiB"
    record(
        "hostile",
        "huge MQTT payloads from a box",
        {
            "attack": "a box's credentials publish 8 MiB to its event topic and 8 MiB "
            "retained to its status topic",
            "tried": len(tried),
            "refused": len(tried) - len(delivered),
            "notes": "the broker (deploy/mosquitto/parkgrid.conf max_packet_size 1 MiB) "
            "disconnects the box; nothing reaches central or is kept retained; the box's "
            "next event goes through (was: Mosquitto's default 256 MB, kept retained)",
        },
    )
