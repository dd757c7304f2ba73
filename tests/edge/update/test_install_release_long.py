"""Central's ``install-release`` on a real installed box, whole releases (long).

The box runs 1.0.5 (a bundle of this very checkout: the code under test, every wheel of the
lock), installed over the kit's 1.0.0 and confirmed, under the unit stand-in (boot check,
``edge run``, ``edge confirm``, restarts) on a real Mosquitto; central serves the signed
bundle of 1.0.6 over HTTP. The command arrives over MQTT: the box finds its slots from its
own interpreter, starts the runner from its own release, replies ok, exits 75; the stand-in
starts it again through the boot check into 1.0.6 on trial, the gate confirms it, and the
box's retained birth says ``confirmed`` 1.0.6 without anyone at the box.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import queue
import time
import uuid
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from central.auth.models import Role
from central.auth.service import issue_token
from edge.release_command import EXIT_RESTART_INTO_RELEASE
from edge.update.slots import Layout
from firmware_protocols.uplink import Topics, encode_payload
from firmware_protocols.uplink.models import BoxStatus, Command, CommandReply, InstallRelease
from parkgrid.cli import main
from simulators.broker import MosquittoBroker, free_port
from tests.central.releases_support import running_central
from tests.edge.update.conftest import Kit, update
from tests.edge.update.test_gate_rollback import connected, eventually, last_event
from tests.edge.update.unit_standin import UnitStandin

pytestmark = [pytest.mark.slow, pytest.mark.long]


def this_checkout(source: Path) -> None:
    """No change: the bundle is built from a copy of the checkout under test."""


TOPICS = Topics("testtown", "box-p1")


def test_central_s_install_release_reaches_confirmed_on_a_real_box(
    box: Path, kit: Kit, mosquitto: MosquittoBroker, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    listen = f"127.0.0.1:{free_port()}"
    config = tmp_path / "edge.toml"
    config.write_text(
        f'site = "testtown"\nbox_id = "box-p1"\ndata_dir = "{tmp_path / "data"}"\n'
        f'[mqtt]\nurl = "{mosquitto.url}"\n[health]\nlisten = "{listen}"\n'
        "status_interval_s = 600\n"  # a birth seen below is the watcher's, not the timer's
    )
    layout, log = Layout(box), tmp_path / "unit.log"
    update(box, kit.bundle("1.0.5", patch=this_checkout), kit)
    bundle = kit.bundle("1.0.6", patch=this_checkout)
    sha = "sha256:" + hashlib.sha256(bundle.read_bytes()).hexdigest()
    replies: queue.Queue[CommandReply] = queue.Queue()
    births: queue.Queue[BoxStatus] = queue.Queue()
    with running_central(tmp_path / "central") as central:
        assert main(["central", "release", "add", str(bundle), "--key", str(kit.public),
                     "--releases-dir", str(central.releases_dir),
                     "--database-url", central.database_url]) == 0  # fmt: skip
        token = issue_token(central.engine, name="box-p1", role=Role.BOX, ttl_s=900, actor="t")[0]
        (tmp_path / "central-token").write_text(token + "\n")
        monkeypatch.setenv("PARKGRID_CENTRAL_URL", central.url)
        monkeypatch.setenv("PARKGRID_CENTRAL_TOKEN_FILE", str(tmp_path / "central-token"))
        monkeypatch.setenv("PARKGRID_RELEASE_KEY", str(kit.public))

        client = paho.Client(CallbackAPIVersion.VERSION2, client_id="t-central")

        def on_message(_c: object, _u: object, message: paho.MQTTMessage) -> None:
            if message.topic == TOPICS.status:
                status = BoxStatus.model_validate_json(message.payload)
                if status.release is not None:
                    births.put(status)
            else:
                replies.put(CommandReply.model_validate_json(message.payload))

        client.on_message = on_message

        def confirmed_birth(version: str) -> bool:
            while not births.empty():
                release = births.get().release
                if release is not None and (release.version, release.state) == (
                    version, "confirmed"
                ):  # fmt: skip
                    return True
            return False

        host, port = mosquitto.url.removeprefix("mqtt://").split(":")
        client.connect(host, int(port))
        client.subscribe([(TOPICS.reply("install-release"), 1), (TOPICS.status, 1)])
        client.loop_start()
        try:
            with UnitStandin(box, config, log):
                eventually(lambda: last_event(layout).get("event") == "confirmed",
                           "1.0.5 confirmed", log)  # fmt: skip
                eventually(lambda: connected(listen), "1.0.5 running", log)
                eventually(lambda: confirmed_birth("1.0.5"), "a birth saying 1.0.5 confirmed", log)
                now = dt.datetime.now(dt.UTC)
                command = Command(
                    command_id=uuid.uuid4(), issued_at=now,
                    expires_at=now + dt.timedelta(minutes=15),
                    body=InstallRelease(version="1.0.6", sha256=sha, rollout=7),
                )  # fmt: skip
                sent = time.monotonic()
                client.publish(TOPICS.cmd("install-release"), encode_payload(command), qos=1)
                reply = replies.get(timeout=600)
                replied = time.monotonic()
                assert (reply.command_id, reply.ok) == (command.command_id, True), (
                    reply.error, log.read_text()[-4000:],
                )  # fmt: skip
                eventually(lambda: last_event(layout).get("version") == "1.0.6"
                           and last_event(layout).get("event") == "confirmed",
                           "1.0.6 confirmed", log)  # fmt: skip
                assert layout.slot_version(layout.current_slot() or "") == "1.0.6"
                eventually(lambda: confirmed_birth("1.0.6"), "a birth saying 1.0.6 confirmed", log)
                print(f"command to ok reply {replied - sent:.1f} s, to a birth saying 1.0.6 "
                      f"confirmed {time.monotonic() - sent:.1f} s")  # fmt: skip
        finally:
            client.disconnect()
            client.loop_stop()
    said = log.read_text()
    assert f"exiting {EXIT_RESTART_INTO_RELEASE}: restart into release 1.0.6" in said
    assert "boot-check: 1.0.6 on trial: start 1 of 3" in said
    assert json.loads((layout.state_file).read_text())["trial"] is None
