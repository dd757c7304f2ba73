"""The fleet bench's town: a real Mosquitto with the field configuration (the passwords and
ACL ``provision-box`` writes), ``central serve`` with its ingest and its release store, and
per box a concentrator simulator on a pty whose sensors are heard and change state.

Each box gets its own folder: ``opt/`` (the install prefix with two slots), ``etc/``
(``provision-box``'s files: edge.toml, mqtt-password, central-token), ``data/``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import sqlite3
import subprocess
import sys
import threading
import time
import tomllib
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import tomli_w

from central.provision import password_line, upsert_password
from simulators.broker import MosquittoBroker, free_port, wait_for_port
from simulators.concentrator import ConcentratorSimulator

SITE_ID = "fleettown"
BAYS_PER_BOX = 4
CENTRAL_PASSWORD = "central-bench-secret"
AS_ROOT = ["user root"] if os.geteuid() == 0 else []
CHANGE_EVERY_S = 3.0  # each box: one of its bays changes state this often


def box_ids(count: int) -> list[str]:
    return [f"box-{n + 1:02d}" for n in range(count)]


def sensor_of(box_index: int, bay: int) -> str:
    return f"{0x00F0_0000 + box_index * 16 + bay:08X}"


def site_toml(count: int) -> str:
    lines = [f'[site]\nid = "{SITE_ID}"\nname = "Fleet bench town"\ntimezone = "Asia/Shanghai"\n']
    for n, box in enumerate(box_ids(count)):
        lines.append(f'[boxes.{box}]\nname = "Lot {n + 1} box"\nlots = ["L{n + 1:02d}"]\n')
    for n, box in enumerate(box_ids(count)):
        lot = f"L{n + 1:02d}"
        lines.append(
            f'[lots.{lot}]\nname = "Lot {n + 1}"\nbox_id = "{box}"\n'
            f'bays = {{ count = {BAYS_PER_BOX}, pattern = "{lot}-{{n:02d}}" }}\n'
        )
    return "\n".join(lines)


@dataclass
class Box:
    index: int
    box_id: str
    home: Path
    health: str = ""
    sensors: dict[str, str] = field(default_factory=dict)  # sensor -> bay

    @property
    def prefix(self) -> Path:
        return self.home / "opt"

    @property
    def etc(self) -> Path:
        return self.home / "etc"

    @property
    def data(self) -> Path:
        return self.home / "data"

    @property
    def config(self) -> Path:
        return self.etc / "edge.toml"

    @property
    def log(self) -> Path:
        return self.home / "unit.log"

    @property
    def device(self) -> Path:
        return self.home / "ttyCONC"


def run_parkgrid(
    *args: str, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "parkgrid", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


class Town:
    def __init__(self, work: Path, count: int) -> None:
        self.work = work
        self.site_file = work / "site.toml"
        self.db_path = work / "central" / "central.db"
        self.db_url = f"sqlite:///{self.db_path}"
        self.releases_dir = work / "central" / "releases"
        self.boxes = [Box(n, b, work / b) for n, b in enumerate(box_ids(count))]
        self.broker = MosquittoBroker(workdir=work / "broker", allow_anonymous=False)
        self.broker.port = free_port()
        self.url = f"mqtt://127.0.0.1:{self.broker.port}"
        self.http_port = free_port()
        self.central_url = f"http://127.0.0.1:{self.http_port}"
        self.central: subprocess.Popen[bytes] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._changing = threading.Event()
        self._ready = threading.Event()
        self._done: asyncio.Event | None = None
        self.changes_sent = 0
        self.truth: dict[str, bool] = {}  # bay -> occupied, as the sensors last said

    def central_env(self) -> dict[str, str]:
        return {
            **os.environ,
            "PARKGRID_DATABASE_URL": self.db_url,
            "PARKGRID_SITE_FILE": str(self.site_file),
            "PARKGRID_MQTT_URL": self.url,
            "PARKGRID_MQTT_USERNAME": "central",
            "PARKGRID_MQTT_PASSWORD": CENTRAL_PASSWORD,
            "PARKGRID_RELEASES_DIR": str(self.releases_dir),
        }

    def central_cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return run_parkgrid("central", *args, env=self.central_env())

    # --- set-up ---------------------------------------------------------------------------

    def provision(self) -> None:
        """The site file, central's store, and every box's files by ``provision-box``."""
        self.work.mkdir(parents=True, exist_ok=True)
        self.site_file.write_text(site_toml(len(self.boxes)))
        self.db_path.parent.mkdir(parents=True, exist_ok=True)
        done = self.central_cli("migrate")
        if done.returncode != 0:
            raise RuntimeError(f"central migrate: {done.stderr}")
        passwd, acl = self.work / "passwd", self.work / "acl"
        for box in self.boxes:
            box.home.mkdir(parents=True, exist_ok=True)
            done = self.central_cli(
                "provision-box",
                box.box_id,
                "--site",
                str(self.site_file),
                "--mqtt-url",
                self.url,
                "--out",
                str(box.etc),
                "--box-etc",
                str(box.etc),
                "--password-file",
                str(passwd),
                "--acl-file",
                str(acl),
                "--central-token",
                "--database-url",
                self.db_url,
            )
            if done.returncode != 0:
                raise RuntimeError(f"provision-box {box.box_id}: {done.stderr}")
            self._box_config(box)
        upsert_password(passwd, line=password_line("central", CENTRAL_PASSWORD))
        self.broker.extra_config = [f"password_file {passwd}", f"acl_file {acl}", *AS_ROOT]

    def _box_config(self, box: Box) -> None:
        """provision-box's edge.toml with this box's wiring: the pty, its bays' sensors, the
        health page (the gate reads it), its data folder."""
        config = tomllib.loads(box.config.read_text())
        lot = f"L{box.index + 1:02d}"
        box.sensors = {sensor_of(box.index, n): f"{lot}-{n + 1:02d}" for n in range(BAYS_PER_BOX)}
        box.health = f"127.0.0.1:{free_port()}"
        config["data_dir"] = str(box.data)
        config["serial"] = {"conc": {**config["serial"]["conc"], "device": str(box.device)}}
        config["lots"][lot]["bays"] = {
            bay: {"sensor": sensor, "format": "nwave-nps"} for sensor, bay in box.sensors.items()
        }
        config.pop("sign_buses", None)
        config["health"] = {
            **config.get("health", {}),
            "listen": box.health,
            "status_interval_s": 5,
        }
        box.config.write_text(tomli_w.dumps(config))

    def start(self) -> None:
        self.broker.start()
        log = (self.work / "central" / "serve.log").open("ab")
        self.central = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "parkgrid",
                "central",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.http_port),
                "--log-level",
                "WARNING",
                "--no-migrate",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=self.central_env(),
            start_new_session=True,
        )
        log.close()
        wait_for_port("127.0.0.1", self.http_port, timeout=60)
        self._thread = threading.Thread(target=self._run_sims, name="town-sims", daemon=True)
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError("the concentrator simulators did not start")

    # --- the sensors ----------------------------------------------------------------------

    def _run_sims(self) -> None:
        asyncio.run(self._sims())

    async def _sims(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._done = asyncio.Event()
        async with contextlib.AsyncExitStack() as stack:
            sims = [
                await stack.enter_async_context(
                    ConcentratorSimulator(
                        sensors=dict.fromkeys(box.sensors, "nwave-nps"), link=box.device
                    )
                )
                for box in self.boxes
            ]
            self._ready.set()
            tasks = [
                asyncio.create_task(self._drive(box, sim))
                for box, sim in zip(self.boxes, sims, strict=True)
            ]
            await self._done.wait()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _drive(self, box: Box, sim: ConcentratorSimulator) -> None:
        """Heartbeats (the gate wants a sensor heard), and a bay change every few seconds
        while the bench wants events."""
        rng = random.Random(box.index)
        sensors = list(box.sensors)
        occupied = dict.fromkeys(sensors, False)
        await asyncio.sleep(rng.uniform(0, CHANGE_EVERY_S))
        beat = 0
        while True:
            await sim.send_heartbeat(sensors[beat % len(sensors)])
            beat += 1
            if self._changing.is_set() and beat % int(CHANGE_EVERY_S) == 0:
                sensor = rng.choice(sensors)
                occupied[sensor] = not occupied[sensor]
                await sim.send_status(sensor, occupied=occupied[sensor])
                self.truth[box.sensors[sensor]] = occupied[sensor]
                self.changes_sent += 1
            await asyncio.sleep(1.0)

    def changing(self, on: bool) -> None:
        (self._changing.set if on else self._changing.clear)()

    # --- what central and the boxes hold --------------------------------------------------

    def central_seqs(self) -> dict[str, list[int]]:
        """Every event row's seq at central, per box (a seq twice is a duplicate)."""
        conn = sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=30)
        try:
            rows = conn.execute("SELECT box_id, seq FROM events").fetchall()
        finally:
            conn.close()
        seqs: dict[str, list[int]] = {}
        for box_id, seq in rows:
            seqs.setdefault(box_id, []).append(int(seq))
        return seqs

    def central_bay_changes(self) -> list[tuple[str, str, float, str]]:
        conn = sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=30)
        try:
            return list(
                conn.execute(
                    "SELECT box_id, bay_id, ts, to_state FROM events WHERE kind = 'bay_changed'"
                )
            )
        finally:
            conn.close()

    def central_bays(self) -> dict[str, str | None]:
        """Each bay's state in central's store (what the API and the signs' lots show)."""
        conn = sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=30)
        try:
            return dict(conn.execute("SELECT bay_id, state FROM bays").fetchall())
        finally:
            conn.close()

    @staticmethod
    def outbox(box: Box) -> dict[str, int]:
        """The box's outbox: its last seq, the events still queued, the seqs it dropped."""
        path = box.data / "outbox.sqlite"
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
        try:
            meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
            queued = conn.execute("SELECT count(*) FROM events").fetchone()[0]
            dropped = conn.execute("SELECT coalesce(sum(count), 0) FROM drops").fetchone()[0]
        finally:
            conn.close()
        return {
            "last_seq": int(meta.get("last_seq", 0)),
            "queued": int(queued),
            "dropped": int(dropped),
        }

    @staticmethod
    def healthz(box: Box) -> dict[str, object]:
        try:
            with urllib.request.urlopen(f"http://{box.health}/healthz", timeout=2) as page:
                return dict(json.loads(page.read()))
        except urllib.error.HTTPError as exc:
            return dict(json.loads(exc.read()))
        except (OSError, ValueError):
            return {}

    def stop(self) -> None:
        if self._loop is not None and self._done is not None:
            self._loop.call_soon_threadsafe(self._done.set)
        if self._thread is not None:
            self._thread.join(30)
        if self.central is not None and self.central.poll() is None:
            self.central.terminate()
            try:
                self.central.wait(20)
            except subprocess.TimeoutExpired:
                self.central.kill()
                self.central.wait()
        self.broker.close()


def wait_until(predicate: object, within: float, step: float = 0.5) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if callable(predicate) and predicate():
            return True
        time.sleep(step)
    return False
