"""Simulated LED signs: a real Modbus server (TCP and/or RTU on a pty) with many units.

Theory of operation
-------------------
Each unit id has a sign profile (``firmware_protocols.signs``). The simulator keeps each
unit's holding and input registers in a plain dict (the truth) and serves them with pymodbus'
``SimDevice`` API: every request runs the device ``action`` hook first, which

1. applies the unit's injected exception code (silence is handled earlier, in the
   ``trace_pdu`` hook, which drops the request so pymodbus never answers),
2. for a write, checks the resulting registers still decode under the profile (else
   exception 3, illegal data value), stores them, and restarts the watchdog if the write
   touched the watchdog register,
3. brings the clock-driven input registers up to date (uptime, the watchdog-expired bit),
4. copies the dict into pymodbus' register list so the read or write answers from it.

What a sign shows is ``firmware_protocols.signs.shown_text`` of those registers: the
protocol exists once. Time comes from ``clock`` (default ``time.monotonic``) so tests move
it by hand.

With ``display_log`` the simulator appends one JSON line per change of what a sign shows
(``simulators.sign_display_log``); changes no request causes (the watchdog) are noticed by a
watcher task every ``LOG_POLL_S`` or by :meth:`SignSimulator.note_displays`.

RTU runs on a pty bridge: two pty pairs whose masters the simulator relays to each other;
the server opens one slave, a client opens :attr:`SignSimulator.pty_path` (the other)::

    client --> /dev/pts/B == master B <-relay-> master A == /dev/pts/A <-- pymodbus RTU server

pymodbus keyword churn stays here: ``device_id=`` (was ``slave=``), ``SimDevice`` /
``SimData`` (the ``ModbusDeviceContext`` datastore is deprecated in 3.16).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
import time
import tty
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from types import TracebackType
from typing import Any

from pymodbus.constants import ExcCodes
from pymodbus.pdu import ModbusPDU
from pymodbus.server import ModbusSerialServer, ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from firmware_protocols.errors import DecodeError
from firmware_protocols.signs import (
    PROFILES,
    Display,
    SignProfile,
    Table,
    decode_display,
    encode_fault_bits,
    power_on_registers,
    shown_text,
)
from simulators.sign_display_log import DisplayLog

HOLDING_FCS = frozenset({3, 6, 16, 22, 23})
LOG_POLL_S = 0.05  # how often the display log looks for changes no request made
INPUT_FCS = frozenset({4})


class Fault(StrEnum):
    """What a unit does wrong on purpose."""

    NONE = "none"
    SILENT = "silent"  # no answer: the client times out
    DEVICE_FAILURE = "device-failure"  # exception code 4
    ILLEGAL_ADDRESS = "illegal-address"  # exception code 2
    BUSY = "busy"  # exception code 6


FAULT_CODES = {
    Fault.DEVICE_FAILURE: ExcCodes.DEVICE_FAILURE,
    Fault.ILLEGAL_ADDRESS: ExcCodes.ILLEGAL_ADDRESS,
    Fault.BUSY: ExcCodes.DEVICE_BUSY,
}


@dataclass(slots=True)
class _Unit:
    unit_id: int
    profile: SignProfile
    booted_at: float
    holding: dict[int, int] = field(default_factory=dict)
    inputs: dict[int, int] = field(default_factory=dict)
    last_kick: float | None = None
    fault: Fault = Fault.NONE
    hardware_faults: frozenset[str] = frozenset()
    requests: int = 0

    def power_on(self, now: float) -> None:
        tables = power_on_registers(self.profile)
        self.holding = tables[Table.HOLDING]
        self.inputs = tables[Table.INPUT]
        if self.profile.has("unit_id"):
            # A real module keeps the address it was configured with across power cycles.
            self.holding[self.profile.register("unit_id").address] = self.unit_id
        self.booted_at = now
        self.last_kick = None  # no controller heard since power-on: the watchdog has expired

    def watchdog_expired(self, now: float) -> bool:
        expiry = self.watchdog_expiry()
        return expiry is not None and now >= expiry

    def watchdog_expiry(self) -> float | None:
        """When the watchdog expires (or expired), by the sign's clock; None: never."""
        if self.profile.watchdog_timeout is None:
            return None
        reg = self.profile.register(self.profile.watchdog_timeout)
        timeout = self.holding[reg.address]
        if timeout == 0:
            return None
        if self.last_kick is None:
            return self.booted_at
        return self.last_kick + timeout

    def refresh(self, now: float) -> None:
        """Bring the clock-driven input registers up to date."""
        if self.profile.model_code is None:
            return
        faults = set(self.hardware_faults)
        if self.watchdog_expired(now):
            faults.add("watchdog_expired")
        uptime = max(0, int(now - self.booted_at))
        base = self.profile.register("uptime").address
        self.inputs[base] = uptime >> 16 & 0xFFFF
        self.inputs[base + 1] = uptime & 0xFFFF
        self.inputs[self.profile.register("faults").address] = encode_fault_bits(
            self.profile, faults
        )


class _PtyBridge:
    """Two pty pairs whose masters are relayed to each other (a null-modem cable)."""

    def __init__(self) -> None:
        self._fds: list[int] = []
        self.server_master, server_slave = os.openpty()
        self.client_master, client_slave = os.openpty()
        self._fds = [self.server_master, server_slave, self.client_master, client_slave]
        for fd in (server_slave, client_slave):
            tty.setraw(fd)  # no echo, no line discipline until the real opener sets it
        for fd in (self.server_master, self.client_master):
            os.set_blocking(fd, False)
        self.server_path = os.ttyname(server_slave)
        self.client_path = os.ttyname(client_slave)
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(
            self.server_master, self._relay, self.server_master, self.client_master
        )
        self._loop.add_reader(
            self.client_master, self._relay, self.client_master, self.server_master
        )

    @staticmethod
    def _relay(src: int, dst: int) -> None:
        try:
            data = os.read(src, 4096)
        except (BlockingIOError, OSError):
            return  # EIO while no one has the slave open: nothing to carry
        with contextlib.suppress(BlockingIOError, OSError):
            os.write(dst, data)

    def close(self) -> None:
        if self._loop is not None:
            for fd in (self.server_master, self.client_master):
                self._loop.remove_reader(fd)
        for fd in self._fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        self._fds = []


def _sim_block(registers: Mapping[int, int]) -> list[SimData]:
    if not registers:
        return [SimData(address=0, datatype=DataType.INVALID)]  # every address is illegal
    return [
        SimData(address=a, values=v, datatype=DataType.REGISTERS)
        for a, v in sorted(registers.items())
    ]


class SignSimulator:
    """Many simulated signs behind one Modbus server; an async context manager.

    ``units`` maps unit id -> profile name. ``tcp=(host, port)`` serves Modbus TCP (port 0
    picks a free port, see :attr:`port`); ``rtu=True`` serves RTU on a pty whose client end
    is :attr:`pty_path`. ``state_file`` is rewritten with what every sign shows.
    """

    def __init__(
        self,
        *,
        units: Mapping[int, str],
        tcp: tuple[str, int] | None = None,
        rtu: bool = False,
        baudrate: int = 9600,
        clock: Callable[[], float] = time.monotonic,
        state_file: Path | None = None,
        display_log: Path | None = None,
        names: Mapping[int, str] | None = None,
        wall: Callable[[], float] = time.time,
    ) -> None:
        if not units:
            raise ValueError("a sign simulator needs at least one unit")
        now = clock()
        self._units: dict[int, _Unit] = {}
        for unit_id, profile_name in units.items():
            if not 1 <= unit_id <= 247:
                raise ValueError(f"unit id {unit_id} outside 1..247")
            if profile_name not in PROFILES:
                raise ValueError(f"unknown profile {profile_name!r} (known: {', '.join(PROFILES)})")
            unit = _Unit(unit_id=unit_id, profile=PROFILES[profile_name], booted_at=now)
            unit.power_on(now)
            self._units[unit_id] = unit
        self._tcp = tcp
        self._rtu = rtu
        self._baudrate = baudrate
        self._clock = clock
        self._state_file = state_file
        self._display_log = DisplayLog(display_log, names, wall) if display_log else None
        self._watcher: asyncio.Task[None] | None = None
        self._servers: list[ModbusTcpServer | ModbusSerialServer] = []
        self._bridge: _PtyBridge | None = None
        self.port: int | None = None
        self.pty_path: str | None = None

    # --- lifetime ----------------------------------------------------------------------

    def _devices(self) -> list[SimDevice]:
        devices = []
        for unit_id, unit in self._units.items():
            devices.append(
                SimDevice(
                    id=unit_id,
                    simdata=(
                        [SimData(address=0, values=[False] * 16, datatype=DataType.BITS)],
                        [SimData(address=0, values=[False] * 16, datatype=DataType.BITS)],
                        _sim_block(unit.holding),
                        _sim_block(unit.inputs),
                    ),
                    action=self._make_action(unit_id),
                )
            )
        return devices

    def _trace_pdu(self, sending: bool, pdu: ModbusPDU) -> ModbusPDU:
        """Drop requests a real bus would leave unanswered, before pymodbus handles them.

        pymodbus handles a received PDU only if this hook returns it, so returning None is
        silence: for unit ids with no sign (an empty bus address) and for silent units.
        """
        if sending:
            return pdu
        unit = self._units.get(pdu.dev_id)
        if unit is None or unit.fault is Fault.SILENT:
            return None  # type: ignore[return-value]  # pymodbus' hint omits None; code allows it
        return pdu

    async def __aenter__(self) -> SignSimulator:
        try:
            if self._tcp is not None:
                server = ModbusTcpServer(
                    self._devices(), address=self._tcp, trace_pdu=self._trace_pdu
                )
                await server.serve_forever(background=True)
                self._servers.append(server)
                listener: Any = server.transport  # an asyncio.Server for a TCP listener
                self.port = int(listener.sockets[0].getsockname()[1])
            if self._rtu:
                self._bridge = _PtyBridge()
                self._bridge.start()
                serial = ModbusSerialServer(
                    self._devices(),
                    port=self._bridge.server_path,
                    baudrate=self._baudrate,
                    trace_pdu=self._trace_pdu,
                )
                await serial.serve_forever(background=True)
                self._servers.append(serial)
                self.pty_path = self._bridge.client_path
        except BaseException:
            await self.close()
            raise
        self.write_state()
        if self._display_log is not None:
            self.note_displays("start")
            self._watcher = asyncio.create_task(self._watch(), name="sign display log")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
            self._watcher = None
        if self._display_log is not None:
            self.note_displays()
            self._display_log.close()
            self._display_log = None
        for server in self._servers:
            await server.shutdown()
        self._servers.clear()
        if self._bridge is not None:
            self._bridge.close()
            self._bridge = None

    # --- the Modbus hook ---------------------------------------------------------------

    def _make_action(self, unit_id: int) -> Any:
        async def action(
            function_code: int,
            start_address: int,
            address: int,
            count: int,
            current_registers: list[int],
            set_values: list[int] | list[bool] | None,
        ) -> ExcCodes | None:
            return self._on_request(
                unit_id, function_code, start_address, address, count, current_registers,
                set_values,
            )  # fmt: skip

        return action

    def _on_request(
        self,
        unit_id: int,
        function_code: int,
        start_address: int,
        address: int,
        count: int,
        current_registers: list[int],
        set_values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        unit = self._units[unit_id]
        if unit.fault in FAULT_CODES:
            return FAULT_CODES[unit.fault]
        if function_code in HOLDING_FCS:
            store = unit.holding
        elif function_code in INPUT_FCS:
            store = unit.inputs
        else:
            return ExcCodes.ILLEGAL_FUNCTION  # no coils or discrete inputs on these signs
        unit.requests += 1
        now = self._clock()
        if set_values is not None and function_code in HOLDING_FCS:
            candidate = dict(unit.holding)
            candidate.update((address + i, int(v)) for i, v in enumerate(set_values))
            try:
                decode_display(unit.profile, candidate)
            except DecodeError:
                return ExcCodes.ILLEGAL_VALUE
            unit.holding = store = candidate
            if unit.profile.watchdog is not None:
                kick = unit.profile.register(unit.profile.watchdog).address
                if address <= kick < address + count:
                    unit.last_kick = now
        unit.refresh(now)
        for reg_address, value in store.items():
            index = reg_address - start_address
            if 0 <= index < len(current_registers):
                current_registers[index] = value
        if set_values is not None:
            self.write_state()
            self.note_displays("write")
        return None

    # --- the display log ---------------------------------------------------------------

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(LOG_POLL_S)
            self.note_displays()

    def note_displays(self, why: str | None = None) -> None:
        """Log every sign whose face changed since it was last logged (``DisplayLog``)."""
        if self._display_log is not None:
            faces = [(u, self.shown(u), unit.watchdog_expiry()) for u, unit in self._units.items()]
            self._display_log.note(faces, now=self._clock(), why=why)

    # --- the test and CLI API ----------------------------------------------------------

    def _unit(self, unit_id: int) -> _Unit:
        try:
            unit = self._units[unit_id]
        except KeyError:
            raise KeyError(f"no simulated sign with unit id {unit_id}") from None
        unit.refresh(self._clock())
        return unit

    @property
    def units(self) -> dict[int, str]:
        return {u: unit.profile.name for u, unit in self._units.items()}

    def shown(self, unit_id: int) -> str:
        """What the sign's LEDs show right now, in words ("" when dark, "--" when orphaned)."""
        unit = self._unit(unit_id)
        inputs = unit.inputs if unit.profile.model_code is not None else None
        return shown_text(unit.profile, unit.holding, inputs)

    def display(self, unit_id: int) -> Display:
        unit = self._unit(unit_id)
        return decode_display(unit.profile, unit.holding)

    def registers(self, unit_id: int, table: Table = Table.HOLDING) -> dict[int, int]:
        unit = self._unit(unit_id)
        return dict(unit.holding if table is Table.HOLDING else unit.inputs)

    def requests(self, unit_id: int) -> int:
        """Requests the unit has answered normally (faulted ones are not counted)."""
        return self._units[unit_id].requests

    def inject(self, unit_id: int, fault: Fault | str = Fault.NONE) -> None:
        """Make the unit misbehave (``Fault.NONE`` heals it)."""
        self._unit(unit_id).fault = Fault(fault)

    def set_hardware_faults(self, unit_id: int, faults: set[str] | frozenset[str]) -> None:
        """Raise fault bits such as ``led_module`` or ``power`` in the status registers."""
        unit = self._unit(unit_id)
        encode_fault_bits(unit.profile, faults)  # rejects names the profile lacks
        unit.hardware_faults = frozenset(faults)
        unit.refresh(self._clock())

    def reboot(self, unit_id: int) -> None:
        """Power-cycle the unit: registers back to power-on defaults, uptime from zero."""
        unit = self._units[unit_id]
        unit.power_on(self._clock())
        unit.refresh(self._clock())
        self.write_state()
        self.note_displays("reboot")

    def snapshot(self) -> dict[str, Any]:
        """What every sign shows, JSON-ready (the state file's content)."""
        signs = {}
        for unit_id in sorted(self._units):
            unit = self._unit(unit_id)
            signs[str(unit_id)] = {
                "profile": unit.profile.name,
                "shown": self.shown(unit_id),
                "fault": unit.fault.value,
                "watchdog_expired": unit.watchdog_expired(self._clock()),
                "uptime_s": int(self._clock() - unit.booted_at),
            }
        return {"port": self.port, "pty_path": self.pty_path, "signs": signs}

    def write_state(self) -> None:
        if self._state_file is None:
            return
        tmp = self._state_file.with_suffix(self._state_file.suffix + ".tmp")
        tmp.write_text(json.dumps(self.snapshot(), ensure_ascii=False, indent=2) + "\n")
        tmp.replace(self._state_file)  # atomic: --show never reads half a file


# --- CLI: parkgrid sim signs -----------------------------------------------------------------

DEFAULT_UNITS = {1: "parkgrid-guidance", 2: "parkgrid-warning", 3: "generic-led"}


def _host_port(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host or "127.0.0.1", int(port)


def _unit_spec(text: str) -> tuple[int, str]:
    unit, sep, name = text.partition("=")
    if not sep or not unit.isdigit() or name not in PROFILES:
        raise argparse.ArgumentTypeError(
            f"expected N=PROFILE with PROFILE one of {', '.join(PROFILES)}, got {text!r}"
        )
    return int(unit), name


def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Serve simulated guidance, warning and generic LED signs over Modbus TCP and/or RTU "
        "on a pty, or (--show) print what a running simulator's signs show."
    )
    parser.add_argument("--tcp", type=_host_port, metavar="HOST:PORT",
                        help="serve Modbus TCP here (port 0 picks a free port)")  # fmt: skip
    parser.add_argument("--rtu", action="store_true",
                        help="serve Modbus RTU on a pty and print its client path")  # fmt: skip
    parser.add_argument("--baud", type=int, default=9600, help="RTU baud rate (default 9600)")
    parser.add_argument("--unit", type=_unit_spec, action="append", metavar="N=PROFILE",
                        help="a sign at unit N (repeatable; default 1=parkgrid-guidance "
                        "2=parkgrid-warning 3=generic-led)")  # fmt: skip
    parser.add_argument("--state-file", type=Path,
                        help="keep what every sign shows in this JSON file")  # fmt: skip
    parser.add_argument("--show", action="store_true",
                        help="print what the signs show (reads --state-file) and exit")  # fmt: skip
    parser.set_defaults(handler=_handle)


def _handle(args: argparse.Namespace) -> int:
    if args.show:
        return _show(args.state_file)
    if args.tcp is None and not args.rtu:
        print("parkgrid sim signs: give --tcp HOST:PORT and/or --rtu", file=sys.stderr)
        return 2
    units = dict(args.unit) if args.unit else DEFAULT_UNITS
    try:
        asyncio.run(_serve(units=units, tcp=args.tcp, rtu=args.rtu, baud=args.baud,
                           state_file=args.state_file))  # fmt: skip
    except OSError as exc:
        print(f"parkgrid sim signs: {exc}", file=sys.stderr)
        return 1
    return 0


def _show(state_file: Path | None) -> int:
    if state_file is None:
        print("parkgrid sim signs --show: give --state-file F (the running one's)", file=sys.stderr)
        return 2
    try:
        state = json.loads(state_file.read_text())
    except (OSError, ValueError) as exc:
        print(f"parkgrid sim signs --show: cannot read {state_file}: {exc}", file=sys.stderr)
        return 1
    for unit_id, sign in state["signs"].items():
        fault = "" if sign["fault"] == "none" else f"  [fault: {sign['fault']}]"
        shown = sign["shown"] or "(dark)"
        print(f"unit {unit_id:>3}  {sign['profile']:<18} {shown}{fault}")
    return 0


async def _serve(
    *,
    units: Mapping[int, str],
    tcp: tuple[str, int] | None,
    rtu: bool,
    baud: int,
    state_file: Path | None,
) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with SignSimulator(
        units=units, tcp=tcp, rtu=rtu, baudrate=baud, state_file=state_file
    ) as sim:
        if sim.port is not None:
            print(f"modbus tcp: {tcp[0] if tcp else ''}:{sim.port}", flush=True)
        if sim.pty_path is not None:
            print(f"modbus rtu: {sim.pty_path} ({baud} 8N1)", flush=True)
        for unit_id, name in sim.units.items():
            print(f"unit {unit_id}: {name}", flush=True)
        while not stop.is_set():
            sim.write_state()  # watchdogs expire with no request: keep the file current
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=1.0)
