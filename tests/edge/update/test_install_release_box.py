"""``install-release`` end to end: central's command over a real Mosquitto (the field ACL and
``provision-box``'s passwords) to box-p1 running as a ``parkgrid edge run`` process, which
downloads a real signed bundle from central over HTTP with its own token, installs it into
its other slot, replies, stops cleanly and exits for its supervisor. Its births carry the
release report, and a change of ``state.json`` made by another process is published again."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import os
import queue
import time
import uuid
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import select

from central.auth.models import Role
from central.auth.service import issue_token
from central.db.schema import boxes
from edge.release_command import EXIT_RESTART_INTO_RELEASE
from firmware_protocols.uplink import Topics, encode_payload
from firmware_protocols.uplink.models import Command, CommandReply, InstallRelease
from parkgrid.cli import main
from tests.central.releases_support import keypair, small_bundle
from tests.edge.fleet_town import BOX, CENTRAL_PASSWORD, Town, town, until
from tests.edge.update.test_install_release import make_slot

pytestmark = pytest.mark.slow
TOPICS = Topics("testtown", BOX)


class Central:
    """Central's side of the wire: publishes commands, collects the replies."""

    def __init__(self, url: str) -> None:
        self.replies: queue.Queue[CommandReply] = queue.Queue()
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=f"t-central-{uuid.uuid4().hex[:6]}"
        )
        self.client.username_pw_set("central", CENTRAL_PASSWORD)
        self.client.on_message = lambda _c, _u, message: self.replies.put(
            CommandReply.model_validate_json(message.payload)
        )
        host, port = url.removeprefix("mqtt://").split(":")
        self.client.connect(host, int(port))
        self.client.subscribe(TOPICS.reply("install-release"), qos=1)
        self.client.loop_start()

    def send(self, body: InstallRelease, *, expires_in: float = 600) -> Command:
        now = dt.datetime.now(dt.UTC)
        command = Command(
            command_id=uuid.uuid4(),
            issued_at=now,
            expires_at=now + dt.timedelta(seconds=expires_in),
            body=body,
        )
        self.client.publish(
            TOPICS.cmd("install-release"), encode_payload(command), qos=1
        ).wait_for_publish(10)
        return command

    async def reply(self, within: float) -> CommandReply:
        return await asyncio.to_thread(self.replies.get, True, within)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _store(t: Town, work: Path, private: bytes, public: Path, version: str) -> str:
    bundle = small_bundle(work / f"{version}.tar", version, private, padding=50_000)
    assert main(["central", "release", "add", str(bundle), "--key", str(public),
                 "--releases-dir", str(t.releases_dir),
                 "--database-url", t.db_url]) == 0  # fmt: skip
    return "sha256:" + hashlib.sha256(bundle.read_bytes()).hexdigest()


def _presence(t: Town) -> tuple[bool, str | None]:
    with t.engine.connect() as conn:
        row = conn.execute(
            select(boxes.c.online, boxes.c.offline_reason).where(boxes.c.box_id == BOX)
        ).one()
    return bool(row.online), row.offline_reason


@pytest.mark.long  # 15-28 s: a whole rig; `make test-long`
async def test_central_s_install_release_installs_replies_and_the_box_exits_for_restart(
    tmp_path: Path,
) -> None:
    prefix = tmp_path / "opt"
    make_slot(prefix, "1.0.0")
    private, public = keypair(tmp_path)
    token_file = tmp_path / "central-token"
    env = {
        "PARKGRID_RELEASE_PREFIX": str(prefix),
        "PARKGRID_CENTRAL_URL": "{central}",
        "PARKGRID_CENTRAL_TOKEN_FILE": str(token_file),
        "PARKGRID_RELEASE_KEY": str(public),
    }
    async with town(tmp_path, confirm_within_s=60, box_env=env) as t:
        token = issue_token(t.engine, name=BOX, role=Role.BOX, ttl_s=600, actor="t")[0]
        token_file.write_text(token + "\n")
        sha = _store(t, tmp_path, private, public, "2.0.0")
        await until(lambda: t.status().get("release"), 60, f"a birth: {t.log()[-2000:]}")
        release = t.status()["release"]
        assert (release["version"], release["state"]) == ("1.0.0", "confirmed")

        # the boot check of another process records a rollback: published without waiting
        state_file = prefix / "releases" / "state.json"
        state = json.loads(state_file.read_text())
        state["history"].append({"at": time.time(), "event": "rolled back", "version": "1.1.0",
                                 "reason": "failed its health gate: no sensor heard"})  # fmt: skip
        state_file.write_text(json.dumps(state))
        seen = time.monotonic()
        await until(lambda: t.status()["release"]["state"] == "rolled_back", 15,
                    f"the rollback published: {t.log()[-2000:]}")  # fmt: skip
        republished_s = time.monotonic() - seen
        release = t.status()["release"]
        assert (release["failed_version"], release["reason"]) == (
            "1.1.0", "failed its health gate: no sensor heard"
        )  # fmt: skip

        central = Central(t.url)
        try:
            expired = central.send(InstallRelease(version="2.0.0", sha256=sha), expires_in=-5)
            reply = await central.reply(30)
            assert (reply.command_id, reply.ok, reply.error) == (expired.command_id, False,
                                                                 "expired")  # fmt: skip
            assert os.readlink(prefix / "current") == "releases/a"

            sent = time.monotonic()
            first = central.send(InstallRelease(version="2.0.0", sha256=sha, rollout=1))
            await until(lambda: "install-release 2.0.0" in t.log(), 30, "the install began")
            # another release while it installs is refused (the same one again would be
            # answered with this install's outcome: test_install_release.py)
            second = central.send(InstallRelease(version="3.0.0", sha256=sha, rollout=1))
            reply = await central.reply(30)
            assert reply.command_id == second.command_id and reply.ok is False
            assert "already running" in (reply.error or "")
            health_answers = 0
            while central.replies.empty():  # the box keeps serving while it installs
                health_answers += bool(t.healthz().get("box_id"))
                await asyncio.sleep(0.2)
            reply = await central.reply(1)
            replied = time.monotonic()
            assert (reply.command_id, reply.ok) == (first.command_id, True), reply.error
            assert health_answers >= 1
        finally:
            central.close()
        exit_code = await asyncio.to_thread(t.box.wait, 30)
        exited = time.monotonic()
        assert exit_code == EXIT_RESTART_INTO_RELEASE, t.log()[-3000:]
        assert os.readlink(prefix / "current") == "releases/b"
        trial = json.loads(state_file.read_text())["trial"]
        assert (trial["version"], trial["slot"], trial["from_slot"]) == ("2.0.0", "b", "a")
        await until(lambda: _presence(t)[0] is False, 15, "the offline status at central")
        assert _presence(t) == (False, "shutdown")  # a clean stop, not a lost connection
        log = t.log()
        assert f"exiting {EXIT_RESTART_INTO_RELEASE}: restart into release 2.0.0" in log
        print(f"rollback republished in {republished_s:.1f} s; command to ok reply "
              f"{replied - sent:.1f} s ({health_answers} health answers meanwhile); reply to "
              f"exit {exited - replied:.1f} s")  # fmt: skip


def test_the_box_exit_code_restarts_the_unit() -> None:
    unit = Path(__file__).resolve().parents[3] / "deploy" / "systemd" / "parkgrid-edge.service"
    lines = unit.read_text().splitlines()
    assert f"RestartForceExitStatus={EXIT_RESTART_INTO_RELEASE}" in lines
