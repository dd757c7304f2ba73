"""edge inspect: the technician's read-only look at the outbox and the zone store."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import tomli_w

from edge.outbox import Outbox
from firmware_protocols.uplink import BayChanged
from firmware_protocols.uplink.models import BayOccupancy

T0 = dt.datetime(2025, 3, 1, 8, 0, tzinfo=dt.UTC)


def event(i: int) -> BayChanged:
    return BayChanged(
        bay_id=f"B{i:03d}",
        lot_id="P1",
        from_state=BayOccupancy.FREE,
        to_state=BayOccupancy.OCCUPIED,
        sensor_ts=T0,
    )


def digest(directory: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.iterdir())
        if p.is_file()
    }


def test_inspect_reports_the_backlog_and_changes_nothing(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    config = tmp_path / "edge.toml"
    config.write_text(tomli_w.dumps({"site": "x", "box_id": "box-p1", "data_dir": str(data)}))
    box = Outbox(Outbox.path_in(data))
    for i in range(7):
        box.append(event(i), T0)
    box.flush()
    box.ack(3)
    box.put_state("parkgrid/v1/x/box-p1/lot/P1", b"{}")
    box.close()
    (data / "zone-schedule.json").write_text(json.dumps({"current": {"version": 4}}))
    before = digest(data)
    ran = subprocess.run(
        [sys.executable, "-m", "parkgrid", "edge", "inspect", "--config", str(config),
         "--json", "--events", "2"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    doc = json.loads(ran.stdout)
    outbox = doc["outbox"]
    assert outbox["events_waiting"] == 4 and outbox["seq_range"] == [4, 7]
    assert [e["seq"] for e in outbox["newest_events"]] == [7, 6]
    assert outbox["state_topics"] == 1 and outbox["state_unsent"] == 1
    assert doc["zones"]["schedule_version"] == 4
    assert digest(data) == before  # read-only: not a byte changed

    text = subprocess.run(
        [sys.executable, "-m", "parkgrid", "edge", "inspect", "--config", str(config)],
        capture_output=True, text=True, timeout=120,
    ).stdout  # fmt: skip
    assert "4 event(s) waiting for central's ack" in text
    assert "schedule version 4 in force" in text


def test_inspect_on_a_box_that_never_ran(tmp_path: Path) -> None:
    config = tmp_path / "edge.toml"
    config.write_text(
        tomli_w.dumps({"site": "x", "box_id": "box-p1", "data_dir": str(tmp_path / "none")})
    )
    ran = subprocess.run(
        [sys.executable, "-m", "parkgrid", "edge", "inspect", "--config", str(config)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    assert "outbox: none yet" in ran.stdout


def test_inspect_says_when_it_cannot_read_the_commissioning_record(tmp_path: Path) -> None:
    """Run as a user who may not read ``commission/bays.json`` (written 0600 by sudo),
    inspect said ``0 of 12 bay(s) proven`` right after all 12 were. It must say it could not
    read the record, and where (a folder in its place stands in for any read failure)."""
    data = tmp_path / "data"
    (data / "commission" / "bays.json").mkdir(parents=True)
    config = tmp_path / "edge.toml"
    config.write_text(
        tomli_w.dumps(
            {
                "site": "x",
                "box_id": "box-p1",
                "data_dir": str(data),
                "serial": {"conc": {"device": "/dev/null", "protocol": "concentrator"}},
                "lots": {"P1": {"bays": {"B001": {"sensor": "00A10001", "format": "nwave-nps"}}}},
            }
        )
    )
    ran = subprocess.run(
        [sys.executable, "-m", "parkgrid", "edge", "inspect", "--config", str(config)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    line = next(x for x in ran.stdout.splitlines() if x.startswith("commissioning:"))
    assert "cannot read" in line and str(data / "commission" / "bays.json") in line, line
    assert "0 of 1" not in line, line
