"""What the commissioning commands share: bounded listening, sign probes, argument parsing.

Errors here say what the technician should look at, and carry the exit code::

    CommissionError        .exit_code, .reason
     ├── BadInput          2: a path, a range or an option that cannot be right
     └── CheckFailed       1: the input is fine, the installation is not
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

import serial

from edge.config import EdgeConfig, SerialLineConfig
from edge.drivers.errors import SignUnitException
from edge.drivers.modbus_client import ModbusClient
from edge.drivers.serial_line import SerialLine
from edge.observations import SensorObservation
from firmware_protocols.errors import DecodeError
from firmware_protocols.signs import BAUD_CODES, decode_status, identify, looks_like_generic_led

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2


class CommissionError(Exception):
    """A command cannot go on; ``reason`` is the sentence to print."""

    exit_code = EXIT_FAILED

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class BadInput(CommissionError):
    """Something the technician typed cannot be right (exit 2)."""

    exit_code = EXIT_BAD_INPUT


class CheckFailed(CommissionError):
    """The installation fails a check (exit 1)."""


# --- arguments ------------------------------------------------------------------------------


def parse_units(text: str) -> list[int]:
    """``"1-10,20"`` -> ``[1, ..., 10, 20]``; Modbus unit ids 1..247."""
    units: set[int] = set()
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        low, sep, high = part.partition("-")
        try:
            first, last = int(low), int(high) if sep else int(low)
        except ValueError:
            raise BadInput(f"{part!r} is not a unit id or a range such as 1-10") from None
        if not 1 <= first <= last <= 247:
            raise BadInput(f"unit range {part!r} is outside 1..247 (or reversed)")
        units.update(range(first, last + 1))
    if not units:
        raise BadInput("no unit ids given")
    return sorted(units)


def parse_host_port(text: str, default_port: int = 502) -> tuple[str, int]:
    """``"10.0.0.7:502"`` or ``"10.0.0.7"`` -> ``("10.0.0.7", 502)``."""
    host, sep, port = text.rpartition(":")
    if not sep:
        return text, default_port
    if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise BadInput(f"{text!r} is not HOST:PORT")
    return host, int(port)


def check_serial_device(path: str, *, baud: int = 9600) -> None:
    """Open and close the device once, so a wrong path fails now with a plain reason."""
    if not os.path.exists(path):
        raise BadInput(
            f"{path} does not exist: is the USB-RS485 adapter plugged in? "
            "(ls -l /dev/serial/by-id/)"
        )
    if not os.access(path, os.R_OK | os.W_OK):
        raise CheckFailed(
            f"{path} is not readable and writable by this user: add it to the dialout group "
            "(sudo usermod -aG dialout $USER, then log in again)"
        )
    try:
        port = serial.Serial(port=path, baudrate=baud, timeout=0)
    except (OSError, ValueError) as exc:  # SerialException is an OSError
        raise CheckFailed(f"{path} cannot be opened: {exc}") from exc
    port.close()


def check_serial_lines(config: EdgeConfig, config_path: str) -> None:
    """Each of the config's serial lines opened once; a config with none is bad input."""
    if not config.serial:
        raise BadInput(f"{config_path} has no [serial] lines to listen on")
    for line in config.serial.values():
        check_serial_device(line.device, baud=line.baud)


# --- sensors heard ----------------------------------------------------------------------------

SensorState = Literal["occupied", "free", "fault", "unknown"]


def reading_state(obs: SensorObservation) -> SensorState:
    if obs.fault:
        return "fault"
    if obs.reading.occupied is None:
        return "fault" if obs.reading.extra.get("state") == "fault" else "unknown"
    return "occupied" if obs.reading.occupied else "free"


@dataclass(slots=True)
class Sighting:
    """Everything heard so far from one sensor (a running tally, updated in place)."""

    sensor_id: str
    fmt: str
    line: str
    state: SensorState
    first_seen: float
    last_seen: float
    kind: str
    frames: int = 0
    battery_mv: int | None = None
    battery_level: int | None = None  # M77 receivers report 0..9 instead of millivolts
    temperature_c: float | None = None
    rssi_dbm: int | None = None
    snr_db: float | None = None
    frame_counter: int | None = None

    @property
    def battery_text(self) -> str:
        if self.battery_mv is not None:
            return f"{self.battery_mv} mV"
        if self.battery_level is not None:
            return f"{self.battery_level}/9"
        return ""

    def as_json(self) -> dict[str, object]:
        return {
            "sensor_id": self.sensor_id,
            "format": self.fmt,
            "line": self.line,
            "state": self.state,
            "kind": self.kind,
            "frames": self.frames,
            "battery_mv": self.battery_mv,
            "battery_level": self.battery_level,
            "temperature_c": self.temperature_c,
            "rssi_dbm": self.rssi_dbm,
            "snr_db": self.snr_db,
            "frame_counter": self.frame_counter,
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
        }


@dataclass(slots=True)
class Sightings:
    """Sensor id -> what was heard; ``observe`` is a serial line's sink."""

    by_id: dict[str, Sighting] = field(default_factory=dict)

    def observe(self, obs: SensorObservation) -> Sighting:
        reading = obs.reading
        seen = self.by_id.get(obs.sensor_id)
        state = reading_state(obs)
        if seen is None:
            seen = Sighting(
                sensor_id=obs.sensor_id,
                fmt=reading.fmt,
                line=obs.line,
                state=state,
                first_seen=obs.received_at,
                last_seen=obs.received_at,
                kind=reading.kind,
            )
            self.by_id[obs.sensor_id] = seen
        seen.frames += 1
        seen.last_seen = obs.received_at
        seen.kind = reading.kind
        seen.fmt = reading.fmt
        # Heartbeats and start-ups of some formats carry no state: keep the last one known.
        if reading.occupied is not None or state == "fault":
            seen.state = state
        if reading.battery_mv is not None:
            seen.battery_mv = reading.battery_mv
        level = reading.extra.get("battery_level")
        if isinstance(level, int):
            seen.battery_level = level
        if reading.temperature_c is not None:
            seen.temperature_c = reading.temperature_c
        if obs.rssi_dbm is not None:
            seen.rssi_dbm = obs.rssi_dbm
        if obs.snr_db is not None:
            seen.snr_db = obs.snr_db
        if reading.frame_counter is not None:
            seen.frame_counter = reading.frame_counter
        return seen


@contextlib.asynccontextmanager
async def listening(
    lines: Mapping[str, SerialLineConfig],
    sink: Callable[[SensorObservation], None],
    *,
    clock: Callable[[], float] = time.time,
) -> AsyncIterator[list[SerialLine]]:
    """Run a ``SerialLine`` per line (the box's own driver) for the ``async with`` body.
    No replay is asked for: these tools judge sensors by what they say now."""
    owners = [
        SerialLine(name=name, config=config, sink=sink, clock=clock, replay=False)
        for name, config in lines.items()
    ]
    tasks = [asyncio.create_task(line.run(), name=f"listen-{line.name}") for line in owners]
    try:
        yield owners
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task


# --- signs ----------------------------------------------------------------------------------

STATUS_REGISTERS = 6  # model, firmware, uptime (2), faults, temperature
GENERIC_ID_REGISTERS = (0x0002, 2)  # the generic module's own unit id and baud code


@dataclass(frozen=True, slots=True, kw_only=True)
class SignProbe:
    """What one unit id said when asked what it is."""

    unit: int
    profile: str | None  # None: it answers but is no sign profile we know
    model_code: int | None = None
    firmware: str | None = None
    faults: frozenset[str] = frozenset()
    note: str = ""

    def as_json(self) -> dict[str, object]:
        return {
            "unit": self.unit,
            "profile": self.profile,
            "model_code": self.model_code,
            "firmware": self.firmware,
            "faults": sorted(self.faults),
            "note": self.note,
        }


async def probe_sign(client: ModbusClient, unit: int) -> SignProbe:
    """Ask ``unit`` what it is, by its registers.

    Raises:
        SignUnitTimeout: nothing answers at this unit id.
        SignBusConnectionError: the bus itself is gone.
    """
    try:
        inputs = await client.read_input(unit, 0, STATUS_REGISTERS)
    except SignUnitException as exc:
        return await _probe_generic(client, unit, exc.code)
    model = inputs[0]
    try:
        prof = identify(model)
        status = decode_status(prof, dict(enumerate(inputs)))
    except DecodeError as exc:
        return SignProbe(
            unit=unit, profile=None, model_code=model, note=f"not a known sign: {exc.reason}"
        )
    return SignProbe(
        unit=unit,
        profile=prof.name,
        model_code=model,
        firmware=status.firmware,
        faults=status.faults,
    )


async def _probe_generic(client: ModbusClient, unit: int, refused_code: int) -> SignProbe:
    # A module without status registers refuses input register 0; the generic LED module
    # keeps its unit id and a baud code in holding registers 2 and 3.
    address, count = GENERIC_ID_REGISTERS
    try:
        words = await client.read_holding(unit, address, count)
    except SignUnitException as exc:
        return SignProbe(
            unit=unit,
            profile=None,
            note=f"answers with exceptions {refused_code}/{exc.code}: not a known sign",
        )
    holding = {address + i: w for i, w in enumerate(words)}
    if looks_like_generic_led(unit, holding):
        return SignProbe(
            unit=unit,
            profile="generic-led",
            note="no model register; recognised by its unit id and baud code registers",
        )
    stored, baud = words
    if baud in BAUD_CODES and 1 <= stored <= 247:
        note = (
            f"looks like a generic LED module whose unit-id register says {stored}: "
            "was its id changed without a power cycle?"
        )
    else:
        note = f"answers, but registers 2..3 are {words}: not a known sign"
    return SignProbe(unit=unit, profile=None, note=note)


def add_bus_arguments(parser: argparse.ArgumentParser, *, timeout_s: float) -> None:
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--port", help="RS-485 adapter for Modbus RTU (/dev/serial/by-id/...)")
    where.add_argument("--host", help="Modbus TCP gateway or sign, HOST[:PORT] (port 502)")
    parser.add_argument("--baud", type=int, default=9600, help="RTU baud rate (9600)")
    parser.add_argument("--parity", choices=["N", "E", "O"], default="N", help="RTU parity")
    parser.add_argument(
        "--timeout", type=float, default=timeout_s, help=f"seconds per request ({timeout_s})"
    )


async def connect_from_args(args: argparse.Namespace, *, bus: str) -> ModbusClient:
    """A connected client for ``--port`` or ``--host``; BadInput / CheckFailed otherwise."""
    from edge.drivers.errors import SignBusConnectionError

    if args.timeout <= 0:
        raise BadInput("--timeout must be positive")
    if args.port:
        check_serial_device(args.port, baud=args.baud)
        client = ModbusClient(
            bus=bus,
            transport="rtu",
            timeout_s=args.timeout,
            device=args.port,
            baud=args.baud,
            parity=args.parity,
        )
    else:
        host, port = parse_host_port(args.host)
        client = ModbusClient(
            bus=bus, transport="tcp", timeout_s=args.timeout, host=host, port=port
        )
    try:
        await client.connect()
    except SignBusConnectionError as exc:
        client.close()
        raise CheckFailed(f"{exc}: check the address, the cable and the power") from exc
    return client
