"""A central with its rollout engine on a real broker, and protocol-level stand-in boxes.

A stand-in box is a paho client that answers ``install-release`` per the contract
(firmware_protocols/uplink/models/commands.py::InstallRelease) and publishes births with
the release report (``BoxStatus.release``); the real box side is edge/update's.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

import paho.mqtt.client as paho
from fastapi.testclient import TestClient
from paho.mqtt.enums import CallbackAPIVersion

from central.app import create_app
from central.auth.models import Role
from central.auth.service import add_user
from central.releases import store
from central.settings import CentralSettings
from firmware_protocols.uplink import CommandReply, Topics, encode_payload
from firmware_protocols.uplink.models import CommandName, ReleaseReport
from simulators.broker import MosquittoBroker
from tests.central.helpers import SITE, SITE_FILE, birth, death, wait_for
from tests.central.releases_support import keypair, small_bundle

Behaviour = Literal["good", "bad", "refuse", "silent"]
ZONE = ZoneInfo("Asia/Shanghai")  # tests/central/site_small.toml's


def store_releases(releases_dir: Path, work: Path, versions: dict[str, bool]) -> None:
    """Signed tiny bundles of each version (value: built with --rollback) in central's store."""
    private, public = keypair(work)
    for version, rollback in versions.items():
        bundle = small_bundle(work / f"{version}.tar", version, private)
        if rollback:
            _mark_rollback(bundle, version, private)
        store.add(releases_dir, bundle, public.read_bytes())


def _mark_rollback(bundle: Path, version: str, private: bytes) -> None:
    """Rewrite ``bundle``'s manifest as a --rollback release, signed again."""
    import dataclasses
    import io
    import tarfile

    from firmware_protocols.release_manifest import (
        BundleFile,
        Manifest,
        encode_manifest,
        sign_manifest,
    )

    with tarfile.open(bundle) as tar:
        members = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}  # type: ignore[union-attr]
    doc = json.loads(members["manifest.json"])
    files = tuple(BundleFile(f["name"], f["size"], f["sha256"]) for f in doc["files"])
    manifest = Manifest(doc["version"], doc["created"], doc["python"], doc["machine"], files)
    data = encode_manifest(dataclasses.replace(manifest, rollback=True))
    members["manifest.json"], members["manifest.sig"] = data, sign_manifest(data, private)
    with tarfile.open(bundle, "w:") as tar:
        for name in ("manifest.json", "manifest.sig", *doc_names(doc)):
            content = members[name]
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))


def doc_names(doc: dict[str, Any]) -> list[str]:
    return [f["name"] for f in doc["files"]]


def town_clock(path: Path, hour: int) -> None:
    """Town time now is today's ``hour``:30 in the town's zone (the demo's clock file)."""
    today = dt.datetime.now(ZONE).replace(hour=hour, minute=30, second=0, microsecond=0)
    path.write_text(json.dumps({"sim_start": today.timestamp(), "wall_start": time.time(),
                                "speed": 1.0}))  # fmt: skip


@contextmanager
def rollout_central(
    mosquitto: MosquittoBroker, work: Path, *, database_url: str | None = None
) -> Iterator[TestClient]:
    settings = CentralSettings(
        site_file=SITE_FILE,
        database_url=database_url or f"sqlite:///{work / 'central.db'}",
        mqtt_url=f"mqtt://{mosquitto.host}:{mosquitto.port}",
        instance="central-a",
        releases_dir=work / "releases",
        town_clock_file=work / "town-clock.json",
        rollout_step_s=0.1,
        ingest_writer_process=False,  # the writer in a thread: no process to start per test
    )
    with TestClient(create_app(settings)) as client:
        wait_for(lambda: client.get("/healthz").json()["mqtt"], what="central to connect")
        engine = client.app.state.central.engine  # type: ignore[attr-defined]
        for name, role in (("ada", Role.ADMIN), ("olga", Role.OPERATOR), ("vic", Role.VIEWER)):
            add_user(engine, username=name, password=f"{name}-password", role=role, actor="test")
        yield client


def login(client: TestClient, name: str) -> dict[str, str]:
    """A bearer header for ``name`` (logged in once per client: a login hashes a password)."""
    tokens: dict[str, dict[str, str]] = client.__dict__.setdefault("_rollout_tokens", {})
    if name in tokens:
        return tokens[name]
    answer = client.post(
        "/api/v1/auth/login", data={"username": name, "password": f"{name}-password"}
    )
    assert answer.status_code == 200, answer.text
    tokens[name] = {"Authorization": f"Bearer {answer.json()['access_token']}"}
    return tokens[name]


class StandInBox:
    """A box at the protocol level: births with a release report, answers install-release.

    ``good``: replies ok, restarts (a new boot) on trial, then confirms; ``bad``: replies
    ok, restarts and rolls back by itself; ``refuse``: replies an error; ``silent``:
    takes the command and never answers."""

    def __init__(
        self, broker: MosquittoBroker, box_id: str, version: str, behaviour: Behaviour = "good"
    ) -> None:
        self.broker = broker
        self.box_id = box_id
        self.topics = Topics(SITE, box_id)
        self.version = version
        self.behaviour = behaviour
        self.gate_s = 0.2  # from the restart to the health gate's confirmation
        self.installs: list[dict[str, Any]] = []
        self.commands: list[tuple[str, dict[str, Any]]] = []
        self.boot = uuid.uuid4()
        self.report: ReleaseReport | None = None
        self.lock = threading.Lock()
        self.client: paho.Client | None = None

    def online(self) -> StandInBox:
        self.listen_only()
        self._birth(ReleaseReport(version=self.version, state="confirmed", ts=_now()))
        return self

    def listen_only(self) -> None:
        """Connected and subscribed to the box's commands, without a birth."""
        self.client = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
        self.client.on_message = self._on_message
        subscribed = threading.Event()
        self.client.on_subscribe = lambda *_args: subscribed.set()
        self.client.connect(self.broker.host, self.broker.port)
        self.client.loop_start()
        self.client.subscribe(self.topics.cmd_filter, qos=1)
        assert subscribed.wait(10), "the broker did not confirm the subscription"

    def offline(self) -> None:
        assert self.client is not None
        self._publish(self.topics.status, encode_payload(death(self.box_id)))
        self.client.loop_stop()
        self.client.disconnect()
        self.client = None

    def _birth(self, report: ReleaseReport, *, new_boot: bool = True) -> None:
        if new_boot:
            self.boot = uuid.uuid4()
        self.report = report
        status = birth(self.box_id).model_copy(update={"boot_id": self.boot, "release": report})
        self._publish(self.topics.status, encode_payload(status))

    def rebirth_same_boot(self) -> None:
        """The status again, as a box sends it on a change, without restarting."""
        assert self.report is not None
        self._birth(self.report, new_boot=False)

    def received(self, name: CommandName) -> list[dict[str, Any]]:
        with self.lock:
            return [c for n, c in self.commands if n == name.value]

    def _publish(self, topic: str, payload: bytes) -> None:
        if self.client is None:  # stopped while its install thread ran on: a box off says nothing
            return
        self.client.publish(topic, payload, qos=1, retain=True).wait_for_publish(5)

    def _on_message(self, _c: object, _u: object, msg: paho.MQTTMessage) -> None:
        command = json.loads(msg.payload)
        name = msg.topic.rsplit("/", 1)[-1]
        with self.lock:
            self.commands.append((name, command))
            if name != CommandName.INSTALL_RELEASE.value:
                return
            self.installs.append(command)
        threading.Thread(target=self._install, args=(command,), daemon=True).start()

    def _install(self, command: dict[str, Any]) -> None:
        target = command["body"]["version"]
        if self.behaviour == "silent":
            return
        ok = self.behaviour != "refuse"
        reply = CommandReply(
            command_id=uuid.UUID(command["command_id"]),
            command=CommandName.INSTALL_RELEASE,
            ok=ok,
            error=None if ok else "disk: /opt/parkgrid/releases has 12 MB free, needs 160 MB",
            ts=_now(),
        )
        self._publish_plain(self.topics.reply(CommandName.INSTALL_RELEASE), encode_payload(reply))
        if not ok:
            return
        time.sleep(0.2)  # the restart
        if self.behaviour == "bad":
            self._birth(
                ReleaseReport(
                    version=self.version,
                    state="rolled_back",
                    failed_version=target,
                    reason="failed its health gate: not connected to the broker",
                    ts=_now(),
                )
            )
            return
        self._birth(ReleaseReport(version=target, state="on_trial", ts=_now()))
        time.sleep(self.gate_s)  # the health gate
        self.version = target
        self._birth(ReleaseReport(version=target, state="confirmed", ts=_now()))

    def _publish_plain(self, topic: str, payload: bytes) -> None:
        if self.client is None:
            return
        self.client.publish(topic, payload, qos=1).wait_for_publish(5)

    def close(self) -> None:
        if self.client is not None:
            self.client.loop_stop()
            self.client.disconnect()
            self.client = None


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
