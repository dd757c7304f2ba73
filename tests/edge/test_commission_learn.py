"""learn-bays: walk the lot in order; the first new sensor heard is the prompted bay's.

Issue 13 finding 5: 150 sensor ids typed by hand into bays.csv. Here the technician runs
the command on provision-box's bays.csv (sensor column empty), drives onto each bay it
prompts, and gets bays.csv filled with each sensor's id and format (the format is the
frame's). A sensor already learned that reports again (the car left on the previous bay
moves) is not taken for the next bay; a dead sensor leaves its bay empty, named.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import sys
from pathlib import Path

import tomli_w

from edge.commission import bay_records
from edge.config import load_config
from simulators.concentrator import ConcentratorSimulator

BURIED = {  # what is really under each bay
    "B001": ("00A10001", "nwave-nps"),
    "B002": ("00A10002", "dingtek-do20x"),
    "B003": ("00A10003", "bosch-pls"),
    "B004": ("00A10004", "nwave-nps"),  # dead battery
}
TEMPLATE = "lot,bay,sensor,format,label\n" + "".join(
    f"P1,{bay},,,{'by the gate' if bay == 'B001' else ''}\n" for bay in BURIED
)


def starter_config(tmp_path: Path, device: Path) -> Path:
    path = tmp_path / "edge.toml"
    data = {
        "site": "xigang",
        "box_id": "box-p1",
        "data_dir": str(tmp_path / "data"),
        "serial": {"conc": {"device": str(device), "protocol": "concentrator"}},
        "lots": {"P1": {"name": "North"}},
    }
    path.write_text(tomli_w.dumps(data))
    return path


async def test_learn_bays_fills_bays_csv_from_the_walk(tmp_path: Path) -> None:
    bays_csv = tmp_path / "bays.csv"
    bays_csv.write_text(TEMPLATE)
    dead = BURIED["B004"][0]
    async with ConcentratorSimulator(sensors=dict(BURIED.values())) as sim:
        sim.core.silent.add(dead)
        config = starter_config(tmp_path, sim.path)
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "parkgrid", "edge", "learn-bays", "--config", str(config),
            "--csv", str(bays_csv), "--lot", "P1", "--bay-timeout-s", "3", "--json",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        assert proc.stdout is not None and proc.stderr is not None
        events = []
        async with asyncio.timeout(120):
            while line := await proc.stdout.readline():
                event = json.loads(line)
                events.append(event)
                if event["event"] == "prompt":
                    bay = event["bay"].split("/")[1]
                    if bay == "B003":  # the car from B001 drives off and back: not B003's
                        await sim.send_status(BURIED["B001"][0], occupied=False)
                        await sim.send_status(BURIED["B001"][0], occupied=True)
                    await sim.send_status(BURIED[bay][0], occupied=True)
            err = await proc.stderr.read()
            await proc.wait()
    assert proc.returncode == 1, err  # one bay could not be learned
    rows = list(csv.DictReader(io.StringIO(bays_csv.read_text())))
    assert [(r["bay"], r["sensor"], r["format"], r["label"]) for r in rows] == [
        ("B001", "00A10001", "nwave-nps", "by the gate"),
        ("B002", "00A10002", "dingtek-do20x", ""),
        ("B003", "00A10003", "bosch-pls", ""),
        ("B004", "", "", ""),
    ]
    kinds = [e["event"] for e in events]
    assert kinds.count("learned") == 3 and kinds.count("not-learned") == 1
    ignored = [e for e in events if e["event"] == "ignored"]
    assert ignored and ignored[0]["sensor"] == "00A10001" and ignored[0]["bay"] == "P1/B003"
    summary = events[-1]
    assert summary["event"] == "summary" and summary["not_learned"] == ["P1/B004"]

    # The learned bays count for doctor once imported, as a walk's would.
    records = bay_records.load(tmp_path / "data" / "commission" / "bays.json")
    assert {b: r.outcome for b, r in records.items()} == {
        "P1/B001": "PASS",
        "P1/B002": "PASS",
        "P1/B003": "PASS",
        "P1/B004": "SILENT",
    }
    imported = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "parkgrid", "edge", "import-bays", str(bays_csv), "--lot", "P1",
        "--config", str(config), stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, import_err = await imported.communicate()
    assert imported.returncode == 2, "B004 has no sensor yet: the import refuses the row"
    assert b"bays.csv:5: sensor: bay P1/B004 has no sensor yet" in import_err
    assert load_config(config).lots["P1"].bays == {}


async def test_learn_bays_refuses_a_csv_without_the_lot(tmp_path: Path) -> None:
    bays_csv = tmp_path / "bays.csv"
    bays_csv.write_text(TEMPLATE)
    async with ConcentratorSimulator(sensors={"00A10001": "nwave-nps"}) as sim:
        config = starter_config(tmp_path, sim.path)
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "parkgrid", "edge", "learn-bays", "--config", str(config),
            "--csv", str(bays_csv), "--lot", "P7", stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        _, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 2
    assert b"no bay of lot P7" in err
    assert bays_csv.read_text() == TEMPLATE


def test_a_bay_learn_bays_could_not_hear_fails_doctor_for_the_id_typed_in_later(
    tmp_path: Path,
) -> None:
    """learn-bays' empty record holds for the sensor typed in for that bay, not for others."""
    config_path = tmp_path / "edge.toml"
    bays = {"B001": {"sensor": "00A10001", "format": "nwave-nps"},
            "B004": {"sensor": "00A10004", "format": "nwave-nps"}}  # fmt: skip
    config_path.write_text(
        tomli_w.dumps(
            {
                "site": "x",
                "box_id": "b",
                "serial": {"c": {"device": "/dev/x", "protocol": "concentrator"}},
                "lots": {"P1": {"bays": bays}},
            }
        )
    )
    config = load_config(config_path)
    now = 1_000_000.0
    records = {
        "P1/B001": bay_records.BayRecord(
            bay="P1/B001", sensor="00A10009", outcome="PASS", at=now, by="learn-bays"
        ),
        "P1/B004": bay_records.BayRecord(
            bay="P1/B004", sensor="", outcome="SILENT", at=now, by="learn-bays"
        ),
    }
    current = bay_records.current(records, config, now=now + 60, max_age_s=3600)
    assert set(current) == {"00A10004"}  # B001's record names another sensor: stale
    assert bay_records.current(records, config, now=now + 7200, max_age_s=3600) == {}


async def test_learning_a_bay_again_takes_its_own_sensor(tmp_path: Path) -> None:
    """``--bays B001`` again after an import: B001's own sensor is not 'already known'."""
    bays_csv = tmp_path / "bays.csv"
    bays_csv.write_text("lot,bay,sensor,format\nP1,B001,00A10001,nwave-nps\n")
    async with ConcentratorSimulator(sensors={"00A10001": "nwave-nps"}) as sim:
        config = starter_config(tmp_path, sim.path)
        imported = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "parkgrid", "edge", "import-bays", str(bays_csv),
            "--config", str(config),
        )  # fmt: skip
        assert await imported.wait() == 0
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "parkgrid", "edge", "learn-bays", "--config", str(config),
            "--csv", str(bays_csv), "--bays", "B001", "--bay-timeout-s", "30", "--json",
            stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        assert proc.stdout is not None
        events = []
        async with asyncio.timeout(120):
            while line := await proc.stdout.readline():
                events.append(json.loads(line))
                if events[-1]["event"] == "prompt":
                    await sim.send_status("00A10001", occupied=True)
            await proc.wait()
    assert proc.returncode == 0, events
    assert [e["event"] for e in events] == ["prompt", "learned", "summary"]


async def test_learn_bays_refuses_a_csv_of_lots_the_box_does_not_have(tmp_path: Path) -> None:
    """Another box's bays.csv (or a typo in its lot column): learn-bays prompted the other
    lot's bays on this box's line, for ever, and the result could never be imported here."""
    from tests.edge.commission_support import parkgrid

    bays_csv = tmp_path / "bays.csv"
    bays_csv.write_text("lot,bay,sensor,format\nP2,C001,,\nP2,C002,,\n")
    async with ConcentratorSimulator(sensors=dict(BURIED.values())) as sim:
        config = starter_config(tmp_path, sim.path)
        ran = await parkgrid("edge", "learn-bays", "--config", str(config), "--csv",
                             str(bays_csv), "--bay-timeout-s", "2", within_s=60)  # fmt: skip
    assert ran.code == 2, ran.out + ran.err
    assert "drive onto" not in ran.out, ran.out
    assert "lot P2" in ran.err and "its lots: P1" in ran.err and str(bays_csv) in ran.err, ran.err
