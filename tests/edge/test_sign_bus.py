"""The sign bus owner against the real sign simulator (a pymodbus server) on TCP and on a pty."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import pytest

from edge.config import SignBusConfig
from edge.drivers.errors import (
    DriverError,
    SignBusConnectionError,
    SignBusError,
    SignUnitException,
    SignUnitTimeout,
)
from edge.drivers.modbus_client import ModbusClient
from edge.drivers.sign_bus import SignBus, SignBusEvent, SignBusEventKind
from firmware_protocols.signs import (
    Arrow,
    Colour,
    GuidanceDisplay,
    Message,
    NumericDisplay,
    WarningDisplay,
)
from simulators.signs import Fault, SignSimulator

UNITS = {1: "parkgrid-guidance", 2: "parkgrid-warning", 3: "generic-led"}
SIGNS = {
    "g1": {"unit": 1, "profile": "parkgrid-guidance"},
    "w2": {"unit": 2, "profile": "parkgrid-warning"},
    "n3": {"unit": 3, "profile": "generic-led"},
}
LOGGER = "edge.drivers.sign_bus"


class OffsetClock:
    """Real monotonic time, sped up and moved forward by hand (the simulator's clock)."""

    def __init__(self, speed: float = 1.0) -> None:
        self.speed = speed
        self.offset = 0.0
        self._start = time.monotonic()

    def __call__(self) -> float:
        return 1000.0 + (time.monotonic() - self._start) * self.speed + self.offset


async def wait_until(cond: Callable[[], bool], within: float = 5.0, what: str = "") -> None:
    deadline = time.monotonic() + within
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or cond}")
        await asyncio.sleep(0.005)


def tcp_config(port: int | None, **overrides: Any) -> SignBusConfig:
    values: dict[str, Any] = {
        "transport": "tcp",
        "host": "127.0.0.1",
        "port": port,
        "timeout_s": 0.2,
        "retries": 0,
        "inter_frame_gap_ms": 1,
        "down_after_failures": 3,
        "retry_down_after_s": 0.2,
        "refresh_interval_s": 0.2,
        "watchdog_timeout_s": 5,
        "signs": SIGNS,
    }
    values.update(overrides)
    return SignBusConfig.model_validate(values)


@asynccontextmanager
async def running(bus: SignBus) -> AsyncIterator[SignBus]:
    task = asyncio.create_task(bus.run(), name=f"sign bus {bus.bus_id}")
    try:
        yield bus
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


@pytest.fixture
def sim_clock() -> OffsetClock:
    return OffsetClock()


@pytest.fixture
async def sim(sim_clock: OffsetClock) -> AsyncIterator[SignSimulator]:
    async with SignSimulator(units=UNITS, tcp=("127.0.0.1", 0), clock=sim_clock) as server:
        yield server


def kinds(events: list[SignBusEvent], sign_id: str | None = None) -> list[SignBusEventKind]:
    return [e.kind for e in events if sign_id is None or e.sign_id == sign_id]


GUIDE = GuidanceDisplay(free=37, colour=Colour.GREEN, arrow=Arrow.RIGHT, label="P2")
WARN = WarningDisplay(message=Message.NO_PARKING, flashing=True)
NUMBER = NumericDisplay(value=125, decimals=1)
DESIRED: Mapping[int, Any] = {1: GUIDE, 2: WARN, 3: NUMBER}


async def test_sign_bus_set_display_reaches_every_profile(sim: SignSimulator) -> None:
    """set_display reaches each sign, and the refresh reads the same display back."""
    bus = SignBus(bus_id="b1", config=tcp_config(sim.port), on_event=lambda e: None)
    async with running(bus):
        bus.set_display("g1", GUIDE)
        bus.set_display("w2", WARN)
        bus.set_display("n3", NUMBER)
        await wait_until(lambda: all(sim.display(u) == d for u, d in DESIRED.items()))
        assert sim.shown(1) == "P2 37 → green"
        assert sim.shown(2) == "禁止停车 NO PARKING (flashing)"
        assert sim.shown(3) == "12.5"
        await wait_until(lambda: bus.status("g1").shown == GUIDE, what="read-back")
        await wait_until(lambda: bus.status("g1").firmware == "1.0", what="status read")
        status = bus.status("g1")
        assert status.up and status.desired == GUIDE
        assert status.faults == frozenset()
        await wait_until(lambda: bus.status("n3").shown == NUMBER, what="read-back")
        stats = bus.stats()
        assert stats.connected and stats.units_up == 3 and stats.units_down == 0
        assert stats.timeouts == 0 and stats.exceptions == 0 and stats.errors == {}


async def test_sign_bus_rapid_set_display_coalesces_to_latest(sim: SignSimulator) -> None:
    """Twenty set_display calls in a row cost one write, and the sign shows the last one."""
    config = tcp_config(sim.port, refresh_interval_s=20, watchdog_timeout_s=60)
    bus = SignBus(bus_id="b1", config=config, on_event=lambda e: None)
    async with running(bus):
        bus.set_display("g1", GuidanceDisplay(free=1))
        # start-up: one init write (display, kick, timeout), one refresh (two reads, a kick)
        await wait_until(lambda: bus.status("g1").counters.reads == 2)
        await wait_until(lambda: bus.status("g1").counters.writes == 2)
        writes_before = bus.status("g1").counters.writes
        for free in range(100, 120):
            bus.set_display("g1", GuidanceDisplay(free=free))
        await wait_until(lambda: sim.display(1) == GuidanceDisplay(free=119))
        await asyncio.sleep(0.05)  # room for any further (wrong) write to show up
        assert bus.status("g1").counters.writes == writes_before + 1
        bus.set_display("g1", GuidanceDisplay(free=119))  # the same display again: no write
        await asyncio.sleep(0.05)
        assert bus.status("g1").counters.writes == writes_before + 1


async def test_sign_bus_writes_preempt_refresh() -> None:
    """With the bus busy refreshing eight signs, a new display lands within a few frames."""
    units = {u: "parkgrid-guidance" for u in range(1, 9)}
    signs = {f"s{u}": {"unit": u, "profile": "parkgrid-guidance"} for u in units}
    async with SignSimulator(units=units, tcp=("127.0.0.1", 0)) as server:
        # 8 signs x 3 frames x 25 ms gap = 600 ms of refresh work per 300 ms interval: the
        # refresh never catches up, so a write queued behind it would wait hundreds of ms.
        config = tcp_config(server.port, signs=signs, inter_frame_gap_ms=25, refresh_interval_s=0.3)
        bus = SignBus(bus_id="b1", config=config, on_event=lambda e: None)
        async with running(bus):
            await wait_until(lambda: bus.stats().reads >= 16, what="refreshes under way")
            reads_before = bus.stats().reads
            latencies = []
            for free in range(5):
                target = units_last = 8 - free
                started = time.monotonic()
                bus.set_display(f"s{target}", GuidanceDisplay(free=free + 10))
                await wait_until(
                    lambda t=units_last, f=free: server.display(t) == GuidanceDisplay(free=f + 10)
                )
                latencies.append(time.monotonic() - started)
                await asyncio.sleep(0.04)
            assert bus.stats().reads > reads_before  # the refresh went on around the writes
    assert max(latencies) < 0.15, latencies


async def test_sign_bus_exception_unit_goes_down_others_served_then_recovers(
    sim: SignSimulator,
) -> None:
    """Exception 4 downs a unit after N failures; others are served; healed, it shows the latest."""
    events: list[SignBusEvent] = []
    bus = SignBus(bus_id="b1", config=tcp_config(sim.port), on_event=events.append)
    sim.inject(2, Fault.DEVICE_FAILURE)
    async with running(bus):
        bus.set_display("w2", WARN)
        await wait_until(lambda: SignBusEventKind.UNIT_DOWN in kinds(events, "w2"))
        status = bus.status("w2")
        assert not status.up and status.down_since is not None
        assert status.counters.exceptions.get(4, 0) >= 3
        assert "exception response, code 4" in (status.counters.last_error or "")
        for free in (5, 6, 7):  # the down unit never blocks the others
            bus.set_display("g1", GuidanceDisplay(free=free))
            await wait_until(lambda f=free: sim.display(1) == GuidanceDisplay(free=f), 1.0)
        bus.set_display("w2", WarningDisplay(message=Message.TRUCK_BAN))
        await asyncio.sleep(0.5)  # several probes fail meanwhile
        assert kinds(events, "w2").count(SignBusEventKind.UNIT_DOWN) == 1
        sim.inject(2, Fault.NONE)
        await wait_until(lambda: SignBusEventKind.UNIT_UP in kinds(events, "w2"))
        await wait_until(lambda: sim.display(2) == WarningDisplay(message=Message.TRUCK_BAN), 0.5)
        assert sim.shown(2) == "大车禁行 TRUCK BAN"
        assert bus.status("w2").up and bus.status("w2").down_since is None
    assert bus.stats().units_down == 0


async def test_sign_bus_silent_unit_times_out_goes_down_and_recovers(
    sim: SignSimulator,
) -> None:
    """A silent unit costs timeouts (and retries) until it is down; it comes back when heard."""
    events: list[SignBusEvent] = []
    config = tcp_config(sim.port, timeout_s=0.1, retries=1, down_after_failures=2)
    bus = SignBus(bus_id="b1", config=config, on_event=events.append)
    async with running(bus):
        bus.set_display("g1", GUIDE)
        await wait_until(lambda: sim.display(1) == GUIDE)
        sim.inject(1, Fault.SILENT)
        await wait_until(lambda: SignBusEventKind.UNIT_DOWN in kinds(events, "g1"))
        counters = bus.status("g1").counters
        assert counters.timeouts >= 4  # 2 failures x (1 try + 1 retry)
        assert counters.retries >= 2
        assert "no answer" in (counters.last_error or "")
        bus.set_display("n3", NUMBER)  # others are served while g1 is down
        await wait_until(lambda: sim.display(3) == NUMBER, 1.0)
        assert bus.stats().connected  # one silent unit does not drop the TCP connection
        sim.inject(1, Fault.NONE)
        await wait_until(lambda: bus.status("g1").up)
    assert kinds(events, "g1").count(SignBusEventKind.UNIT_DOWN) == 1
    assert kinds(events, "g1").count(SignBusEventKind.UNIT_UP) == 1


async def test_sign_bus_rebooted_sign_is_detected_and_rewritten(
    sim: SignSimulator, sim_clock: OffsetClock
) -> None:
    """A rebooted sign is seen at the next refresh (mismatch, uptime back) and rewritten."""
    events: list[SignBusEvent] = []
    bus = SignBus(bus_id="b1", config=tcp_config(sim.port), on_event=events.append)
    async with running(bus):
        bus.set_display("g1", GUIDE)
        sim_clock.offset += 100  # the sign has been up for a while
        await wait_until(lambda: (bus.status("g1").uptime_s or 0) >= 100, what="uptime")
        sim.reboot(1)
        assert sim.display(1) != GUIDE
        await wait_until(lambda: SignBusEventKind.REBOOT in kinds(events, "g1"))
        await wait_until(lambda: sim.display(1) == GUIDE, 0.5)
        await wait_until(lambda: sim.shown(1) == "P2 37 → green", 0.5)  # watchdog kicked
        assert sim.registers(1)[0x000A] == 5  # the watchdog timeout, not the power-on 30
        counters = bus.status("g1").counters
        assert counters.reboots_seen == 1
        assert counters.verify_mismatches == 1
        mismatch = next(e for e in events if e.kind is SignBusEventKind.VERIFY_MISMATCH)
        assert mismatch.expected == GUIDE and mismatch.shown != GUIDE


async def test_sign_bus_foreign_write_is_corrected() -> None:
    """Someone else writing to a sign is a verify mismatch, rewritten at the next refresh."""
    async with SignSimulator(units=UNITS, tcp=("127.0.0.1", 0)) as server:
        events: list[SignBusEvent] = []
        bus = SignBus(bus_id="b1", config=tcp_config(server.port), on_event=events.append)
        async with running(bus):
            bus.set_display("n3", NUMBER)
            await wait_until(lambda: bus.status("n3").shown == NUMBER)
            intruder = ModbusClient(bus="intruder", transport="tcp", host="127.0.0.1",
                                    port=server.port or 0, timeout_s=1)  # fmt: skip
            await intruder.connect()
            await intruder.write_registers(3, 0x0000, [999])
            intruder.close()
            assert server.shown(3) == "99.9"
            await wait_until(lambda: SignBusEventKind.VERIFY_MISMATCH in kinds(events, "n3"))
            await wait_until(lambda: server.shown(3) == "12.5", 0.5)
    assert bus.status("n3").counters.verify_mismatches == 1


async def test_sign_bus_watchdog_holds_while_running_and_blanks_after_cancel() -> None:
    """While the bus runs the sign's watchdog never expires; cancelled, the sign shows "--"."""
    clock = OffsetClock(speed=10.0)  # sign time runs 10x: its 5 s watchdog is 0.5 s of ours
    async with SignSimulator(units=UNITS, tcp=("127.0.0.1", 0), clock=clock) as server:
        config = tcp_config(server.port, refresh_interval_s=0.1, watchdog_timeout_s=5)
        bus = SignBus(bus_id="b1", config=config, on_event=lambda e: None)
        async with running(bus):
            bus.set_display("g1", GUIDE)
            await wait_until(lambda: server.shown(1) == "P2 37 → green")
            shown = set()
            for _ in range(30):  # 1.2 s of ours, 12 s of the sign's: over two timeouts
                shown.add(server.shown(1))
                await asyncio.sleep(0.04)
            assert shown == {"P2 37 → green"}
        await asyncio.sleep(0.7)
        assert server.shown(1) == "--"
        assert server.shown(2) == ""  # the warning sign goes dark
        assert server.shown(3) == "12.5" or server.shown(3) == "----"  # no watchdog at all


async def test_sign_bus_rtu_over_pty_writes_and_reads_back() -> None:
    """Over Modbus RTU on a pty, a display is written and read back by the refresh."""
    async with SignSimulator(units=UNITS, rtu=True, baudrate=19200) as server:
        assert server.pty_path is not None
        config = SignBusConfig(
            transport="rtu",
            device=server.pty_path,
            baud=19200,
            timeout_s=0.5,
            refresh_interval_s=0.2,
            watchdog_timeout_s=5,
            signs=SIGNS,
        )
        events: list[SignBusEvent] = []
        bus = SignBus(bus_id="rtu1", config=config, on_event=events.append)
        async with running(bus):
            bus.set_display("g1", GUIDE)
            await wait_until(lambda: server.display(1) == GUIDE)
            await wait_until(lambda: bus.status("g1").shown == GUIDE, what="read-back")
            await wait_until(lambda: bus.status("g1").firmware == "1.0", what="status read")
            assert bus.stats().timeouts == 0
    assert SignBusEventKind.UNIT_DOWN not in kinds(events)


async def test_sign_bus_logs_down_and_recovery_once(
    sim: SignSimulator, caplog: pytest.LogCaptureFixture
) -> None:
    """Across many failed probes, going down is logged once (WARNING), recovery once (INFO)."""
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    config = tcp_config(sim.port, retry_down_after_s=0.05, down_after_failures=2)
    bus = SignBus(bus_id="b1", config=config, on_event=lambda e: None)
    sim.inject(3, Fault.BUSY)
    async with running(bus):
        await wait_until(lambda: not bus.status("n3").up)
        failures = bus.status("n3").counters.exceptions[6]
        await wait_until(lambda: bus.status("n3").counters.exceptions[6] >= failures + 8)
        sim.inject(3, Fault.NONE)
        await wait_until(lambda: bus.status("n3").up)
        await asyncio.sleep(0.3)  # more healthy refreshes: nothing more to log
    records = [r for r in caplog.records if r.name == LOGGER and "n3" in r.getMessage()]
    down = [r for r in records if "down after" in r.getMessage()]
    up = [r for r in records if "answers again" in r.getMessage()]
    assert len(down) == 1 and down[0].levelno == logging.WARNING
    assert "exception response, code 6" in down[0].getMessage()
    assert len(up) == 1 and up[0].levelno == logging.INFO
    assert not [r for r in records if r.levelno >= logging.WARNING and r not in down]


async def test_sign_bus_reconnects_after_the_server_goes_away() -> None:
    """A lost connection is reported once down and once up, and the signs are rewritten."""
    events: list[SignBusEvent] = []
    async with SignSimulator(units=UNITS, tcp=("127.0.0.1", 0)) as first:
        port = first.port
        bus = SignBus(
            bus_id="b1",
            config=tcp_config(port, retry_down_after_s=0.2),
            on_event=events.append,
        )
        task = asyncio.create_task(bus.run())
        bus.set_display("g1", GUIDE)
        await wait_until(lambda: first.display(1) == GUIDE)
    await wait_until(lambda: SignBusEventKind.BUS_DOWN in kinds(events))
    await asyncio.sleep(0.5)  # several failed reconnects
    async with SignSimulator(units=UNITS, tcp=("127.0.0.1", port or 0)) as second:
        await wait_until(lambda: SignBusEventKind.BUS_UP in kinds(events), 3.0)
        await wait_until(lambda: second.display(1) == GUIDE, 1.0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert kinds(events).count(SignBusEventKind.BUS_DOWN) == 1
    assert kinds(events).count(SignBusEventKind.BUS_UP) == 1
    assert bus.stats().disconnects == 1 and bus.stats().connects == 2


async def test_modbus_client_maps_errors_to_driver_errors(sim: SignSimulator) -> None:
    """The adapter raises our errors, with bus, unit and register named, most specific first."""
    client = ModbusClient(bus="b9", transport="tcp", host="127.0.0.1", port=sim.port or 0,
                          timeout_s=0.1)  # fmt: skip
    with pytest.raises(SignBusConnectionError) as not_connected:
        await client.read_holding(1, 0, 1)
    assert not_connected.value.bus == "b9" and not_connected.value.unit == 1
    await client.connect()
    try:
        assert (await client.read_input(1, 0, 2))[0] == 0x4701
        sim.inject(2, Fault.ILLEGAL_ADDRESS)
        with pytest.raises(SignUnitException) as exc_info:
            await client.write_registers(2, 0x0001, [1])
        assert exc_info.value.code == 2
        assert (exc_info.value.bus, exc_info.value.unit, exc_info.value.register) == ("b9", 2, 1)
        assert isinstance(exc_info.value, SignBusError) and isinstance(exc_info.value, DriverError)
        sim.inject(2, Fault.SILENT)
        with pytest.raises(SignUnitTimeout) as timeout_info:
            await client.read_holding(2, 0x0000, 3)
        assert "sign bus b9 unit 2 register 0x0000" in str(timeout_info.value)
        assert client.connected
    finally:
        client.close()
    with pytest.raises(SignBusConnectionError):
        await ModbusClient(bus="b9", transport="tcp", host="127.0.0.1", port=1,
                           timeout_s=0.2).connect()  # fmt: skip


async def test_sign_bus_heartbeat_sees_a_reboot_long_before_the_refresh(
    sim: SignSimulator, sim_clock: OffsetClock
) -> None:
    """Finding 5: a rebooted (dark) sign is seen by the cheap status heartbeat, reported
    with its problem and since when, rewritten, and verified again; the full refresh is
    ten minutes away, so nothing else could have seen it during this test."""
    events: list[SignBusEvent] = []
    config = tcp_config(
        sim.port, refresh_interval_s=600, watchdog_timeout_s=1200, heartbeat_interval_s=0.2
    )
    bus = SignBus(bus_id="b1", config=config, on_event=events.append)
    async with running(bus):
        bus.set_display("g1", GUIDE)
        await wait_until(lambda: bus.status("g1").verified_at is not None, 20, "first read-back")
        assert bus.status("g1").problem is None
        sim_clock.offset += 100  # the sign has been up for a while
        await wait_until(lambda: (bus.status("g1").uptime_s or 0) >= 100, 20, "uptime")
        refreshes = bus.status("g1").counters.verify_mismatches
        before = time.time()
        sim.reboot(1)
        assert sim.shown(1) == "--"  # no count: power-on values, no controller heard yet
        await wait_until(lambda: SignBusEventKind.REBOOT in kinds(events, "g1"), 20, "reboot")
        reboot = next(e for e in events if e.kind is SignBusEventKind.REBOOT)
        assert "uptime went back" in reboot.reason
        await wait_until(lambda: sim.shown(1) == "P2 37 → green", 20, "rewritten")
        await wait_until(
            lambda: (
                (bus.status("g1").verified_at or 0) > before and bus.status("g1").problem is None
            ),
            20,
            "verified again",
        )
        after_reboot = events[events.index(reboot) :]
        verified = next(e for e in after_reboot if e.kind is SignBusEventKind.VERIFIED)
        assert "rebooted" in verified.reason  # the end of the dark period names what it was
        assert bus.status("g1").counters.reboots_seen == 1
        assert bus.status("g1").counters.verify_mismatches == refreshes  # no refresh needed


async def test_sign_bus_reports_a_mismatch_as_the_signs_problem() -> None:
    """A read-back that differs from what was written is the sign's problem, in words,
    until the rewrite is read back as written."""
    async with SignSimulator(units=UNITS, tcp=("127.0.0.1", 0)) as server:
        events: list[SignBusEvent] = []
        problems: list[str | None] = []
        bus = SignBus(bus_id="b1", config=tcp_config(server.port), on_event=events.append)

        def watch(event: SignBusEvent) -> None:
            events.append(event)
            problems.append(bus.status("g1").problem if event.sign_id == "g1" else None)

        bus._on_event = watch
        async with running(bus):
            bus.set_display("g1", GUIDE)
            await wait_until(lambda: bus.status("g1").verified_at is not None, 20)
            intruder = ModbusClient(bus="intruder", transport="tcp", host="127.0.0.1",
                                    port=server.port or 0, timeout_s=1)  # fmt: skip
            await intruder.connect()
            await intruder.write_registers(1, 0x0000, [99])
            intruder.close()
            await wait_until(lambda: SignBusEventKind.VERIFY_MISMATCH in kinds(events, "g1"), 20)
            assert any(p and "shows 'P2 99 →' instead of 'P2 37 →'" in p for p in problems)
            await wait_until(lambda: bus.status("g1").problem is None, 20)


async def test_a_short_answer_timeout_does_not_cut_the_connect_short(sim: SignSimulator) -> None:
    """scan-signs probes with a 0.1 s answer timeout; that bounds each answer, not the TCP
    connect, which on a loaded box (or a gateway across a network) may take longer. Under
    load 12 the scan failed with 'cannot connect' to a simulator listening on loopback."""
    client = ModbusClient(bus="b8", transport="tcp", host="127.0.0.1", port=sim.port or 0,
                          timeout_s=1e-6)  # fmt: skip
    try:
        await client.connect()
        assert client.connected
    finally:
        client.close()
