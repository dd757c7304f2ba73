"""One asyncio task owns one serial line: a concentrator's stream, or M77 receivers polled.

Theory of operation
-------------------
``SerialLine.run()`` is the only code that touches the device. It opens the port through
pyserial-asyncio-fast, serves it until the device fails, closes it and opens it again,
for ever (until cancelled)::

            open ok                            read error / EOF / open fails
    (start) -------> UP: serve the protocol ------------------------------> DOWN
       |                     ^                                                |
       | open fails          |  open ok: log INFO once, with how long down     |
       '-------------------> DOWN: sleep back-off (0.2 s, doubling, capped) ---'
                              log WARNING once, with the reason

Serving a ``concentrator`` line is first asking for a replay (``line_replay``: the last
uplink the concentrator heard from each sensor, with its age; ``replay=False`` for the
commissioning tools, which want only what is heard live), then reading: chunks go into
a ``ConcentratorDecoder``; each ``UplinkFrame``'s vendor payload (and each stored uplink's,
its ``received_at`` set back by its age) is decoded (``firmware_protocols.sensors.decode``)
into a ``SensorObservation`` for ``sink``; status frames and downlink acks go to
``status_sink``.
Downlinks given to ``send()`` wait in a queue; the owner writes them between reads, no
sooner than ``inter_frame_gap_ms`` after the line's last activity.

Serving an ``m77-ascii`` line is a poll cycle::

    for each host:  gap | #HHH,*  -->  $answer ... $answer  (quiet for answer_timeout_s)
    then sleep until poll_interval_s after the cycle began

A host that gives no valid answer in its window counts a timeout; after
``host_down_after`` timeouts in a row it is down (WARNING once), and its next answer brings
it back (INFO once). An echo of our own poll (RS-485 adapters that hear themselves) is
counted and skipped.

Nothing read from the wire raises out of the loop: bad frames are the decoder's counters,
payloads that do not decode are counted per reason and logged once per sensor, and any other
exception in a cycle is counted and logged once per kind. Only the device failing ends a
connection, and that is a reopen, never a crash.

Its rooms: ``serial_line_stats`` (the counters and the snapshot), ``m77_readings`` (an M77
answer as the common reading, pure); this module is the owner loop and both protocols' serving.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, TypeAlias

import serial_asyncio_fast

from edge.config import SerialLineConfig
from edge.drivers.errors import SerialDeviceGone, SerialLineError
from edge.drivers.line_replay import LineReplay
from edge.drivers.m77_readings import m77_reading, m77_sensor_id
from edge.drivers.serial_line_stats import LineCounters, SerialLineStats, add_counts
from edge.observations import SensorObservation
from firmware_protocols import sensors
from firmware_protocols.concentrator import (
    ConcentratorDecoder,
    DownlinkAck,
    Frame,
    ReplayEnd,
    StatusFrame,
    StoredUplink,
    StreamStats,
    UplinkFrame,
    encode_frame,
)
from firmware_protocols.crc import ChecksumError
from firmware_protocols.errors import DecodeError
from firmware_protocols.m77 import LineSplitter, LineStats, encode_poll, parse_answer

__all__ = [
    "INITIAL_BACKOFF_S",
    "SerialLine",
    "SerialLineStats",
    "StatusMessage",
]

_LOG = logging.getLogger(__name__)

INITIAL_BACKOFF_S: Final = 0.2
READ_CHUNK: Final = 4096
# A babbling receiver must not hold the line for ever: an answer window ends after this
# many quiet timeouts' worth of time even if bytes keep coming.
ANSWER_WINDOW_CAP: Final = 20
# A connection that lasted less than this is a flap: the back-off keeps growing.
STABLE_AFTER_S: Final = 2.0
MAX_REASONS: Final = 64
MAX_LOGGED_SENSORS: Final = 4096
DOWNLINK_QUEUE: Final = 256

StatusMessage: TypeAlias = StatusFrame | DownlinkAck


@dataclass(slots=True)
class _Outgoing:
    data: bytes
    done: asyncio.Future[None]


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class SerialLine:
    """The owner of one serial line; ``await run()`` until cancelled."""

    def __init__(
        self,
        *,
        name: str,
        config: SerialLineConfig,
        sink: Callable[[SensorObservation], None],
        status_sink: Callable[[StatusMessage], None] | None = None,
        clock: Callable[[], float] = time.time,
        host_down_after: int = 3,
        replay: bool = True,
    ) -> None:
        if host_down_after < 1:
            raise ValueError("host_down_after must be at least 1")
        self.name = name
        self.config = config
        self._sink = sink
        self._status_sink = status_sink
        self._clock = clock
        self._host_down_after = host_down_after
        self._c = LineCounters(timeouts={h: 0 for h in config.receiver_hosts})
        self._hosts_up = {h: True for h in config.receiver_hosts}
        self._misses = {h: 0 for h in config.receiver_hosts}
        self._stream_total = StreamStats()
        self._lines_total = LineStats()
        self._decoder: ConcentratorDecoder | None = None
        self._splitter: LineSplitter | None = None
        self._queue: asyncio.Queue[_Outgoing] = asyncio.Queue(DOWNLINK_QUEUE)
        self._up = False
        self._down_since: float | None = None
        self._down_mono: float | None = None
        self._down_reason: str | None = None
        self._last_activity = 0.0
        self._logged_kinds: set[str] = set()
        self._logged_sensors: set[str] = set()
        self.replay = LineReplay()
        self._ask_replay = replay

    # --- public ---

    @property
    def up(self) -> bool:
        """True while the device is open and serving."""
        return self._up

    def stats(self) -> SerialLineStats:
        """A consistent snapshot of the counters."""
        c = self._c
        stream = StreamStats()
        add_counts(stream, self._stream_total)
        if self._decoder is not None:
            add_counts(stream, self._decoder.stats)
        lines = LineStats()
        add_counts(lines, self._lines_total)
        if self._splitter is not None:
            add_counts(lines, self._splitter.stats)
        m77 = self.config.protocol == "m77-ascii"
        buffered = 0
        if self._decoder is not None:
            buffered = self._decoder.buffered
        elif self._splitter is not None:
            buffered = self._splitter.buffered
        return SerialLineStats(
            line=self.name,
            protocol=self.config.protocol,
            device=self.config.device,
            up=self._up,
            down_since=self._down_since,
            down_reason=self._down_reason,
            opens=c.opens,
            reopen_count=max(c.opens - 1, 0),
            bytes_in=lines.bytes_in if m77 else stream.bytes_in,
            bytes_out=c.bytes_out,
            frames=lines.lines if m77 else stream.frames,
            dropped_bytes=lines.dropped_bytes if m77 else stream.dropped_bytes,
            buffered_bytes=buffered,
            crc_failures=stream.crc_failures,
            oversize=lines.overlong_lines if m77 else stream.oversize,
            unknown_types=stream.unknown_types,
            unknown_formats=stream.unknown_formats,
            malformed_frames=stream.malformed,
            unexpected_frames=c.unexpected_frames,
            payload_decode_errors=c.payload_decode_errors,
            decode_errors_by_reason=dict(c.decode_errors_by_reason),
            observations=c.observations,
            downlinks_sent=c.downlinks_sent,
            downlink_acks=c.downlink_acks,
            last_status=c.last_status,
            polls=c.polls,
            answers=c.answers,
            checksum_failures=c.checksum_failures,
            bad_lines=c.bad_lines,
            echoes=c.echoes,
            timeouts=dict(c.timeouts),
            hosts_up=dict(self._hosts_up),
            errors=dict(c.errors),
        )

    async def send(self, frame: Frame) -> None:
        """Write a downlink frame through the owner; returns once it is on the wire.

        Raises:
            EncodeError: the frame cannot be encoded.
            SerialDeviceGone: the line is down, or went down before the frame was written.
            SerialLineError: not a concentrator line, or the downlink queue is full.
        """
        if self.config.protocol != "concentrator":
            raise SerialLineError(
                "an m77-ascii line carries no downlinks", line=self.name, device=self.config.device
            )
        data = encode_frame(frame)
        if not self._up:
            raise self._gone(f"line is down ({self._down_reason or 'not open yet'})")
        item = _Outgoing(data=data, done=asyncio.get_running_loop().create_future())
        try:
            self._queue.put_nowait(item)
        except asyncio.QueueFull:
            raise SerialLineError(
                f"downlink queue is full ({DOWNLINK_QUEUE} frames waiting)",
                line=self.name,
                device=self.config.device,
            ) from None
        await item.done

    async def run(self) -> None:
        """Own the line until cancelled: open, serve, reopen with back-off."""
        loop = asyncio.get_running_loop()
        delay = INITIAL_BACKOFF_S
        cap = self.config.reopen_backoff_max_s
        while True:
            try:
                reader, writer = await self._open()
            except SerialDeviceGone as exc:
                self._went_down(exc.reason)
                await asyncio.sleep(min(delay, cap))
                delay = min(delay * 2, cap)
                continue
            opened_at = loop.time()
            self._came_up()
            reason = "closed"
            try:
                await self._serve(reader, writer)
            except SerialDeviceGone as exc:
                reason = exc.reason
            except Exception as exc:
                # A bug, not the device: count it, and start over on a fresh connection.
                self._caught(exc, "serve")
                reason = f"unexpected {_describe(exc)}"
            finally:
                writer.close()
                self._fail_pending()
            self._went_down(reason)
            delay = INITIAL_BACKOFF_S if loop.time() - opened_at >= STABLE_AFTER_S else delay
            await asyncio.sleep(min(delay, cap))
            delay = min(delay * 2, cap)

    # --- up / down ---

    def _gone(self, reason: str) -> SerialDeviceGone:
        return SerialDeviceGone(reason, line=self.name, device=self.config.device)

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        try:
            return await serial_asyncio_fast.open_serial_connection(
                url=self.config.device,
                baudrate=self.config.baud,
                parity=self.config.parity,
            )
        except (OSError, ValueError) as exc:  # pyserial's SerialException is an OSError
            raise self._gone(f"cannot open: {_describe(exc)}") from exc

    def _went_down(self, reason: str) -> None:
        self._up = False
        if self._down_mono is not None:
            return
        self._down_mono = time.monotonic()
        self._down_since = self._clock()
        self._down_reason = reason
        _LOG.warning("serial line %s (%s) is down: %s", self.name, self.config.device, reason)

    def _came_up(self) -> None:
        self._up = True
        self._c.opens += 1
        if self._down_mono is not None:
            down_for = time.monotonic() - self._down_mono
            if self._c.opens == 1:
                _LOG.info(
                    "serial line %s (%s) is up, %.1f s after it first failed to open",
                    self.name,
                    self.config.device,
                    down_for,
                )
            else:
                _LOG.info(
                    "serial line %s (%s) is back up after %.1f s down (%s)",
                    self.name,
                    self.config.device,
                    down_for,
                    self._down_reason,
                )
        else:
            _LOG.info("serial line %s open on %s", self.name, self.config.device)
        self._down_mono = None
        self._down_since = None
        self._down_reason = None

    def _fail_pending(self) -> None:
        while not self._queue.empty():
            item = self._queue.get_nowait()
            if not item.done.done():
                item.done.set_exception(self._gone("line went down before the frame was sent"))

    # --- failures that must not stop the loop ---

    def _caught(self, exc: Exception, where: str) -> None:
        kind = f"{where}: {type(exc).__name__}"
        self._c.errors[kind] = self._c.errors.get(kind, 0) + 1
        if kind not in self._logged_kinds:
            self._logged_kinds.add(kind)
            _LOG.error(
                "serial line %s: %s (logged once per kind, counted in stats().errors)",
                self.name,
                kind,
                exc_info=exc,
            )

    def _deliver(self, observation: SensorObservation) -> None:
        self._c.observations += 1
        try:
            self._sink(observation)
        except Exception as exc:
            self._caught(exc, "sink")

    def _status(self, message: StatusMessage) -> None:
        if self._status_sink is None:
            return
        try:
            self._status_sink(message)
        except Exception as exc:
            self._caught(exc, "status_sink")

    # --- serving ---

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.config.protocol == "concentrator":
            await self._serve_concentrator(reader, writer)
        else:
            await self._serve_m77(reader, writer)

    def _read_result(self, data: bytes) -> bytes:
        if not data:
            raise self._gone("end of file (device closed)")
        self._last_activity = asyncio.get_running_loop().time()
        return data

    async def _read(self, reader: asyncio.StreamReader) -> bytes:
        try:
            data = await reader.read(READ_CHUNK)
        except OSError as exc:
            raise self._gone(f"read failed: {_describe(exc)}") from exc
        return self._read_result(data)

    async def _write(self, writer: asyncio.StreamWriter, data: bytes) -> None:
        loop = asyncio.get_running_loop()
        wait = self._last_activity + self.config.inter_frame_gap_ms / 1000 - loop.time()
        if wait > 0:
            await asyncio.sleep(wait)
        try:
            writer.write(data)
            await writer.drain()
        except OSError as exc:
            raise self._gone(f"write failed: {_describe(exc)}") from exc
        self._c.bytes_out += len(data)
        self._last_activity = loop.time()

    async def _serve_concentrator(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        decoder = ConcentratorDecoder()
        self._decoder = decoder
        read_task: asyncio.Task[bytes] | None = None
        out_task: asyncio.Task[_Outgoing] | None = None
        loop = asyncio.get_running_loop()
        try:
            if self._ask_replay:
                await self._write(writer, encode_frame(self.replay.request(loop.time())))
            while True:
                if read_task is None:
                    read_task = asyncio.ensure_future(self._read(reader))
                if out_task is None:
                    out_task = asyncio.ensure_future(self._queue.get())
                pending: set[asyncio.Future[Any]] = {read_task, out_task}
                done, _ = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                if out_task in done:
                    item = out_task.result()
                    out_task = None
                    await self._send_item(writer, item)
                if read_task in done:
                    data = read_task.result()
                    read_task = None
                    self._take_concentrator(decoder, data)
                    if self.replay.overdue(loop.time()):
                        _LOG.warning(
                            "serial line %s: the concentrator did not answer the replay request "
                            "(older firmware?); bays wait for their sensors (and bay memory)",
                            self.name,
                        )
        finally:
            if read_task is not None:
                read_task.cancel()
            if out_task is not None:
                if out_task.done() and not out_task.cancelled() and out_task.exception() is None:
                    item = out_task.result()
                    if not item.done.done():
                        item.done.set_exception(self._gone("line went down before sending"))
                else:
                    out_task.cancel()
            add_counts(self._stream_total, decoder.stats)
            self._decoder = None

    async def _send_item(self, writer: asyncio.StreamWriter, item: _Outgoing) -> None:
        if item.done.done():  # the caller gave up waiting
            return
        try:
            await self._write(writer, item.data)
        except SerialDeviceGone as exc:
            if not item.done.done():
                item.done.set_exception(exc)
            raise
        self._c.downlinks_sent += 1
        if not item.done.done():
            item.done.set_result(None)

    def _take_concentrator(self, decoder: ConcentratorDecoder, data: bytes) -> None:
        decoder.feed(data)
        for frame in decoder:
            try:
                self._dispatch(frame)
            except Exception as exc:
                self._caught(exc, "frame")

    def _uplink(self, frame: UplinkFrame, age_s: float | None = None) -> None:
        sensor_id = f"{frame.sensor_id:08X}"
        try:
            reading = sensors.decode(frame.fmt, frame.payload, port=frame.port)
        except DecodeError as exc:
            self._payload_error(sensor_id, exc)
            return
        self._deliver(
            SensorObservation(
                line=self.name,
                sensor_id=sensor_id,
                reading=reading,
                received_at=self._clock() - (age_s or 0.0),
                rssi_dbm=frame.rssi_dbm,
                snr_db=frame.snr_db,
                stored_age_s=age_s,
            )
        )

    def _dispatch(self, frame: Frame) -> None:
        if isinstance(frame, UplinkFrame):
            self.replay.heard_live(frame.sensor_id)
            self._uplink(frame)
        elif isinstance(frame, StoredUplink):
            if self.replay.take_stored(frame):
                self._uplink(frame.uplink, frame.age_s)
        elif isinstance(frame, ReplayEnd):
            if (text := self.replay.take_end(frame)) is not None:
                _LOG.info("serial line %s: %s", self.name, text)
        elif isinstance(frame, StatusFrame):
            self._c.last_status = frame
            self._status(frame)
        elif isinstance(frame, DownlinkAck):
            self._c.downlink_acks += 1
            self._status(frame)
        else:
            # A box -> concentrator frame coming back: a loop-back or a miswired line.
            self._c.unexpected_frames += 1

    def _payload_error(self, sensor_id: str, exc: DecodeError) -> None:
        c = self._c
        c.payload_decode_errors += 1
        reasons = c.decode_errors_by_reason
        key = f"{exc.fmt}: {exc.reason}"
        if key not in reasons and len(reasons) >= MAX_REASONS:
            key = "(other reasons)"
        reasons[key] = reasons.get(key, 0) + 1
        if sensor_id not in self._logged_sensors and len(self._logged_sensors) < MAX_LOGGED_SENSORS:
            self._logged_sensors.add(sensor_id)
            _LOG.warning(
                "serial line %s: sensor %s sent a payload that does not decode: %s "
                "(logged once per sensor, counted in stats())",
                self.name,
                sensor_id,
                exc,
            )

    async def _serve_m77(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        splitter = LineSplitter()
        self._splitter = splitter
        loop = asyncio.get_running_loop()
        try:
            while True:
                started = loop.time()
                for host in self.config.receiver_hosts:
                    await self._write(writer, encode_poll(host))
                    self._c.polls += 1
                    heard = await self._collect(reader, splitter, host)
                    self._host_result(host, heard)
                rest = self.config.poll_interval_s - (loop.time() - started)
                await asyncio.sleep(max(rest, 0.0))
        finally:
            add_counts(self._lines_total, splitter.stats)
            self._splitter = None

    async def _collect(
        self, reader: asyncio.StreamReader, splitter: LineSplitter, host: int
    ) -> bool:
        loop = asyncio.get_running_loop()
        quiet = self.config.answer_timeout_s
        deadline = loop.time() + quiet * ANSWER_WINDOW_CAP
        heard = False
        while True:
            timeout = min(quiet, deadline - loop.time())
            if timeout <= 0:
                return heard
            try:
                data = await asyncio.wait_for(self._read(reader), timeout)
            except TimeoutError:
                return heard
            splitter.feed(data)
            for line in splitter:
                try:
                    heard = self._take_answer(line, host) or heard
                except Exception as exc:
                    self._caught(exc, "answer")

    def _take_answer(self, line: bytes, host: int) -> bool:
        if line.startswith(b"#"):
            self._c.echoes += 1
            return False
        try:
            answer = parse_answer(line)
        except ChecksumError:
            self._c.checksum_failures += 1
            return False
        except DecodeError:
            self._c.bad_lines += 1
            return False
        self._c.answers += 1
        self._deliver(
            SensorObservation(
                line=self.name,
                sensor_id=m77_sensor_id(answer.host_id, answer.detector_id),
                reading=m77_reading(answer, raw=line),
                received_at=self._clock(),
                fault=answer.state == "fault",
            )
        )
        if answer.host_id != host and answer.host_id in self._misses:
            # A late answer still proves that receiver alive.
            self._host_result(answer.host_id, True)
        return answer.host_id == host

    def _host_result(self, host: int, heard: bool) -> None:
        if heard:
            self._misses[host] = 0
            if not self._hosts_up[host]:
                self._hosts_up[host] = True
                _LOG.info("serial line %s: receiver %03d answers again", self.name, host)
            return
        self._c.timeouts[host] = self._c.timeouts.get(host, 0) + 1
        self._misses[host] += 1
        if self._hosts_up[host] and self._misses[host] >= self._host_down_after:
            self._hosts_up[host] = False
            _LOG.warning(
                "serial line %s: receiver %03d is down, no answer to %d polls in a row",
                self.name,
                host,
                self._misses[host],
            )
