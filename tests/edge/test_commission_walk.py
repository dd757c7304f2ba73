"""walk-test: a technician's walk against a simulated concentrator catches a swapped mapping."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import tomli_w

from edge.commission.walk_test import Outcome, report_text, steps_of, walk
from edge.config import EdgeConfig, load_config
from simulators.concentrator import ConcentratorSimulator
from tests.edge.commission_support import parkgrid

MAPPED = {"B001": "00A10001", "B002": "00A10002", "B003": "00A10003", "B004": "00A10004"}
STRAY = "00A100FF"  # in the ground, in no bay of the config


def write_config(tmp_path: Path, device: Path) -> Path:
    data = {
        "site": "xigang",
        "box_id": "box-p1",
        "serial": {"conc": {"device": str(device), "protocol": "concentrator"}},
        "lots": {
            "P1": {"bays": {b: {"sensor": s, "format": "nwave-nps"} for b, s in MAPPED.items()}}
        },
    }
    path = tmp_path / "edge.toml"
    path.write_text(tomli_w.dumps(data))
    return path


async def test_walk_test_catches_a_swapped_mapping_an_unmapped_and_a_silent_sensor(
    tmp_path: Path,
) -> None:
    """B001/B002 swapped in the ground are WRONG, a stray id NOT MAPPED, a dead one SILENT."""
    # What is really buried under each bay: B001 and B002 were swapped at installation.
    buried = {"B001": "00A10002", "B002": "00A10001", "B003": STRAY, "B004": None}
    sensors = {sid: "nwave-nps" for sid in [*MAPPED.values(), STRAY]}
    async with ConcentratorSimulator(sensors=sensors) as sim:
        path = write_config(tmp_path, sim.path)
        config: EdgeConfig = load_config(path)
        said: asyncio.Queue[str] = asyncio.Queue()
        ready = asyncio.Event()
        task = asyncio.create_task(
            walk(config, steps_of(config), bay_timeout_s=1.0, say=said.put_nowait, ready=ready)
        )
        await asyncio.wait_for(ready.wait(), 10)
        transcript: list[str] = []
        for bay, sensor in buried.items():
            while f"trigger bay P1/{bay} now" not in (line := await said.get()):
                transcript.append(line)
            transcript.append(line)
            if sensor is not None:
                await sim.send_status(sensor, occupied=True)
        results = await asyncio.wait_for(task, 10)
    outcomes = {r.step.bay: r.outcome for r in results}
    assert outcomes == {
        "B001": Outcome.WRONG,
        "B002": Outcome.WRONG,
        "B003": Outcome.NOT_MAPPED,
        "B004": Outcome.SILENT,
    }
    assert results[0].heard == "00A10002" and results[0].heard_bay == "P1/B002"
    report = report_text(config, results, config_path=path, started=time.time(), ended=time.time())
    assert "0 of 4 bay(s) passed; 4 need attention" in report
    assert "swap the two bays' sensor ids" in report
    assert f"put {STRAY} on P1/B003" in report


async def test_walk_test_passes_a_correct_mapping(tmp_path: Path) -> None:
    """Bays triggered in order with the right sensors all pass; a release is not a trigger."""
    async with ConcentratorSimulator(sensors={s: "nwave-nps" for s in MAPPED.values()}) as sim:
        path = write_config(tmp_path, sim.path)
        config = load_config(path)
        said: asyncio.Queue[str] = asyncio.Queue()
        ready = asyncio.Event()
        steps = steps_of(config, bays=["B001", "B003"])
        task = asyncio.create_task(
            walk(config, steps, bay_timeout_s=5.0, say=said.put_nowait, ready=ready)
        )
        await asyncio.wait_for(ready.wait(), 10)
        for bay in ("B001", "B003"):
            while f"trigger bay P1/{bay} now" not in await said.get():
                pass
            await sim.send_status(MAPPED[bay], occupied=True)
            await sim.send_status(MAPPED[bay], occupied=False)
        results = await asyncio.wait_for(task, 10)
    assert [(r.step.bay, r.outcome) for r in results] == [
        ("B001", Outcome.PASS),
        ("B003", Outcome.PASS),
    ]


async def test_walk_test_unknown_bay_exits_2(tmp_path: Path) -> None:
    """Asking to walk a bay the config lacks is bad input."""
    async with ConcentratorSimulator(sensors={"00A10001": "nwave-nps"}) as sim:
        path = write_config(tmp_path, sim.path)
        ran = await parkgrid("edge", "walk-test", "--config", str(path), "--bays", "B999")
    assert ran.code == 2
    assert "B999" in ran.err


async def test_walk_test_passes_a_dingtek_bay_on_the_first_drive_on(tmp_path: Path) -> None:
    """Dingtek sends telemetry, not status: its first report of the car is the trigger.

    Issue 13 finding 5: only ``kind == "status"`` counted, so a Dingtek bay never heard
    before stayed SILENT on its first drive-on. A startup frame (Bosch/Nwave carry the
    state in it) still is no trigger: it says the sensor booted, not that a car came.
    """
    dingtek, nwave = "00A10001", "00A10002"
    sensors = {dingtek: "dingtek-do20x", nwave: "nwave-nps"}
    async with ConcentratorSimulator(sensors=sensors) as sim:
        path = tmp_path / "edge.toml"
        path.write_text(
            tomli_w.dumps(
                {
                    "site": "xigang",
                    "box_id": "box-p1",
                    "serial": {"conc": {"device": str(sim.path), "protocol": "concentrator"}},
                    "lots": {
                        "P1": {
                            "bays": {
                                "B001": {"sensor": dingtek, "format": "dingtek-do20x"},
                                "B002": {"sensor": nwave, "format": "nwave-nps"},
                            }
                        }
                    },
                }
            )
        )
        config = load_config(path)
        said: asyncio.Queue[str] = asyncio.Queue()
        ready = asyncio.Event()
        task = asyncio.create_task(
            walk(config, steps_of(config), bay_timeout_s=2.0, say=said.put_nowait, ready=ready)
        )
        await asyncio.wait_for(ready.wait(), 10)
        while "trigger bay P1/B001 now" not in await said.get():
            pass
        await sim.send_status(dingtek, occupied=True)  # telemetry, first frame ever heard
        while "trigger bay P1/B002 now" not in await said.get():
            pass
        sim.core.sensor(nwave).occupied = True
        await sim.send_startup(nwave)  # a boot report with a car on it: no trigger
        results = await asyncio.wait_for(task, 20)
    assert [(r.step.bay, r.outcome) for r in results] == [
        ("B001", Outcome.PASS),
        ("B002", Outcome.SILENT),
    ]
