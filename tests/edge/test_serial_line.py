"""SerialLine against the concentrator and M77 simulators, on real ptys and real asyncio."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable

import pytest

from edge.config import SerialLineConfig
from edge.drivers.errors import SerialDeviceGone, SerialLineError
from edge.drivers.m77_readings import m77_reading, m77_sensor_id
from edge.drivers.serial_line import SerialLine, StatusMessage
from edge.observations import SensorObservation
from firmware_protocols.concentrator import (
    ConfigDownlink,
    DownlinkAck,
    RecalibrateRequest,
    StatusFrame,
)
from firmware_protocols.m77 import M77Answer
from simulators.concentrator import ConcentratorSimulator
from simulators.m77 import M77Simulator

SENSORS = {"00A1B2C3": "bosch-pls", "00A1B2C4": "nwave-nps", "00A1B2C5": "dingtek-do20x"}
LOGGER = "edge.drivers.serial_line"


async def wait_until(predicate: Callable[[], bool], within: float = 3.0) -> None:
    """Poll state owned by another task (it offers no event to wait on) until it holds."""
    async with asyncio.timeout(within):
        while not predicate():  # noqa: ASYNC110
            await asyncio.sleep(0.005)


@contextlib.asynccontextmanager
async def running(line: SerialLine) -> AsyncIterator[SerialLine]:
    task = asyncio.create_task(line.run())
    try:
        yield line
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def concentrator_line(
    sim: ConcentratorSimulator,
    observations: list[SensorObservation],
    status: list[StatusMessage] | None = None,
) -> SerialLine:
    config = SerialLineConfig(
        device=str(sim.path), protocol="concentrator", reopen_backoff_max_s=0.4
    )
    return SerialLine(
        name="conc1",
        config=config,
        sink=observations.append,
        status_sink=None if status is None else status.append,
    )


async def test_serial_line_concentrator_observations_carry_ids_readings_and_rssi() -> None:
    """Every uplink becomes an observation with the canonical id, decoded reading and RSSI."""
    got: list[SensorObservation] = []
    async with (
        ConcentratorSimulator(sensors=SENSORS, seed=3) as sim,
        running(concentrator_line(sim, got)) as line,
    ):
        await wait_until(lambda: line.up)
        await sim.send_status("00A1B2C3", occupied=True)
        await sim.send_heartbeat("00A1B2C4")
        await sim.send_startup("00A1B2C5")
        await sim.send_status("00A1B2C5", occupied=True)
        await wait_until(lambda: len(got) == 4)
    assert [(o.sensor_id, o.reading.fmt, o.reading.kind) for o in got] == [
        ("00A1B2C3", "bosch-pls", "status"),
        ("00A1B2C4", "nwave-nps", "heartbeat"),
        ("00A1B2C5", "dingtek-do20x", "parameters"),
        ("00A1B2C5", "dingtek-do20x", "telemetry"),
    ]
    assert got[0].reading.occupied is True
    assert got[1].reading.battery_mv == sim.core.sensors["00A1B2C4"].battery_mv
    assert got[3].reading.occupied is True
    for o in got:
        assert o.line == "conc1"
        assert o.rssi_dbm == sim.core.sensors[o.sensor_id].rssi_dbm
        assert o.snr_db == 7.5
        assert o.received_at > 0
        assert o.fault is False


async def test_serial_line_concentrator_counters_match_injected_faults() -> None:
    """Garbage, CRC errors, noise, unknown formats and bad payloads are counted, exactly."""
    got: list[SensorObservation] = []
    async with (
        ConcentratorSimulator(sensors=SENSORS, seed=11) as sim,
        running(concentrator_line(sim, got)) as line,
    ):
        await wait_until(lambda: line.up)
        core = sim.core
        for i in range(60):
            sid = list(SENSORS)[i % 3]
            await sim.send_status(sid)
            if i % 7 == 0:
                await sim.send_garbage(1 + i)
            if i % 11 == 0:
                await sim.send_crc_error(sid)
            if i == 20:
                core.noise = 0.02
            if i == 40:
                core.noise = 0.0
        await sim.send_unknown_format("00A1B2C3")
        await sim.send_bad_payload("00A1B2C4")
        await sim.send_bad_payload("00A1B2C4")
        for sid in SENSORS:  # clean frames to flush any false start still waiting
            await sim.send_heartbeat(sid)
        c = sim.counts

        def settled() -> bool:
            s = line.stats()
            return s.bytes_in == c.bytes_written and s.frames == c.good_frames

        await wait_until(settled)
        stats = line.stats()
    assert c.corrupted_frames > 0 and c.crc_error_frames > 0 and c.garbage_bytes > 0
    assert stats.frames == c.good_frames
    assert stats.dropped_bytes + stats.buffered_bytes == c.spoiled_bytes
    assert stats.crc_failures >= c.crc_error_frames
    assert stats.unknown_formats == 1
    assert stats.payload_decode_errors == 2
    assert stats.decode_errors_by_reason == {"nwave-nps: unknown port 99": 2}
    assert stats.observations == len(got) == c.uplinks - c.corrupted_frames
    assert stats.errors == {}


async def test_serial_line_concentrator_bad_payload_logged_once_per_sensor(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A sensor sending undecodable payloads is logged once, however often it sends them."""
    caplog.set_level(logging.WARNING, logger=LOGGER)
    got: list[SensorObservation] = []
    async with (
        ConcentratorSimulator(sensors=SENSORS, seed=1) as sim,
        running(concentrator_line(sim, got)) as line,
    ):
        await wait_until(lambda: line.up)
        for _ in range(5):
            await sim.send_bad_payload("00A1B2C3")
        await sim.send_bad_payload("00A1B2C4")
        await wait_until(lambda: line.stats().payload_decode_errors == 6)
    logged = [r for r in caplog.records if "does not decode" in r.getMessage()]
    assert [("00A1B2C3" in r.getMessage(), "00A1B2C4" in r.getMessage()) for r in logged] == [
        (True, False),
        (False, True),
    ]


async def test_serial_line_concentrator_status_frames_reach_status_sink() -> None:
    """Concentrator heartbeats go to status_sink and are kept as the last status."""
    got: list[SensorObservation] = []
    status: list[StatusMessage] = []
    async with (
        ConcentratorSimulator(sensors=SENSORS, seed=2, status_interval_s=0.05) as sim,
        running(concentrator_line(sim, got, status)) as line,
    ):
        await wait_until(lambda: len(status) >= 2)
        last = line.stats().last_status
    assert all(isinstance(m, StatusFrame) for m in status)
    assert last is not None and last.firmware == "1.4.2"


async def test_serial_line_downlink_reaches_simulator_and_ack_returns() -> None:
    """send() writes the downlink through the owner; the concentrator's ack comes back."""
    got: list[SensorObservation] = []
    status: list[StatusMessage] = []
    async with (
        ConcentratorSimulator(sensors=SENSORS, seed=4, rate=20.0) as sim,
        running(concentrator_line(sim, got, status)) as line,
    ):
        sim.core.fail_downlinks_for.add("00A1B2C4")
        await wait_until(lambda: line.up)
        config = ConfigDownlink(
            request_id=7, sensor_id=0x00A1B2C5, port=3, command=b"80029999010481"
        )
        await line.send(config)
        await line.send(RecalibrateRequest(request_id=8, sensor_id=0x00A1B2C4))
        async with asyncio.timeout(2):
            await sim.wait_for_downlinks(2)
        await wait_until(lambda: len([m for m in status if isinstance(m, DownlinkAck)]) == 2)
        assert len(got) > 0  # uplinks kept flowing while the owner wrote
        stats = line.stats()
    assert sim.downlinks == [config, RecalibrateRequest(request_id=8, sensor_id=0x00A1B2C4)]
    acks = {m.request_id: m.ok for m in status if isinstance(m, DownlinkAck)}
    assert acks == {7: True, 8: False}
    assert stats.downlinks_sent == 2 and stats.downlink_acks == 2


async def test_serial_line_send_refused_when_down_or_not_concentrator(tmp_path) -> None:
    """send() raises SerialDeviceGone on a line that is down, SerialLineError on an m77 line."""
    config = SerialLineConfig(device=str(tmp_path / "nothing"), protocol="concentrator")
    line = SerialLine(name="c", config=config, sink=lambda o: None)
    with pytest.raises(SerialDeviceGone) as info:
        await line.send(RecalibrateRequest(request_id=1, sensor_id=1))
    assert info.value.line == "c"
    m77 = SerialLineConfig(device="/dev/null", protocol="m77-ascii", receiver_hosts=[1])
    with pytest.raises(SerialLineError):
        await SerialLine(name="m", config=m77, sink=lambda o: None).send(
            RecalibrateRequest(request_id=1, sensor_id=1)
        )


async def test_serial_line_unplug_replug_logs_down_and_up_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Pulling the adapter marks the line down (one WARNING), replugging brings it back (one
    INFO), and observations resume."""
    caplog.set_level(logging.INFO, logger=LOGGER)
    got: list[SensorObservation] = []
    async with (
        ConcentratorSimulator(sensors=SENSORS, seed=5) as sim,
        running(concentrator_line(sim, got)) as line,
    ):
        await wait_until(lambda: line.up)
        await sim.send_status("00A1B2C3", occupied=True)
        await wait_until(lambda: len(got) == 1)
        sim.link.unplug()
        await wait_until(lambda: not line.up)
        down = line.stats()
        await asyncio.sleep(0.9)  # several failed reopens: still one WARNING
        sim.link.replug()
        await wait_until(lambda: line.up)
        await sim.send_status("00A1B2C3", occupied=False)
        await wait_until(lambda: len(got) == 2)
        up = line.stats()
    assert down.up is False and down.down_since is not None and down.down_reason
    assert up.up is True and up.reopen_count == 1 and up.down_since is None
    assert got[1].reading.occupied is False
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    recovered = [r for r in caplog.records if "back up after" in r.getMessage()]
    assert len(warnings) == 1 and "is down" in warnings[0].getMessage()
    assert len(recovered) == 1 and recovered[0].levelno == logging.INFO


async def test_serial_line_missing_device_retries_until_it_appears(tmp_path) -> None:
    """A line whose device is absent at start keeps retrying and comes up when it appears."""
    got: list[SensorObservation] = []
    path = tmp_path / "ttyLATE"
    config = SerialLineConfig(device=str(path), protocol="concentrator", reopen_backoff_max_s=0.2)
    line = SerialLine(name="late", config=config, sink=got.append)
    async with running(line):
        await asyncio.sleep(0.3)
        assert not line.up and "cannot open" in (line.stats().down_reason or "")
        async with ConcentratorSimulator(sensors=SENSORS, link=path, seed=6) as sim:
            await wait_until(lambda: line.up)
            await sim.send_status("00A1B2C4", occupied=True)
            await wait_until(lambda: len(got) == 1)
    assert got[0].sensor_id == "00A1B2C4"


async def test_serial_line_sink_errors_counted_not_raised() -> None:
    """A sink that raises is counted per kind and the line keeps serving."""
    seen: list[SensorObservation] = []

    def sink(o: SensorObservation) -> None:
        seen.append(o)
        raise RuntimeError("agent bug")

    async with ConcentratorSimulator(sensors=SENSORS, seed=8) as sim:
        config = SerialLineConfig(device=str(sim.path), protocol="concentrator")
        async with running(SerialLine(name="c", config=config, sink=sink)) as line:
            await wait_until(lambda: line.up)
            for sid in SENSORS:
                await sim.send_status(sid, occupied=True)
            await wait_until(lambda: len(seen) == 3)
            assert line.up
            assert line.stats().errors == {"sink: RuntimeError": 3}


# --- m77 ---


def m77_line(sim: M77Simulator, got: list[SensorObservation], hosts: list[int]) -> SerialLine:
    config = SerialLineConfig(
        device=str(sim.path),
        protocol="m77-ascii",
        baud=9600,
        receiver_hosts=hosts,
        poll_interval_s=0.05,
        answer_timeout_s=0.05,
        inter_frame_gap_ms=2,
    )
    return SerialLine(name="m77", config=config, sink=got.append, host_down_after=2)


async def test_serial_line_m77_polls_receivers_and_delivers_states() -> None:
    """Each detector's answer becomes an observation with its M77 id and state."""
    got: list[SensorObservation] = []
    async with M77Simulator(hosts={1: 3, 7: 2}, seed=1) as sim:
        sim.set_state(1, 2, "occupied")
        sim.set_state(7, 1, "fault")
        sim.core.detector(7, 2).battery = 3
        async with running(m77_line(sim, got, [1, 7])) as line:
            await wait_until(lambda: line.stats().polls >= 4)
            stats = line.stats()
    latest = {o.sensor_id: o for o in got}
    assert set(latest) == {
        "M77-001-001",
        "M77-001-002",
        "M77-001-003",
        "M77-007-001",
        "M77-007-002",
    }
    assert latest["M77-001-002"].reading.occupied is True
    assert latest["M77-001-001"].reading.occupied is False
    assert latest["M77-007-001"].fault is True and latest["M77-007-001"].reading.occupied is None
    assert latest["M77-007-002"].reading.extra["battery_level"] == 3
    assert stats.timeouts == {1: 0, 7: 0} and stats.hosts_up == {1: True, 7: True}
    assert stats.answers == len(got)


async def test_serial_line_m77_silent_host_times_out_and_recovers(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A receiver that does not answer counts timeouts, goes down once, and comes back once."""
    caplog.set_level(logging.INFO, logger=LOGGER)
    got: list[SensorObservation] = []
    async with M77Simulator(hosts={1: 1, 2: 1}, seed=2) as sim:
        sim.core.silent_hosts.add(2)
        async with running(m77_line(sim, got, [1, 2])) as line:
            await wait_until(lambda: line.stats().timeouts[2] >= 4)
            assert line.stats().hosts_up == {1: True, 2: False}
            sim.core.silent_hosts.clear()
            await wait_until(lambda: line.stats().hosts_up[2])
            stats = line.stats()
    assert stats.timeouts[1] == 0
    assert {o.sensor_id for o in got} == {"M77-001-001", "M77-002-001"}
    messages = [r.getMessage() for r in caplog.records]
    assert sum("receiver 002 is down" in m for m in messages) == 1
    assert sum("receiver 002 answers again" in m for m in messages) == 1


async def test_serial_line_m77_bad_checksum_and_garbage_counted() -> None:
    """Bad-checksum lines are counted and skipped; garbage before answers costs no answer."""
    got: list[SensorObservation] = []
    async with M77Simulator(hosts={3: 2}, seed=3, garbage_before=5) as sim:
        sim.core.bad_checksum.add((3, 1))
        async with running(m77_line(sim, got, [3])) as line:
            await wait_until(lambda: line.stats().polls >= 3)
            await sim.send_garbage_line(10)
            await wait_until(lambda: line.stats().polls >= 5)
            stats = line.stats()
            c = sim.counts
    assert {o.sensor_id for o in got} == {"M77-003-002"}
    assert stats.checksum_failures >= 3
    assert stats.checksum_failures + stats.answers <= c.answer_lines + c.bad_checksum_lines
    assert stats.dropped_bytes >= 5 * 3 + 12
    assert stats.timeouts == {3: 0}


def test_m77_reading_maps_states_and_extra() -> None:
    """The pure M77Answer -> SensorReading conversion keeps every field the answer carries."""
    answer = M77Answer(
        host_id=1, channel=2, detector_id=3, state="fault", battery=4, threshold=5, delay_ms=60
    )
    reading = m77_reading(answer, raw=b"$...")
    assert reading.fmt == "m77-ascii" and reading.kind == "status"
    assert reading.occupied is None
    assert reading.extra == {
        "battery_level": 4,
        "threshold": 5,
        "delay_ms": 60,
        "channel": 2,
        "state": "fault",
    }
    assert m77_sensor_id(1, 3) == "M77-001-003"
