"""A town for configuration-push tests: a real Mosquitto with the field ACL and the passwords
``provision-box`` makes, central served with its ingest on it, and box-p1 as a real
``parkgrid edge run`` process (a concentrator simulator on a pty, a Modbus sign simulator).

The town's site file is tests/central/site_small.toml with lot P1 cut to ``p1_bays`` bays
(the box has a sensor in the first two) and a guidance sign S1 for P1 on box-p1 (unit 1 on
the box's sign bus), so a box started with every bay of the site is in sync at once."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tomllib
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w
from sqlalchemy import Engine, select

from central.db import schema as t
from central.db.engine import make_engine
from central.fleet.models import FleetBoxOut
from central.fleet.service import fleet_status
from central.provision import password_line, upsert_password
from simulators.broker import MosquittoBroker, free_port
from simulators.concentrator import ConcentratorSimulator
from simulators.signs import SignSimulator
from site_model.edge_config import sign_display
from site_model.site import load_site
from tests.central.helpers import SITE_FILE, central_app, serving

BOX = "box-p1"
SENSORS = {"00B10001": "P1-001", "00B10002": "P1-002"}
SIGN_ID, SIGN_UNIT = "S1", 1
SIGN_SITE = """
[signs.S1]
box_id = "box-p1"
kind = "guidance"
lot = "P1"
arrow = "left"
fallback = [{ lot = "P2", arrow = "right" }]
"""
CENTRAL_PASSWORD = "central-secret"
# Started as root, mosquitto drops to its own user, which cannot enter pytest's 0700 tmp dirs.
AS_ROOT = ["user root"] if os.geteuid() == 0 else []


async def until(predicate: Callable[[], object], within: float, what: str) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not within {within} s: {what}")
        await asyncio.sleep(0.2)


def provision(tmp_path: Path, site_file: Path, box_id: str, url: str) -> dict[str, Any]:
    out = tmp_path / box_id
    ran = subprocess.run(
        [
            sys.executable, "-m", "parkgrid", "central", "provision-box", box_id,
            "--site", str(site_file), "--mqtt-url", url, "--out", str(out),
            "--box-etc", str(out),
            "--password-file", str(tmp_path / "passwd"), "--acl-file", str(tmp_path / "acl"),
        ],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    return tomllib.loads((out / "edge.toml").read_text())


@dataclass
class Town:
    tmp: Path
    site_file: Path
    url: str
    db_url: str
    engine: Engine
    box: subprocess.Popen[bytes]
    box_log: Path
    data_dir: Path
    health: str
    sim: ConcentratorSimulator
    signs: SignSimulator
    central_url: str = ""
    releases_dir: Path = Path()

    def status(self) -> dict[str, Any]:
        """The box's last status as central stored it."""
        with self.engine.connect() as conn:
            text = conn.execute(
                select(t.boxes.c.status_json).where(t.boxes.c.box_id == BOX)
            ).scalar()
        return dict(json.loads(text)) if text else {}

    def row(self, box_url: str | None = None) -> FleetBoxOut:
        rows = fleet_status(self.engine, load_site(self.site_file), mqtt_url=box_url or self.url)
        return next(r for r in rows if r.box_id == BOX)

    def reported(self) -> dict[str, Any]:
        with self.engine.connect() as conn:
            text = conn.execute(
                select(t.boxes.c.status_json).where(t.boxes.c.box_id == BOX)
            ).scalar()
        return json.loads(text)["site_config"] if text else {}

    def healthz(self) -> dict[str, Any]:
        try:
            with urllib.request.urlopen(f"http://{self.health}/healthz", timeout=3) as answer:
                return dict(json.loads(answer.read()))
        except urllib.error.HTTPError as exc:  # 503: not ok, the report is in the body
            return dict(json.loads(exc.read()))
        except OSError:
            return {}

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = {
            **os.environ,
            "PARKGRID_DATABASE_URL": self.db_url,
            "PARKGRID_SITE_FILE": str(self.site_file),
            "PARKGRID_MQTT_URL": self.url,
            "PARKGRID_MQTT_USERNAME": "central",
            "PARKGRID_MQTT_PASSWORD": CENTRAL_PASSWORD,
        }
        return subprocess.run(
            [sys.executable, "-m", "parkgrid", "central", *args],
            capture_output=True, text=True, timeout=120, env=env,
        )  # fmt: skip

    def log(self) -> str:
        return self.box_log.read_text(errors="replace")


def start_box(
    config: Path, log: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """``parkgrid edge run`` as systemd runs it, logging into ``log`` (``env`` added)."""
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "parkgrid", "edge", "run", "--config", str(config)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
        )


async def _keep_heard(sim: ConcentratorSimulator) -> None:
    """Heartbeats, so every build of the box hears its sensors (the gate asks for a frame)."""
    while True:
        for sensor in SENSORS:
            await sim.send_heartbeat(sensor)
        await asyncio.sleep(0.5)


@contextlib.asynccontextmanager
async def town(
    tmp_path: Path,
    *,
    confirm_within_s: float,
    p1_bays: int = len(SENSORS),
    box_env: dict[str, str] | None = None,
) -> AsyncIterator[Town]:
    """The town; ``box_env`` is added to the box's environment (``{central}`` in a value is
    central's URL)."""
    site_file = tmp_path / "site.toml"
    text = SITE_FILE.read_text()
    ten = 'bays = { count = 10, pattern = "P1-{n:03d}" }'
    assert ten in text
    site_file.write_text(
        text.replace(ten, f'bays = {{ count = {p1_bays}, pattern = "P1-{{n:03d}}" }}') + SIGN_SITE
    )
    passwd, acl = tmp_path / "passwd", tmp_path / "acl"
    broker = MosquittoBroker(workdir=tmp_path / "broker", allow_anonymous=False)
    broker.port = free_port()
    url = f"mqtt://127.0.0.1:{broker.port}"
    starter = provision(tmp_path, site_file, BOX, url)
    upsert_password(passwd, line=password_line("central", CENTRAL_PASSWORD))
    broker.extra_config = [f"password_file {passwd}", f"acl_file {acl}", *AS_ROOT]
    work = tmp_path / "central"
    work.mkdir()
    db_url = f"sqlite:///{work / 'central.db'}"
    with broker:
        app = central_app(
            work, site_file.read_text(), site_name="site.toml", mqtt_url=url,
            mqtt_username="central", mqtt_password=CENTRAL_PASSWORD,
            releases_dir=work / "releases",
        )  # fmt: skip
        with serving(app) as (central_url, _server):
            async with (
                ConcentratorSimulator(
                    sensors=dict.fromkeys(SENSORS, "nwave-nps"), link=tmp_path / "ttyA"
                ) as sim,
                SignSimulator(
                    units={SIGN_UNIT: "parkgrid-guidance"}, tcp=("127.0.0.1", 0)
                ) as signs,
            ):
                health = f"127.0.0.1:{free_port()}"
                config = dict(starter)
                data_dir = tmp_path / BOX / "data"
                config["data_dir"] = str(data_dir)
                config["serial"] = {"conc": {**starter["serial"]["conc"], "device": str(sim.path)}}
                config["lots"] = {
                    "P1": {
                        **starter["lots"]["P1"],
                        "bays": {
                            bay: {"sensor": sensor, "format": "nwave-nps"}
                            for sensor, bay in SENSORS.items()
                        },
                    }
                }
                config["sign_buses"] = {
                    "bus1": {
                        "transport": "tcp", "host": "127.0.0.1", "port": signs.port,
                        "timeout_s": 0.3, "refresh_interval_s": 1.0, "watchdog_timeout_s": 10,
                        "signs": {SIGN_ID: {
                            "unit": SIGN_UNIT,
                            **sign_display(load_site(site_file).signs[SIGN_ID]),
                        }},
                    }
                }  # fmt: skip
                config["health"] = {
                    "listen": health,
                    "status_interval_s": 5,
                    "config_confirm_within_s": confirm_within_s,
                }
                path = tmp_path / BOX / "edge.toml"
                path.write_text(tomli_w.dumps(config))
                log = tmp_path / "box.log"
                env = {k: v.format(central=central_url) for k, v in (box_env or {}).items()}
                box = start_box(path, log, env)
                heard = asyncio.create_task(_keep_heard(sim))
                engine = make_engine(db_url)
                try:
                    yield Town(
                        tmp_path, site_file, url, db_url, engine, box, log, data_dir, health,
                        sim, signs, central_url, work / "releases",
                    )  # fmt: skip
                finally:
                    heard.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await heard
                    if box.poll() is None:
                        box.terminate()
                        try:
                            box.wait(timeout=20)
                        except subprocess.TimeoutExpired:
                            box.kill()
                            box.wait(timeout=10)
                    engine.dispose()
