"""A restarted box takes its occupied car-park bays back with their age, instead of starting
blind; a bay last free stays unknown (a car may have taken it while no one read the line)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path

from edge import bay_memory
from edge.config import EdgeConfig, parse_config
from edge.observations import SensorObservation
from edge.runtime import EdgeBox
from firmware_protocols.sensors import decode
from firmware_protocols.signs import GuidanceDisplay, GuidanceMode

T0 = 1_700_000_000.0
SENSORS = ("00A10001", "00A10002", "00A10003")


def _config(tmp_path: Path) -> EdgeConfig:
    bays = {f"B00{i}": {"sensor": s, "format": "nwave-nps"} for i, s in enumerate(SENSORS, 1)}
    return parse_config(
        {
            "site": "xigang",
            "box_id": "box-p1",
            "data_dir": str(tmp_path / "data"),
            "mqtt": {"url": "mqtt://127.0.0.1:1"},
            "serial": {"conc": {"device": str(tmp_path / "tty"), "protocol": "concentrator"}},
            "lots": {"P1": {"bays": bays}},
            "sensors": {"heartbeat_timeout_s": 600},
            "sign_buses": {
                "bus1": {
                    "transport": "tcp",
                    "host": "127.0.0.1",
                    "port": 1,
                    "signs": {"G": {"unit": 1, "profile": "parkgrid-guidance", "lot": "P1"}},
                }
            },
            "health": {"listen": "127.0.0.1:0"},
        }
    )


def _heard(box: EdgeBox, sensor: str, occupied: bool, at: float) -> None:
    reading = decode("nwave-nps", bytes([0x01 if occupied else 0x00]), port=1)
    box.occupancy.observe(
        SensorObservation(line="conc", sensor_id=sensor, reading=reading, received_at=at)
    )


async def test_a_restarted_box_takes_its_bays_back_with_their_age(tmp_path: Path) -> None:
    config = _config(tmp_path)
    now = [T0]
    box = EdgeBox(config, clock=lambda: now[0])
    try:
        _heard(box, SENSORS[2], occupied=False, at=T0)  # silent since: too old at the restart
        _heard(box, SENSORS[0], occupied=False, at=T0 + 400)
        _heard(box, SENSORS[1], occupied=True, at=T0 + 400)
        bay_memory.save(box.occupancy, config.data_dir)
    finally:
        box.outbox.close()

    now[0] = T0 + 650  # restarted: B003's sensor was last heard 650 s ago (timeout 600)
    again = EdgeBox(config, clock=lambda: now[0])
    try:
        snap = again.occupancy.lot_snapshot("P1", now[0])
        # B002 occupied, with its age; B001 was free: never counted free unheard (measured:
        # restored free bays showed 2 free in a full lot and misled a driver); B003 too old.
        assert (snap.free, snap.occupied, snap.unknown) == (0, 1, 2)
        assert again.occupancy.bays["B002"].since == T0 + 400
        _heard(again, SENSORS[0], occupied=False, at=now[0] + 1)  # B001 speaks: a count
        again.intake.snapshot_lots(["P1"], now[0] + 1)
        shown = again.signs.projection("G")
        assert isinstance(shown, GuidanceDisplay)
        assert (shown.mode, shown.free) == (GuidanceMode.NORMAL, 1)
        # The same rule expires B002 as if the box had never stopped: 600 s after T0 + 400.
        changes, _ = again.occupancy.tick(T0 + 1000)
        assert [c.bay_id for c in changes] == ["B002"]
    finally:
        again.outbox.close()


async def test_bay_memory_refuses_what_it_cannot_trust(tmp_path: Path) -> None:
    """Another sensor on the bay, a time in the future, bad types: left unknown."""
    config = _config(tmp_path)
    config.data_dir.mkdir(parents=True)
    (config.data_dir / bay_memory.FILE).write_text(
        json.dumps(
            {
                "B001": {"sensor": "FFFFFFFF", "occupied": False, "since": T0, "last_seen": T0},
                "B002": {"sensor": SENSORS[1], "occupied": True, "since": T0 + 99, "last_seen": 0},
                "B003": {"sensor": SENSORS[2], "occupied": "yes", "since": T0, "last_seen": T0},
                "B009": {"sensor": SENSORS[0], "occupied": False, "since": T0, "last_seen": T0},
            }
        )
    )
    box = EdgeBox(config, clock=lambda: T0 + 1)
    try:
        assert box.occupancy.lot_snapshot("P1", T0 + 1).unknown == 3
    finally:
        box.outbox.close()
    (config.data_dir / bay_memory.FILE).write_text("{not json")
    box = EdgeBox(config, clock=lambda: T0 + 1)  # a corrupt file: moved aside, start blind
    try:
        assert box.occupancy.lot_snapshot("P1", T0 + 1).unknown == 3
        assert (config.data_dir / (bay_memory.FILE + ".corrupt")).exists()
    finally:
        box.outbox.close()


async def test_bay_memory_saves_when_the_box_stops(tmp_path: Path) -> None:
    config = _config(tmp_path)
    box = EdgeBox(config, clock=lambda: T0)
    try:
        _heard(box, SENSORS[0], occupied=True, at=T0)
        keeping = asyncio.create_task(bay_memory.keep(box.occupancy, config.data_dir, every_s=3600))
        await asyncio.sleep(0)
        keeping.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await keeping
        saved = json.loads((config.data_dir / bay_memory.FILE).read_text())
        assert saved == {
            "B001": {"sensor": SENSORS[0], "occupied": True, "since": T0, "last_seen": T0}
        }
    finally:
        box.outbox.close()
