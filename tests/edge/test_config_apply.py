"""The box's side of a configuration push, on files: a trial cut by a power cut goes on at the
next start, a rollback puts the previous file back, the files keep their mode, and a pushed
part that no longer loads over edge.toml leaves the box on edge.toml alone, saying why.
(End to end with a broker, central and a running box: tests/edge/test_config_push.py.)"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import stat
import subprocess
import sys
import tomllib
import uuid
from pathlib import Path
from typing import Any

import tomli_w

from edge.config_apply import ConfigApplier
from firmware_protocols.uplink.models import Command, ConfigPush
from site_model.site_config import digest, site_part

NOW = 1_800_000_000.0
BAY = {"sensor": "00B10001", "format": "nwave-nps"}
SIGN = {"unit": 1, "profile": "parkgrid-guidance", "lot": "P1"}


def _own(tmp_path: Path) -> dict[str, Any]:
    data = {
        "site": "testtown",
        "box_id": "box-p1",
        "data_dir": str(tmp_path / "data"),
        "mqtt": {"url": "mqtt://127.0.0.1:1883", "username": "box-p1"},
        "serial": {"conc": {"device": "/dev/ttyX", "protocol": "concentrator"}},
        "lots": {"P1": {"full_band": 0, "bays": {"B1": BAY}}},
        "health": {"config_confirm_within_s": 30},
    }
    (tmp_path / "edge.toml").write_text(tomli_w.dumps(data))
    return data


def _push(part: dict[str, Any], version: int) -> Command:
    body = ConfigPush(version=version, hash=digest(part), document=tomli_w.dumps(part))
    return Command(command_id=uuid.uuid4(), issued_at=dt.datetime.now(dt.UTC), body=body)


def test_a_trial_cut_by_a_power_cut_goes_on_and_its_rollback_restores_the_file(
    tmp_path: Path,
) -> None:
    own = _own(tmp_path)
    folder = tmp_path / "data" / "config"
    folder.mkdir(parents=True)
    first, second = site_part(own), site_part(own)
    first["lots"]["P1"]["full_band"] = 1
    second["lots"]["P1"]["full_band"] = 2
    (folder / "pushed.toml.previous").write_text(tomli_w.dumps(first))
    (folder / "pushed.toml").write_text(tomli_w.dumps(second))
    state = {"version": 2, "hash": digest(second), "state": "applying", "reason": None,
             "ts": "2027-01-15T08:00:00Z"}  # fmt: skip
    (folder / "apply.json").write_text(json.dumps(state))

    applier = ConfigApplier(tmp_path / "edge.toml", clock=lambda: NOW)
    assert applier.config.lots["P1"].full_band == 2  # the pushed part runs
    assert applier.config.lots["P1"].bays["B1"].sensor == "00B10001"  # the box's bays kept
    assert applier.trial is not None and applier.trial.deadline == NOW + 30

    applier.roll_back("failed its health gate within 30 s: not connected to the broker")
    assert applier.config.lots["P1"].full_band == 1
    assert tomllib.loads((folder / "pushed.toml").read_text()) == first
    assert not (folder / "pushed.toml.previous").exists()
    kept = json.loads((folder / "apply.json").read_text())
    assert (kept["version"], kept["state"]) == (2, "rolled_back")
    assert kept["reason"].endswith("not connected to the broker")
    assert applier.report().hash == digest(first) and applier.rebuild.is_set()


async def test_a_push_is_kept_beside_the_previous_with_the_file_mode(tmp_path: Path) -> None:
    own = _own(tmp_path)
    folder = tmp_path / "data" / "config"
    folder.mkdir(parents=True)
    before = site_part(own)
    (folder / "pushed.toml").write_text(tomli_w.dumps(before))
    os.chmod(folder / "pushed.toml", 0o600)
    applier = ConfigApplier(tmp_path / "edge.toml")
    after = site_part(own)
    after["lots"]["P1"]["full_band"] = 3

    assert applier.handle(_push(after, 4), NOW) is None
    assert tomllib.loads((folder / "pushed.toml").read_text()) == after
    assert tomllib.loads((folder / "pushed.toml.previous").read_text()) == before
    for name in ("pushed.toml", "pushed.toml.previous"):
        assert stat.S_IMODE((folder / name).stat().st_mode) == 0o600, name
    assert applier.state is not None and applier.state.state == "applying"
    assert applier.config.lots["P1"].full_band == 3
    await asyncio.wait_for(applier.rebuild.wait(), 10)  # the runtime is rebuilt after the reply
    # a second push while the first is on trial is refused, nothing written
    assert "still on trial" in (applier.handle(_push(before, 5), NOW) or "")
    assert tomllib.loads((folder / "pushed.toml").read_text()) == after


def test_a_pushed_part_that_no_longer_loads_leaves_the_box_on_its_file(tmp_path: Path) -> None:
    own = _own(tmp_path)
    folder = tmp_path / "data" / "config"
    folder.mkdir(parents=True)
    part = site_part(own)
    part["lots"] = {"P9": {"full_band": 0}}  # drops P1, which the technician's sign names
    (folder / "pushed.toml").write_text(tomli_w.dumps(part))
    (folder / "apply.json").write_text(json.dumps(
        {"version": 1, "hash": digest(part), "state": "confirmed", "reason": None,
         "ts": "2027-01-15T08:00:00Z"}
    ))  # fmt: skip
    own["sign_buses"] = {"bus1": {"transport": "tcp", "host": "127.0.0.1", "signs": {"S1": SIGN}}}
    (tmp_path / "edge.toml").write_text(tomli_w.dumps(own))

    applier = ConfigApplier(tmp_path / "edge.toml")
    assert set(applier.config.lots) == {"P1"}  # edge.toml alone
    assert applier.state is not None and applier.state.state == "failed"
    assert "no longer loads over edge.toml" in (applier.state.reason or "")
    assert "sign_buses.bus1.signs.S1.lot" in (applier.state.reason or "")


def test_check_config_says_what_central_pushed_and_whether_it_loads(tmp_path: Path) -> None:
    own = _own(tmp_path)
    folder = tmp_path / "data" / "config"
    folder.mkdir(parents=True)
    cmd = [sys.executable, "-m", "parkgrid", "edge", "check-config", str(tmp_path / "edge.toml")]
    alone = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert alone.returncode == 0 and "pushed by central" not in alone.stdout
    part = site_part(own)
    part["lots"]["P1"]["full_band"] = 1
    (folder / "pushed.toml").write_text(tomli_w.dumps(part))
    (folder / "apply.json").write_text(json.dumps(
        {"version": 3, "hash": digest(part), "state": "confirmed", "reason": None,
         "ts": "2027-01-15T08:00:00Z"}
    ))  # fmt: skip
    laid = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert laid.returncode == 0, laid.stderr
    assert "pushed.toml (pushed by central, version 3, confirmed) is laid over it" in laid.stdout
    assert digest(part)[:19] in laid.stdout
    assert "without a sensor" not in laid.stdout and "set aside" not in laid.stdout
    part["lots"]["P1"]["bay_ids"] = ["B2"]  # the office lists a new bay, no longer B1
    (folder / "pushed.toml").write_text(tomli_w.dumps(part))
    laid = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert laid.returncode == 0, laid.stderr
    assert "set aside (mapped here, no longer listed): lots.P1.bays.B1" in laid.stdout
    assert "1 bay(s) without a sensor, unknown until mapped here: P1/B2" in laid.stdout
    part["timezone"] = "Mars/Olympus"
    (folder / "pushed.toml").write_text(tomli_w.dumps(part))
    broken = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert broken.returncode == 2 and "does not load over it" in broken.stderr
    assert "timezone" in broken.stderr


def test_a_pushed_sign_without_wiring_is_refused_and_wiring_in_a_push_too(
    tmp_path: Path,
) -> None:
    own = _own(tmp_path)
    own["sign_buses"] = {"bus1": {"transport": "tcp", "host": "127.0.0.1", "signs": {"S1": SIGN}}}
    (tmp_path / "edge.toml").write_text(tomli_w.dumps(own))
    applier = ConfigApplier(tmp_path / "edge.toml", clock=lambda: NOW)
    part = site_part(own)
    part["signs"]["S2"] = {"profile": "parkgrid-guidance", "lot": "P1"}
    refusal = applier.handle(_push(part, 1), NOW)
    assert refusal is not None and refusal.startswith("signs.S2: no sign S2 on this box's sign")
    part = site_part(own)
    part["signs"]["S1"]["unit"] = 7
    refusal = applier.handle(_push(part, 2), NOW)
    assert refusal is not None and refusal.startswith("signs.S1.unit: the box's own key")
    assert not (tmp_path / "data" / "config" / "pushed.toml").exists()
    assert applier.state is not None and applier.state.state == "failed"
