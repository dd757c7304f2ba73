"""bench/_fleet_unit.py, the fleet bench's stand-in of the box's systemd unit, with a fake
``parkgrid`` in the ``current`` slot that logs each command and does what a file tells it."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bench._fleet_unit import UNIT_FILE, Unit, unit_commands, unit_seconds

FAKE = """#!/bin/sh
# $1 $2: edge boot-check|run|confirm
dir=$(dirname "$0")/../../..
echo "$2 $$" >> "$dir/calls"
rc=$(cat "$dir/$2.rc" 2>/dev/null || echo 0)
case "$2" in
  run)
    trap 'echo "term $$" >> "$dir/calls"; exit 0' TERM
    sleep 300 & echo "child $!" >> "$dir/calls"
    if [ -f "$dir/run.exit-once" ]; then rm "$dir/run.exit-once"; exit 3; fi
    while :; do sleep 0.05; done ;;
  confirm)
    sleep 0.2; exit "$rc" ;;
  *) exit "$rc" ;;
esac
"""


@pytest.fixture
def box(tmp_path: Path) -> Path:
    bin_dir = tmp_path / "releases" / "a" / "bin"
    bin_dir.mkdir(parents=True)
    fake = bin_dir / "parkgrid"
    fake.write_text(FAKE)
    fake.chmod(0o755)
    os.symlink("releases/a", tmp_path / "current")
    return tmp_path


@pytest.fixture
def unit(box: Path) -> Iterator[Unit]:
    started = Unit("box-t", box, box / "edge.toml", box / "data", box / "unit.log", restart_s=0.3)
    yield started
    started.stop()


def calls(box: Path) -> list[str]:
    path = box / "calls"
    return [line.split()[0] for line in path.read_text().splitlines()] if path.exists() else []


def eventually(condition: Callable[[], bool], within: float = 8.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "not in time"
        time.sleep(0.05)


def test_the_unit_files_settings_are_read() -> None:
    text = UNIT_FILE.read_text()
    assert unit_seconds("RestartSec", text) == 5
    assert unit_seconds("TimeoutStopSec", text) == 20
    assert unit_seconds("TimeoutStartSec", "TimeoutStartSec=15min\n") == 900
    with pytest.raises(ValueError, match="no Nope="):
        unit_seconds("Nope", text)


def test_the_unit_files_commands_for_a_box_in_its_own_folders(tmp_path: Path) -> None:
    prefix, config, data = tmp_path / "opt", tmp_path / "etc" / "edge.toml", tmp_path / "data"
    commands = unit_commands(prefix, config, data)
    parkgrid = str(prefix / "current" / "bin" / "parkgrid")
    assert commands["ExecStartPre"][:3] == [parkgrid, "edge", "boot-check"]
    assert commands["ExecStart"] == [parkgrid, "edge", "run", "--config", str(config)]
    assert commands["ExecStartPost"][:3] == [parkgrid, "edge", "confirm"]
    every = " ".join(" ".join(c) for c in commands.values())
    assert "/opt/parkgrid" not in every and "/var/lib/parkgrid" not in every
    assert "/etc/parkgrid" not in every


def test_boot_check_before_each_start_and_restart_when_the_box_exits(box: Path, unit: Unit) -> None:
    (box / "run.exit-once").touch()
    unit.start()
    eventually(lambda: unit.phase == "running" and calls(box).count("run") == 2)
    # the boot check before each start (the confirm starts beside the box, in any order)
    assert [c for c in calls(box) if c in ("boot-check", "run")] == ["boot-check", "run"] * 2
    assert unit.exits == [3]
    first_child = int(next(c for c in (box / "calls").read_text().splitlines()
                           if c.startswith("child")).split()[1])  # fmt: skip
    eventually(lambda: not alive(first_child))  # what the exited box left was stopped too


def test_a_failed_boot_check_starts_nothing_and_is_tried_again(box: Path, unit: Unit) -> None:
    (box / "boot-check.rc").write_text("1")
    unit.start()
    eventually(lambda: calls(box).count("boot-check") >= 3)
    assert "run" not in calls(box)
    (box / "boot-check.rc").unlink()
    eventually(lambda: unit.phase == "running")


def test_a_failed_confirm_stops_the_box_and_starts_again(box: Path, unit: Unit) -> None:
    (box / "confirm.rc").write_text("1")
    unit.start()
    eventually(lambda: calls(box).count("run") >= 2)
    assert "term" in calls(box)  # the box was stopped with SIGTERM, as systemd does
    (box / "confirm.rc").unlink()
    eventually(lambda: unit.phase == "running")


def test_a_power_cut_kills_every_process_and_boots_again(box: Path, unit: Unit) -> None:
    unit.start()
    eventually(lambda: unit.phase == "running")
    pids = unit.pids()
    unit.power_cut()
    eventually(lambda: calls(box).count("run") == 2)
    assert "term" not in calls(box)  # kill -9: nothing had the time to stop cleanly
    for pid in pids:
        assert not alive(pid)
    children = [int(line.split()[1]) for line in (box / "calls").read_text().splitlines()
                if line.startswith("child")]  # fmt: skip
    assert not alive(children[0])  # what the box had started went with it (an update's pip)


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except FileNotFoundError:
        return False
