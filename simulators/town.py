"""A day of Xigang: the town simulation, a pure plan of what happens when, and its drivers.

Theory of operation
-------------------
``plan_town(site, seed=..., start=..., hours=...)`` is pure: from the site file and a seed
it computes, once, every :data:`TownEvent` of the period, in simulated time (epoch seconds
of the town's clock), sorted. The same seed gives the same plan, byte for byte. What it
models:

* **car parks**: arrivals by hour of day per lot (overnight residents, a morning peak,
  market days at the farmers' market lot), dwell times, and drivers following the signs:
  a driver who finds a lot full goes to the lot its entrance sign points to (the sign's
  ``fallback`` list, nearest first) and leaves the town if every one is full;
* **stall zones**: vendors set up after the window opens and pack up before it closes;
  some are late, and stay past close and grace (at least one per closing, so the box's
  alert is always exercised);
* **no-parking segments**: illegal parkers captured by the segment's cameras every few
  minutes; some leave before the evidence rule (K captures over T minutes) is met;
* **the truck ban**: a big truck (yellow plate) entering at night, seen by an entry camera;
* **a car abandoned for days**, compressed: the captures of the previous days are posted in
  the first minutes, stamped with their own (earlier) times;
* **the fault script**: a sensor dies, a sign reboots, a box loses its network and gets it
  back (its outbox then replays).

:class:`TownTruth` replays the same plan to say what every bay holds at any time, and what
a lot should report (a dead sensor's bay is ``unknown``): the demo's end-of-run check.

The drivers (:class:`TownDriver`) turn events into the real interfaces: sensor frames on
pty lines (``ConcentratorSimulator``), sign reboots on the Modbus sign servers
(``SignSimulator``), captures posted to central (``simulators.cameras``), and network cuts
on a TCP relay between a box and the broker (:class:`NetworkCut`). The plan never touches
them, so it is tested on its own.

::

    site file --plan_town(seed)--> [TownEvent ...] --TownDriver--> ptys, Modbus, HTTP, relay
                                          |
                                          +--TownTruth--> expected lot figures
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import random
import sys
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from central.site import SignKind, Site, load_site

__all__ = [
    "BayChange",
    "BoxNetwork",
    "CaptureSeen",
    "SensorDies",
    "SensorPlan",
    "SignReboots",
    "TownClock",
    "TownEvent",
    "TownTruth",
    "plan_town",
    "sensor_plan",
]

SENSOR_FORMATS = ("nwave-nps", "bosch-pls", "dingtek-do20x")
MINUTE = 60.0
HOUR = 3600.0
DAY = 86400.0

# Arrivals per bay per hour, by hour of day (a small town: quiet nights, a morning peak
# from 7 to 9, a lunch bump, an evening peak). Invented, plausible.
HOURLY_RATE = (
    0.01, 0.01, 0.01, 0.01, 0.02, 0.06, 0.18, 0.42, 0.46, 0.30, 0.24, 0.26,
    0.30, 0.24, 0.22, 0.24, 0.28, 0.36, 0.34, 0.22, 0.14, 0.08, 0.04, 0.02,
)  # fmt: skip
MARKET_DAY_FACTOR = 1.6  # the farmers' market lot on market days
MARKET_LOT = "P1"
OVERNIGHT_SHARE = 0.12  # bays taken by residents' cars at night


# --- events ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class BayChange:
    """A vehicle arrives in (``occupied``) or leaves a bay of a lot or a stall pitch."""

    at: float
    bay_id: str
    occupied: bool
    why: str = "car"


@dataclass(frozen=True, slots=True, kw_only=True)
class CaptureSeen:
    """A camera sees a plate; ``captured_at`` may be earlier than ``at`` (a replay)."""

    at: float
    captured_at: float
    camera_id: str
    plate: str
    plate_colour: str
    vehicle_class: str
    event_id: str
    why: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SensorDies:
    at: float
    bay_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SignReboots:
    at: float
    sign_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class BoxNetwork:
    """A box loses (``up=False``) or gets back its network."""

    at: float
    box_id: str
    up: bool


TownEvent = BayChange | CaptureSeen | SensorDies | SignReboots | BoxNetwork


def event_record(event: TownEvent) -> dict[str, Any]:
    """An event as a JSON-able dict with its type name (``parkgrid sim town --plan``)."""
    return {"type": type(event).__name__, **asdict(event)}


# --- the clock ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class TownClock:
    """Simulated time runs ``speed`` times faster than the wall clock from a common origin."""

    sim_start: float
    wall_start: float
    speed: float

    def sim(self, wall: float) -> float:
        return self.sim_start + (wall - self.wall_start) * self.speed

    def wall(self, sim: float) -> float:
        return self.wall_start + (sim - self.sim_start) / self.speed


def day_start(day: date, at: time, tz: ZoneInfo) -> float:
    """Epoch seconds of ``day`` at ``at`` in the site's time zone."""
    return datetime.combine(day, at, tzinfo=tz).timestamp()


# --- sensors --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class SensorPlan:
    """Which sensor lies in which bay, and which box hears it."""

    box_id: str
    bay_id: str
    place: str  # lot or zone id
    sensor_id: str
    fmt: str


def sensor_plan(site: Site) -> dict[str, SensorPlan]:
    """Every bay's sensor: ids ``1BBBNNNN`` (box index, bay index), formats in turn."""
    plans: dict[str, SensorPlan] = {}
    for box_index, box_id in enumerate(sorted(site.boxes), start=1):
        places = [(lot_id, lot.bay_ids(lot_id)) for lot_id, lot in site.lots.items()]
        places += [(zid, zone.bay_ids(zid)) for zid, zone in site.zones.items()]
        owned = [
            (place, bays)
            for place, bays in places
            if (site.lots[place].box_id if place in site.lots else site.zones[place].box_id)
            == box_id
        ]
        n = 0
        for place, bays in owned:
            for bay_id in bays:
                n += 1
                plans[bay_id] = SensorPlan(
                    box_id=box_id,
                    bay_id=bay_id,
                    place=place,
                    sensor_id=f"{0x10000000 + box_index * 0x10000 + n:08X}",
                    fmt=SENSOR_FORMATS[n % len(SENSOR_FORMATS)],
                )
    return plans


# --- the plan -------------------------------------------------------------------------


def _hours(text: str, day0: float) -> tuple[float, float]:
    """'05:30-07:30' on the day starting at ``day0`` -> (open, close); close may be next day."""
    a, b = text.split("-")
    ha, ma = map(int, a.split(":"))
    hb, mb = map(int, b.split(":"))
    opens, closes = day0 + ha * HOUR + ma * MINUTE, day0 + hb * HOUR + mb * MINUTE
    if closes <= opens:
        closes += DAY
    return opens, closes


class _Planner:
    def __init__(
        self,
        site: Site,
        *,
        seed: int,
        start: float,
        end: float,
        market_day: bool,
        demand: Mapping[str, float],
    ):
        self.demand = demand
        self.site = site
        self.rng = random.Random(seed)
        self.start = start
        self.end = end
        self.market_day = market_day
        self.tz = ZoneInfo(site.site.timezone)
        local = datetime.fromtimestamp(start, self.tz)
        self.midnight = datetime.combine(local.date(), time(0), tzinfo=self.tz).timestamp()
        self.events: list[TownEvent] = []
        self._plates: set[str] = set()
        self._event_n = 0

    # helpers

    def hour_of(self, t: float) -> int:
        return datetime.fromtimestamp(t, self.tz).hour

    def plate(self, colour: str = "blue") -> str:
        letters = "ABCDEFGHJKLMNPQRSTUVWXYZ"
        while True:
            body = "".join(self.rng.choice(letters + "0123456789") for _ in range(4))
            prefix = "鲁D" if self.rng.random() < 0.85 else self.rng.choice(["鲁A", "苏C", "鲁Q"])
            tail = self.rng.choice("0123456789")
            plate = f"{prefix}{body}{tail}"
            if colour == "green":
                plate = f"{prefix}D{body}{tail}"
            if plate not in self._plates:
                self._plates.add(plate)
                return plate

    def event_id(self) -> str:
        self._event_n += 1
        return f"town-{self._event_n:06d}"

    def dwell(self, lot_id: str) -> float:
        mean = 50 * MINUTE if lot_id == MARKET_LOT else 95 * MINUTE
        return max(8 * MINUTE, self.rng.lognormvariate(math.log(mean), 0.7))

    # car parks

    def plan_lots(self) -> None:
        # free_at[bay] = when the bay is free again; a drivers' walk follows the signs.
        free_at: dict[str, float] = {}
        fallback: dict[str, list[str]] = {lot: [] for lot in self.site.lots}
        for sign in self.site.signs.values():
            if sign.kind is SignKind.GUIDANCE and sign.lot is not None:
                fallback[sign.lot] = [target.lot for target in sign.fallback]
        bays = {lot_id: lot.bay_ids(lot_id) for lot_id, lot in self.site.lots.items()}
        # Overnight cars already parked when the day starts (sent as the initial state).
        for ids in bays.values():
            for bay_id in ids:
                if self.rng.random() < OVERNIGHT_SHARE:
                    free_at[bay_id] = self.start + self.rng.uniform(1, 5) * HOUR
                    self.events.append(
                        BayChange(at=self.start, bay_id=bay_id, occupied=True, why="overnight")
                    )
                    self.events.append(
                        BayChange(at=free_at[bay_id], bay_id=bay_id, occupied=False, why="left")
                    )
        arrivals: list[tuple[float, str]] = []
        for lot_id, lot in self.site.lots.items():
            day0 = self.midnight
            opens, closes = _hours(lot.hours, day0) if lot.hours else (-math.inf, math.inf)
            t = self.start
            while t < self.end:
                rate = HOURLY_RATE[self.hour_of(t)] * len(bays[lot_id])
                if self.market_day and lot_id == MARKET_LOT:
                    rate *= MARKET_DAY_FACTOR
                rate *= self.demand.get(lot_id, 1.0)
                t += self.rng.expovariate(rate / HOUR)
                if t < self.end and opens <= t < closes - 30 * MINUTE:
                    arrivals.append((t, lot_id))
        arrivals.sort()
        for t, lot_id in arrivals:
            for target in [lot_id, *fallback[lot_id]]:
                free = [b for b in bays[target] if free_at.get(b, -math.inf) <= t]
                if free:
                    bay_id = self.rng.choice(free)
                    leave = t + self.dwell(target)
                    free_at[bay_id] = leave
                    why = "car" if target == lot_id else f"car from full {lot_id}"
                    self.events.append(BayChange(at=t, bay_id=bay_id, occupied=True, why=why))
                    self.events.append(
                        BayChange(at=leave, bay_id=bay_id, occupied=False, why="left")
                    )
                    break

    # stall zones

    def plan_zones(self) -> None:
        for zone_id, zone in self.site.zones.items():
            pitches = zone.bay_ids(zone_id)
            for day_offset in (-1, 0, 1):
                day0 = self.midnight + day_offset * DAY
                for window in zone.trading_hours:
                    opens, closes = _hours(window, day0)
                    if closes < self.start or opens > self.end:
                        continue
                    grace = zone.grace_min * MINUTE
                    used = self.rng.sample(pitches, k=max(1, int(len(pitches) * 0.75)))
                    late_one = self.rng.choice(used)
                    for pitch in used:
                        setup = opens + self.rng.uniform(0, 25) * MINUTE
                        late = pitch == late_one or self.rng.random() < 0.15
                        if late:
                            # Past close and grace: the box's alert, then the vendor goes.
                            leave = closes + grace + self.rng.uniform(3, 12) * MINUTE
                        else:
                            leave = closes - self.rng.uniform(0, 20) * MINUTE
                        why = "vendor late" if late else "vendor"
                        if setup < self.start <= leave:
                            setup = self.start
                        if setup >= self.start:
                            self.events.append(
                                BayChange(at=setup, bay_id=pitch, occupied=True, why=why)
                            )
                            self.events.append(
                                BayChange(at=leave, bay_id=pitch, occupied=False, why=why)
                            )

    # roads

    def cameras_of(self, *, segment: str | None = None, entry: str | None = None) -> list[str]:
        return [
            cam_id
            for cam_id, cam in self.site.cameras.items()
            if (segment is not None and cam.segment == segment)
            or (entry is not None and cam.entry == entry)
        ]

    def parked(self, *, at: float, stay: float, segment: str, why: str) -> None:
        """An illegal parker on ``segment``: a capture on arrival and every few minutes."""
        cameras = self.cameras_of(segment=segment)
        if not cameras:
            return
        camera = self.rng.choice(cameras)
        plate = self.plate()
        t = at
        while t <= at + stay and t < self.end:
            self.events.append(
                CaptureSeen(
                    at=t,
                    captured_at=t,
                    camera_id=camera,
                    plate=plate,
                    plate_colour="blue",
                    vehicle_class="car",
                    event_id=self.event_id(),
                    why=why,
                )
            )
            t += self.rng.uniform(2.5, 3.5) * MINUTE

    def plan_roads(self) -> None:
        capture_segments = [s for s, seg in self.site.segments.items() if seg.capture]
        if not capture_segments:
            return
        # One certain violation and one certain near miss early on, then a daytime rate.
        self.parked(at=self.start + 8 * MINUTE, stay=16 * MINUTE, segment=capture_segments[0],
                    why="illegal parker")  # fmt: skip
        self.parked(at=self.start + 12 * MINUTE, stay=3 * MINUTE, segment=capture_segments[-1],
                    why="illegal parker, left in time")  # fmt: skip
        t = self.start
        while True:
            t += self.rng.expovariate(3 / HOUR)
            if t >= self.end:
                break
            if not 6 <= self.hour_of(t) < 22:
                continue
            short = self.rng.random() < 0.4
            stay = self.rng.uniform(1, 4) * MINUTE if short else self.rng.uniform(8, 30) * MINUTE
            why = "illegal parker, left in time" if short else "illegal parker"
            self.parked(at=t, stay=stay, segment=self.rng.choice(capture_segments), why=why)

    def plan_truck(self) -> None:
        entries = sorted(self.site.entries)
        if not entries:
            return
        # At night: soon after the start when the day starts before dawn, else late evening.
        local = datetime.fromtimestamp(self.start, self.tz)
        at = self.start + 15 * MINUTE if local.hour < 5 else self.midnight + 22 * HOUR + 40 * MINUTE
        if at >= self.end:
            at = self.start + 15 * MINUTE
        entry = self.rng.choice(entries)
        cameras = self.cameras_of(entry=entry)
        if not cameras:
            return
        self.events.append(
            CaptureSeen(
                at=at,
                captured_at=at,
                camera_id=cameras[0],
                plate=self.plate("yellow"),
                plate_colour="yellow",
                vehicle_class="truck",
                event_id=self.event_id(),
                why="big truck entering at night",
            )
        )

    def plan_abandoned(self) -> None:
        capture_segments = [s for s, seg in self.site.segments.items() if seg.capture]
        if not capture_segments:
            return
        segment = capture_segments[len(capture_segments) // 2]
        cameras = self.cameras_of(segment=segment)
        if not cameras:
            return
        plate = self.plate()
        left = self.start - 2 * DAY - 3 * HOUR
        # Compressed: two days of daily patrol captures, posted in the first minutes.
        for n, captured in enumerate((left, left + DAY, left + 2 * DAY, self.start + MINUTE)):
            self.events.append(
                CaptureSeen(
                    at=self.start + (n + 1) * MINUTE,
                    captured_at=captured,
                    camera_id=cameras[0],
                    plate=plate,
                    plate_colour="blue",
                    vehicle_class="car",
                    event_id=self.event_id(),
                    why="car abandoned for days",
                )
            )

    # faults

    def plan_faults(self, *, outage_s: float) -> None:
        lot_ids = sorted(self.site.lots)
        if len(lot_ids) >= 2:
            lot_id = lot_ids[1]
            bay_id = self.rng.choice(self.site.lots[lot_id].bay_ids(lot_id))
            self.events.append(SensorDies(at=self.start + 10 * MINUTE, bay_id=bay_id))
        guidance = sorted(
            s for s, sign in self.site.signs.items() if sign.kind is SignKind.GUIDANCE
        )
        if guidance:
            self.events.append(SignReboots(at=self.start + 40 * MINUTE, sign_id=guidance[0]))
        if len(lot_ids) >= 3:
            box_id = self.site.lots[lot_ids[2]].box_id
            cut = self.start + 25 * MINUTE
            self.events.append(BoxNetwork(at=cut, box_id=box_id, up=False))
            self.events.append(BoxNetwork(at=cut + outage_s, box_id=box_id, up=True))


def _sort_key(event: TownEvent) -> tuple[float, int, str]:
    # Departures before arrivals at the same instant; then a stable order by kind and id.
    rank = 0 if isinstance(event, BayChange) and not event.occupied else 1
    return (event.at, rank, repr(event))


def plan_town(
    site: Site,
    *,
    seed: int,
    start: float,
    hours: float = 24.0,
    market_day: bool = True,
    outage_s: float = 60.0,
    demand: Mapping[str, float] | None = None,
) -> list[TownEvent]:
    """Every event from ``start`` for ``hours`` simulated hours, sorted; pure and seeded.

    Args:
        start: epoch seconds of the town's clock when the plan begins (all bays free before).
        outage_s: how long (simulated seconds) the faulted box stays off the network.
        demand: per-lot factors on the arrival rate (a lot that draws more drivers).
    """
    end = start + hours * HOUR
    planner = _Planner(
        site, seed=seed, start=start, end=end, market_day=market_day, demand=demand or {}
    )
    planner.plan_lots()
    planner.plan_zones()
    planner.plan_roads()
    planner.plan_truck()
    planner.plan_abandoned()
    planner.plan_faults(outage_s=outage_s)
    return sorted((e for e in planner.events if start <= e.at < end), key=_sort_key)


# --- the truth ------------------------------------------------------------------------


@dataclass(slots=True)
class TownTruth:
    """Bays' true state, replayed from the plan; what each lot should report."""

    site: Site
    occupied: dict[str, bool] = field(default_factory=dict)
    dead: set[str] = field(default_factory=set)

    def apply(self, event: TownEvent) -> None:
        if isinstance(event, BayChange):
            self.occupied[event.bay_id] = event.occupied
        elif isinstance(event, SensorDies):
            self.dead.add(event.bay_id)

    def apply_all(self, events: Iterable[TownEvent]) -> TownTruth:
        for event in events:
            self.apply(event)
        return self

    def lot_figures(self, *, dead_unknown: bool = True) -> dict[str, dict[str, int]]:
        """Per lot: capacity, free, occupied, unknown (dead sensors), closed."""
        out: dict[str, dict[str, int]] = {}
        for lot_id, lot in self.site.lots.items():
            figures = {"capacity": 0, "free": 0, "occupied": 0, "unknown": 0, "closed": 0}
            for bay_id in lot.bay_ids(lot_id):
                figures["capacity"] += 1
                if dead_unknown and bay_id in self.dead:
                    figures["unknown"] += 1
                elif self.occupied.get(bay_id, False):
                    figures["occupied"] += 1
                else:
                    figures["free"] += 1
            out[lot_id] = figures
        return out

    def zone_occupied(self) -> dict[str, int]:
        return {
            zone_id: sum(self.occupied.get(b, False) for b in zone.bay_ids(zone_id))
            for zone_id, zone in self.site.zones.items()
        }


def summarise(events: Sequence[TownEvent]) -> dict[str, int]:
    """Counts by kind and reason: what a plan holds, for people and tests."""
    counts: dict[str, int] = {}
    for event in events:
        key = type(event).__name__
        if isinstance(event, BayChange | CaptureSeen):
            key = f"{key}: {event.why}"
        counts[key] = counts.get(key, 0) + 1
    return dict(sorted(counts.items()))


# --- the drivers ----------------------------------------------------------------------


class NetworkCut:
    """A TCP relay between one box and the broker that can be cut and restored.

    Cutting closes every relayed connection and refuses new ones (the box sees its broker
    vanish, as when a 4G router drops); restoring accepts again, and the box reconnects.
    """

    def __init__(self, *, target_host: str, target_port: int, host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self.host = host
        self.port = 0
        self.up = True
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> NetworkCut:
        self._server = await asyncio.start_server(self._serve, self.host, 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

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
        for writer in list(self._writers):
            writer.close()

    def restore(self) -> None:
        self.up = True

    async def close(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)


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
    ) -> None:
        import time as _time

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

    async def _apply(self, event: TownEvent) -> None:
        self.truth.apply(event)
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

    async def run(self, *, until_sim: float | None = None) -> None:
        """Play events as the clock reaches them; heartbeats every live sensor meanwhile."""
        heartbeats = asyncio.create_task(self._heartbeats(), name="town-heartbeats")
        try:
            while self.position < len(self.events):
                event = self.events[self.position]
                if until_sim is not None and event.at >= until_sim:
                    break
                delay = self.clock.wall(event.at) - self.wall()
                if delay > 0:
                    await asyncio.sleep(min(delay, 0.25))
                    continue
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


# --- CLI ------------------------------------------------------------------------------


def default_start(site: Site, *, at: str = "04:30", days_back: int = 1) -> float:
    """The town's day starts at ``at`` local time, ``days_back`` days before today.

    The simulated day lies in the past so that no capture is stamped in the future.
    """
    tz = ZoneInfo(site.site.timezone)
    today = datetime.now(tz).date() - timedelta(days=days_back)
    hh, mm = map(int, at.split(":"))
    return day_start(today, time(hh, mm), tz)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--site", type=Path, default=Path("sites/xigang.toml"))
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--start", default="04:30", help="local time the day starts (HH:MM)")
    parser.add_argument("--hours", type=float, default=24.0, help="simulated hours")
    parser.add_argument(
        "--plan", action="store_true", help="print every event as JSON lines instead of a summary"
    )
    parser.epilog = (
        "Prints the plan of a day (pure, seeded). The whole town with its boxes, signs and "
        "cameras runs with `parkgrid demo`."
    )
    parser.set_defaults(handler=_cli)


def _cli(args: argparse.Namespace) -> int:
    from central.site import SiteError

    try:
        site = load_site(args.site)
    except SiteError as exc:
        print(exc, file=sys.stderr)
        return 2
    events = plan_town(site, seed=args.seed, start=default_start(site, at=args.start),
                       hours=args.hours)  # fmt: skip
    if args.plan:
        for event in events:
            print(json.dumps(event_record(event), ensure_ascii=False))
        return 0
    truth = TownTruth(site=site).apply_all(events)
    report = {"events": len(events), "by_kind": summarise(events)}
    report["lots_at_end"] = truth.lot_figures()
    print(json.dumps(report, ensure_ascii=False, indent=2))
    return 0
