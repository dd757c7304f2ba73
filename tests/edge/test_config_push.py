"""Configuration pushed from the office (issue 20): a harmless change ends in sync; a push
that breaks the broker connection is rolled back by the box alone and central shows why; an
invalid document is refused and nothing changes; the outbox's events reach central exactly
once across an apply and a rollback; a box's credentials cannot push to another box.

Everything runs for real (tests/edge/fleet_town.py): Mosquitto with the field ACL and the
passwords provision-box made, central with its ingest, box-p1 as ``parkgrid edge run``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import stat
import tomllib
import uuid

import paho.mqtt.client as paho
import tomli_w
from paho.mqtt.enums import CallbackAPIVersion

from central.fleet.desired import desired_for
from firmware_protocols.uplink import Command, Topics, encode_payload
from firmware_protocols.uplink.models import ConfigPush
from simulators.broker import free_port
from site_model.site import load_site
from site_model.site_config import digest
from tests.edge.fleet_town import BOX, CENTRAL_PASSWORD, Town, town, until

GATE_S = 8.0  # the rollback tests' window: the gate fails at once, the box waits this long


def _full_band(t: Town, band: int) -> None:
    """The office changes a lot's full band in the site file (a harmless change)."""
    text = t.site_file.read_text()
    text = text.replace(
        'name = "Market Square car park"\n',
        f'name = "Market Square car park"\nfull_band = {band}\n',
    )
    t.site_file.write_text(text)


async def _in_sync(t: Town) -> None:
    await until(lambda: t.row().state == "in sync", 90, f"{BOX} in sync: {t.log()[-3000:]}")


async def test_a_harmless_change_pushed_ends_in_sync(tmp_path) -> None:
    async with town(tmp_path, confirm_within_s=60) as t:
        await _in_sync(t)  # provision-box's projection is central's desired one
        _full_band(t, 2)
        row = t.row()
        assert (row.state, row.differs, row.desired_version) == ("pending", ["lots.P1"], None)

        ran = await asyncio.to_thread(t.cli, "fleet", "config", "push", "--box", BOX)
        assert ran.returncode == 0, ran.stderr
        assert ran.stdout.startswith(f"{BOX}: version 1 "), ran.stdout
        await until(
            lambda: t.row().state == "in sync" and t.reported()["apply"]["state"] == "confirmed",
            90, f"the push confirmed: {t.log()[-3000:]}",
        )  # fmt: skip
        row = t.row()
        assert (row.desired_version, row.applied_version, row.differs) == (1, 1, [])
        assert t.box.poll() is None
        pushed = t.data_dir / "config" / "pushed.toml"
        assert tomllib.loads(pushed.read_text())["lots"]["P1"]["full_band"] == 2
        assert stat.S_IMODE(pushed.stat().st_mode) == 0o640
        ran = await asyncio.to_thread(t.cli, "fleet", "status")
        assert ran.returncode == 0, ran.stderr
        lines = ran.stdout.splitlines()
        assert lines[0].split() == ["BOX", "DESIRED", "REPORTED", "STATE", "DIFFERS", "/", "REASON"]
        mine = next(line for line in lines if line.startswith(BOX))
        assert mine.split()[1:6] == [
            row.desired_hash[7:19],
            "v1",
            row.desired_hash[7:19],
            "in",
            "sync",
        ]
        with t.engine.connect() as conn:
            audit = conn.exec_driver_sql(
                "SELECT actor, action, target FROM audit WHERE action = 'fleet.config-push'"
            ).all()
        assert [(a.startswith("cli:"), b, c) for a, b, c in audit] == [
            (True, "fleet.config-push", BOX)
        ]


async def test_a_push_that_breaks_the_broker_connection_is_rolled_back_by_the_box(
    tmp_path,
) -> None:
    async with town(tmp_path, confirm_within_s=GATE_S) as t:
        await _in_sync(t)
        wrong = f"mqtt://127.0.0.1:{free_port()}"  # nobody listens there
        ran = await asyncio.to_thread(
            t.cli, "fleet", "config", "push", "--box", BOX, "--box-mqtt-url", wrong
        )
        assert ran.returncode == 0, ran.stderr
        await until(
            lambda: t.row(wrong).state == "rolled back", 120, f"rolled back: {t.log()[-3000:]}"
        )
        row = t.row(wrong)
        assert row.reason is not None
        assert row.reason.startswith(f"failed its health gate within {GATE_S:g} s: ")
        assert "not connected to the broker" in row.reason
        assert row.differs == ["mqtt"]  # what it runs is what it ran before
        assert t.row().state == "in sync"  # against the right URL: the old configuration
        assert not (t.data_dir / "config" / "pushed.toml").exists()
        assert t.box.poll() is None
        ran = await asyncio.to_thread(t.cli, "fleet", "status", "--box-mqtt-url", wrong)
        assert "rolled back" in ran.stdout and "not connected to the broker" in ran.stdout


def _publish_as_central(t: Town, body: ConfigPush) -> None:
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"t-{uuid.uuid4().hex[:6]}")
    client.username_pw_set("central", CENTRAL_PASSWORD)
    host, port = t.url.removeprefix("mqtt://").split(":")
    client.connect(host, int(port))
    client.loop_start()
    try:
        command = Command(command_id=uuid.uuid4(), issued_at=dt.datetime.now(dt.UTC), body=body)
        topic = Topics("testtown", BOX).cmd("config-push")
        client.publish(topic, encode_payload(command), qos=1).wait_for_publish(10)
    finally:
        client.disconnect()
        client.loop_stop()


async def test_an_invalid_document_is_refused_and_nothing_changes(tmp_path) -> None:
    async with town(tmp_path, confirm_within_s=60) as t:
        await _in_sync(t)
        edge_toml = (tmp_path / BOX / "edge.toml").read_bytes()
        boot = t.healthz()["boot_id"]
        document = dict(desired_for(load_site(t.site_file), BOX, mqtt_url=t.url).document)
        cases = [
            ({**document, "timezone": "Mars/Olympus"}, None, "timezone"),
            ({**document, "mqtt": {**document["mqtt"], "password_file": "/tmp/x"}}, None,
             "mqtt.password_file"),
            (document, "sha256:" + "0" * 64, "hash: the document hashes to"),
        ]  # fmt: skip
        for version, (bad, claimed, where) in enumerate(cases, start=5):
            body = ConfigPush(version=version, hash=claimed or digest(bad),
                              document=tomli_w.dumps(bad))  # fmt: skip
            await asyncio.to_thread(_publish_as_central, t, body)
            await until(
                lambda v=version: (t.reported().get("apply") or {}).get("version") == v,
                60, f"version {version} answered: {t.log()[-3000:]}",
            )  # fmt: skip
            apply = t.reported()["apply"]
            assert apply["state"] == "failed"
            assert where in apply["reason"], apply["reason"]
        assert (tmp_path / BOX / "edge.toml").read_bytes() == edge_toml
        assert not (t.data_dir / "config" / "pushed.toml").exists()
        health = t.healthz()
        assert (health["boot_id"], health["mqtt_connected"]) == (boot, True)  # never rebuilt
        assert t.row().state == "in sync"  # central's desired one is what it still runs
