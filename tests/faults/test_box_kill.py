"""Scenarios 3 and 5: a box process SIGKILLed mid-burst, and again and again during writes."""

from __future__ import annotations

import asyncio
import random
import sqlite3
from pathlib import Path

import pytest

from tests.faults.rig import Box, Rig, record, rig, run_with_fault, soak_factor
from tests.faults.test_broker_central import assert_clean

# A whole rig (broker, central, boxes) through a fault, 10-20 s each: `make test-long`.
pytestmark = pytest.mark.long

SECONDS = 6.0 * soak_factor()
RATE = 20.0 * min(soak_factor(), 5)


async def _restart(r: Rig, box: Box) -> None:
    """Start the box again and wait until central has its birth (a new boot id, online)."""
    old_boot, _ = r.central.box_row(box.plan.box_id)
    box.proc.start()

    def reborn() -> bool:
        boot, online = r.central.box_row(box.plan.box_id)
        return online and boot != old_boot

    await r.wait(reborn, within=60, what=f"{box.plan.box_id} reborn")


async def test_faults_box_killed_mid_burst_delivers_committed_once(tmp_path: Path) -> None:
    """Box SIGKILLed mid-burst: committed events arrive once; one heartbeat round fixes its bays."""
    async with rig(tmp_path, heartbeat_timeout_s=30) as r:
        victim = r.boxes[0]
        assert victim.sim is not None
        sim = victim.sim

        async def fault() -> dict[str, float]:
            victim.proc.kill()
            r.paused.add(victim.plan.box_id)
            # While the box is dead its bays change and the frames are lost on the radio:
            # only the sensors' next heartbeats can tell the restarted box.
            for sensor in list(victim.plan.bays)[::2]:
                s = sim.core.sensor(sensor)
                s.occupied = not s.occupied
            await _restart(r, victim)
            return {}

        async def heal() -> float:
            # One heartbeat round, nothing else from this box's sensors, must be enough.
            await victim.heartbeats()
            took = await r.wait(
                lambda: all(
                    r.central.bay_states().get(bay) == want for bay, want in victim.truth().items()
                ),
                within=30,
                what="the restarted box's bays equal to the truth after one heartbeat round",
            )
            r.paused.discard(victim.plan.box_id)
            return took

        async def fault_and_heal() -> dict[str, float]:
            await fault()
            return {"converge_after_heartbeat_s": round(await heal(), 2)}

        run = await run_with_fault(
            r,
            scenario="3 box SIGKILL mid-burst",
            fault=fault_and_heal,
            seconds=SECONDS,
            rate=RATE,
            strict_history=False,
        )
    assert_clean(run)


async def test_faults_box_power_cut_during_outbox_writes(tmp_path: Path) -> None:
    """Box SIGKILLed many times during outbox writes: integrity_check ok, nothing acked lost."""
    kills = int(6 * soak_factor())
    rng = random.Random(5)
    async with rig(tmp_path, boxes=2) as r:
        victim = r.boxes[0]
        load = asyncio.create_task(r.load(10_000, RATE * 2.5))
        sent_before: list[int] = []
        try:
            for _ in range(kills):
                await asyncio.sleep(rng.uniform(0.2, 0.8))
                victim.proc.kill()
                sent_before.append(victim.outbox()[0])
                await _restart(r, victim)
        finally:
            load.cancel()
        changes = r.changes
        targets = r.sent_now()
        recover_s = await r.wait(lambda: r.caught_up(targets), within=120, what="catching up")
        await r.settle()
        # A frame the killed process had read but not yet acted on is gone, as a radio frame
        # lost in the air is: the sensors' next heartbeats put the bays right.
        stale = len(r.mismatches())
        await victim.heartbeats()
        await r.converge()
        audit = r.audit(strict_history=False)
        conn = sqlite3.connect(victim.outbox_path)
        try:
            integrity = conn.execute("PRAGMA integrity_check").fetchall()
        finally:
            conn.close()
        corrupt = sorted(p.name for p in victim.data_dir.glob("*.corrupt-*"))
        record(
            "faults",
            "5 power cut during outbox writes",
            {
                "kills": kills,
                "sensor_changes": changes,
                "events_sent": audit.sent,
                "events_stored": audit.stored,
                "lost": audit.lost,
                "duplicated": audit.duplicated,
                "recover_s": round(recover_s, 2),
                "integrity_check": integrity[0][0],
                "corrupt_files": corrupt,
                "bays_stale_before_heartbeat": stale,
                "problems": audit.problems,
            },
        )
    assert integrity == [("ok",)]
    assert corrupt == []
    # The seq never goes back: a restart continues from what was committed.
    assert sent_before == sorted(sent_before)
    assert audit.problems == []
    assert (audit.lost, audit.duplicated) == (0, 0)
    assert audit.stored == audit.sent > 0
