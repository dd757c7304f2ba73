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
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
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


def test_doctor_names_a_config_it_cannot_read_and_says_why(tmp_path: Path) -> None:
    """A config doctor cannot read (not readable by this user, or a folder) is named with its
    path and the reason; the fix is not "correct each line" of a file nobody could read.
    Following the guide, doctor run as another user than the config's said only
    ``1 problem(s): cannot read the file: Permission denied``."""
    from edge.commission.doctor import check_config

    folder = tmp_path / "etc-parkgrid"
    folder.mkdir()
    result, config = check_config(folder)
    assert config is None
    assert result.status == "FAIL"
    assert f"cannot read {folder}: Is a directory" in result.detail, result.detail
    assert "correct each line" not in result.fix, result.fix


@pytest.mark.parametrize("how", ["folder 0750", "file 0600"])
def test_commands_run_as_a_user_who_cannot_read_the_config_say_so(how: str) -> None:
    """As on a box: /etc/parkgrid is 0750 root:parkgrid and edge.toml 0640; a technician runs
    the commands as themselves instead of ``sudo -u parkgrid``. doctor died with a
    PermissionError traceback (``Path.is_file`` raises on a folder it cannot enter)."""
    if os.geteuid() != 0:
        pytest.skip("needs root, to run the commands as another user than the config's owner")
    top = Path(tempfile.mkdtemp(prefix="parkgrid-etc-"))
    try:
        top.chmod(0o755)
        etc = top / "parkgrid"
        etc.mkdir(mode=0o750 if how == "folder 0750" else 0o755)
        config = etc / "edge.toml"
        config.write_text('site = "xigang"\nbox_id = "box-p1"\n')
        config.chmod(0o600)
        # The config belongs to another user (the box's); the commands run as root with every
        # capability dropped, so the config is as closed to them as to a technician, while the
        # checkout they run from stays theirs wherever it was cloned (a 0700 mktemp folder).
        for path in (etc, config):
            os.chown(path, 65534, 65534)
        for command in (["doctor", "--config"], ["check-config"], ["walk-test", "--config"],
                        ["run", "--config"]):  # fmt: skip
            ran = subprocess.run(
                ["setpriv", "--bounding-set=-all", "--inh-caps=-all",
                 sys.executable, "-m", "parkgrid", "edge", *command, str(config)],
                capture_output=True, text=True, timeout=120,
            )  # fmt: skip
            said = ran.stdout + ran.stderr
            assert "Traceback" not in said, (command, said)
            assert ran.returncode in (1, 2), (command, said)
            assert str(config) in said and "Permission denied" in said, (command, said)
            if command[0] == "doctor":
                assert "sudo -u parkgrid" in said, said
    finally:
        shutil.rmtree(top)
