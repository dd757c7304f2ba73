"""The concentrator simulator: real vendor payloads, honest fault counts, downlink acks."""

from __future__ import annotations

import argparse
import asyncio
import os
import termios
import tty
from pathlib import Path

import pytest

from firmware_protocols import sensors
from firmware_protocols.concentrator import (
    ConcentratorDecoder,
    ConfigDownlink,
    DownlinkAck,
    DownlinkOutcome,
    RecalibrateRequest,
    ReplayEnd,
    ReplayRequest,
    StatusFrame,
    StoredUplink,
    UplinkFrame,
    encode_frame,
)
from simulators.concentrator import (
    ConcentratorCore,
    ConcentratorSimulator,
    configure,
    make_sensors,
)

SENSORS = {"00A1B2C3": "bosch-pls", 0xA1B2C4: "nwave-nps", "a1b2c5": "dingtek-do20x"}


def decode_all(data: bytes) -> tuple[list[object], ConcentratorDecoder]:
    decoder = ConcentratorDecoder()
    decoder.feed(data)
    return list(decoder), decoder


@pytest.mark.parametrize("kind", ["status", "heartbeat", "startup"])
def test_concentrator_core_uplinks_carry_decodable_vendor_payloads(kind: str) -> None:
    """Every kind, for every format, is an uplink whose payload decodes as its format."""
    core = ConcentratorCore(sensors=SENSORS, seed=1)
    frames, _ = decode_all(b"".join(core.uplink(sid, kind) for sid in core.sensors))
    assert len(frames) == 3
    for frame in frames:
        assert isinstance(frame, UplinkFrame)
        sid = f"{frame.sensor_id:08X}"
        assert frame.fmt == core.sensors[sid].fmt
        reading = sensors.decode(frame.fmt, frame.payload, port=frame.port)
        assert reading.fmt == frame.fmt


def test_concentrator_core_status_sets_truth_and_toggles() -> None:
    """status() changes the bay's truth (None toggles) and the frame says the same."""
    core = ConcentratorCore(sensors=SENSORS, seed=1)
    assert core.truth() == {"00A1B2C3": False, "00A1B2C4": False, "00A1B2C5": False}
    data = core.status("00A1B2C3", occupied=True) + core.status(0xA1B2C4)
    frames, _ = decode_all(data)
    uplinks = [f for f in frames if isinstance(f, UplinkFrame)]
    readings = [sensors.decode(f.fmt, f.payload, port=f.port) for f in uplinks]
    assert [r.occupied for r in readings] == [True, True]
    assert core.truth() == {"00A1B2C3": True, "00A1B2C4": True, "00A1B2C5": False}


def test_concentrator_core_low_battery_reaches_heartbeat() -> None:
    """set_battery() is what the sensor's heartbeat reports."""
    core = ConcentratorCore(sensors=SENSORS, seed=1)
    core.set_battery("00A1B2C4", 2800)
    (frame,), _ = decode_all(core.heartbeat("00A1B2C4"))
    assert isinstance(frame, UplinkFrame)
    reading = sensors.decode(frame.fmt, frame.payload, port=frame.port)
    assert reading.battery_mv == 2800 and reading.battery_health == "critical"


def test_concentrator_core_silent_sensor_sends_nothing_but_truth_moves() -> None:
    """A silent sensor's bay still changes; nothing reaches the wire, and that is counted."""
    core = ConcentratorCore(sensors=SENSORS, seed=1)
    core.silent.add("00A1B2C3")
    assert core.status("00A1B2C3", occupied=True) == b""
    assert core.truth()["00A1B2C3"] is True
    assert core.counts.silenced == 1 and core.counts.frames_sent == 0


def test_concentrator_core_fault_counts_match_a_decoder() -> None:
    """Noise, garbage, CRC errors and unknown formats: the decoder's counters agree."""
    core = ConcentratorCore(sensors=SENSORS, seed=9, noise=0.01)
    data = bytearray()
    for i in range(200):
        sid = list(core.sensors)[i % 3]
        data += core.status(sid)
        if i % 10 == 0:
            data += core.garbage(i % 17 + 1)
        if i % 25 == 0:
            data += core.crc_error(sid)
    data += core.unknown_format("00A1B2C3")
    data += core.bad_payload("00A1B2C4")
    core.noise = 0
    for sid in core.sensors:
        data += core.heartbeat(sid)
    frames, decoder = decode_all(bytes(data))
    c = core.counts
    assert c.corrupted_frames > 0
    assert len(frames) == decoder.stats.frames == c.good_frames
    assert decoder.stats.dropped_bytes + decoder.buffered == c.spoiled_bytes
    assert decoder.stats.unknown_formats == 1
    assert decoder.stats.crc_failures >= c.crc_error_frames


def test_concentrator_core_random_model_is_seeded() -> None:
    """Two cores with the same seed send the same bytes; flapping sensors send more."""
    runs = []
    for _ in range(2):
        core = ConcentratorCore(sensors=make_sensors(6), seed=42, rate=0.5, garbage_rate=1.0)
        core.flapping.add("00A10000")
        runs.append((b"".join(core.tick(0.1) for _ in range(100)), core.counts.uplinks))
    assert runs[0] == runs[1]
    frames, _ = decode_all(runs[0][0])
    by_sensor: dict[int, int] = {}
    for f in frames:
        if isinstance(f, UplinkFrame):
            by_sensor[f.sensor_id] = by_sensor.get(f.sensor_id, 0) + 1
    assert by_sensor[0x00A10000] > 3 * max(v for k, v in by_sensor.items() if k != 0x00A10000)


def test_concentrator_core_acks_downlinks_and_fails_listed_sensors() -> None:
    """Downlinks fed byte by byte are recorded and acked; listed sensors get FAILED."""
    core = ConcentratorCore(sensors=SENSORS, seed=1)
    core.fail_downlinks_for.add("00A1B2C4")
    wire = encode_frame(
        ConfigDownlink(request_id=1, sensor_id=0xA1B2C5, port=3, command=b"80029999010481")
    ) + encode_frame(RecalibrateRequest(request_id=2, sensor_id=0xA1B2C4))
    out = b"".join(core.receive(wire[i : i + 1]) for i in range(len(wire)))
    acks, _ = decode_all(out)
    assert acks == [
        DownlinkAck(request_id=1, sensor_id=0xA1B2C5, outcome=DownlinkOutcome.OK),
        DownlinkAck(request_id=2, sensor_id=0xA1B2C4, outcome=DownlinkOutcome.FAILED),
    ]
    assert len(core.downlinks) == 2 and core.counts.acks == 2


def test_concentrator_core_replays_the_last_uplink_of_each_sensor_with_its_age() -> None:
    """The table holds each sensor's last uplink heard (a silent sensor's last one before it
    died) and answers a replay request with their ages on its clock, then the end."""
    now = [100.0]
    core = ConcentratorCore(sensors=SENSORS, seed=1, clock=lambda: now[0])
    core.status("00A1B2C3", occupied=True)
    now[0] = 102.5
    core.status("00A1B2C3", occupied=False)
    core.status(0xA1B2C4, occupied=True)
    core.silent.add("00A1B2C5")
    core.status("00A1B2C5", occupied=True)  # its radio is dead: never heard
    now[0] = 110.0
    frames, decoder = decode_all(core.receive(encode_frame(ReplayRequest(request_id=77))))
    assert decoder.stats.crc_failures == decoder.stats.malformed == 0
    stored = [f for f in frames if isinstance(f, StoredUplink)]
    assert frames[-1] == ReplayEnd(request_id=77, count=2)
    assert {f.uplink.sensor_id: f.age_ms for f in stored} == {0xA1B2C3: 7500, 0xA1B2C4: 7500}
    states = {
        f.uplink.sensor_id: sensors.decode(f.uplink.fmt, f.uplink.payload, port=f.uplink.port)
        for f in stored
    }
    assert (states[0xA1B2C3].occupied, states[0xA1B2C4].occupied) == (False, True)
    assert (core.counts.replays, core.counts.stored_uplinks) == (1, 2)
    assert core.downlinks == []  # a replay request is no downlink
    old = ConcentratorCore(sensors=SENSORS, replay=False)
    old.status("00A1B2C3", occupied=True)
    assert old.receive(encode_frame(ReplayRequest(request_id=1))) == b""


def test_concentrator_core_rejects_unknown_format_in_config() -> None:
    """A sensor configured with a format the envelope cannot carry is refused at once."""
    with pytest.raises(ValueError, match="unknown sensor format"):
        ConcentratorCore(sensors={"00000001": "acme"})


def open_device(path: Path) -> int:
    fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    tty.setraw(fd, termios.TCSANOW)
    return fd


async def read_device(fd: int, want: int) -> bytes:
    data = b""
    async with asyncio.timeout(2):
        while len(data) < want:
            try:
                data += os.read(fd, 4096)
            except BlockingIOError:
                await asyncio.sleep(0.005)
    return data


async def test_concentrator_simulator_on_pty_sends_frames_and_answers_downlinks(
    tmp_path: Path,
) -> None:
    """Through the device path: scripted uplinks and status arrive, a downlink gets its ack."""
    async with ConcentratorSimulator(sensors=SENSORS, link=tmp_path / "ttyC", seed=3) as sim:
        assert sim.path == tmp_path / "ttyC" and sim.path.is_symlink()
        fd = open_device(sim.path)
        try:
            await sim.send_status("00A1B2C3", occupied=True)
            await sim.send_concentrator_status()
            frames, _ = decode_all(await read_device(fd, sim.counts.bytes_written))
            assert isinstance(frames[0], UplinkFrame) and isinstance(frames[1], StatusFrame)
            os.write(fd, encode_frame(RecalibrateRequest(request_id=9, sensor_id=0xA1B2C3)))
            async with asyncio.timeout(2):
                await sim.wait_for_downlinks(1)
            acks, _ = decode_all(await read_device(fd, 13))
            assert acks == [
                DownlinkAck(request_id=9, sensor_id=0xA1B2C3, outcome=DownlinkOutcome.OK)
            ]
        finally:
            os.close(fd)
    assert not (tmp_path / "ttyC").exists()


async def test_concentrator_simulator_writes_while_unplugged_are_lost_and_counted() -> None:
    """Unplugged, the simulator never blocks: what it sends is lost and counted."""
    async with ConcentratorSimulator(sensors=SENSORS, seed=3) as sim:
        sim.link.unplug()
        await sim.send_status("00A1B2C3", occupied=True)
        assert sim.counts.bytes_written == 0 and sim.counts.bytes_lost > 0
        assert sim.truth()["00A1B2C3"] is True


def test_concentrator_cli_configure_parses_sensors() -> None:
    """`parkgrid sim concentrator` options parse, with ID:FORMAT sensors canonicalised."""
    parser = argparse.ArgumentParser()
    configure(parser)
    args = parser.parse_args(
        ["--link", "/tmp/x/ttyC", "--sensor", "a1b2c3:bosch-pls", "--rate", "2", "--seed", "7"]
    )
    assert args.sensor == [("00A1B2C3", "bosch-pls")] and args.rate == 2.0 and args.seed == 7
    assert callable(args.handler)
    with pytest.raises(SystemExit):
        parser.parse_args(["--sensor", "a1b2c3:acme"])
