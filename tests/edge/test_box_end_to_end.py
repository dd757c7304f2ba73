"""End to end: concentrator simulator -> box -> mosquitto -> subscriber, and box -> signs.

Every peer is real: the concentrator writes envelope frames on a pty, the box reads them
with pyserial, publishes through a Mosquitto started for the test, and drives a pymodbus
sign simulator over TCP. Central is played by the test stand-in, which also acks.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
import urllib.error
import urllib.request
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.publish as publish
import tomli_w
from prometheus_client.parser import text_string_to_metric_families

from edge.config import EdgeConfig, parse_config
from edge.runtime import EdgeBox
from firmware_protocols.signs import GuidanceMode
from firmware_protocols.uplink import (
    BoxStatus,
    CloseBay,
    Command,
    CommandReply,
    LotState,
    OpenBay,
    SignOverride,
    SignState,
    Topics,
    encode_payload,
)
from firmware_protocols.uplink.models import (
    ClockStatus,
    HealthSummary,
    LaneHealth,
    LotStatus,
    Online,
    OutboxHealth,
    SensorsHealth,
    SignColour,
    SignDisplay,
    SignMode,
    Trend,
)
from simulators.broker import MosquittoBroker, free_port
from simulators.concentrator import ConcentratorSimulator
from simulators.signs import Fault, SignSimulator
from site_model.edge_config import Deployment, SignBus, edge_config
from site_model.site import parse_site
from tests.edge.central_standin import CentralStandin

SITE = "xigang"
SENSORS = {f"00A1000{i}": "nwave-nps" for i in range(1, 5)}  # B001..B004


# The box's part of Xigang for this rig: lot P1 with four bays, its entrance sign sending
# drivers on to P2 (another box's lot).
RIG_SITE = parse_site(
    {
        "site": {"id": SITE, "name": "Xigang"},
        "boxes": {"box-p1": {}, "box-p2": {}},
        "lots": {
            "P1": {"name": "P1", "box_id": "box-p1", "bays": [f"B00{i}" for i in range(1, 5)]},
            "P2": {"name": "P2", "box_id": "box-p2", "bays": 10},
        },
        "signs": {
            "S1": {
                "box_id": "box-p1",
                "kind": "guidance",
                "lot": "P1",
                "arrow": "left",
                "fallback": [{"lot": "P2", "arrow": "right"}],
            }
        },
    }
)


def box_config(
    tmp_path: Path,
    broker: MosquittoBroker,
    device: Path,
    sign_port: int,
    *,
    bus: dict[str, Any] | None = None,
    heartbeat_timeout_s: float = 600,
) -> EdgeConfig:
    """box-p1's config, projected from ``RIG_SITE`` (``site_model.edge_config``)."""
    deployment = Deployment(
        mqtt_url=broker.url,
        box_etc=None,  # the test broker lets anyone in
        data_dir=str(tmp_path / "box"),
        serial_device=str(device),
        sensors={f"B00{i}": s for i, s in enumerate(SENSORS.items(), start=1)},
        sign_bus=SignBus(
            bus_id="bus1",
            host="127.0.0.1",
            port=sign_port,
            units={"S1": 1},
            settings={
                "timeout_s": 0.3,
                "refresh_interval_s": 1.0,
                "watchdog_timeout_s": 10,
                **(bus or {}),
            },
        ),
        mqtt_keepalive_s=5,
        heartbeat_timeout_s=heartbeat_timeout_s,
        resend_after_s=2,
        health_listen="127.0.0.1:0",
    )
    return parse_config(edge_config(RIG_SITE, "box-p1", deployment))


@dataclass
class Rig:
    box: EdgeBox
    sim: ConcentratorSimulator
    signs: SignSimulator
    central: CentralStandin
    broker: MosquittoBroker


async def eventually(predicate: Callable[[], object], within: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {within} s")
        await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def rig(
    tmp_path: Path,
    mosquitto: MosquittoBroker,
    *,
    bus: dict[str, Any] | None = None,
    heartbeat_timeout_s: float = 600,
) -> AsyncIterator[Rig]:
    central = CentralStandin(host=mosquitto.host, port=mosquitto.port, site=SITE).start()
    try:
        async with (
            ConcentratorSimulator(sensors=SENSORS, link=tmp_path / "ttyCONC") as sim,
            SignSimulator(units={1: "parkgrid-guidance"}, tcp=("127.0.0.1", 0)) as signs,
        ):
            assert signs.port is not None
            config = box_config(
                tmp_path, mosquitto, sim.path, signs.port, bus=bus,
                heartbeat_timeout_s=heartbeat_timeout_s,
            )  # fmt: skip
            box = EdgeBox(config)
            task = asyncio.create_task(box.run())
            try:
                await eventually(lambda: box.uplink.live)
                yield Rig(box=box, sim=sim, signs=signs, central=central, broker=mosquitto)
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
                box.outbox.close()
    finally:
        central.stop()


def lot_states(central: CentralStandin) -> list[LotState]:
    return [m.payload for m in central.log if isinstance(m.payload, LotState)]


def bay_events(central: CentralStandin) -> list[Any]:
    with central._lock:
        events = sorted(central.events.values(), key=lambda e: e.seq)
    return [e.body for e in events if e.body.kind == "bay_changed"]


async def test_box_car_arrival_lowers_sign_and_reaches_subscriber(
    tmp_path: Path, mosquitto: MosquittoBroker
) -> None:
    """A car arriving lowers the sign's count; the subscriber sees the event and lot state."""
    async with rig(tmp_path, mosquitto) as r:
        for sensor in SENSORS:
            await r.sim.send_status(sensor, occupied=False)
        await eventually(lambda: r.signs.display(1).free == 4)
        assert r.signs.shown(1).startswith("P1 4")

        await r.sim.send_status("00A10001", occupied=True)
        await eventually(lambda: r.signs.display(1).free == 3)
        await eventually(
            lambda: any(s.free == 3 and s.occupied == 1 for s in lot_states(r.central))
        )
        await eventually(
            lambda: any(
                b.bay_id == "B001" and b.to_state == "occupied" for b in bay_events(r.central)
            )
        )
        arrival = next(b for b in bay_events(r.central) if b.to_state == "occupied")
        assert (arrival.lot_id, arrival.from_state, arrival.sensor_id) == ("P1", "free", "00A10001")
        # Central stored the events, so the box's outbox empties.
        await eventually(lambda: r.box.outbox.depth() == 0)


async def test_box_silent_sensor_makes_bay_unknown(
    tmp_path: Path, mosquitto: MosquittoBroker
) -> None:
    """A sensor silent past its heartbeat timeout makes its bay unknown, never free."""
    async with rig(tmp_path, mosquitto, heartbeat_timeout_s=1.5) as r:
        for sensor in SENSORS:
            await r.sim.send_status(sensor, occupied=False)
        await eventually(lambda: r.signs.display(1).free == 4)
        # Three sensors keep talking; B004's sensor falls silent.
        for _ in range(4):
            await asyncio.sleep(0.5)
            for sensor in list(SENSORS)[:3]:
                await r.sim.send_heartbeat(sensor)
        await eventually(lambda: r.box.occupancy.bays["B004"].state == "unknown")
        await eventually(lambda: r.signs.display(1).free == 3)
        await eventually(lambda: any(s.unknown == 1 and s.free == 3 for s in lot_states(r.central)))
        assert r.box.occupancy.bays["B001"].state == "free"


async def test_box_full_lot_points_to_another_lot(
    tmp_path: Path, mosquitto: MosquittoBroker
) -> None:
    """When P1 fills, its sign points to P2, whose free count (and its box online) the box
    learned over MQTT."""
    async with rig(tmp_path, mosquitto) as r:
        other = Topics(SITE, "box-p2")
        now = datetime.now(UTC)
        status = BoxStatus(box_id="box-p2", state=Online.OFFLINE, boot_id=uuid.uuid4(), ts=now)
        p2 = LotState(
            lot_id="P2",
            capacity=50,
            free=37,
            occupied=13,
            unknown=0,
            closed=0,
            status=LotStatus.SPACES_AVAILABLE,
            trend=Trend.STEADY,
            ts=now,
        )
        empty = LaneHealth(depth=0, bytes=0, cap_bytes=1)
        online = BoxStatus(
            box_id="box-p2", state=Online.ONLINE, boot_id=uuid.uuid4(), ts=now,
            software_version="0.1.0", config_hash="sha256:p2", sensor_count=50,
            clock=ClockStatus(synchronised=True),
            health=HealthSummary(
                outbox=OutboxHealth(state=empty, event=empty), sensors=SensorsHealth(total=50)
            ),
        )  # fmt: skip
        for topic, payload in ((other.lot("P2"), p2), (other.status, online)):
            await asyncio.to_thread(
                publish.single,
                topic,
                encode_payload(payload),
                qos=1,
                retain=True,
                hostname=mosquitto.host,
                port=mosquitto.port,
            )
        for sensor in SENSORS:
            await r.sim.send_status(sensor, occupied=True)
        await eventually(lambda: r.box.occupancy.lot_snapshot("P1", 0).free == 0)
        await eventually(lambda: r.signs.display(1).mode == GuidanceMode.FULL)
        await eventually(lambda: r.signs.display(1).label == "P2")
        shown = r.signs.display(1)
        assert shown.free == 37
        assert r.signs.shown(1).startswith("满 FULL → P2 37")
        # P2's box goes offline: its figures can no longer be trusted, so P1's sign says full
        # with nowhere to send drivers (no label: never "P1" or "P2" next to the full words).
        await asyncio.to_thread(
            publish.single,
            other.status,
            encode_payload(status),
            qos=1,
            retain=True,
            hostname=mosquitto.host,
            port=mosquitto.port,
        )
        await eventually(lambda: r.signs.display(1).label == "")
        assert (r.signs.display(1).mode, r.signs.display(1).free) == (GuidanceMode.FULL, 0)
        # A car leaves P1: the sign shows P1's own count again.
        await r.sim.send_status("00A10002", occupied=False)
        await eventually(lambda: r.signs.display(1).mode == GuidanceMode.NORMAL)
        assert r.signs.display(1).free == 1


def command(body: Any, *, expires_in_s: float | None = None) -> Command:
    now = datetime.now(UTC)
    return Command(
        command_id=uuid.uuid4(),
        issued_at=now,
        expires_at=now + timedelta(seconds=expires_in_s) if expires_in_s is not None else None,
        body=body,
    )


def replies(central: CentralStandin) -> dict[uuid.UUID, CommandReply]:
    with central._lock:
        return {r.command_id: r for r in central.replies}


async def test_box_commands_close_bay_and_override_sign(
    tmp_path: Path, mosquitto: MosquittoBroker
) -> None:
    """close-bay takes a bay out of the count; sign-override shows the office's display
    until it expires; an unknown bay is refused with a reason."""
    async with rig(tmp_path, mosquitto) as r:
        for sensor in SENSORS:
            await r.sim.send_status(sensor, occupied=False)
        await eventually(lambda: r.signs.display(1).free == 4)

        close = command(CloseBay(bay_id="B003", reason="resurfacing"))
        r.central.send_command("box-p1", close)
        await eventually(lambda: close.command_id in replies(r.central))
        assert replies(r.central)[close.command_id].ok
        await eventually(lambda: r.signs.display(1).free == 3)
        assert r.box.occupancy.lot_snapshot("P1", 0).closed == 1

        unknown = command(CloseBay(bay_id="B999", reason="typo"))
        r.central.send_command("box-p1", unknown)
        await eventually(lambda: unknown.command_id in replies(r.central))
        reply = replies(r.central)[unknown.command_id]
        assert not reply.ok and reply.error is not None and "B999" in reply.error

        until = datetime.now(UTC) + timedelta(seconds=1.5)
        override = command(
            SignOverride(
                sign_id="S1",
                display=SignDisplay(mode=SignMode.COUNT, count=88, colour=SignColour.RED),
                until=until,
            )
        )
        r.central.send_command("box-p1", override)
        await eventually(lambda: r.signs.display(1).free == 88)
        await eventually(lambda: override.command_id in replies(r.central))
        assert replies(r.central)[override.command_id].ok
        # When the override ends, the sign follows the lot again.
        await eventually(lambda: r.signs.display(1).free == 3, within=5)

        reopen = command(OpenBay(bay_id="B003"))
        r.central.send_command("box-p1", reopen)
        await eventually(lambda: r.signs.display(1).free == 4)


def http_get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


async def test_box_process_health_page_and_sigterm(
    tmp_path: Path, mosquitto: MosquittoBroker
) -> None:
    """`parkgrid edge run` serves /healthz and /metrics locally, publishes its birth, and
    on SIGTERM says offline (shutdown) and exits 0 within 5 s."""
    central = CentralStandin(host=mosquitto.host, port=mosquitto.port, site=SITE).start()
    health_port = free_port()
    try:
        async with (
            ConcentratorSimulator(sensors=SENSORS, link=tmp_path / "ttyCONC") as sim,
            SignSimulator(units={1: "parkgrid-guidance"}, tcp=("127.0.0.1", 0)) as signs,
        ):
            assert signs.port is not None
            config = box_config(tmp_path, mosquitto, sim.path, signs.port)
            data = config.model_dump(mode="json", exclude_none=True)
            data["health"]["listen"] = f"127.0.0.1:{health_port}"
            path = tmp_path / "edge.toml"
            path.write_text(tomli_w.dumps(data))
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "parkgrid",
                "edge",
                "run",
                "--config",
                str(path),
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
            )
            try:
                await eventually(
                    lambda: any(s.state == Online.ONLINE for s in central.statuses("box-p1")),
                    within=20,
                )
                for sensor in SENSORS:
                    await sim.send_status(sensor, occupied=False)
                await eventually(lambda: signs.display(1).free == 4)
                status, body = await asyncio.to_thread(http_get, health_port, "/healthz")
                health = json.loads(body)
                assert status == 200, body
                assert health["mqtt_connected"] is True
                assert health["lots"]["P1"]["free"] == 4
                status, text = await asyncio.to_thread(http_get, health_port, "/metrics")
                assert status == 200
                samples = {
                    (sample.name, tuple(sorted(sample.labels.items()))): sample.value
                    for family in text_string_to_metric_families(text)
                    for sample in family.samples
                }
                free = (("box", "box-p1"), ("lot", "P1"), ("state", "free"))
                assert samples["parkgrid_edge_lot_bays", free] == 4
                line = (("box", "box-p1"), ("line", "conc"))
                assert ("parkgrid_edge_serial_frames_total", line) in samples
                assert (await asyncio.to_thread(http_get, health_port, "/nope"))[0] == 404

                started = asyncio.get_running_loop().time()
                proc.send_signal(signal.SIGTERM)
                output, _ = await asyncio.wait_for(proc.communicate(), timeout=10)
                elapsed = asyncio.get_running_loop().time() - started
            finally:
                if proc.returncode is None:
                    proc.kill()
                    await proc.wait()
            assert proc.returncode == 0, output.decode()
            assert elapsed < 5, f"took {elapsed:.1f} s to stop"
            await eventually(
                lambda: central.statuses("box-p1")[-1].state == Online.OFFLINE, within=5
            )
            assert central.statuses("box-p1")[-1].reason == "shutdown"
            assert b"Traceback" not in output
    finally:
        central.stop()


def alerts(central: CentralStandin) -> list[Any]:
    with central._lock:
        events = sorted(central.events.values(), key=lambda e: e.seq)
    return [e.body for e in events if e.body.kind in ("alert_raised", "alert_resolved")]


async def test_box_sign_answering_exceptions_raises_alert_and_recovers(
    tmp_path: Path, mosquitto: MosquittoBroker
) -> None:
    """A sign answering with exception codes is marked down with an alert; when it answers
    again the alert resolves and the sign shows the right count."""
    async with rig(tmp_path, mosquitto) as r:
        for sensor in SENSORS:
            await r.sim.send_status(sensor, occupied=False)
        await eventually(lambda: r.signs.display(1).free == 4)
        r.signs.inject(1, Fault.DEVICE_FAILURE)
        await r.sim.send_status("00A10001", occupied=True)
        await eventually(
            lambda: any(a.kind == "alert_raised" and a.sign_id == "S1" for a in alerts(r.central))
        )
        raised = next(a for a in alerts(r.central) if a.kind == "alert_raised")
        assert raised.alert_type == "sign_down"
        assert r.signs.display(1).free == 4  # the sign never took the write
        r.signs.inject(1, Fault.NONE)
        await eventually(lambda: r.signs.display(1).free == 3)
        await eventually(
            lambda: any(
                a.kind == "alert_resolved" and a.alert_id == raised.alert_id
                for a in alerts(r.central)
            )
        )


def sign_states(central: CentralStandin, sign_id: str) -> list[SignState]:
    with central._lock:
        return [
            m.payload
            for m in central.log
            if isinstance(m.payload, SignState) and m.payload.sign_id == sign_id
        ]


def alert_bodies(central: CentralStandin, kind: str) -> list[Any]:
    with central._lock:
        events = sorted(central.events.values(), key=lambda e: e.seq)
    return [e.body for e in events if e.body.kind == kind]


async def test_box_reports_a_dark_sign_to_central_and_its_end(
    tmp_path: Path, mosquitto: MosquittoBroker
) -> None:
    """Finding 5: the sign state carries last_verified; a sign that reboots (the real
    pymodbus simulator power-cycles it) reaches central as a sign state with its problem and
    an alert, within a heartbeat, not a refresh (ten minutes here); then as verified again."""
    bus = {"refresh_interval_s": 600, "watchdog_timeout_s": 1200, "heartbeat_interval_s": 0.3}
    async with rig(tmp_path, mosquitto, bus=bus) as r:
        for sensor in SENSORS:
            await r.sim.send_status(sensor, occupied=False)
        await eventually(lambda: r.signs.shown(1).startswith("P1 4"), within=30)
        # What the read-back found reaches central with last_verified, within a heartbeat.
        await eventually(
            lambda: any(
                s.last_verified is not None and s.shown is not None and s.shown.count == 4
                for s in sign_states(r.central, "S1")
            ),
            within=30,
        )
        verified = [s for s in sign_states(r.central, "S1") if s.last_verified is not None][-1]
        assert verified.problem is None
        await eventually(lambda: (r.box.buses["bus1"].status("S1").uptime_s or 0) >= 1, 30)

        r.signs.reboot(1)
        await eventually(
            lambda: any("rebooted" in (s.problem or "") for s in sign_states(r.central, "S1")),
            within=30,
        )
        dark = next(s for s in sign_states(r.central, "S1") if s.problem)
        assert dark.wrong_since is not None and dark.reboots == 1
        await eventually(lambda: alert_bodies(r.central, "alert_raised"), within=30)
        raised = [a for a in alert_bodies(r.central, "alert_raised") if a.sign_id == "S1"]
        assert raised[0].alert_type.value == "sign_wrong"
        assert "rebooted" in raised[0].message
        faults = [f for f in alert_bodies(r.central, "sign_fault") if f.sign_id == "S1"]
        assert faults and "rebooted" in faults[0].reason

        # The box rewrites it; the read-back matches; central hears the end of it.
        await eventually(lambda: r.signs.shown(1).startswith("P1 4"), within=30)
        await eventually(lambda: alert_bodies(r.central, "alert_resolved"), within=30)
        resolved = alert_bodies(r.central, "alert_resolved")[0]
        assert resolved.alert_id == raised[0].alert_id
        last = sign_states(r.central, "S1")[-1]
        assert last.problem is None and last.wrong_since is None
        assert last.last_verified is not None and last.last_verified > dark.wrong_since


async def test_box_starting_up_shows_dashes_not_full(
    tmp_path: Path, mosquitto: MosquittoBroker
) -> None:
    """Finding 3: a box that has heard no sensor yet shows -- on its sign (and tells central
    so), never FULL; the first reports bring the count."""
    async with rig(tmp_path, mosquitto) as r:
        await eventually(lambda: r.signs.display(1).mode == GuidanceMode.UNKNOWN, within=30)
        assert r.signs.shown(1) == "--"
        await eventually(
            lambda: any(s.display.mode == SignMode.DASHES for s in sign_states(r.central, "S1")),
            within=30,
        )
        for sensor in SENSORS:
            await r.sim.send_status(sensor, occupied=False)
        await eventually(lambda: r.signs.shown(1).startswith("P1 4"), within=30)
        assert not any(
            s.display.text and "FULL" in s.display.text for s in sign_states(r.central, "S1")
        )
