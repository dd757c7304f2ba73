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

``simulators.town_driver.TownDriver`` turns events into the real interfaces: sensor frames on
pty lines (``ConcentratorSimulator``), sign reboots on the Modbus sign servers
(``SignSimulator``), captures posted to central (``simulators.cameras``), and network cuts
on a TCP relay between a box and the broker (``NetworkCut``). The plan never touches
them, so it is tested on its own.

::

    site file --plan_town(seed)--> [TownEvent ...] --TownDriver--> ptys, Modbus, HTTP, relay
                                          |
                                          +--TownTruth--> expected lot figures
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from simulators.sites import XIGANG
from site_model.site import SignKind, Site, load_site

__all__ = [
    "Arrival",
    "BayChange",
    "BoxNetwork",
    "BoxRestarts",
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


@dataclass(frozen=True, slots=True, kw_only=True)
class BoxRestarts:
    """A box's process is stopped and started again (a power cut, a watchdog reset)."""

    at: float
    box_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Arrival:
    """A driver reaches a lot's entrance and decides by its sign where to park (``drivers=
    "signs"``); ``knows_town`` drivers ignore a full sign's direction and try the lots they
    know, nearest first. Where they end up is decided when they arrive, not in the plan."""

    at: float
    lot_id: str
    dwell_s: float
    knows_town: bool
    driver_id: int


TownEvent = BayChange | CaptureSeen | SensorDies | SignReboots | BoxNetwork | BoxRestarts | Arrival


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
        drivers: str = "planned",
        knows_town_share: float = 0.3,
    ):
        self.demand = demand
        self.drivers = drivers
        self.knows_town_share = knows_town_share
        self.site = site
        self.rng = random.Random(seed)
        self.start = start
        self.end = end
        self.market_day = market_day
        self.tz = ZoneInfo(site.site.timezone)
        local = datetime.fromtimestamp(start, self.tz)
        self.midnight = datetime.combine(local.date(), time(0), tzinfo=self.tz).timestamp()
        self.events: list[TownEvent] = []
        self.box_restarts = False
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
        if self.drivers == "signs":
            for n, (t, lot_id) in enumerate(arrivals, start=1):
                self.events.append(
                    Arrival(
                        at=t,
                        lot_id=lot_id,
                        dwell_s=self.dwell(lot_id),
                        knows_town=self.rng.random() < self.knows_town_share,
                        driver_id=n,
                    )
                )
            return
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

    def fault_times(self) -> list[float]:
        """When the four faults strike: in the morning peak (07:10, 07:40, 08:05, 08:20) when
        the period holds it, the box restart in the evening peak (17:40) when it holds that,
        else 10, 25, 40 and 55 minutes after the start."""
        morning = [self.midnight + h * HOUR for h in (7 + 10 / 60, 7 + 40 / 60, 8 + 5 / 60)]
        restart = [self.midnight + (17 + 40 / 60) * HOUR, self.midnight + (8 + 20 / 60) * HOUR]
        if all(self.start <= t < self.end - 30 * MINUTE for t in morning):
            late = next((t for t in restart if self.start <= t < self.end - 30 * MINUTE), None)
            if late is not None:
                return [*morning, late]
        return [self.start + m * MINUTE for m in (10, 25, 40, 55)]

    def plan_faults(self, *, outage_s: float) -> None:
        dies, cut, reboot, restart = self.fault_times()
        lot_ids = sorted(self.site.lots)
        if len(lot_ids) >= 2:
            lot_id = lot_ids[1]
            bay_id = self.rng.choice(self.site.lots[lot_id].bay_ids(lot_id))
            self.events.append(SensorDies(at=dies, bay_id=bay_id))
        guidance = sorted(
            s for s, sign in self.site.signs.items() if sign.kind is SignKind.GUIDANCE
        )
        if guidance:
            self.events.append(SignReboots(at=reboot, sign_id=guidance[0]))
        if len(lot_ids) >= 3:
            box_id = self.site.lots[lot_ids[2]].box_id
            self.events.append(BoxNetwork(at=cut, box_id=box_id, up=False))
            self.events.append(BoxNetwork(at=cut + outage_s, box_id=box_id, up=True))
        if lot_ids and self.box_restarts:
            self.events.append(BoxRestarts(at=restart, box_id=self.site.lots[lot_ids[0]].box_id))


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
    drivers: str = "planned",
    knows_town_share: float = 0.3,
    box_restarts: bool = False,
) -> list[TownEvent]:
    """Every event from ``start`` for ``hours`` simulated hours, sorted; pure and seeded.

    Args:
        start: epoch seconds of the town's clock when the plan begins (all bays free before).
        outage_s: how long (simulated seconds) the faulted box stays off the network.
        demand: per-lot factors on the arrival rate (a lot that draws more drivers).
        drivers: ``planned``: each arrival is a planned bay change, redirected by the truth
            when its lot is full; ``signs``: each arrival is an :class:`Arrival` that reads the
            lot's live sign when it happens (``simulators.town_outcomes``).
        knows_town_share: with ``signs``, the share of drivers who know the town.
        box_restarts: include the box restart in the fault script (the demo can do it).
    """
    if drivers not in ("planned", "signs"):
        raise ValueError(f"drivers must be 'planned' or 'signs', not {drivers!r}")
    end = start + hours * HOUR
    planner = _Planner(
        site,
        seed=seed,
        start=start,
        end=end,
        market_day=market_day,
        demand=demand or {},
        drivers=drivers,
        knows_town_share=knows_town_share,
    )
    planner.box_restarts = box_restarts
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

    _bays: dict[str, list[str]] = field(default_factory=dict)
    _lot_of: dict[str, str] = field(default_factory=dict)

    def bays_of(self, lot_id: str) -> list[str]:
        if not self._bays:
            self._bays = {lot_id: lot.bay_ids(lot_id) for lot_id, lot in self.site.lots.items()}
            self._lot_of = {b: lot for lot, bays in self._bays.items() for b in bays}
        return self._bays[lot_id]

    def lot_of(self, bay_id: str) -> str | None:
        """The lot a bay belongs to (None: a stall pitch or unknown bay)."""
        if not self._bays:
            self.bays_of(next(iter(self.site.lots)))
        return self._lot_of.get(bay_id)

    def free_bays(self, lot_id: str) -> list[str]:
        """Bays with no car in them now (a dead sensor's bay may be one)."""
        return [b for b in self.bays_of(lot_id) if not self.occupied.get(b, False)]

    def lot_figure(self, lot_id: str, *, dead_unknown: bool = True) -> dict[str, int]:
        """One lot: capacity, free, occupied, unknown (dead sensors), closed."""
        figures = {"capacity": 0, "free": 0, "occupied": 0, "unknown": 0, "closed": 0}
        for bay_id in self.bays_of(lot_id):
            figures["capacity"] += 1
            if dead_unknown and bay_id in self.dead:
                figures["unknown"] += 1
            elif self.occupied.get(bay_id, False):
                figures["occupied"] += 1
            else:
                figures["free"] += 1
        return figures

    def lot_figures(self, *, dead_unknown: bool = True) -> dict[str, dict[str, int]]:
        """Per lot: capacity, free, occupied, unknown (dead sensors), closed."""
        return {
            lot_id: self.lot_figure(lot_id, dead_unknown=dead_unknown) for lot_id in self.site.lots
        }

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
    parser.add_argument("--site", type=Path, default=XIGANG, help="the site file (Xigang)")
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
    from site_model.site import SiteError

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
