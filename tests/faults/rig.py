"""The fault rig: N boxes, a real Mosquitto, a real central, and the checks from central's store.

Theory of operation
-------------------
Every peer that a fault hits is a real process on loopback: ``mosquitto`` (killed with
SIGKILL and restarted on the same port, no persistence), ``parkgrid central serve`` on a
SQLite file, and one ``parkgrid edge run`` per box. Each box reads a
``ConcentratorSimulator`` on a pty held by the test process, so the simulator (and the
truth it keeps) survives a box being killed. ::

    test process                          child processes
    ConcentratorSimulator x N --pty--> parkgrid edge run x N --MQTT--> mosquitto
    Load: toggles bays at a rate                                         |
    checks: reads central.db  <------------ parkgrid central serve <-----+

The checks read central's database directly (read-only): for every box, the event seqs
stored are exactly 1..n with n the box's own ``last_seq`` (no gap, no duplicate, every
``event_id`` once), and each bay's live state equals the simulator's truth. Figures go to
``test-artifacts/reliability.json`` (``record()``), rendered by ``tests/faults/report.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from edge.outbox import Outbox
from simulators.broker import MosquittoBroker, free_port
from simulators.concentrator import ConcentratorSimulator
from site_model.edge_config import Deployment, edge_config
from site_model.site import parse_site

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
# make soak writes its own file (PARKGRID_RELIABILITY_JSON), so the tests' figures stay.
RELIABILITY_JSON = Path(os.environ.get("PARKGRID_RELIABILITY_JSON", ARTIFACTS / "reliability.json"))
SITE_ID = "faulttown"
FORMAT = "nwave-nps"


# --- the site -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class BoxPlan:
    """One box of the fault site: its lot and its bays keyed by sensor id."""

    box_id: str
    lot_id: str
    bays: dict[str, str]  # sensor id -> bay id


def plan_boxes(n: int, bays: int) -> list[BoxPlan]:
    plans = []
    for i in range(1, n + 1):
        lot = f"L{i:02d}"
        sensors = {f"{0x00B0_0000 + i * 0x100 + b:08X}": f"{lot}-B{b:02d}" for b in range(bays)}
        plans.append(BoxPlan(box_id=f"box-{i:02d}", lot_id=lot, bays=sensors))
    return plans


def site_doc(plans: list[BoxPlan]) -> dict[str, Any]:
    """The fault site: one lot per box."""
    return {
        "site": {"id": SITE_ID, "name": "Fault town", "timezone": "UTC"},
        "boxes": {p.box_id: {"name": p.box_id, "lots": [p.lot_id]} for p in plans},
        "lots": {
            p.lot_id: {"name": f"Lot {p.lot_id}", "box_id": p.box_id, "bays": list(p.bays.values())}
            for p in plans
        },
    }


def write_site(path: Path, plans: list[BoxPlan]) -> Path:
    path.write_text(tomli_w.dumps(site_doc(plans)))
    return path


def box_config_doc(
    plan: BoxPlan,
    *,
    data_dir: Path,
    device: Path,
    mqtt_url: str,
    heartbeat_timeout_s: float = 600,
    resend_after_s: float = 2,
    keepalive_s: int = 5,
) -> dict[str, Any]:
    """The box's config, projected from the fault site (``site_model.edge_config``)."""
    deployment = Deployment(
        mqtt_url=mqtt_url,
        box_etc=None,  # the fault broker lets anyone in
        data_dir=str(data_dir),
        serial_device=str(device),
        sensors={bay: (sensor, FORMAT) for sensor, bay in plan.bays.items()},
        mqtt_keepalive_s=keepalive_s,
        heartbeat_timeout_s=heartbeat_timeout_s,
        resend_after_s=resend_after_s,
        health_listen="127.0.0.1:0",
        status_interval_s=5,
    )
    return edge_config(parse_site(site_doc([plan])), plan.box_id, deployment)


# --- processes ----------------------------------------------------------------------------


def _python() -> list[str]:
    return [sys.executable, "-m", "parkgrid"]


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra or {})
    return env


@dataclass(kw_only=True)
class Proc:
    """A child process we start, SIGKILL and restart; its output goes to a log file."""

    argv: list[str]
    log: Path
    env: dict[str, str] = field(default_factory=dict)
    wrap: list[str] = field(default_factory=list)  # e.g. ["ip", "netns", "exec", NAME]
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        assert not self.running, "already running"
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [*self.wrap, *self.argv],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=_env(self.env),
                cwd=ROOT,
                start_new_session=True,
            )

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL, as a crash or a power cut does."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self, timeout: float = 10) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()

    def tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""


class Central:
    """``parkgrid central serve`` on a SQLite file, restartable."""

    def __init__(
        self, *, workdir: Path, site_file: Path, mqtt_url: str, db_path: Path | None = None
    ) -> None:
        self.workdir = workdir
        self.db_path = db_path or workdir / "central.db"
        self.port = free_port()
        self.proc = Proc(
            argv=[
                *_python(),
                "central",
                "serve",
                "--site",
                str(site_file),
                "--database-url",
                f"sqlite:///{self.db_path}",
                "--mqtt-url",
                mqtt_url,
                "--port",
                str(self.port),
                "--instance",
                "central-fault",
                "--log-level",
                "warning",
            ],
            log=workdir / "central.log",
            env={"PARKGRID_MQTT_KEEPALIVE_S": "5"},
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, *, wait: bool = True) -> None:
        self.proc.start()
        if wait:
            self.wait_ready()

    def wait_ready(self, timeout: float = 30) -> None:
        """Until /healthz answers 200 (store and MQTT up)."""
        deadline = time.monotonic() + timeout
        while True:
            if not self.proc.running:
                raise AssertionError(f"central exited:\n{self.proc.tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=1) as resp:
                    if resp.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"central not ready in {timeout} s:\n{self.proc.tail()}")
            time.sleep(0.1)

    def get(self, path: str, token: str | None = None) -> tuple[int, bytes]:
        req = urllib.request.Request(f"{self.url}{path}")
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(req, timeout=5) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def metrics(self) -> str:
        return self.get("/metrics")[1].decode()

    def kill(self) -> None:
        self.proc.kill()

    def stop(self) -> None:
        self.proc.stop()

    # --- reading the store (read-only, next to the running writer) ---

    @contextlib.contextmanager
    def db(self) -> Iterator[sqlite3.Connection]:
        conn = sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=10)
        try:
            yield conn
        finally:
            conn.close()

    def watermarks(self) -> dict[str, int]:
        with self.db() as conn:
            return dict(conn.execute("SELECT box_id, acked_seq FROM watermarks").fetchall())

    def box_row(self, box_id: str) -> tuple[str | None, bool]:
        """(boot id, online) of a box as central last heard."""
        with self.db() as conn:
            row = conn.execute(
                "SELECT boot_id, online FROM boxes WHERE box_id = ?", (box_id,)
            ).fetchone()
        return (row[0], bool(row[1])) if row else (None, False)

    def bay_states(self) -> dict[str, str]:
        with self.db() as conn:
            return dict(conn.execute("SELECT bay_id, state FROM bays").fetchall())


class Box:
    """One ``parkgrid edge run`` process reading its own concentrator simulator."""

    def __init__(
        self,
        *,
        plan: BoxPlan,
        workdir: Path,
        mqtt_url: str,
        wrap: list[str] | None = None,
        **config: Any,
    ) -> None:
        self.plan = plan
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.device = workdir / "ttyCONC"
        self.data_dir = workdir / "data"
        self.config_path = workdir / "edge.toml"
        doc = box_config_doc(
            plan, data_dir=self.data_dir, device=self.device, mqtt_url=mqtt_url, **config
        )
        self.config_path.write_text(tomli_w.dumps(doc))
        self.proc = Proc(
            argv=[*_python(), "edge", "run", "--config", str(self.config_path)],
            log=workdir / "box.log",
            wrap=wrap or [],
        )
        self.sim: ConcentratorSimulator | None = None
        self.history: dict[str, list[bool]] = {s: [] for s in plan.bays}

    @property
    def outbox_path(self) -> Path:
        return Outbox.path_in(self.data_dir)

    def outbox(self) -> tuple[int, int]:
        """(last committed seq, events still held) read from the box's outbox file."""
        if not self.outbox_path.exists():
            return 0, 0
        conn = sqlite3.connect(f"file:{self.outbox_path}?mode=ro", uri=True, timeout=10)
        try:
            row = conn.execute("SELECT value FROM meta WHERE key = 'last_seq'").fetchone()
            depth = conn.execute("SELECT count(*) FROM events").fetchone()[0]
        except sqlite3.OperationalError:
            return 0, 0
        finally:
            conn.close()
        return (int(row[0]) if row else 0), int(depth)

    def truth(self) -> dict[str, str]:
        """Bay id -> the state the simulator's sensors are really in."""
        assert self.sim is not None
        return {
            self.plan.bays[s]: ("occupied" if occ else "free")
            for s, occ in self.sim.truth().items()
        }

    async def set(self, sensor: str, occupied: bool) -> None:
        assert self.sim is not None
        await self.sim.send_status(sensor, occupied=occupied)
        self.history[sensor].append(occupied)

    async def toggle(self, rng: random.Random) -> None:
        sensor = rng.choice(list(self.plan.bays))
        assert self.sim is not None
        await self.set(sensor, not self.sim.core.sensor(sensor).occupied)

    async def heartbeats(self) -> None:
        assert self.sim is not None
        for sensor in self.plan.bays:
            await self.sim.send_heartbeat(sensor)


# --- the rig ------------------------------------------------------------------------------


@dataclass
class Rig:
    broker: MosquittoBroker
    central: Central
    boxes: list[Box]
    tmp: Path
    rng: random.Random = field(default_factory=lambda: random.Random(10))
    paused: set[str] = field(default_factory=set)  # box ids the load leaves alone
    changes: int = 0  # bay changes the load has made so far

    async def wait(
        self, check: Callable[[], object], within: float = 60, what: str = "condition"
    ) -> float:
        """Wait until ``check()`` is true; the seconds it took."""
        started = time.monotonic()
        while not check():
            if time.monotonic() - started > within:
                raise AssertionError(
                    f"timed out after {within} s waiting for {what}\n{self.logs()}"
                )
            await asyncio.sleep(0.05)
        return time.monotonic() - started

    def logs(self) -> str:
        parts = [f"--- central\n{self.central.proc.tail()}"]
        parts += [f"--- {b.plan.box_id}\n{b.proc.tail(15)}" for b in self.boxes]
        return "\n".join(parts)

    def caught_up(self, targets: dict[str, int] | None = None) -> bool:
        """Central's watermark has reached each box's last seq (or the given targets)."""
        marks = self.central.watermarks()
        for box in self.boxes:
            want = targets[box.plan.box_id] if targets else box.outbox()[0]
            if want and marks.get(box.plan.box_id, 0) < want:
                return False
        return True

    def sent_now(self) -> dict[str, int]:
        return {b.plan.box_id: b.outbox()[0] for b in self.boxes}

    async def load(self, seconds: float, rate: float) -> int:
        """Toggle random bays of every box at ``rate`` changes per second per box."""
        n = 0
        step = 1.0 / rate
        end = time.monotonic() + seconds
        next_at = time.monotonic()
        while time.monotonic() < end:
            for box in self.boxes:
                if box.plan.box_id not in self.paused:
                    await box.toggle(self.rng)
                    n += 1
                    self.changes += 1
            next_at += step
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
        return n

    async def settle(self, within: float = 60) -> None:
        """Every box's outbox is empty and central holds everything it sent."""
        await self.wait(
            lambda: all(b.outbox()[1] == 0 for b in self.boxes) and self.caught_up(),
            within=within,
            what="every outbox drained and acked",
        )

    def mismatches(self) -> dict[str, tuple[str | None, str]]:
        """Bays whose live state at central differs from the truth: bay -> (central, truth)."""
        states = self.central.bay_states()
        return {
            bay: (states.get(bay), want)
            for box in self.boxes
            for bay, want in box.truth().items()
            if states.get(bay) != want
        }

    async def converge(self, within: float = 30) -> float:
        """Central's live bay states equal the simulators' truth."""
        try:
            return await self.wait(lambda: not self.mismatches(), within=within, what="truth")
        except AssertionError:
            raise AssertionError(f"bays differ from the truth: {self.mismatches()}") from None

    def audit(self, *, strict_history: bool) -> Audit:
        """What central stored against what the boxes committed (and the sensors did)."""
        return audit(self.central, self.boxes, strict_history=strict_history)


@dataclass
class Audit:
    sent: int = 0
    stored: int = 0
    lost: int = 0
    duplicated: int = 0
    problems: list[str] = field(default_factory=list)


def audit(central: Central, boxes: list[Box], *, strict_history: bool) -> Audit:
    """Per box: seqs 1..n stored once each, n = the box's last seq; optionally the bay history.

    ``strict_history``: also hold each bay's stored ``bay_changed`` states, in seq order, to
    exactly the states the simulator sent (for scenarios where no box was killed mid-read).
    """
    result = Audit()
    with central.db() as conn:
        for box in boxes:
            box_id = box.plan.box_id
            last_seq, _ = box.outbox()
            rows = conn.execute(
                "SELECT seq, event_id FROM events WHERE box_id = ? ORDER BY seq", (box_id,)
            ).fetchall()
            dropped = conn.execute(
                "SELECT count(*) FROM dropped_ranges WHERE box_id = ?", (box_id,)
            ).fetchone()[0]
            if dropped:
                result.problems.append(f"{box_id}: {dropped} dropped range(s) reported")
            seqs = [r[0] for r in rows]
            ids = [r[1] for r in rows]
            distinct = set(seqs)
            dup = (len(seqs) - len(distinct)) + (len(ids) - len(set(ids)))
            missing = sorted(set(range(1, last_seq + 1)) - distinct)
            extra = sorted(s for s in distinct if s > last_seq or s < 1)
            result.sent += last_seq
            result.stored += len(distinct & set(range(1, last_seq + 1)))
            result.lost += len(missing)
            result.duplicated += dup
            if missing:
                result.problems.append(f"{box_id}: seqs missing {missing[:10]}")
            if extra:
                result.problems.append(f"{box_id}: seqs beyond the box's last {extra[:10]}")
            if dup:
                result.problems.append(f"{box_id}: {dup} duplicate row(s)")
            if strict_history:
                for sensor, bay in box.plan.bays.items():
                    got = [
                        r[0] == "occupied"
                        for r in conn.execute(
                            "SELECT to_state FROM events WHERE box_id = ? AND bay_id = ?"
                            " AND kind = 'bay_changed' ORDER BY seq",
                            (box_id, bay),
                        )
                    ]
                    want = _changes(box.history[sensor])
                    if got != want:
                        result.problems.append(f"{bay}: stored {got[-8:]} sent {want[-8:]}")
    return result


def _changes(states: list[bool]) -> list[bool]:
    """The states a bay passed through (a report of the same state is no change)."""
    out: list[bool] = []
    for s in states:
        if not out or out[-1] != s:
            out.append(s)
    return out


@contextlib.asynccontextmanager
async def rig(
    tmp: Path,
    *,
    boxes: int = 3,
    bays: int = 6,
    broker: MosquittoBroker | None = None,
    central_db: Path | None = None,
    wraps: dict[int, list[str]] | None = None,
    mqtt_urls: dict[int, str] | None = None,
    **box_config: Any,
) -> Any:
    """Broker, central and ``boxes`` box processes, each bay reported free once."""
    own_broker = broker is None
    if broker is None:
        broker = MosquittoBroker(workdir=tmp / "broker").start()
    plans = plan_boxes(boxes, bays)
    site = write_site(tmp / "site.toml", plans)
    central = Central(workdir=tmp, site_file=site, mqtt_url=broker.url, db_path=central_db)
    members: list[Box] = []
    stack = contextlib.AsyncExitStack()
    try:
        central.start()
        for i, plan in enumerate(plans):
            url = (mqtt_urls or {}).get(i, broker.url)
            box = Box(
                plan=plan,
                workdir=tmp / plan.box_id,
                mqtt_url=url,
                wrap=(wraps or {}).get(i),
                **box_config,
            )
            box.sim = await stack.enter_async_context(
                ConcentratorSimulator(sensors=dict.fromkeys(plan.bays, FORMAT), link=box.device)
            )
            box.proc.start()
            members.append(box)
        r = Rig(broker=broker, central=central, boxes=members, tmp=tmp)
        # Boxes are up once they have opened the line: report every bay free until central
        # shows it (a frame written before the box opened the pty would still be read, but
        # the box may not have subscribed its occupancy agent yet).
        deadline = time.monotonic() + 60

        def all_free() -> bool:
            states = central.bay_states()
            return all(states.get(bay) == "free" for b in members for bay in b.plan.bays.values())

        while not all_free():
            if time.monotonic() > deadline:
                raise AssertionError(f"boxes never came up\n{r.logs()}")
            for box in members:
                for sensor in box.plan.bays:
                    if (
                        box.history[sensor] == []
                        or central.bay_states().get(box.plan.bays[sensor]) != "free"
                    ):
                        await box.set(sensor, False)
            await asyncio.sleep(0.5)
        await r.settle()
        yield r
    finally:
        for box in members:
            box.proc.kill()
        central.kill()
        await stack.aclose()
        if own_broker:
            broker.close()


# --- figures ------------------------------------------------------------------------------


def record(section: str, name: str, figures: dict[str, Any]) -> None:
    """Merge one row into test-artifacts/reliability.json (``section``: faults, badinput, ...).

    Under a lock file: ``make test`` runs modules in several workers at once, and two
    read-merge-writes interleaved would lose a row (or rename one temporary file twice)."""
    ARTIFACTS.mkdir(exist_ok=True)
    with open(RELIABILITY_JSON.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        data: dict[str, Any] = {}
        if RELIABILITY_JSON.exists():
            with contextlib.suppress(ValueError):
                data = json.loads(RELIABILITY_JSON.read_text())
        data.setdefault(section, {})[name] = {**figures, "recorded_at": time.time()}
        data["mode"] = os.environ.get("PARKGRID_SOAK_MODE", "test")
        tmp = RELIABILITY_JSON.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True))
        tmp.replace(RELIABILITY_JSON)


def soak_factor() -> float:
    """How much longer and faster `make soak` runs the same scenarios (1 in `make test`)."""
    return float(os.environ.get("PARKGRID_SOAK_FACTOR", "1"))


@dataclass
class FaultRun:
    """The figures of one scenario run."""

    scenario: str
    changes: int = 0
    recover_s: float = 0.0
    audit: Audit = field(default_factory=Audit)
    extra: dict[str, Any] = field(default_factory=dict)

    def figures(self) -> dict[str, Any]:
        return {
            "sensor_changes": self.changes,
            "events_sent": self.audit.sent,
            "events_stored": self.audit.stored,
            "lost": self.audit.lost,
            "duplicated": self.audit.duplicated,
            "recover_s": round(self.recover_s, 2),
            "problems": self.audit.problems,
            **self.extra,
        }


async def run_with_fault(
    r: Rig,
    *,
    scenario: str,
    fault: Callable[[], Any],
    seconds: float,
    rate: float,
    strict_history: bool = True,
) -> FaultRun:
    """Load every box for ``seconds``; a third in, ``await fault()`` (break and restore).

    Time to recover: from the moment ``fault()`` returns (the fault is over) until central
    holds every event the boxes had committed by then.
    """
    run = FaultRun(scenario=scenario)
    load = asyncio.create_task(r.load(seconds, rate))
    await asyncio.sleep(seconds / 3)
    extra = await fault()
    if isinstance(extra, dict):
        run.extra.update(extra)
    targets = r.sent_now()
    run.recover_s = await r.wait(
        lambda: r.caught_up(targets), within=120, what="central catching up after the fault"
    )
    run.changes = await load
    await r.settle()
    await r.converge()
    run.audit = r.audit(strict_history=strict_history)
    record("faults", scenario, run.figures())
    return run
