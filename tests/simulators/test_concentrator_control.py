"""The controllable concentrator: a technician on the bench toggles a chosen bay."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from firmware_protocols import sensors as sensor_formats
from firmware_protocols.concentrator import ConcentratorDecoder, UplinkFrame
from simulators.concentrator import ConcentratorSimulator
from simulators.concentrator_control import ControlError, Controller, Ground, parse

BAYS_CSV = "lot,bay,sensor,format\nP1,B001,,\nP1,B002,,\nP1,B003,00C00003,bosch-pls\n"


def test_ground_buries_a_sensor_under_each_empty_row_formats_in_turn() -> None:
    ground = Ground.from_csv(BAYS_CSV, source="bays.csv", formats=["dingtek-do20x", "nwave-nps"])
    assert ground.bays == {
        "P1/B001": ("00A10000", "dingtek-do20x"),
        "P1/B002": ("00A10001", "nwave-nps"),
        "P1/B003": ("00C00003", "bosch-pls"),
    }
    assert ground.resolve("B002", ground.sensors()) == "00A10001"
    assert ground.resolve("P1/B003", ground.sensors()) == "00C00003"
    with pytest.raises(ControlError, match="no bay P9/B001"):
        ground.resolve("P9/B001", ground.sensors())
    with pytest.raises(ControlError, match=r"bays.csv:2: 'zz' is not a hex sensor id"):
        Ground.from_csv("lot,bay,sensor\nP1,B1,zz\n", source="bays.csv")
    with pytest.raises(ControlError, match=r"bays.csv:2: lot and bay are required"):
        Ground.from_csv("lot,bay,sensor\nP1,,\n", source="bays.csv")


def test_bad_command_lines_are_refused_with_the_reason() -> None:
    assert parse("toggle P1/B001").target == "P1/B001"
    for line, reason in (("", "empty"), ("jump B1", "unknown command"), ("toggle", "one sensor")):
        with pytest.raises(ControlError, match=reason):
            parse(line)


async def status_of(fd: int, sensor: str) -> UplinkFrame:
    """Read the pty until ``sensor``'s next change report (start-up frames pass by)."""
    decoder = ConcentratorDecoder()
    while True:
        try:
            decoder.feed(os.read(fd, 4096))
        except BlockingIOError:
            await asyncio.sleep(0.01)
            continue
        for frame in decoder:
            if isinstance(frame, UplinkFrame) and f"{frame.sensor_id:08X}" == sensor:
                reading = sensor_formats.decode(frame.fmt, frame.payload, port=frame.port)
                if reading.kind in ("status", "telemetry"):
                    return frame


async def test_controller_toggles_a_bay_and_a_dead_sensor_sends_nothing() -> None:
    ground = Ground.from_csv(BAYS_CSV, source="bays.csv")
    async with ConcentratorSimulator(sensors=ground.sensors()) as sim:
        fd = os.open(sim.path, os.O_RDONLY | os.O_NOCTTY | os.O_NONBLOCK)
        try:
            control = Controller(sim, ground)
            assert await control.apply("dead B001") == "ok 00A10000 (P1/B001) dead"
            reply = await control.apply("toggle B001")
            assert reply == "ok 00A10000 (P1/B001) occupied, but it is dead: nothing sent"
            assert await control.apply("occupy P1/B002") == "ok 00A10001 (P1/B002) occupied"
            assert (await control.apply("toggle Q9")).startswith("error: ")
            frame = await asyncio.wait_for(status_of(fd, "00A10001"), 30)
        finally:
            os.close(fd)
    reading = sensor_formats.decode(frame.fmt, frame.payload, port=frame.port)
    assert reading.occupied is True


async def test_the_command_line_serves_a_socket_and_send_drives_it(tmp_path: Path) -> None:
    """``sim concentrator --bury --control`` runs; ``--send`` toggles a bay in it."""
    (tmp_path / "bays.csv").write_text(BAYS_CSV)
    sock, link, ground_out = tmp_path / "conc.sock", tmp_path / "ttyCONC0", tmp_path / "g.csv"
    sim = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "parkgrid", "sim", "concentrator", "--link", str(link),
        "--bury", str(tmp_path / "bays.csv"), "--ground-out", str(ground_out),
        "--control", str(sock), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert sim.stderr is not None
        async with asyncio.timeout(60):
            while b"commands on" not in await sim.stderr.readline():
                pass
        fd = os.open(link, os.O_RDONLY | os.O_NOCTTY | os.O_NONBLOCK)
        try:
            ran = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "parkgrid", "sim", "concentrator", "--control", str(sock),
                "--send", "toggle P1/B003", "--send", "list", stdout=asyncio.subprocess.PIPE,
            )  # fmt: skip
            out, _ = await asyncio.wait_for(ran.communicate(), 60)
            frame = await asyncio.wait_for(status_of(fd, "00C00003"), 30)
        finally:
            os.close(fd)
        bad = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "parkgrid", "sim", "concentrator", "--control", str(sock),
            "--send", "toggle P1/B999", stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        bad_out, _ = await asyncio.wait_for(bad.communicate(), 60)
        assert sim.returncode is None  # a bad command does not stop the simulator
    finally:
        sim.terminate()
        await asyncio.wait_for(sim.wait(), 60)
    assert ran.returncode == 0, out
    text = out.decode()
    assert "ok 00C00003 (P1/B003) occupied" in text
    assert "00C00003 bosch-pls P1/B003 occupied" in text
    reading = sensor_formats.decode(frame.fmt, frame.payload, port=frame.port)
    assert reading.occupied is True
    assert bad.returncode == 1 and b"no bay P1/B999" in bad_out
    assert "P1,B001,00A10000,bosch-pls" in ground_out.read_text()


async def test_stdin_commands_are_answered_and_a_bad_one_does_not_stop_it(tmp_path: Path) -> None:
    """``--stdin``: the technician types in the simulator's own terminal; EOF ends it."""
    (tmp_path / "bays.csv").write_text(BAYS_CSV)
    sim = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "parkgrid", "sim", "concentrator", "--link",
        str(tmp_path / "ttyCONC0"), "--bury", str(tmp_path / "bays.csv"), "--stdin",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert sim.stdin is not None
    sim.stdin.write(b"fly B001\nfree B002\n")
    await sim.stdin.drain()
    sim.stdin.close()
    out, err = await asyncio.wait_for(sim.communicate(), 60)
    assert sim.returncode == 0, err
    lines = out.decode().splitlines()
    assert lines[1].startswith("error: unknown command 'fly'")
    assert lines[2] == "ok 00A10001 (P1/B002) free"
