"""doctor reuses walk-test's results: a dead sensor fails at once, named; walked ones count.

Issue 13 finding 5: one dead sensor made doctor wait its whole ``--listen-s`` (the guide
says 1800 s) although the walk had just found it dead. Here the walk, run as the
technician runs it (the command, answering its prompts), proves two bays and finds the
third's sensor dead; doctor, given an hour to listen, must come back with the dead
sensor's id without waiting. No sensor speaks on its own in this test (no random
arrivals), so the two live sensors can only count as heard through the walk's record.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import tomli_w

from simulators.concentrator import ConcentratorSimulator
from tests.edge.commission_support import parkgrid

SENSORS = {"B001": "00A10001", "B002": "00A10002", "B003": "00A10003"}
FORMATS = {"B001": "nwave-nps", "B002": "dingtek-do20x", "B003": "bosch-pls"}
SIM_SENSORS = {SENSORS[bay]: FORMATS[bay] for bay in SENSORS}


def write_config(tmp_path: Path, device: Path) -> Path:
    data = {
        "site": "xigang",
        "box_id": "box-p1",
        "data_dir": str(tmp_path / "data"),
        "serial": {"conc": {"device": str(device), "protocol": "concentrator"}},
        "lots": {
            "P1": {"bays": {b: {"sensor": s, "format": FORMATS[b]} for b, s in SENSORS.items()}}
        },
    }
    path = tmp_path / "edge.toml"
    path.write_text(tomli_w.dumps(data))
    return path


async def walk_as_a_technician(path: Path, sim: ConcentratorSimulator, dead: str) -> str:
    """Run ``parkgrid edge walk-test``; drive onto each bay it asks for (but the dead one's)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "parkgrid", "edge", "walk-test", "--config", str(path),
        "--bay-timeout-s", "3", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None
    transcript = []
    async with asyncio.timeout(120):
        while line := (await proc.stdout.readline()).decode():
            transcript.append(line)
            for bay, sensor in SENSORS.items():
                if f"trigger bay P1/{bay} now" in line and sensor != dead:
                    await sim.send_status(sensor, occupied=True)
        await proc.wait()
    assert proc.returncode == 1, "".join(transcript)  # one bay failed
    return "".join(transcript)


async def test_doctor_fails_fast_on_the_sensor_the_walk_found_dead(tmp_path: Path) -> None:
    dead = SENSORS["B003"]
    async with ConcentratorSimulator(sensors=SIM_SENSORS) as sim:
        path = write_config(tmp_path, sim.path)
        walked = await walk_as_a_technician(path, sim, dead)
        assert "SILENT      P1/B003" in walked
        ran = await parkgrid(
            "edge", "doctor", "--config", str(path), "--listen-s", "3600", "--json",
            "--skip", "signs,broker,tls,clock,disk", within_s=120,
        )  # fmt: skip
    assert ran.code == 1, ran.out + ran.err
    items = {item["key"]: item for item in json.loads(ran.out)["items"]}
    sensors = items["sensors"]
    assert sensors["status"] == "FAIL"
    assert f"{dead} (P1/B003)" in sensors["detail"]
    assert "silent in walk-test" in sensors["detail"]
    assert "2 proven by walk-test" in sensors["detail"]
    assert SENSORS["B001"] not in sensors["detail"] and SENSORS["B002"] not in sensors["detail"]


async def test_doctor_does_not_trust_a_walk_of_another_mapping(tmp_path: Path) -> None:
    """After a re-import moves a sensor, the walk's record of that bay no longer counts."""
    async with ConcentratorSimulator(sensors=SIM_SENSORS) as sim:
        path = write_config(tmp_path, sim.path)
        await walk_as_a_technician(path, sim, dead=SENSORS["B003"])
        # the technician fixed B003's id and re-imported
        text = path.read_text().replace(SENSORS["B003"], "00A10009")
        path.write_text(text)
        ran = await parkgrid(
            "edge", "doctor", "--config", str(path), "--listen-s", "2", "--json",
            "--skip", "signs,broker,tls,clock,disk", within_s=120,
        )  # fmt: skip
    sensors = {i["key"]: i for i in json.loads(ran.out)["items"]}["sensors"]
    assert sensors["status"] == "FAIL"
    assert "00A10009 (P1/B003)" in sensors["detail"] and "not heard in 2 s" in sensors["detail"]
    assert "silent in walk-test" not in sensors["detail"]


async def test_doctor_with_nothing_to_listen_for_reports_no_line_down(tmp_path: Path) -> None:
    """Every sensor settled by the walk: doctor does not wait, and the serial line it had no
    time to open is not reported down (the field guide's bench run printed
    ``line(s) down: conc (...): None`` under the dead sensor)."""
    from edge.commission.bay_records import BayRecord
    from edge.commission.sensor_check import check_sensors
    from edge.config import load_config

    async with ConcentratorSimulator(sensors=SIM_SENSORS) as sim:
        config = load_config(write_config(tmp_path, sim.path))
        records = {
            sensor: BayRecord(
                bay=f"P1/{bay}",
                sensor=sensor,
                outcome="SILENT" if bay == "B003" else "PASS",
                at=0.0,
                by="learn-bays",
            )
            for bay, sensor in SENSORS.items()
        }
        result = await check_sensors(config, listen_s=3600, records=records)
    assert result.status == "FAIL", result
    assert f"{SENSORS['B003']} (P1/B003) silent in learn-bays" in result.detail
    assert "down" not in result.detail and "None" not in result.detail, result.detail
