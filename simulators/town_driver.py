"""Playing the town's plan against the real interfaces, in time with the town's clock.

:class:`TownDriver` turns the plan's events (``simulators.town``) into sensor frames on pty
lines (``ConcentratorSimulator``), sign reboots on the Modbus sign servers
(``SignSimulator``), captures posted to central (``simulators.cameras``), network cuts on a
TCP relay between a box and the broker (:class:`NetworkCut`) and box restarts (a callback the
demo gives). With ``drivers="signs"`` plans, each arrival reads the live sign and decides
(``simulators.town_outcomes``); the departures those drivers schedule are played with the
plan's events, earliest first. With ``timeline`` it writes the truth timeline.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from simulators.town import (
    Arrival,
    BayChange,
    BoxNetwork,
    BoxRestarts,
    CaptureSeen,
    SensorDies,
    SensorPlan,
    SignReboots,
    TownClock,
    TownEvent,
    TownTruth,
)
from site_model.site import Site

__all__ = ["DriverStats", "NetworkCut", "TownDriver"]


class NetworkCut:
    """A TCP relay between one box and the broker that can be cut and restored.

    Cutting closes every relayed connection and stops listening, so a new connection is
    refused (the box sees its broker vanish, as when a 4G router drops, and its bare TCP
    probes of the broker fail); restoring listens again on the same port, and the box
    reconnects.
    """

    def __init__(self, *, target_host: str, target_port: int, host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self.host = host
        self.port = 0
        self.up = True
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._listening: asyncio.Task[None] | None = None

    async def start(self) -> NetworkCut:
        await self._listen()
        return self

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while data := await reader.read(65536):
                if not self.up:
                    break
                writer.write(data)
                await writer.drain()
        writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.up:
            writer.close()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self._writers |= {writer, up_writer}
        try:
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        finally:
            self._writers -= {writer, up_writer}

    def cut(self) -> None:
        self.up = False
        if self._server is not None:
            self._server.close()  # no more accepts: a connect is refused
            self._server = None
        for writer in list(self._writers):
            writer.close()

    def restore(self) -> None:
        if self.up:
            return
        self.up = True
        self._listening = asyncio.get_running_loop().create_task(self._listen())

    async def close(self) -> None:
        if self._listening is not None:
            with contextlib.suppress(Exception):
                await self._listening
        server = self._server
        self.cut()
        if server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 2)


CapturePost = Callable[[CaptureSeen], Awaitable[object]]


@dataclass(slots=True)
class DriverStats:
    bay_changes: int = 0
    captures: int = 0
    capture_failures: int = 0
    faults: int = 0
    heartbeats: int = 0
    last_capture_error: str = ""


class TownDriver:
    """Plays a plan against the real interfaces, in time with a :class:`TownClock`.

    ``concentrators`` maps box id -> a running ``ConcentratorSimulator`` (``send_status``,
    ``send_heartbeat``, ``core.silent``); ``signs`` maps sign id -> (``SignSimulator``, unit);
    ``networks`` maps box id -> :class:`NetworkCut`; ``capture`` posts one capture (the
    camera simulator). A missing peer only skips its events (counted), never stops the day.
    """

    def __init__(
        self,
        *,
        site: Site,
        events: Sequence[TownEvent],
        clock: TownClock,
        sensors: Mapping[str, SensorPlan],
        concentrators: Mapping[str, Any],
        signs: Mapping[str, tuple[Any, int]] | None = None,
        networks: Mapping[str, NetworkCut] | None = None,
        capture: CapturePost | None = None,
        heartbeat_interval_s: float = 20.0,
        wall: Callable[[], float] | None = None,
        timeline: Path | None = None,
        restart_box: Callable[[str], Awaitable[object]] | None = None,
        seed: int = 0,
    ) -> None:
        import time as _time

        from simulators.town_outcomes import SignFollowers, TruthTimeline

        self.events = list(events)
        self.clock = clock
        self.sensors = sensors
        self.concentrators = concentrators
        self.signs = signs or {}
        self.networks = networks or {}
        self.capture = capture
        self.heartbeat_interval_s = heartbeat_interval_s
        self.wall = wall or _time.time
        self.truth = TownTruth(site=site)
        self.stats = DriverStats()
        self.position = 0
        self.dead_wall: dict[str, float] = {}
        self._captures: set[asyncio.Task[None]] = set()
        self.restart_box = restart_box
        self.timeline = TruthTimeline(timeline, wall=self.wall) if timeline else None
        self.followers = SignFollowers(
            site=site, read_sign=self._read_sign, free_bays=self.truth.free_bays, seed=seed
        )
        self._later: list[tuple[float, int, TownEvent]] = []  # departures drivers scheduled
        self._later_n = 0

    def _read_sign(self, sign_id: str) -> Any:
        from simulators.town_outcomes import read_face

        if sign_id not in self.signs:
            return None
        sim, unit = self.signs[sign_id]
        return read_face(sim.shown(unit), sim.display(unit))

    async def send_initial_state(self) -> None:
        """Every sensor reports once (a box starting up hears the whole lot)."""
        first = self.events[0].at if self.events else self.clock.sim_start
        while self.position < len(self.events) and self.events[self.position].at <= first:
            event = self.events[self.position]
            if isinstance(event, BayChange):
                self.truth.apply(event)
            self.position += 1
        for bay_id, plan in self.sensors.items():
            conc = self.concentrators.get(plan.box_id)
            if conc is not None:
                await conc.send_status(
                    plan.sensor_id, occupied=self.truth.occupied.get(bay_id, False)
                )
        if self.timeline is not None:
            self.timeline.lots(first, self.truth.lot_figures())

    def _note(self, event: TownEvent) -> None:
        """The truth timeline's line for an event (Arrival writes its own)."""
        if self.timeline is None:
            return
        if isinstance(event, BayChange):
            lot_id = self.truth.lot_of(event.bay_id)
            extra = {"lot": lot_id, "truth": self.truth.lot_figure(lot_id)} if lot_id else {}
            self.timeline.write(event.at, "bay", bay=event.bay_id, occupied=event.occupied,
                                why=event.why, **extra)  # fmt: skip
        elif isinstance(event, SensorDies | SignReboots | BoxNetwork | BoxRestarts):
            fields = {k: v for k, v in asdict(event).items() if k != "at"}
            lot_id = self.truth.lot_of(getattr(event, "bay_id", ""))
            if lot_id is not None:
                fields |= {"lot": lot_id, "truth": self.truth.lot_figure(lot_id)}
            self.timeline.write(event.at, "fault", fault=type(event).__name__, **fields)

    def _arrive(self, event: Arrival) -> BayChange | None:
        face, decision = self.followers.arrive(event.lot_id, knows_town=event.knows_town)
        self.followers.tally.count(event.lot_id, decision, knows_town=event.knows_town)
        if self.timeline is not None:
            self.timeline.write(
                event.at, "driver", driver=event.driver_id, lot=event.lot_id, read=face.text,
                knows_town=event.knows_town, parked=decision.parked, misled=decision.misled,
                turned_away_with_space=decision.turned_away_with_space,
            )  # fmt: skip
        if decision.bay_id is None:
            return None
        why = "car" if decision.parked == event.lot_id else f"car from full {event.lot_id}"
        self._later_n += 1
        leave = BayChange(at=event.at + event.dwell_s, bay_id=decision.bay_id, occupied=False,
                          why="left")  # fmt: skip
        heapq.heappush(self._later, (leave.at, self._later_n, leave))
        return BayChange(at=event.at, bay_id=decision.bay_id, occupied=True, why=why)

    async def _apply(self, event: TownEvent) -> None:
        if isinstance(event, Arrival):
            parked = self._arrive(event)
            if parked is None:
                return
            event = parked
        self.truth.apply(event)
        self._note(event)
        if isinstance(event, BayChange):
            plan = self.sensors.get(event.bay_id)
            conc = self.concentrators.get(plan.box_id) if plan else None
            if plan is not None and conc is not None:
                await conc.send_status(plan.sensor_id, occupied=event.occupied)
                self.stats.bay_changes += 1
        elif isinstance(event, CaptureSeen):
            if self.capture is not None:
                task = asyncio.create_task(self._post(event))
                self._captures.add(task)
                task.add_done_callback(self._captures.discard)
        elif isinstance(event, SensorDies):
            plan = self.sensors.get(event.bay_id)
            conc = self.concentrators.get(plan.box_id) if plan else None
            if plan is not None and conc is not None:
                conc.core.silent.add(plan.sensor_id)
                self.dead_wall[event.bay_id] = self.wall()
                self.stats.faults += 1
        elif isinstance(event, SignReboots):
            if event.sign_id in self.signs:
                sim, unit = self.signs[event.sign_id]
                sim.reboot(unit)
                self.stats.faults += 1
        elif isinstance(event, BoxNetwork):
            net = self.networks.get(event.box_id)
            if net is not None:
                if event.up:
                    net.restore()
                else:
                    net.cut()
                self.stats.faults += 1
        elif isinstance(event, BoxRestarts) and self.restart_box is not None:
            task = asyncio.create_task(self._restart(event.box_id))
            self._captures.add(task)
            task.add_done_callback(self._captures.discard)

    async def _restart(self, box_id: str) -> None:
        assert self.restart_box is not None
        try:
            await self.restart_box(box_id)
            self.stats.faults += 1
            if self.timeline is not None:  # its process runs again (the box is heard soon)
                self.timeline.write(
                    self.clock.sim(self.wall()), "fault", fault="BoxStarted", box_id=box_id
                )
        except Exception as exc:  # a box that would not restart is counted; the day goes on
            self.stats.last_capture_error = f"restart {box_id}: {type(exc).__name__}: {exc}"

    async def _post(self, event: CaptureSeen) -> None:
        assert self.capture is not None
        try:
            await self.capture(event)
            self.stats.captures += 1
        except Exception as exc:  # a refused capture is counted; the day goes on
            self.stats.capture_failures += 1
            self.stats.last_capture_error = f"{type(exc).__name__}: {exc}"[:200]

    def pending(self) -> Iterator[TownEvent]:
        return iter(self.events[self.position :])

    def _next(self) -> TownEvent | None:
        """The next event: the plan's or a departure a driver scheduled, earliest first."""
        planned = self.events[self.position] if self.position < len(self.events) else None
        later = self._later[0][2] if self._later else None
        if planned is None or (later is not None and later.at < planned.at):
            return later
        return planned

    async def run(self, *, until_sim: float | None = None) -> None:
        """Play events as the clock reaches them; heartbeats every live sensor meanwhile."""
        heartbeats = asyncio.create_task(self._heartbeats(), name="town-heartbeats")
        try:
            while (event := self._next()) is not None:
                if until_sim is not None and event.at >= until_sim:
                    break
                delay = self.clock.wall(event.at) - self.wall()
                if delay > 0:
                    await asyncio.sleep(min(delay, 0.25))
                    continue
                if self._later and self._later[0][2] is event:
                    heapq.heappop(self._later)
                else:
                    self.position += 1
                await self._apply(event)
            if until_sim is not None:
                delay = self.clock.wall(until_sim) - self.wall()
                if delay > 0:
                    await asyncio.sleep(delay)
        finally:
            heartbeats.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeats
            if self._captures:
                await asyncio.wait(self._captures, timeout=10)
            if self.timeline is not None:
                self.timeline.close()

    async def _heartbeats(self) -> None:
        plans = list(self.sensors.values())
        if not plans:
            return
        gap = self.heartbeat_interval_s / len(plans)
        while True:
            for plan in plans:
                conc = self.concentrators.get(plan.box_id)
                if conc is not None:
                    await conc.send_heartbeat(plan.sensor_id)
                    self.stats.heartbeats += 1
                await asyncio.sleep(gap)
