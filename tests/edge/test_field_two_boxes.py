"""Two boxes provisioned as a town provisions them, on a real Mosquitto with the ACL and the
passwords ``provision-box`` generated: box A's sign never points drivers at a lot whose box it
has not heard, and stops pointing at box B's lot once B dies (its will, within B's keepalive).

Box A runs in this process (its sign is a pymodbus sign simulator); box B is a real
``parkgrid edge run`` process, killed with SIGKILL as a power cut would.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import signal
import subprocess
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import tomli_w
from paho.mqtt.enums import CallbackAPIVersion

from central.provision import password_line, upsert_password
from edge.config import parse_config
from edge.runtime import EdgeBox
from firmware_protocols.signs import GuidanceDisplay, GuidanceMode
from firmware_protocols.uplink import LotState, Topics, encode_payload
from firmware_protocols.uplink.models import LotStatus, Trend
from simulators.broker import MosquittoBroker, free_port
from simulators.concentrator import ConcentratorSimulator
from simulators.signs import SignSimulator

SITE_FILE = Path(__file__).resolve().parent.parent / "central" / "site_small.toml"
SITE = "testtown"
A_SENSORS = {"00B10001": "nwave-nps", "00B10002": "nwave-nps"}
B_SENSORS = {"00B20001": "nwave-nps", "00B20002": "nwave-nps", "00B20003": "nwave-nps"}
# Started as root, mosquitto drops to its own user, which cannot enter pytest's 0700 tmp dirs.
AS_ROOT = ["user root"] if os.geteuid() == 0 else []
KEEPALIVE_S = 5  # box B's: the broker publishes its will 1.5 keepalives after it dies


async def eventually(predicate: Callable[[], object], within: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {within} s")
        await asyncio.sleep(0.05)


def provision(tmp_path: Path, box_id: str, broker_url: str) -> dict[str, Any]:
    """``parkgrid central provision-box`` as the technician runs it; its starter edge.toml."""
    out = tmp_path / box_id
    ran = subprocess.run(
        [
            sys.executable, "-m", "parkgrid", "central", "provision-box", box_id,
            "--site", str(SITE_FILE), "--mqtt-url", broker_url, "--out", str(out),
            "--box-etc", str(out),
            "--password-file", str(tmp_path / "passwd"), "--acl-file", str(tmp_path / "acl"),
        ],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    return tomllib.loads((out / "edge.toml").read_text())


def fill_in(
    starter: dict[str, Any], tmp_path: Path, *, lot: str, bays: dict[str, str], device: Path
) -> dict[str, Any]:
    """What the technician adds to the starter: the serial device and the bays' sensors."""
    config = dict(starter)
    config["data_dir"] = str(tmp_path / starter["box_id"] / "data")
    config["mqtt"] = {**starter["mqtt"], "keepalive_s": KEEPALIVE_S}
    config["serial"] = {"conc": {**starter["serial"]["conc"], "device": str(device)}}
    config["lots"] = {
        lot: {
            **starter["lots"][lot],
            "bays": {
                f"{lot}-{i}": {"sensor": sensor, "format": fmt}
                for i, (sensor, fmt) in enumerate(bays.items(), start=1)
            },
        }
    }
    config["sensors"] = {"heartbeat_timeout_s": 600}
    config["health"] = {"listen": "127.0.0.1:0"}
    return config


def publish_as(broker: MosquittoBroker, user: str, password: str, topic: str, data: bytes) -> None:
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"t-{user}-stale")
    client.username_pw_set(user, password)
    client.connect(broker.host, broker.port)
    client.loop_start()
    try:
        client.publish(topic, data, qos=1, retain=True).wait_for_publish(10)
    finally:
        client.disconnect()
        client.loop_stop()


def start_box(config: Path, log: Path) -> subprocess.Popen[bytes]:
    """``parkgrid edge run`` as systemd runs it, logging into ``log``."""
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "parkgrid", "edge", "run", "--config", str(config)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )


async def test_field_sign_never_points_at_an_unheard_or_dead_box(tmp_path: Path) -> None:
    passwd, acl = tmp_path / "passwd", tmp_path / "acl"
    port_holder = MosquittoBroker(workdir=tmp_path / "broker", allow_anonymous=False)
    # The broker's files come first: provision-box writes them, the broker then reads them.
    port_holder.port = free_port()
    url = f"mqtt://127.0.0.1:{port_holder.port}"
    starter_a = provision(tmp_path, "box-p1", url)
    starter_b = provision(tmp_path, "box-p2", url)
    upsert_password(passwd, line=password_line("central", "central-secret"))
    port_holder.extra_config = [f"password_file {passwd}", f"acl_file {acl}", *AS_ROOT]
    b_password = (tmp_path / "box-p2" / "mqtt-password").read_text().strip()

    with port_holder as broker:
        async with (
            ConcentratorSimulator(sensors=A_SENSORS, link=tmp_path / "ttyA") as sim_a,
            ConcentratorSimulator(sensors=B_SENSORS, link=tmp_path / "ttyB") as sim_b,
            SignSimulator(units={1: "parkgrid-guidance"}, tcp=("127.0.0.1", 0)) as signs,
        ):
            config_a = fill_in(starter_a, tmp_path, lot="P1", bays=A_SENSORS, device=sim_a.path)
            config_a["sign_buses"] = {
                "bus1": {
                    "transport": "tcp", "host": "127.0.0.1", "port": signs.port,
                    "timeout_s": 0.3, "refresh_interval_s": 1.0, "watchdog_timeout_s": 10,
                    "signs": {
                        "S1": {
                            "unit": 1, "profile": "parkgrid-guidance", "lot": "P1",
                            "arrow": "left", "fallback": [{"lot": "P2", "arrow": "right"}],
                        }
                    },
                }
            }  # fmt: skip
            box_a = EdgeBox(parse_config(config_a))
            task_a = asyncio.create_task(box_a.run())
            box_b: subprocess.Popen[bytes] | None = None
            try:
                await eventually(lambda: box_a.uplink.live)
                for sensor in A_SENSORS:
                    await sim_a.send_status(sensor, occupied=True)
                await eventually(lambda: signs.display(1).mode == GuidanceMode.FULL)
                assert signs.display(1).label == "", "full with nowhere to go names no lot"

                # A lot state under box-p2 with no status from box-p2 (a box never heard, or
                # whose status A may not read): A learns the figures but does not point there.
                stale = LotState(
                    lot_id="P2", capacity=4, free=4, occupied=0, unknown=0, closed=0,
                    status=LotStatus.SPACES_AVAILABLE, trend=Trend.STEADY,
                    ts=dt.datetime.now(dt.UTC),
                )  # fmt: skip
                topics_b = Topics(SITE, "box-p2")
                await asyncio.to_thread(
                    publish_as, broker, "box-p2", b_password, topics_b.lot("P2"),
                    encode_payload(stale),
                )  # fmt: skip
                await eventually(lambda: "P2" in box_a.town.remote_lots)
                shown = box_a.signs.projection("S1")
                assert isinstance(shown, GuidanceDisplay)
                assert (shown.mode, shown.label) == (GuidanceMode.FULL, ""), (
                    "pointed at a lot whose box was never heard"
                )

                # Box B runs for real: A hears its birth and points drivers at P2.
                config_b = fill_in(starter_b, tmp_path, lot="P2", bays=B_SENSORS, device=sim_b.path)
                path_b = tmp_path / "box-p2" / "edge.toml"
                path_b.write_text(tomli_w.dumps(config_b))
                box_b = start_box(path_b, tmp_path / "box-p2.log")
                await eventually(lambda: box_a.town.remote_boxes.get("box-p2") is True, within=60)

                async def b_sensors_report() -> None:  # again, until B has opened its line
                    while True:
                        for sensor in B_SENSORS:
                            await sim_b.send_status(sensor, occupied=False)
                        await asyncio.sleep(1.0)

                reporting = asyncio.create_task(b_sensors_report())
                # (B's own figures replace the stale ones: three bays free.)
                await eventually(
                    lambda: (signs.display(1).label, signs.display(1).free) == ("P2", 3)
                )

                reporting.cancel()
                # B dies without a word: the broker publishes its will, A stops pointing at P2.
                box_b.send_signal(signal.SIGKILL)
                box_b.wait(timeout=10)
                await eventually(lambda: box_a.town.remote_boxes.get("box-p2") is False)
                await eventually(lambda: signs.display(1).label == "")
                assert signs.display(1).mode == GuidanceMode.FULL
            finally:
                if box_b is not None and box_b.poll() is None:
                    box_b.kill()
                    box_b.wait(timeout=10)
                task_a.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task_a
                box_a.outbox.close()
