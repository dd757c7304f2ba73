"""End to end: a vendor stays past closing, with a real concentrator, signs and broker.

The box runs with simulators on a pty (sensors) and Modbus TCP (a warning sign), publishes
through Mosquitto to the central stand-in, and reads a clock the test steps: the morning
market closes at 09:30 Shanghai time and the test moves the box's clock over the closing
and the grace period in seconds, poking the box (``EdgeBox.wake``) as an NTP step would.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from edge.config import parse_config
from edge.runtime import EdgeBox
from firmware_protocols.signs import Message, WarningDisplay
from firmware_protocols.uplink import Command, CommandReply
from firmware_protocols.uplink.models import (
    AlertRaised,
    AlertResolved,
    BoxStatus,
    ScheduleDocument,
    Severity,
    Weekday,
    WeeklyWindow,
    ZoneClass,
    ZoneOpenState,
    ZoneSchedule,
    ZoneScheduleCommand,
    ZoneState,
    ZoneTransition,
)
from simulators.broker import MosquittoBroker
from simulators.concentrator import ConcentratorSimulator
from simulators.signs import SignSimulator
from tests.edge.central_standin import CentralStandin
from tests.edge.test_box_end_to_end import eventually

SITE = "xigang"
BOX = "box-z1"
PITCH = "00B00001"
START = dt.datetime(2025, 3, 3, 9, 29, tzinfo=ZoneInfo("Asia/Shanghai")).timestamp()  # Monday


class SteppedClock:
    """Wall time that runs at real speed from ``start`` and can be stepped like NTP does."""

    def __init__(self, start: float) -> None:
        self.offset = start - time.time()

    def __call__(self) -> float:
        return time.time() + self.offset

    def step(self, seconds: float) -> None:
        self.offset += seconds


@dataclass
class Rig:
    box: EdgeBox
    clock: SteppedClock
    sim: ConcentratorSimulator
    signs: SignSimulator
    central: CentralStandin


@contextlib.asynccontextmanager
async def rig(tmp_path: Path, mosquitto: MosquittoBroker) -> AsyncIterator[Rig]:
    central = CentralStandin(host=mosquitto.host, port=mosquitto.port, site=SITE).start()
    try:
        async with (
            ConcentratorSimulator(sensors={PITCH: "nwave-nps"}, link=tmp_path / "tty") as sim,
            SignSimulator(units={2: "parkgrid-warning"}, tcp=("127.0.0.1", 0)) as signs,
        ):
            config = parse_config(
                {
                    "site": SITE,
                    "box_id": BOX,
                    "data_dir": str(tmp_path / "box"),
                    "mqtt": {"url": mosquitto.url, "keepalive_s": 5},
                    "serial": {"conc": {"device": str(sim.path), "protocol": "concentrator"}},
                    "zones": {
                        "M1": {
                            "class": "regulated",
                            "name": "morning market",
                            "bays": {"S1": {"sensor": PITCH, "format": "nwave-nps"}},
                            "windows": [
                                {
                                    "days": ["mon", "tue", "wed", "thu", "fri"],
                                    "start": "06:00",
                                    "end": "09:30",
                                }
                            ],
                            "grace_s": 60,
                            "closing_soon_s": 120,
                            "ladder": [
                                {"after_s": 0, "severity": "warning"},
                                {"after_s": 600, "severity": "escalated"},
                            ],
                        }
                    },
                    "sign_buses": {
                        "bus1": {
                            "transport": "tcp",
                            "host": "127.0.0.1",
                            "port": signs.port,
                            "timeout_s": 0.3,
                            "refresh_interval_s": 1.0,
                            "watchdog_timeout_s": 10,
                            "signs": {
                                "W1": {"unit": 2, "profile": "parkgrid-warning", "zone": "M1"}
                            },
                        }
                    },
                    "sensors": {"heartbeat_timeout_s": 3600},
                    "outbox": {"resend_after_s": 2},
                    "health": {"listen": "127.0.0.1:0"},
                }
            )
            clock = SteppedClock(START)
            box = EdgeBox(config, clock=clock)
            task = asyncio.create_task(box.run())
            try:
                await eventually(lambda: box.uplink.live)
                yield Rig(box=box, clock=clock, sim=sim, signs=signs, central=central)
            finally:
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
                box.outbox.close()
    finally:
        central.stop()


def bodies(central: CentralStandin, kind: type[Any]) -> list[Any]:
    with central._lock:
        events = sorted(central.events.values(), key=lambda e: e.seq)
    return [e.body for e in events if isinstance(e.body, kind)]


def zone_states(central: CentralStandin) -> list[ZoneState]:
    with central._lock:
        return [m.payload for m in central.log if isinstance(m.payload, ZoneState)]


def sign(r: Rig) -> WarningDisplay:
    shown = r.signs.display(2)
    assert isinstance(shown, WarningDisplay)
    return shown


async def test_zone_vendor_overstays_sign_closes_alert_raised_and_resolved(
    tmp_path: Path, mosquitto: MosquittoBroker
) -> None:
    """Past closing the sign says closing, then closed; after grace the alert goes out;
    the vendor leaves and the alert resolves, all through the real peers."""
    async with rig(tmp_path, mosquitto) as r:
        # 09:29: the last two minutes of the window.
        await eventually(lambda: sign(r).message is Message.STALL_ZONE_CLOSING)
        assert not sign(r).flashing
        await r.sim.send_status(PITCH, occupied=True)
        await eventually(lambda: r.box.occupancy.bays["S1"].state == "occupied")
        await eventually(lambda: any(s.occupied == 1 for s in zone_states(r.central)))

        r.clock.step(70)  # 09:30:10: the window has ended, grace runs
        r.box.wake()
        await eventually(lambda: sign(r).flashing)
        assert sign(r).message is Message.STALL_ZONE_CLOSING
        await eventually(lambda: bool(bodies(r.central, ZoneTransition)))
        assert not bodies(r.central, AlertRaised)

        r.clock.step(60)  # 09:31:10: grace over
        r.box.wake()
        await eventually(lambda: sign(r).message is Message.STALL_ZONE_CLOSED)
        assert sign(r).flashing  # the pitch is still occupied
        await eventually(lambda: bool(bodies(r.central, AlertRaised)))
        alert = bodies(r.central, AlertRaised)[0]
        assert (alert.alert_type.value, alert.severity, alert.zone_id, alert.bay_id) == (
            "zone_overstay",
            Severity.WARNING,
            "M1",
            "S1",
        )
        moves = [(t.from_state, t.to_state) for t in bodies(r.central, ZoneTransition)]
        assert moves == [
            (ZoneOpenState.OPEN, ZoneOpenState.CLOSING),
            (ZoneOpenState.CLOSING, ZoneOpenState.CLOSED),
        ]
        await eventually(lambda: zone_states(r.central)[-1].state is ZoneOpenState.CLOSED)

        await r.sim.send_status(PITCH, occupied=False)
        await eventually(lambda: bool(bodies(r.central, AlertResolved)))
        resolved = bodies(r.central, AlertResolved)[0]
        assert (resolved.alert_id, resolved.message) == (alert.alert_id, "space empty")
        await eventually(lambda: not sign(r).flashing)
        assert sign(r).message is Message.STALL_ZONE_CLOSED
        # Central stored every event, so the box's outbox empties.
        await eventually(lambda: r.box.outbox.depth() == 0)


def schedule_command(version: int, zone_id: str, effective: float) -> Command:
    now = dt.datetime.now(dt.UTC)
    document = ScheduleDocument(
        version=version,
        effective_from=dt.datetime.fromtimestamp(effective, dt.UTC),
        timezone="Asia/Shanghai",
        zones=(
            ZoneSchedule(
                zone_id=zone_id,
                zone_class=ZoneClass.REGULATED,
                grace_s=60,
                weekly=(
                    WeeklyWindow(days=(Weekday.MON,), start=dt.time(6, 0), end=dt.time(11, 0)),
                ),
            ),
        ),
    )
    return Command(
        command_id=uuid.uuid4(), issued_at=now, body=ZoneScheduleCommand(schedule=document)
    )


def reply(central: CentralStandin, command: Command) -> CommandReply | None:
    with central._lock:
        return next((r for r in central.replies if r.command_id == command.command_id), None)


async def test_zone_schedule_command_applies_and_reports_version(
    tmp_path: Path, mosquitto: MosquittoBroker
) -> None:
    """A zone-schedule from central runs at once, is stored, and its version shows in the
    birth and the zone state; one naming an unknown zone is refused with a reason."""
    async with rig(tmp_path, mosquitto) as r:
        await eventually(lambda: sign(r).message is Message.STALL_ZONE_CLOSING)
        bad = schedule_command(4, "NOPE", r.clock())
        r.central.send_command(BOX, bad)
        await eventually(lambda: reply(r.central, bad) is not None)
        refused = reply(r.central, bad)
        assert refused is not None and not refused.ok
        assert refused.error is not None and "NOPE" in refused.error

        good = schedule_command(4, "M1", r.clock() - 1)
        r.central.send_command(BOX, good)
        await eventually(lambda: reply(r.central, good) is not None)
        accepted = reply(r.central, good)
        assert accepted is not None and accepted.ok
        # The market now trades until 11:00: the sign drops "closing soon".
        await eventually(lambda: sign(r).message is Message.BLANK)
        await eventually(
            lambda: any(
                isinstance(m.payload, BoxStatus) and m.payload.zone_schedule_version == 4
                for m in list(r.central.log)
            )
        )
        await eventually(lambda: zone_states(r.central)[-1].schedule_version == 4)
        assert (tmp_path / "box" / "zone-schedule.json").exists()
