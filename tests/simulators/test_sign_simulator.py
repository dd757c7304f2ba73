"""The sign simulator is a real Modbus peer: TCP, RTU on a pty, watchdog, faults, mbpoll."""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ModbusIOException

from firmware_protocols.signs import (
    GENERIC_LED,
    PARKGRID_GUIDANCE,
    PARKGRID_WARNING,
    Arrow,
    Colour,
    GuidanceDisplay,
    GuidanceMode,
    Message,
    NumericDisplay,
    Table,
    WarningDisplay,
    decode_status,
    encode_display,
    merge_writes,
    watchdog_write,
)
from simulators import signs as sim_module
from simulators.signs import Fault, SignSimulator

UNITS = {1: "parkgrid-guidance", 2: "parkgrid-warning", 3: "generic-led"}


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def sim(clock: FakeClock, tmp_path: Path) -> AsyncIterator[SignSimulator]:
    async with SignSimulator(
        units=UNITS, tcp=("127.0.0.1", 0), clock=clock, state_file=tmp_path / "signs.json"
    ) as running:
        yield running


@pytest.fixture
async def client(sim: SignSimulator) -> AsyncIterator[AsyncModbusTcpClient]:
    assert sim.port is not None
    tcp = AsyncModbusTcpClient("127.0.0.1", port=sim.port, timeout=0.5, retries=0)
    assert await tcp.connect()
    yield tcp
    tcp.close()


async def refresh(
    client: AsyncModbusTcpClient | AsyncModbusSerialClient,
    unit: int,
    display: GuidanceDisplay | WarningDisplay,
    counter: int = 1,
) -> None:
    prof = PARKGRID_GUIDANCE if isinstance(display, GuidanceDisplay) else PARKGRID_WARNING
    writes = merge_writes([*encode_display(prof, display), watchdog_write(prof, counter)])
    for address, values in writes:
        response = await client.write_registers(address, list(values), device_id=unit)
        assert not response.isError(), response


async def test_sign_simulator_tcp_write_is_shown(
    sim: SignSimulator, client: AsyncModbusTcpClient
) -> None:
    """A guidance display written over Modbus TCP is what the simulated sign shows."""
    assert sim.shown(1) == "--"  # power-on: no controller heard yet
    await refresh(client, 1, GuidanceDisplay(free=37, arrow=Arrow.RIGHT, label="P1"))
    assert sim.shown(1) == "P1 37 → green"
    assert sim.display(1) == GuidanceDisplay(free=37, arrow=Arrow.RIGHT, label="P1")
    await refresh(client, 2, WarningDisplay(message=Message.TRUCK_BAN, flashing=True))
    assert sim.shown(2) == "大车禁行 TRUCK BAN (flashing)"
    for address, values in encode_display(GENERIC_LED, NumericDisplay(value=375, decimals=1)):
        assert not (await client.write_registers(address, list(values), device_id=3)).isError()
    assert sim.shown(3) == "37.5"
    read = await client.read_holding_registers(0, count=5, device_id=1)
    assert read.registers == [37, Colour.GREEN, Arrow.RIGHT, GuidanceMode.NORMAL, 100]


async def test_sign_simulator_watchdog_expires_and_recovers(
    sim: SignSimulator, client: AsyncModbusTcpClient, clock: FakeClock
) -> None:
    """No watchdog write within the timeout shows '--' and sets the bit; a rewrite restores."""
    await refresh(client, 1, GuidanceDisplay(free=12, label="P3"))
    clock.now += 29.9
    assert sim.shown(1) == "P3 12 green"
    clock.now += 0.2
    assert sim.shown(1) == "--"
    inputs = await client.read_input_registers(0, count=6, device_id=1)
    status = decode_status(PARKGRID_GUIDANCE, dict(enumerate(inputs.registers)))
    assert "watchdog_expired" in status.faults
    assert status.uptime_s == 30
    kick = watchdog_write(PARKGRID_GUIDANCE, 2)
    assert not (
        await client.write_registers(kick.address, list(kick.values), device_id=1)
    ).isError()
    assert sim.shown(1) == "P3 12 green"
    inputs = await client.read_input_registers(0, count=6, device_id=1)
    assert decode_status(PARKGRID_GUIDANCE, dict(enumerate(inputs.registers))).faults == set()


async def test_sign_simulator_warning_goes_dark_when_orphaned(
    sim: SignSimulator, client: AsyncModbusTcpClient, clock: FakeClock
) -> None:
    """A warning sign whose controller went silent shows nothing rather than a stale message."""
    await refresh(client, 2, WarningDisplay(message=Message.CAPTURE_IN_FORCE))
    assert sim.shown(2) == "违停抓拍 CAPTURE IN FORCE"
    clock.now += 31
    assert sim.shown(2) == ""


async def test_sign_simulator_reboot_restores_defaults(
    sim: SignSimulator, client: AsyncModbusTcpClient, clock: FakeClock
) -> None:
    """A reboot resets registers to power-on values, uptime to zero and shows '--'/'----'."""
    await refresh(client, 1, GuidanceDisplay(free=99, label="P1"))
    clock.now += 5
    sim.reboot(1)
    sim.reboot(3)
    assert sim.shown(1) == "--"
    assert sim.shown(3) == "----"
    assert sim.display(1) == GuidanceDisplay(free=0, mode=GuidanceMode.BLANK)
    inputs = await client.read_input_registers(0, count=6, device_id=1)
    assert inputs.registers[2:4] == [0, 0]


async def test_sign_simulator_silent_unit_times_out(
    sim: SignSimulator, client: AsyncModbusTcpClient
) -> None:
    """A silent unit and an empty unit id never answer; the others still do."""
    sim.inject(1, Fault.SILENT)
    with pytest.raises(ModbusIOException):
        await client.read_holding_registers(0, count=1, device_id=1)
    with pytest.raises(ModbusIOException):
        await client.read_holding_registers(0, count=1, device_id=42)
    assert not (await client.read_holding_registers(0, count=1, device_id=2)).isError()
    sim.inject(1, Fault.NONE)
    assert not (await client.read_holding_registers(0, count=1, device_id=1)).isError()


@pytest.mark.parametrize(
    ("fault", "code"),
    [
        pytest.param(Fault.DEVICE_FAILURE, 4, id="device-failure"),
        pytest.param(Fault.ILLEGAL_ADDRESS, 2, id="illegal-address"),
        pytest.param(Fault.BUSY, 6, id="busy"),
    ],
)
async def test_sign_simulator_exception_response(
    sim: SignSimulator, client: AsyncModbusTcpClient, fault: Fault, code: int
) -> None:
    """An injected exception reaches the client as that Modbus exception code."""
    sim.inject(2, fault)
    response = await client.read_holding_registers(0, count=3, device_id=2)
    assert response.isError()
    assert response.exception_code == code


async def test_sign_simulator_rejects_bad_values_and_addresses(
    sim: SignSimulator, client: AsyncModbusTcpClient
) -> None:
    """A colour the profile lacks is exception 3; an unmapped register is exception 2."""
    bad = await client.write_register(0x0001, 9, device_id=1)
    assert bad.isError() and bad.exception_code == 3
    assert sim.display(1) == GuidanceDisplay(free=0, mode=GuidanceMode.BLANK)
    unmapped = await client.read_holding_registers(0x0040, count=1, device_id=1)
    assert unmapped.isError() and unmapped.exception_code == 2
    coils = await client.read_coils(0, count=1, device_id=1)
    assert coils.isError() and coils.exception_code == 1


async def test_sign_simulator_hardware_fault_bits(
    sim: SignSimulator, client: AsyncModbusTcpClient
) -> None:
    """Hardware faults set on a unit read back as named fault bits."""
    sim.set_hardware_faults(1, {"led_module", "over_temperature"})
    inputs = await client.read_input_registers(0, count=6, device_id=1)
    faults = decode_status(PARKGRID_GUIDANCE, dict(enumerate(inputs.registers))).faults
    assert faults == {"led_module", "over_temperature", "watchdog_expired"}


async def test_sign_simulator_rtu_over_pty(clock: FakeClock) -> None:
    """Modbus RTU through the simulator's pty works for writes and reads."""
    async with SignSimulator(units={5: "parkgrid-guidance"}, rtu=True, clock=clock) as sim:
        assert sim.pty_path is not None and sim.port is None
        rtu = AsyncModbusSerialClient(sim.pty_path, baudrate=9600, timeout=1, retries=0)
        assert await rtu.connect()
        try:
            await refresh(rtu, 5, GuidanceDisplay(free=250, colour=Colour.AMBER, label="P4"))
            assert sim.shown(5) == "P4 250 amber"
            read = await rtu.read_input_registers(0, count=1, device_id=5)
            assert read.registers == [PARKGRID_GUIDANCE.model_code]
        finally:
            rtu.close()


async def test_sign_simulator_mbpoll_reads_and_writes(sim: SignSimulator) -> None:
    """libmodbus' mbpoll writes a display and the watchdog, and reads back the model code."""
    assert shutil.which("mbpoll"), "mbpoll is not installed: `make system-deps` installs it"
    base = ["mbpoll", "-m", "tcp", "-a", "1", "-0", "-1", "-p", str(sim.port)]
    # Holding 0..9: free 42, amber, right arrow, normal, 80 %, label "P2", watchdog 1.
    write = [*base, "-r", "0", "-t", "4", "127.0.0.1", "42", "1", "2", "0", "80", "20530",
             "0", "0", "0", "1"]  # fmt: skip
    done = await asyncio.to_thread(
        subprocess.run, write, capture_output=True, text=True, timeout=10
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert sim.shown(1) == "P2 42 → amber"
    read = [*base, "-r", "0", "-c", "1", "-t", "3", "127.0.0.1"]
    done = await asyncio.to_thread(subprocess.run, read, capture_output=True, text=True, timeout=10)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"[0]: \t{PARKGRID_GUIDANCE.model_code}" in done.stdout


async def test_sign_simulator_state_file_and_show(
    sim: SignSimulator,
    client: AsyncModbusTcpClient,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The state file follows writes, and `parkgrid sim signs --show` prints it."""
    await refresh(client, 1, GuidanceDisplay(free=8, label="P1"))
    state = json.loads((tmp_path / "signs.json").read_text())
    assert state["signs"]["1"]["shown"] == "P1 8 green"
    assert state["port"] == sim.port
    parser = argparse.ArgumentParser()
    sim_module.configure(parser)
    args = parser.parse_args(["--show", "--state-file", str(tmp_path / "signs.json")])
    assert args.handler(args) == 0
    out = capsys.readouterr().out
    assert "parkgrid-guidance" in out and "P1 8 green" in out and "----" in out


def test_sign_simulator_cli_rejects_bad_unit_spec() -> None:
    """--unit needs N=PROFILE with a known profile."""
    parser = argparse.ArgumentParser()
    sim_module.configure(parser)
    with pytest.raises(SystemExit):
        parser.parse_args(["--tcp", "127.0.0.1:0", "--unit", "1=neon-sign"])
    args = parser.parse_args(["--tcp", ":1502", "--unit", "7=generic-led"])
    assert args.tcp == ("127.0.0.1", 1502) and args.unit == [(7, "generic-led")]


def test_sign_simulator_registers_table_view(clock: FakeClock) -> None:
    """registers() exposes holding and input tables as the sign holds them."""
    simulator = SignSimulator(units={1: "parkgrid-warning"}, clock=clock)
    assert simulator.registers(1, Table.INPUT)[0] == PARKGRID_WARNING.model_code
    assert simulator.registers(1)[0x0004] == 30  # watchdog timeout power-on value


async def test_sign_simulator_display_log_has_every_change_with_its_time(
    clock: FakeClock, tmp_path: Path
) -> None:
    """The display log (JSON lines) holds every change of what a sign shows, with the wall
    time, why (start, write, watchdog, reboot), and the watchdog's expiry at its own time."""
    log = tmp_path / "display.jsonl"
    async with SignSimulator(
        units={1: "parkgrid-guidance"},
        tcp=("127.0.0.1", 0),
        clock=clock,
        display_log=log,
        names={1: "P1-ENTRANCE"},
        wall=lambda: clock.now + 4000,  # the wall clock, 4000 s ahead of the sign's
    ) as server:
        assert server.port is not None
        tcp = AsyncModbusTcpClient("127.0.0.1", port=server.port, timeout=0.5, retries=0)
        assert await tcp.connect()
        try:
            await refresh(tcp, 1, GuidanceDisplay(free=37, arrow=Arrow.RIGHT, label="P1"))
            await refresh(tcp, 1, GuidanceDisplay(free=37, arrow=Arrow.RIGHT, label="P1"), 2)
            await refresh(tcp, 1, GuidanceDisplay(free=36, arrow=Arrow.RIGHT, label="P1"), 3)
        finally:
            tcp.close()
        clock.now += 45  # 30 s watchdog: expired 15 s ago by the sign's clock
        server.note_displays()
        server.reboot(1)
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(r["sign"], r["shown"], r["why"]) for r in lines] == [
        ("P1-ENTRANCE", "--", "start"),
        ("P1-ENTRANCE", "P1 37 → green", "write"),  # the identical refresh is no change
        ("P1-ENTRANCE", "P1 36 → green", "write"),
        ("P1-ENTRANCE", "--", "watchdog"),
    ]
    # Stamped when it expired (last kick at 1000 + 30 s), not when it was noticed (1045).
    assert lines[3]["wall"] == pytest.approx(5030.0)
    assert lines[2]["wall"] == pytest.approx(5000.0)
    assert all(r["unit"] == 1 for r in lines)
