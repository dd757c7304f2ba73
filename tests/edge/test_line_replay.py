"""A box that starts learns every bay from the concentrator's replay at once (finding 3,
issue 15): real ptys, the real box, the concentrator simulator with its table."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from edge.config import EdgeConfig, parse_config
from edge.drivers.line_replay import LineReplay
from edge.runtime import EdgeBox
from firmware_protocols.concentrator import ReplayEnd, StoredUplink, UplinkFrame, encode_frame
from simulators.concentrator import ConcentratorSimulator
from tests.faults.rig import record

SENSORS = {f"00A1000{i}": "nwave-nps" for i in range(1, 7)}  # B001..B006


def _config(tmp_path: Path, device: Path, *, heartbeat_timeout_s: float = 600) -> EdgeConfig:
    bays = {f"B00{i}": {"sensor": s, "format": f} for i, (s, f) in enumerate(SENSORS.items(), 1)}
    return parse_config(
        {
            "site": "xigang",
            "box_id": "box-p1",
            "data_dir": str(tmp_path / "data"),
            "mqtt": {"url": "mqtt://127.0.0.1:1"},
            "serial": {"conc": {"device": str(device), "protocol": "concentrator"}},
            "lots": {"P1": {"bays": bays}},
            "sensors": {"heartbeat_timeout_s": heartbeat_timeout_s},
            "health": {"listen": "127.0.0.1:0"},
        }
    )


async def eventually(predicate: Callable[[], object], within: float = 15.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {within} s")
        await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def running(config: EdgeConfig, answer_within_s: float = 5.0) -> AsyncIterator[EdgeBox]:
    box = EdgeBox(config)
    box.lines["conc"].replay.answer_within_s = answer_within_s
    task = asyncio.create_task(box.run())
    try:
        yield box
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        box.outbox.close()


def counts(box: EdgeBox) -> tuple[int, int, int]:
    snap = box.occupancy.lot_snapshot("P1", box.clock())
    return snap.free, snap.occupied, snap.unknown


def truth_counts(sim: ConcentratorSimulator) -> tuple[int, int, int]:
    occupied = sum(sim.truth().values())
    return len(SENSORS) - occupied, occupied, 0


async def test_a_restarted_box_knows_its_bays_from_the_replay(tmp_path: Path) -> None:
    """Bays change while the box is stopped (their frames lost: no one reads the line) and
    the sensors then say nothing; the restarted box's lot count is the truth as soon as the
    replay is in, instead of occupied bays remembered and the rest unknown."""
    async with ConcentratorSimulator(sensors=SENSORS, link=tmp_path / "tty") as sim:
        config = _config(tmp_path, sim.path)
        async with running(config) as box:
            await eventually(lambda: box.lines["conc"].up)
            for i, sensor in enumerate(SENSORS):
                await sim.send_status(sensor, occupied=i < 3)
            await eventually(lambda: counts(box) == (3, 3, 0))
        # The box is down: two cars leave, one arrives. The radio hears it, the line loses it.
        sim.core.status("00A10001", occupied=False)
        sim.core.status("00A10002", occupied=False)
        sim.core.status("00A10004", occupied=True)
        assert truth_counts(sim) == (4, 2, 0)
        async with running(config) as again:
            replay = again.lines["conc"].replay
            await eventually(lambda: replay.stats.completed == 1)
            assert counts(again) == truth_counts(sim)
            assert replay.stats.stored_taken == len(SENSORS)
            assert again.occupancy.bays["B001"].state == "free"
            # Live frames go on as before, and win.
            await sim.send_status("00A10003", occupied=False)
            await eventually(lambda: counts(again) == (5, 1, 0))


async def test_a_stored_uplink_older_than_the_timeout_leaves_its_bay_unknown(
    tmp_path: Path,
) -> None:
    """The silence timeout runs from when the concentrator heard the sensor."""
    async with ConcentratorSimulator(sensors=SENSORS, link=tmp_path / "tty") as sim:
        config = _config(tmp_path, sim.path, heartbeat_timeout_s=1.0)
        for sensor in list(SENSORS)[:3]:
            sim.core.status(sensor, occupied=False)  # heard before any box listened
        await asyncio.sleep(1.2)
        for sensor in list(SENSORS)[3:]:
            sim.core.status(sensor, occupied=True)
        async with running(config) as box:
            await eventually(lambda: box.lines["conc"].replay.stats.completed == 1)
            free, occupied, unknown = counts(box)
            assert (free, occupied, unknown) == (0, 3, 3)


async def test_an_old_concentrator_that_never_answers_leaves_the_bay_memory(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Older firmware skips the request: the box starts with its bay memory, says once that
    no replay came, and live uplinks work as ever."""
    async with ConcentratorSimulator(sensors=SENSORS, link=tmp_path / "tty", replay=False) as sim:
        config = _config(tmp_path, sim.path)
        async with running(config) as box:
            await eventually(lambda: box.lines["conc"].up)
            for i, sensor in enumerate(SENSORS):
                await sim.send_status(sensor, occupied=i < 2)
            await eventually(lambda: counts(box) == (4, 2, 0))
        caplog.clear()
        async with running(config, answer_within_s=0.3) as again:
            assert counts(again) == (0, 2, 4)  # the occupied bays remembered
            replay = again.lines["conc"].replay
            await eventually(lambda: replay.stats.requested == 1)
            # Something must be read for the line to look again: the concentrator's heartbeat.
            await asyncio.sleep(0.4)
            await sim.send_concentrator_status()
            await eventually(lambda: replay.stats.unanswered == 1)
            assert "did not answer the replay request" in caplog.text
            assert counts(again) == (0, 2, 4)
            await sim.send_status("00A10006", occupied=False)
            await eventually(lambda: counts(again) == (1, 2, 3))
        assert sim.counts.replays == 0


async def test_stored_uplinks_for_another_request_are_refused(tmp_path: Path) -> None:
    """A stored uplink or end with a request id the box did not send is counted, not used."""
    async with ConcentratorSimulator(sensors=SENSORS, link=tmp_path / "tty", replay=False) as sim:
        config = _config(tmp_path, sim.path)
        async with running(config) as box:
            replay = box.lines["conc"].replay
            await eventually(lambda: replay.outstanding is not None)
            wrong = (replay.outstanding or 0) ^ 0x8000
            uplink = UplinkFrame(
                sensor_id=0x00A10001, rssi_dbm=-80, snr_db=5.0, fmt="nwave-nps", port=1,
                payload=b"\x00",
            )  # fmt: skip
            sim.write(encode_frame(StoredUplink(request_id=wrong, age_ms=10, uplink=uplink)))
            sim.write(encode_frame(ReplayEnd(request_id=wrong, count=1)))
            await eventually(lambda: replay.stats.unknown_request == 2)
            assert box.occupancy.bays["B001"].state == "unknown"
            assert replay.stats.completed == 0


async def test_a_replay_flood_after_its_end_is_refused(tmp_path: Path) -> None:
    """Real pty: a line answers the box's request (one stored uplink, its end), then goes on
    sending stored uplinks for that request, 500 of them, for every other sensor: none is
    used (their bays stay unknown), each is counted."""
    async with ConcentratorSimulator(sensors=SENSORS, link=tmp_path / "tty", replay=False) as sim:
        config = _config(tmp_path, sim.path)
        async with running(config) as box:
            replay = box.lines["conc"].replay
            await eventually(lambda: replay.outstanding is not None)
            asked = replay.outstanding or 0
            sim.write(encode_frame(_stored(asked, 0x00A10001)))
            sim.write(encode_frame(ReplayEnd(request_id=asked, count=1)))
            await eventually(lambda: replay.stats.completed == 1)
            flood = 500
            for n in range(flood):
                sim.write(encode_frame(_stored(asked, 0x00A10002 + n % 5)))
            await eventually(lambda: replay.stats.unknown_request == flood, within=60)
            assert box.occupancy.bays["B001"].state != "unknown"  # the honest answer
            others = [box.occupancy.bays[f"B00{i}"].state for i in range(2, 7)]
            assert others == ["unknown"] * 5
            assert replay.stats.stored_taken == 1
    record(
        "hostile",
        "concentrator replay after its end",
        {
            "attack": "a line answers the box's replay request, ends it, then sends stored "
            "uplinks for it (a real pty, 5 sensors)",
            "tried": flood,
            "refused": flood,
            "notes": "counted as for no outstanding request; those bays stay unknown (was: "
            "every one taken as the sensor's word)",
        },
    )


def _stored(request_id: int, sensor_id: int) -> StoredUplink:
    uplink = UplinkFrame(
        sensor_id=sensor_id, rssi_dbm=-80, snr_db=0.0, fmt="nwave-nps", port=1, payload=b"\x01"
    )
    return StoredUplink(request_id=request_id, age_ms=1000, uplink=uplink)


def test_line_replay_rules() -> None:
    """Sans-I/O: a fresh id per request, live frames win, lost stored frames are counted,
    an unanswered request is said once, an answer to an abandoned request is refused."""
    replay = LineReplay(seed=1)
    first = replay.request(now=0.0).request_id
    replay.heard_live(7)
    assert replay.take_stored(_stored(first, 7)) is False  # heard live since the request
    assert replay.take_stored(_stored(first, 8)) is True
    text = replay.take_end(ReplayEnd(request_id=first, count=3))
    assert text is not None and "1 lost" in text
    assert replay.take_end(ReplayEnd(request_id=first, count=3)) is None  # only once
    assert (replay.stats.stored_superseded, replay.stats.stored_taken, replay.stats.lost) == (
        1,
        1,
        1,
    )
    second = replay.request(now=10.0).request_id
    assert second == (first + 1) & 0xFFFF
    assert replay.take_stored(_stored(first, 9)) is False  # the abandoned request's
    assert replay.overdue(now=12.0) is False
    assert replay.overdue(now=15.5) is True
    assert replay.overdue(now=20.0) is False  # said once
    assert replay.take_stored(_stored(second, 9)) is True  # a late answer is still news
    assert replay.stats.unknown_request == 2


def test_stored_uplinks_after_the_end_are_refused() -> None:
    """A hostile or confused line that goes on sending stored uplinks for a request its
    ``ReplayEnd`` already closed: none of them reaches the agents, each is counted."""
    replay = LineReplay(seed=2)
    first = replay.request(now=0.0).request_id
    assert replay.take_stored(_stored(first, 8)) is True
    assert replay.take_end(ReplayEnd(request_id=first, count=1)) is not None
    flood = [replay.take_stored(_stored(first, 100 + n)) for n in range(1000)]
    assert flood.count(True) == 0
    assert replay.stats.unknown_request == 1000
    assert replay.stats.stored_taken == 1
    assert replay.take_end(ReplayEnd(request_id=first, count=1001)) is None
