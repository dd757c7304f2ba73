"""Drive a running simulated concentrator by hand: the technician's car on the bench.

Commissioning is done by driving onto bays; on the bench the simulated concentrator is
told instead, one text line per command, over a Unix socket (``--control PATH``) or its
standard input (``--stdin``)::

    toggle TARGET     the bay's state flips and its sensor reports it (a car on / off)
    occupy TARGET     a car onto the bay (reported even if it was already occupied)
    free TARGET       the car leaves
    heartbeat TARGET  the sensor sends a heartbeat
    dead TARGET       the sensor goes silent (dead battery): it reports nothing any more
    alive TARGET      ... and comes back, with a start-up report
    list              every sensor: id, format, bay, state, dead or not

TARGET is a sensor id (``00A10001``) or, when the simulator knows what is buried where
(``--bury bays.csv``), a bay: ``P1/B001``, or ``B001`` when only one lot has it. Each
command gets one reply line, ``ok ...`` or ``error: ...`` (an unknown command, a bay or a
sensor the simulator does not have); a bad line never stops the simulator.

``parse`` and ``Ground`` are pure; ``Controller`` applies commands to a
``ConcentratorSimulator``; ``serve_socket`` / ``serve_stdin`` / ``send`` are the I/O.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import os
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from firmware_protocols.concentrator import FORMAT_IDS
from simulators.concentrator import ConcentratorSimulator, canonical_id

VERBS = ("toggle", "occupy", "free", "heartbeat", "dead", "alive", "list")
RADIO_FORMATS = tuple(f for f in FORMAT_IDS)


class ControlError(ValueError):
    """A command line that cannot be carried out; ``str()`` is the reply's reason."""


@dataclass(frozen=True, slots=True)
class Command:
    verb: str
    target: str | None = None


def parse(line: str) -> Command:
    words = line.split()
    if not words:
        raise ControlError("empty command; one of: " + ", ".join(VERBS))
    verb = words[0].lower()
    if verb not in VERBS:
        raise ControlError(f"unknown command {words[0]!r}; one of: {', '.join(VERBS)}")
    if verb == "list":
        if len(words) != 1:
            raise ControlError("list takes no argument")
        return Command(verb)
    if len(words) != 2:
        raise ControlError(f"{verb} takes one sensor id or bay, e.g. {verb} P1/B001")
    return Command(verb, words[1])


@dataclass(slots=True)
class Ground:
    """What is buried where: bay name ("P1/B001") -> (sensor id, format), in walking order."""

    bays: dict[str, tuple[str, str]] = field(default_factory=dict)

    @classmethod
    def from_csv(
        cls, text: str, *, source: str, first_id: int = 0x00A1_0000, formats: Iterable[str] = ()
    ) -> Ground:
        """Rows ``lot,bay,sensor,format``; an empty sensor gets a new id, formats in turn.

        The file provision-box writes (sensor column empty) thus becomes a lot with one
        sensor under each bay, which the technician then has to find.
        """
        cycle = list(formats) or list(RADIO_FORMATS)
        reader = csv.DictReader(io.StringIO(text))
        missing = {"lot", "bay"} - set(reader.fieldnames or [])
        if missing:
            raise ControlError(f"{source}: missing column(s) {', '.join(sorted(missing))}")
        ground = cls()
        taken: set[str] = set()
        next_id = first_id
        for row in reader:
            lot, bay = (row.get("lot") or "").strip(), (row.get("bay") or "").strip()
            if not lot or not bay:
                raise ControlError(f"{source}:{reader.line_num}: lot and bay are required")
            sensor = (row.get("sensor") or "").strip()
            fmt = (row.get("format") or "").strip()
            if sensor:
                try:
                    sensor = canonical_id(sensor)
                except ValueError:
                    raise ControlError(
                        f"{source}:{reader.line_num}: {sensor!r} is not a hex sensor id"
                    ) from None
            else:
                while f"{next_id:08X}" in taken:
                    next_id += 1
                sensor = f"{next_id:08X}"
                next_id += 1
            if not fmt:
                fmt = cycle[len(ground.bays) % len(cycle)]
            if fmt not in FORMAT_IDS:
                raise ControlError(
                    f"{source}:{reader.line_num}: format {fmt!r} is not a radio format "
                    f"({', '.join(RADIO_FORMATS)})"
                )
            if sensor in taken:
                raise ControlError(f"{source}:{reader.line_num}: sensor {sensor} twice")
            taken.add(sensor)
            ground.bays[f"{lot}/{bay}"] = (sensor, fmt)
        return ground

    def sensors(self) -> dict[int | str, str]:
        """Sensor id -> format, as ``ConcentratorSimulator(sensors=...)`` takes them."""
        return {sensor: fmt for sensor, fmt in self.bays.values()}

    def bay_of(self, sensor: str) -> str | None:
        for bay, (sid, _fmt) in self.bays.items():
            if sid == sensor:
                return bay
        return None

    def as_csv(self) -> str:
        out = ["lot,bay,sensor,format"]
        for bay, (sensor, fmt) in self.bays.items():
            lot, _, bay_id = bay.partition("/")
            out.append(f"{lot},{bay_id},{sensor},{fmt}")
        return "\n".join(out) + "\n"

    def resolve(self, target: str, known: Mapping[str, object]) -> str:
        """A sensor id in ``known`` for a sensor id or bay name; ControlError otherwise."""
        if "/" in target:
            if target in self.bays:
                return self.bays[target][0]
            raise ControlError(f"no bay {target} in the ground plan")
        matches = [b for b in self.bays if b.partition("/")[2] == target]
        if len(matches) == 1:
            return self.bays[matches[0]][0]
        if len(matches) > 1:
            raise ControlError(f"bay {target} is in several lots: say {' or '.join(matches)}")
        try:
            sensor = canonical_id(target)
        except ValueError:
            raise ControlError(f"{target!r} is neither a bay nor a hex sensor id") from None
        if sensor not in known:
            raise ControlError(f"no simulated sensor {sensor}")
        return sensor


class Controller:
    """Carries out commands on a running simulator; one reply line per command."""

    def __init__(self, sim: ConcentratorSimulator, ground: Ground | None = None) -> None:
        self.sim = sim
        self.ground = ground or Ground()

    def _where(self, sensor: str) -> str:
        bay = self.ground.bay_of(sensor)
        return f"{sensor} ({bay})" if bay else sensor

    async def apply(self, line: str) -> str:
        try:
            command = parse(line)
            return "ok " + await self._apply(command)
        except ControlError as exc:
            return f"error: {exc}"

    async def _apply(self, command: Command) -> str:
        core = self.sim.core
        if command.verb == "list":
            rows = []
            for sid, s in core.sensors.items():
                state = "occupied" if s.occupied else "free"
                dead = " dead" if sid in core.silent else ""
                rows.append(f"{sid} {s.fmt} {self.ground.bay_of(sid) or '-'} {state}{dead}")
            return f"{len(rows)} sensor(s)\n" + "\n".join(rows)
        assert command.target is not None
        sensor = self.ground.resolve(command.target, core.sensors)
        where = self._where(sensor)
        if command.verb == "dead":
            core.silent.add(sensor)
            return f"{where} dead"
        if command.verb == "alive":
            core.silent.discard(sensor)
            await self.sim.send_startup(sensor)
            return f"{where} alive"
        if command.verb == "heartbeat":
            await self.sim.send_heartbeat(sensor)
            return f"{where} heartbeat"
        occupied = {"toggle": None, "occupy": True, "free": False}[command.verb]
        await self.sim.send_status(sensor, occupied=occupied)
        state = "occupied" if core.sensors[sensor].occupied else "free"
        silent = ", but it is dead: nothing sent" if sensor in core.silent else ""
        return f"{where} {state}{silent}"


@contextlib.asynccontextmanager
async def serve_socket(controller: Controller, path: Path) -> AsyncIterator[asyncio.Server]:
    """Answer command lines on a Unix socket at ``path`` (replaced if stale) while open."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                text = line.decode("utf-8", "replace").strip()
                if text:
                    writer.write((await controller.apply(text) + "\n").encode())
                    await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    os.makedirs(path.parent, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    server = await asyncio.start_unix_server(handle, path=str(path))
    os.chmod(path, 0o660)
    try:
        yield server
    finally:
        server.close()
        await server.wait_closed()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


async def serve_stdin(controller: Controller) -> None:
    """Answer command lines typed on standard input until it ends."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(0, "rb"))
    while line := await reader.readline():
        text = line.decode("utf-8", "replace").strip()
        if text:
            print(await controller.apply(text), flush=True)


async def send(path: Path, lines: Iterable[str]) -> list[str]:
    """Send command lines to a running simulator's socket; its replies, one per command."""
    reader, writer = await asyncio.open_unix_connection(str(path))
    replies: list[str] = []
    try:
        for line in lines:
            writer.write(line.strip().encode() + b"\n")
            await writer.drain()
            reply = (await reader.readline()).decode().rstrip("\n")
            if line.strip().lower() == "list" and reply.startswith("ok "):
                count = int(reply.split()[1])
                rows = [(await reader.readline()).decode().rstrip("\n") for _ in range(count)]
                reply = "\n".join([reply, *rows])
            replies.append(reply)
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
    return replies
