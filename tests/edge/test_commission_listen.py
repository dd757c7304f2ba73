"""listen: the sensors a simulated concentrator or M77 receiver sends, as JSON and in tmux."""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
import uuid
from pathlib import Path

import tomli_w

from simulators.concentrator import ConcentratorSimulator
from simulators.m77 import M77Simulator
from tests.edge.commission_support import parkgrid

SENSORS = {"00A10001": "nwave-nps", "00A10002": "bosch-pls", "00A10003": "dingtek-do20x"}


def frames(out: str) -> tuple[dict[str, dict[str, object]], dict[str, object]]:
    records = [json.loads(line) for line in out.splitlines() if line.strip()]
    heard = {r["sensor_id"]: r for r in records if r["type"] == "frame"}
    (summary,) = [r for r in records if r["type"] == "summary"]
    return heard, summary


async def test_listen_json_sees_the_simulated_sensors() -> None:
    """Every simulated sensor is heard, with its format and state, and the line counters add up."""
    async with ConcentratorSimulator(sensors=SENSORS, rate=4, seed=7) as sim:
        ran = await parkgrid("edge", "listen", "--port", str(sim.path), "--seconds", "2", "--json")
    assert ran.code == 0, ran.err
    heard, summary = frames(ran.out)
    assert {sid: r["format"] for sid, r in heard.items()} == SENSORS
    assert all(r["state"] in ("free", "occupied") for r in heard.values())
    assert all(isinstance(r["rssi_dbm"], int) for r in heard.values())
    (line,) = summary["lines"]  # type: ignore[misc]
    assert line["frames"] >= 3 and line["crc_failures"] == 0 and line["up"]


async def test_listen_with_config_flags_unmapped_and_silent_sensors(tmp_path: Path) -> None:
    """A heard sensor the config lacks is NOT MAPPED; a mapped one never heard fails the run."""
    config = {
        "site": "xigang",
        "box_id": "box-p1",
        "serial": {"conc": {"device": "/dev/null", "protocol": "concentrator"}},
        "lots": {
            "P1": {
                "bays": {
                    "B001": {"sensor": "00A10001", "format": "nwave-nps"},
                    "B002": {"sensor": "00A10002", "format": "bosch-pls"},
                    "B009": {"sensor": "00A10009", "format": "nwave-nps"},
                }
            }
        },
    }
    path = tmp_path / "edge.toml"
    path.write_text(tomli_w.dumps(config))
    async with ConcentratorSimulator(sensors=SENSORS, rate=4, seed=8) as sim:
        ran = await parkgrid(
            "edge", "listen", "--port", str(sim.path), "--config", str(path),
            "--seconds", "2", "--json",
        )  # fmt: skip
    assert ran.code == 1
    heard, summary = frames(ran.out)
    assert heard["00A10001"]["bay"] == "P1/B001" and heard["00A10001"]["mapped"]
    assert heard["00A10003"]["mapped"] is False
    assert summary["not_heard"] == ["00A10009"]
    assert summary["not_mapped"] == ["00A10003"]


async def test_listen_m77_polls_the_receiver() -> None:
    """On an m77-ascii line the receiver is polled and its detectors are listed by id."""
    async with M77Simulator(hosts={1: 3}) as sim:
        sim.set_state(1, 2, "occupied")
        ran = await parkgrid(
            "edge", "listen", "--port", str(sim.path), "--protocol", "m77-ascii",
            "--hosts", "1", "--seconds", "1.5", "--json",
        )  # fmt: skip
    assert ran.code == 0, ran.err
    heard, _ = frames(ran.out)
    assert sorted(heard) == ["M77-001-001", "M77-001-002", "M77-001-003"]
    assert heard["M77-001-002"]["state"] == "occupied"
    assert heard["M77-001-001"]["battery_level"] == 9


async def test_listen_missing_device_exits_2(tmp_path: Path) -> None:
    """A device path that does not exist is bad input, said in words."""
    ran = await parkgrid("edge", "listen", "--port", str(tmp_path / "ttyUSB9"), "--seconds", "1")
    assert ran.code == 2
    assert "does not exist" in ran.err


async def shell(*cmd: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        *cmd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL
    )
    out, _ = await proc.communicate()
    return out.decode()


async def test_listen_live_table_in_tmux() -> None:
    """The rich table in a real terminal shows a row per simulated sensor and the counters."""
    assert shutil.which("tmux"), "tmux is needed (make system-deps installs it)"
    socket = f"test-{uuid.uuid4().hex[:8]}"
    tmux = ["tmux", "-L", socket]
    async with ConcentratorSimulator(sensors=SENSORS, rate=4, seed=9) as sim:
        # The pane's own size, not a COLUMNS inherited from the test runner.
        command = (
            f"env -u COLUMNS -u LINES {sys.executable} -m parkgrid edge listen "
            f"--port {sim.path} --seconds 20"
        )
        await shell(*tmux, "new-session", "-d", "-x", "160", "-y", "40", command)
        try:
            pane = ""
            for _ in range(150):
                await asyncio.sleep(0.1)
                pane = await shell(*tmux, "capture-pane", "-p")
                if all(sid in pane for sid in SENSORS) and "frames" in pane:
                    break
        finally:
            await shell(*tmux, "kill-server")
    rows = [ln for ln in pane.splitlines() if any(sid in ln for sid in SENSORS)]
    assert len(rows) == 3, pane
    for sid, fmt in SENSORS.items():
        (row,) = [r for r in rows if sid in r]
        assert fmt in row and ("free" in row or "occupied" in row), pane
    assert "CRC failures" in pane
