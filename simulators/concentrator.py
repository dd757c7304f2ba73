"""A sensor concentrator on a virtual serial line, with the faults real lines have.

Theory of operation
-------------------
``ConcentratorCore`` is the concentrator without I/O: each call returns the wire bytes a
real concentrator would send (envelope frames around real vendor payloads made with
``firmware_protocols.sensors.encode``), after the fault injection has had its say, and
counts what it injected in ``counts`` (``InjectedCounts``) so a test can hold the box's
line counters against it. It keeps each sensor's true bay state (``truth()``), also for
silent sensors: a dead radio does not empty the bay. ``receive(bytes)`` takes downlinks
from the box and returns the acks, and the replay (``concentrator_table``) for a replay
request, unless ``replay=False`` (older firmware, which skips it). Ages are on ``clock`` if
given (the pty simulator's: the wall's monotonic clock, which the box's timeouts run on; in
the demo those are already divided by the town's speed), else on ``tick``'s ``now``.

``ConcentratorSimulator`` puts a core on a ``PtyLink`` (``async with``): scripted sends
(``await sim.send_status("00A1B2C3", occupied=True)``), and when asked, a seeded random
arrival model (``rate`` uplinks per sensor per second, flapping sensors faster) and a
periodic concentrator status frame. Writes never block: what the pty cannot take, or what
is written while unplugged, is lost and counted, as on a real UART.

Faults::

    noise          each byte of a frame is corrupted with probability ``noise``
    garbage        ``garbage(n)`` / ``garbage_rate`` bursts: random bytes between frames
    crc_error      a whole frame with a wrong CRC (``crc_error_rate`` per random uplink)
    unknown format an uplink with a format id the box does not know
    bad payload    a well-formed frame whose vendor payload does not decode
    silent         ``silent`` sensor ids send nothing (their truth still changes)
    low battery    ``set_battery(id, mv)``; heartbeats carry it (nwave, dingtek)
    flapping       ``flapping`` sensor ids toggle at ``flap_rate`` per second
    failed ack     downlinks to ``fail_downlinks_for`` ids are acked FAILED
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from firmware_protocols import sensors as sensor_formats
from firmware_protocols.concentrator import (
    FORMAT_IDS,
    ConcentratorDecoder,
    ConfigDownlink,
    DownlinkAck,
    DownlinkOutcome,
    RecalibrateRequest,
    ReplayRequest,
    StatusFrame,
    UplinkFrame,
    encode_frame,
)
from firmware_protocols.crc import crc16_ccitt_false
from simulators.concentrator_table import UplinkTable
from simulators.pty_link import PtyLink

__all__ = [
    "ConcentratorCore",
    "ConcentratorSimulator",
    "InjectedCounts",
    "SimSensor",
    "configure",
    "make_sensors",
]

UNKNOWN_FORMAT_ID = 0x7F


def canonical_id(sensor_id: int | str) -> str:
    """``0xA1B2C3`` or ``"a1b2c3"`` -> ``"00A1B2C3"``."""
    if isinstance(sensor_id, int):
        return f"{sensor_id:08X}"
    return f"{int(sensor_id, 16):08X}"


def make_sensors(n: int, *, first: int = 0x00A1_0000) -> dict[str, str]:
    """``n`` sensor ids with the formats taken in turn."""
    formats = list(FORMAT_IDS)
    return {f"{first + i:08X}": formats[i % len(formats)] for i in range(n)}


@dataclass(slots=True)
class SimSensor:
    """One simulated ground sensor and the bay it lies in."""

    sensor_id: str
    fmt: str
    occupied: bool = False
    battery_mv: int = 3300
    temperature_c: float = 18.0
    frame_counter: int = 0
    rssi_dbm: int = -85
    snr_db: float = 7.5


@dataclass(slots=True)
class InjectedCounts:
    """What the simulator sent and spoiled, to compare with the box's line counters.

    ``good_frames`` are the frames the box's decoder must deliver (uplinks, bad payloads
    included, status frames, acks); ``spoiled_bytes`` are the bytes it must drop (garbage,
    noise-corrupted frames, CRC-error frames, unknown-format frames).
    """

    frames_sent: int = 0
    good_frames: int = 0
    uplinks: int = 0
    status_frames: int = 0
    acks: int = 0
    corrupted_frames: int = 0
    corrupted_bytes: int = 0
    crc_error_frames: int = 0
    unknown_format_frames: int = 0
    bad_payload_frames: int = 0
    garbage_bytes: int = 0
    spoiled_bytes: int = 0
    silenced: int = 0
    downlinks_received: int = 0
    replays: int = 0
    stored_uplinks: int = 0
    bytes_written: int = 0
    bytes_lost: int = 0


class ConcentratorCore:
    """The concentrator's behaviour, without I/O: calls in, wire bytes out."""

    def __init__(
        self,
        *,
        sensors: Mapping[int | str, str],
        seed: int | None = None,
        noise: float = 0.0,
        rate: float = 0.0,
        flap_rate: float = 5.0,
        garbage_rate: float = 0.0,
        crc_error_rate: float = 0.0,
        firmware: str = "1.4.2",
        replay: bool = True,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.rng = random.Random(seed)
        self.replay = replay
        self._clock = clock
        self.table = UplinkTable()
        self.sensors: dict[str, SimSensor] = {}
        for raw_id, fmt in sensors.items():
            if fmt not in FORMAT_IDS:
                raise ValueError(f"unknown sensor format {fmt!r}; known: {sorted(FORMAT_IDS)}")
            sid = canonical_id(raw_id)
            self.sensors[sid] = SimSensor(
                sensor_id=sid, fmt=fmt, rssi_dbm=self.rng.randint(-110, -60)
            )
        self.noise = noise
        self.rate = rate
        self.flap_rate = flap_rate
        self.garbage_rate = garbage_rate
        self.crc_error_rate = crc_error_rate
        self.firmware = firmware
        self.silent: set[str] = set()
        self.flapping: set[str] = set()
        self.fail_downlinks_for: set[str] = set()
        self.counts = InjectedCounts()
        self.downlinks: list[ConfigDownlink | RecalibrateRequest] = []
        self.now = 0.0
        self._next: dict[str, float] = {}
        self._next_garbage = 0.0
        self._decoder = ConcentratorDecoder()

    # --- state ---

    def truth(self) -> dict[str, bool]:
        """Each sensor's true bay state (occupied or not)."""
        return {sid: s.occupied for sid, s in self.sensors.items()}

    def sensor(self, sensor_id: int | str) -> SimSensor:
        sid = canonical_id(sensor_id)
        try:
            return self.sensors[sid]
        except KeyError:
            raise KeyError(f"no simulated sensor {sid}") from None

    def set_battery(self, sensor_id: int | str, battery_mv: int) -> None:
        """Low battery: the sensor's next heartbeats report ``battery_mv``."""
        self.sensor(sensor_id).battery_mv = battery_mv

    # --- frames ---

    def _fields(self, s: SimSensor, kind: str) -> dict[str, object]:
        if kind == "startup":
            if s.fmt == "dingtek-do20x":
                return {"firmware": "1.1"}
            return {"occupied": s.occupied, "firmware": "2.4.9"}
        if s.fmt == "bosch-pls":
            if kind == "heartbeat":
                return {"occupied": s.occupied, "temperature_c": s.temperature_c}
            return {"occupied": s.occupied}
        if s.fmt == "nwave-nps" and kind == "status":
            return {"occupied": s.occupied}
        fields: dict[str, object] = {
            "occupied": s.occupied,
            "battery_mv": s.battery_mv,
            "temperature_c": s.temperature_c,
        }
        if s.fmt == "dingtek-do20x":
            s.frame_counter = (s.frame_counter + 1) & 0xFFFF
            fields["frame_counter"] = s.frame_counter
        return fields

    def clock(self) -> float:
        return self._clock() if self._clock is not None else self.now

    def _uplink(self, s: SimSensor, kind: str) -> UplinkFrame:
        port, payload = sensor_formats.encode(s.fmt, kind, **self._fields(s, kind))
        return UplinkFrame(
            sensor_id=int(s.sensor_id, 16),
            rssi_dbm=s.rssi_dbm,
            snr_db=s.snr_db,
            fmt=s.fmt,
            port=port,
            payload=payload,
        )

    def _uplink_frame(self, s: SimSensor, kind: str) -> bytes:
        return encode_frame(self._uplink(s, kind))

    def _out(self, frame: bytes) -> bytes:
        """Apply line noise to one good frame and count it."""
        c = self.counts
        c.frames_sent += 1
        if self.noise <= 0:
            c.good_frames += 1
            return frame
        out = bytearray(frame)
        hit = False
        for i in range(len(out)):
            if self.rng.random() < self.noise:
                out[i] ^= self.rng.randint(1, 255)
                hit = True
        if hit:
            c.corrupted_frames += 1
            c.corrupted_bytes += len(out)
            c.spoiled_bytes += len(out)
        else:
            c.good_frames += 1
        return bytes(out)

    def uplink(self, sensor_id: int | str, kind: str) -> bytes:
        """One uplink of ``kind`` with the sensor's current state (b"" if it is silent)."""
        s = self.sensor(sensor_id)
        if s.sensor_id in self.silent:
            self.counts.silenced += 1
            return b""
        uplink = self._uplink(s, kind)
        self.table.record(uplink, self.clock())
        self.counts.uplinks += 1
        return self._out(encode_frame(uplink))

    def status(self, sensor_id: int | str, *, occupied: bool | None = None) -> bytes:
        """The bay changes (``None``: toggles) and the sensor reports it."""
        s = self.sensor(sensor_id)
        s.occupied = (not s.occupied) if occupied is None else occupied
        return self.uplink(s.sensor_id, "status")

    def heartbeat(self, sensor_id: int | str) -> bytes:
        return self.uplink(sensor_id, "heartbeat")

    def startup(self, sensor_id: int | str) -> bytes:
        return self.uplink(sensor_id, "startup")

    def concentrator_status(self, *, queue_depth: int = 0) -> bytes:
        """The concentrator's own heartbeat, with its counters."""
        c = self.counts
        frame = encode_frame(
            StatusFrame(
                uptime_s=int(self.now),
                firmware=self.firmware,
                radio_frames=c.uplinks + c.silenced,
                radio_crc_errors=0,
                frames_forwarded=c.frames_sent,
                queue_depth=queue_depth,
                queue_dropped=0,
            )
        )
        c.status_frames += 1
        return self._out(frame)

    def garbage(self, n: int) -> bytes:
        """A burst of ``n`` random bytes (0xA5 included: false frame starts happen)."""
        data = self.rng.randbytes(n)
        self.counts.garbage_bytes += n
        self.counts.spoiled_bytes += n
        return data

    def crc_error(self, sensor_id: int | str, kind: str = "status") -> bytes:
        """A whole uplink whose CRC is wrong."""
        s = self.sensor(sensor_id)
        frame = bytearray(self._uplink_frame(s, kind))
        frame[-1] ^= self.rng.randint(1, 255)
        c = self.counts
        c.frames_sent += 1
        c.crc_error_frames += 1
        c.spoiled_bytes += len(frame)
        return bytes(frame)

    def _reframe(self, covered: bytes) -> bytes:
        crc = crc16_ccitt_false(covered)
        return b"\xa5" + covered + bytes([crc >> 8, crc & 0xFF])

    def unknown_format(self, sensor_id: int | str, format_id: int = UNKNOWN_FORMAT_ID) -> bytes:
        """A well-formed uplink naming a format id the box does not know."""
        if format_id in FORMAT_IDS.values():
            raise ValueError(f"format id {format_id} is known")
        frame = bytearray(self._uplink_frame(self.sensor(sensor_id), "status"))
        frame[4 + 7] = format_id  # header 4 bytes, then u32 id, i16 rssi, i8 snr, u8 format
        c = self.counts
        c.frames_sent += 1
        c.unknown_format_frames += 1
        c.spoiled_bytes += len(frame)
        return self._reframe(bytes(frame[1:-2]))

    def bad_payload(self, sensor_id: int | str) -> bytes:
        """A well-formed uplink whose vendor payload does not decode (an unused port)."""
        s = self.sensor(sensor_id)
        frame = encode_frame(
            UplinkFrame(
                sensor_id=int(s.sensor_id, 16),
                rssi_dbm=s.rssi_dbm,
                snr_db=s.snr_db,
                fmt=s.fmt,
                port=99,
                payload=b"\x01",
            )
        )
        c = self.counts
        c.frames_sent += 1
        c.good_frames += 1
        c.bad_payload_frames += 1
        return frame

    # --- downlinks ---

    def receive(self, data: bytes) -> bytes:
        """Downlink bytes from the box in; the acks to send back out."""
        self._decoder.feed(data)
        out = bytearray()
        for frame in self._decoder:
            if isinstance(frame, ReplayRequest) and self.replay:
                out += self._replay(frame.request_id)
            if not isinstance(frame, ConfigDownlink | RecalibrateRequest):
                continue
            self.downlinks.append(frame)
            self.counts.downlinks_received += 1
            failed = f"{frame.sensor_id:08X}" in self.fail_downlinks_for
            ack = DownlinkAck(
                request_id=frame.request_id,
                sensor_id=frame.sensor_id,
                outcome=DownlinkOutcome.FAILED if failed else DownlinkOutcome.OK,
            )
            self.counts.acks += 1
            out += self._out(encode_frame(ack))
        return bytes(out)

    def _replay(self, request_id: int) -> bytes:
        """The table's answer: each sensor's last uplink with its age, then the end."""
        frames = self.table.answer(request_id, self.clock())
        self.counts.replays += 1
        self.counts.stored_uplinks += len(frames) - 1
        return b"".join(self._out(encode_frame(frame)) for frame in frames)

    # --- the random arrival model ---

    def _interval(self, sid: str) -> float:
        rate = self.flap_rate if sid in self.flapping else self.rate
        return self.rng.expovariate(rate) if rate > 0 else float("inf")

    def tick(self, dt: float) -> bytes:
        """Advance ``dt`` seconds of simulated time; the bytes sent meanwhile."""
        end = self.now + dt
        out = bytearray()
        for sid in self.sensors:
            if sid not in self._next:
                self._next[sid] = self.now + self._interval(sid)
            while self._next[sid] <= end:
                self.now = self._next[sid]
                if self.crc_error_rate and self.rng.random() < self.crc_error_rate:
                    out += self.crc_error(sid)
                elif sid in self.flapping or self.rng.random() < 0.8:
                    out += self.status(sid)
                else:
                    out += self.heartbeat(sid)
                self._next[sid] += self._interval(sid)
        if self.garbage_rate > 0:
            if self._next_garbage <= 0:
                self._next_garbage = self.now + self.rng.expovariate(self.garbage_rate)
            while self._next_garbage <= end:
                out += self.garbage(self.rng.randint(1, 32))
                self._next_garbage += self.rng.expovariate(self.garbage_rate)
        self.now = end
        return bytes(out)


class ConcentratorSimulator:
    """A ``ConcentratorCore`` on a pty: ``async with ConcentratorSimulator(...) as sim``.

    ``link`` is a ``PtyLink`` (kept open after exit), or a path where the device symlink
    is made (closed on exit), or None for a temporary one. ``sim.path`` is what the box opens.
    """

    def __init__(
        self,
        *,
        sensors: Mapping[int | str, str],
        link: PtyLink | Path | str | None = None,
        seed: int | None = None,
        rate: float = 0.0,
        status_interval_s: float | None = None,
        tick_s: float = 0.02,
        ack_delay_s: float = 0.005,
        noise: float = 0.0,
        flap_rate: float = 5.0,
        garbage_rate: float = 0.0,
        crc_error_rate: float = 0.0,
        replay: bool = True,
    ) -> None:
        self.core = ConcentratorCore(
            replay=replay,
            clock=time.monotonic,
            sensors=sensors,
            seed=seed,
            rate=rate,
            noise=noise,
            flap_rate=flap_rate,
            garbage_rate=garbage_rate,
            crc_error_rate=crc_error_rate,
        )
        if isinstance(link, PtyLink):
            self.link, self._own_link = link, False
        else:
            if link is None:
                self.link = PtyLink(name="ttyCONC0")
            else:
                path = Path(link)
                self.link = PtyLink(name=path.name, directory=path.parent)
            self._own_link = True
        self.status_interval_s = status_interval_s
        self.tick_s = tick_s
        self.ack_delay_s = ack_delay_s
        self._tasks: list[asyncio.Task[None]] = []
        self._downlink_seen = asyncio.Event()

    @property
    def path(self) -> Path:
        return self.link.path

    @property
    def counts(self) -> InjectedCounts:
        return self.core.counts

    @property
    def downlinks(self) -> list[ConfigDownlink | RecalibrateRequest]:
        return self.core.downlinks

    def truth(self) -> dict[str, bool]:
        return self.core.truth()

    async def __aenter__(self) -> ConcentratorSimulator:
        self._tasks = [asyncio.create_task(self._downlink_loop(), name="conc-sim-downlinks")]
        if self.core.rate > 0 or self.core.garbage_rate > 0 or self.core.flapping:
            self._tasks.append(asyncio.create_task(self._arrival_loop(), name="conc-sim-arrivals"))
        if self.status_interval_s:
            self._tasks.append(asyncio.create_task(self._status_loop(), name="conc-sim-status"))
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        if self._own_link:
            self.link.close()

    # --- the wire ---

    def write(self, data: bytes) -> int:
        """Write without blocking; what cannot be written now is lost (and counted)."""
        if not data:
            return 0
        fd = self.link.master_fd
        written = 0
        if fd is not None:
            with contextlib.suppress(BlockingIOError, OSError):
                written = os.write(fd, data)
        self.counts.bytes_written += written
        self.counts.bytes_lost += len(data) - written
        return written

    async def _write_paced(self, data: bytes, *, within_s: float = 5.0) -> None:
        """Write a long answer (a replay) as the line takes it, as a UART's FIFO would; what
        is still unwritten after ``within_s`` is lost and counted."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within_s
        while data:
            written = self.write(data)
            self.counts.bytes_lost -= len(data) - written  # not lost yet: retried
            data = data[written:]
            if data and loop.time() > deadline:
                self.counts.bytes_lost += len(data)
                return
            if data:
                await asyncio.sleep(0.002)

    async def send_status(self, sensor_id: int | str, *, occupied: bool | None = None) -> None:
        self.write(self.core.status(sensor_id, occupied=occupied))

    async def send_heartbeat(self, sensor_id: int | str) -> None:
        self.write(self.core.heartbeat(sensor_id))

    async def send_startup(self, sensor_id: int | str) -> None:
        self.write(self.core.startup(sensor_id))

    async def send_garbage(self, n: int) -> None:
        self.write(self.core.garbage(n))

    async def send_crc_error(self, sensor_id: int | str) -> None:
        self.write(self.core.crc_error(sensor_id))

    async def send_unknown_format(self, sensor_id: int | str) -> None:
        self.write(self.core.unknown_format(sensor_id))

    async def send_bad_payload(self, sensor_id: int | str) -> None:
        self.write(self.core.bad_payload(sensor_id))

    async def send_concentrator_status(self) -> None:
        self.write(self.core.concentrator_status())

    async def wait_for_downlinks(self, n: int) -> None:
        """Until ``n`` downlinks have arrived (wrap it in ``asyncio.timeout``)."""
        while len(self.downlinks) < n:
            self._downlink_seen.clear()
            await self._downlink_seen.wait()

    # --- background ---

    async def _downlink_loop(self) -> None:
        # Polling, not add_reader: unplug()/replug() close and reopen the master fd under us.
        while True:
            data = self.link.read()
            if data:
                acks = self.core.receive(data)
                self._downlink_seen.set()
                if acks:
                    await asyncio.sleep(self.ack_delay_s)
                    await self._write_paced(acks)
            else:
                await asyncio.sleep(0.005)

    async def _arrival_loop(self) -> None:
        loop = asyncio.get_running_loop()
        last = loop.time()
        while True:
            await asyncio.sleep(self.tick_s)
            now = loop.time()
            self.write(self.core.tick(now - last))
            last = now

    async def _status_loop(self) -> None:
        assert self.status_interval_s
        while True:
            await asyncio.sleep(self.status_interval_s)
            self.write(self.core.concentrator_status())


# --- parkgrid sim concentrator (simulators.concentrator_cli) ---


def configure(parser: argparse.ArgumentParser) -> None:
    """``parkgrid sim concentrator``: see :mod:`simulators.concentrator_cli`."""
    from simulators.concentrator_cli import configure as configure_cli

    configure_cli(parser)
