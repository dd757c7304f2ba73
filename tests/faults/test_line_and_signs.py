"""Scenarios 6 and 7: serial line noise, and a sign that stops answering.

The box runs in this process (its line and sign-bus counters are read directly); central
and mosquitto are real processes, and central's store is what the checks read.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from edge.config import parse_config
from edge.runtime import EdgeBox
from simulators.broker import MosquittoBroker
from simulators.concentrator import ConcentratorSimulator
from simulators.signs import Fault, SignSimulator
from tests.faults.rig import (
    FORMAT,
    Box,
    Central,
    _changes,
    audit,
    box_config_doc,
    plan_boxes,
    record,
    soak_factor,
    write_site,
)

# A whole rig (broker, central, boxes) through a fault, 10-20 s each: `make test-long`.
pytestmark = pytest.mark.long

REFRESH_S = 1.0


@dataclass
class InProcess:
    box: EdgeBox
    member: Box
    sim: ConcentratorSimulator
    signs: SignSimulator
    central: Central


async def until(check: Any, within: float = 30, what: str = "condition") -> float:
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > within:
            raise AssertionError(f"timed out after {within} s waiting for {what}")
        await asyncio.sleep(0.02)
    return time.monotonic() - started


@contextlib.asynccontextmanager
async def in_process_box(tmp: Path, broker: MosquittoBroker) -> AsyncIterator[InProcess]:
    plan = plan_boxes(1, 6)[0]
    site = write_site(tmp / "site.toml", [plan])
    central = Central(workdir=tmp, site_file=site, mqtt_url=broker.url)
    central.start()
    member = Box(plan=plan, workdir=tmp / plan.box_id, mqtt_url=broker.url)
    try:
        async with (
            ConcentratorSimulator(
                sensors=dict.fromkeys(plan.bays, FORMAT), link=member.device, seed=6
            ) as sim,
            SignSimulator(units={1: "parkgrid-guidance"}, tcp=("127.0.0.1", 0)) as signs,
        ):
            member.sim = sim
            doc = box_config_doc(
                plan, data_dir=member.data_dir, device=member.device, mqtt_url=broker.url
            )
            doc["sign_buses"] = {
                "bus1": {
                    "transport": "tcp",
                    "host": "127.0.0.1",
                    "port": signs.port,
                    "timeout_s": 0.2,
                    "retries": 0,
                    "down_after_failures": 2,
                    "retry_down_after_s": REFRESH_S,
                    "refresh_interval_s": REFRESH_S,
                    "watchdog_timeout_s": 10,
                    "signs": {
                        "S1": {"unit": 1, "profile": "parkgrid-guidance", "lot": plan.lot_id}
                    },
                }
            }
            box = EdgeBox(parse_config(doc))
            task = asyncio.create_task(box.run())
            try:
                await until(lambda: box.uplink.live, what="box live")
                for sensor in plan.bays:
                    await member.set(sensor, False)
                await until(
                    lambda: all(central.bay_states().get(b) == "free" for b in plan.bays.values()),
                    what="every bay free at central",
                )
                yield InProcess(box=box, member=member, sim=sim, signs=signs, central=central)
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
                box.outbox.close()
    finally:
        central.kill()


async def test_faults_line_noise_changes_no_bay_the_simulator_did_not(
    tmp_path: Path, mosquitto: MosquittoBroker
) -> None:
    """5 % of bytes corrupted plus garbage bursts: no false bay change; counters match."""
    async with in_process_box(tmp_path, mosquitto) as r:
        sim, core, member = r.sim, r.sim.core, r.member
        rng = random.Random(6)
        sensors = list(member.plan.bays)
        # What each bay's sensor reported in frames that reached the box intact.
        delivered: dict[str, list[bool]] = {s: [False] for s in sensors}
        core.noise = 0.05
        changes = int(300 * soak_factor())
        for i in range(changes):
            sensor = rng.choice(sensors)
            spoiled = core.counts.corrupted_frames
            await sim.send_status(sensor)
            if core.counts.corrupted_frames == spoiled:
                delivered[sensor].append(core.sensor(sensor).occupied)
            if i % 10 == 0:
                await sim.send_garbage(rng.randint(1, 64))
            await asyncio.sleep(0.005)
        core.noise = 0.0
        line = r.box.lines["conc"]
        c = sim.counts

        # Stored bay changes (one transaction per frame that got through) before repair:
        await until(
            lambda: line.stats().bytes_in == c.bytes_written, what="the box reading everything"
        )
        # Clean heartbeats flush a false start the garbage may have left, then put every
        # bay right.
        for sensor in sensors:
            await sim.send_heartbeat(sensor)
            delivered[sensor].append(core.sensor(sensor).occupied)

        def settled() -> bool:
            s = line.stats()
            return s.bytes_in == c.bytes_written and s.frames == c.good_frames

        await until(settled, what="line counters settled")
        await until(lambda: r.box.outbox.depth() == 0, what="outbox acked")
        stats = line.stats()
        truth = member.truth()
        await until(lambda: r.central.bay_states() == truth, what="central equal to the truth")
        result = audit(r.central, [member], strict_history=False)
        with r.central.db() as conn:
            stored = {
                sensor: [
                    row[0] == "occupied"
                    for row in conn.execute(
                        "SELECT to_state FROM events WHERE bay_id = ? AND kind = 'bay_changed'"
                        " ORDER BY seq",
                        (bay,),
                    )
                ]
                for sensor, bay in member.plan.bays.items()
            }
    false_changes = sum(
        1
        for s in sensors
        for a, b in zip(stored[s], _changes(delivered[s]), strict=False)
        if a != b
    ) + sum(abs(len(stored[s]) - len(_changes(delivered[s]))) for s in sensors)
    record(
        "faults",
        "6 serial noise 5% + garbage",
        {
            "sensor_changes": changes,
            "events_sent": result.sent,
            "events_stored": result.stored,
            "lost": result.lost,
            "duplicated": result.duplicated,
            "recover_s": None,
            "corrupted_frames": c.corrupted_frames,
            "garbage_bytes": c.garbage_bytes,
            "spoiled_bytes": c.spoiled_bytes,
            "line_dropped_bytes": stats.dropped_bytes + stats.buffered_bytes,
            "false_bay_changes": false_changes,
            "problems": result.problems,
        },
    )
    assert c.corrupted_frames > 0 and c.garbage_bytes > 0
    assert stats.frames == c.good_frames
    assert stats.dropped_bytes + stats.buffered_bytes == c.spoiled_bytes
    assert stats.observations == c.uplinks - c.corrupted_frames
    assert stored == {s: _changes(delivered[s]) for s in sensors}
    assert false_changes == 0
    assert result.problems == [] and (result.lost, result.duplicated) == (0, 0)


async def test_faults_sign_stops_answering_alerts_and_recovers(
    tmp_path: Path, mosquitto: MosquittoBroker
) -> None:
    """A silent sign: alert within three refreshes; back, the right count and the alert resolved."""
    async with in_process_box(tmp_path, mosquitto) as r:
        signs, member = r.signs, r.member
        await until(lambda: signs.display(1).free == 6, what="the sign showing 6 free")
        bus = r.box.buses["bus1"]
        signs.inject(1, Fault.SILENT)
        requests_at_fault = bus.stats().requests
        await member.set(next(iter(member.plan.bays)), True)

        def central_alert(state: str) -> bool:
            with r.central.db() as conn:
                row = conn.execute(
                    "SELECT count(*) FROM alerts WHERE alert_type = 'sign_down' AND state = ?",
                    (state,),
                ).fetchone()
            return bool(row[0])

        down_s = await until(lambda: not bus.status("S1").up, what="the sign marked down")
        # Counted in the bus's own requests, not in wall time: the sign went down after the
        # failures of at most three refresh rounds (each round: one read-back or write).
        failed_requests = bus.stats().requests - requests_at_fault
        alert_s = await until(lambda: central_alert("raised"), what="sign_down alert at central")
        assert signs.display(1).free == 6  # it never took the new count
        signs.inject(1, Fault.NONE)
        back = time.monotonic()
        await until(lambda: signs.display(1).free == 5, what="the sign showing 5 free")
        right_s = time.monotonic() - back
        await until(lambda: central_alert("resolved"), what="the alert resolved at central")
        resolved_s = time.monotonic() - back
    record(
        "faults",
        "7 sign stops answering",
        {
            "refresh_s": REFRESH_S,
            "down_after_s": round(down_s, 2),
            "alert_at_central_after_s": round(down_s + alert_s, 2),
            "right_count_after_back_s": round(right_s, 2),
            "alert_resolved_after_back_s": round(resolved_s, 2),
            "failed_requests_before_down": failed_requests,
            "lost": 0,
            "duplicated": 0,
            "recover_s": round(right_s, 2),
        },
    )
    assert failed_requests <= 3 * 2  # three refresh rounds, a read-back and a write each
